"""How long since the user last touched keyboard or mouse anywhere on the desktop (S1).

The app's own event filter sees only input that reaches our windows; this probe covers a user
who reads a conversation while moving the mouse elsewhere. One class per platform.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys
from typing import Any, Protocol

from PySide6.QtDBus import QDBus, QDBusConnection, QDBusMessage

from ui.platform import PlatformUnavailable

__all__ = [
    "IdleProbe",
    "LinuxDBusIdleProbe",
    "MacIdleProbe",
    "WindowsIdleProbe",
    "make_idle_probe",
]

log = logging.getLogger(__name__)


class IdleProbe(Protocol):
    def idle_seconds(self) -> float:
        """Seconds since the last keyboard or mouse input on this desktop session."""
        ...


# (service, object path, interface, method, unit in seconds): GNOME first, then the
# freedesktop screensaver interface of KDE, Xfce and others (its spec says seconds).
_DBUS_SOURCES = (
    (
        "org.gnome.Mutter.IdleMonitor",
        "/org/gnome/Mutter/IdleMonitor/Core",
        "org.gnome.Mutter.IdleMonitor",
        "GetIdletime",
        0.001,
    ),
    (
        "org.freedesktop.ScreenSaver",
        "/org/freedesktop/ScreenSaver",
        "org.freedesktop.ScreenSaver",
        "GetSessionIdleTime",
        1.0,
    ),
)


class LinuxDBusIdleProbe:
    """Asks the desktop over the session bus; the constructor tries each source once."""

    def __init__(self, *, bus: QDBusConnection | None = None, timeout_ms: int = 300) -> None:
        self._bus = bus if bus is not None else QDBusConnection.sessionBus()
        self._timeout_ms = timeout_ms
        if not self._bus.isConnected():
            raise PlatformUnavailable("no D-Bus session bus")
        for source in _DBUS_SOURCES:
            self._source = source
            if self._query() is not None:
                log.info("idle time from %s", source[0])
                return
        raise PlatformUnavailable("no idle-time service answers on the session bus")

    def _query(self) -> float | None:
        service, path, interface, method, unit = self._source
        call = QDBusMessage.createMethodCall(service, path, interface, method)
        reply = self._bus.call(call, QDBus.CallMode.Block, self._timeout_ms)
        if reply.type() != QDBusMessage.MessageType.ReplyMessage or not reply.arguments():
            return None
        value = reply.arguments()[0]
        if not isinstance(value, int | float):
            return None
        return float(value) * unit

    def idle_seconds(self) -> float:
        value = self._query()
        # A desktop that stops answering must not make anything "seen": report a long idle,
        # so S1 falls back to the app's own input events.
        return value if value is not None else float("inf")


class WindowsIdleProbe:
    """GetLastInputInfo against GetTickCount (both 32-bit milliseconds, wrapping)."""

    class _LastInputInfo(ctypes.Structure):
        _fields_ = (("cbSize", ctypes.c_uint), ("dwTime", ctypes.c_uint32))

    def __init__(self) -> None:
        # ctypes' Windows DLL handles are untyped; kept private.
        self._user32: Any
        self._kernel32: Any
        if sys.platform != "win32":
            raise PlatformUnavailable("GetLastInputInfo exists only on Windows")
        windll = getattr(ctypes, "windll", None)
        if windll is None:
            raise PlatformUnavailable("ctypes.windll is missing")
        self._user32 = windll.user32
        self._kernel32 = windll.kernel32
        self._kernel32.GetTickCount.restype = ctypes.c_uint32

    def idle_seconds(self) -> float:
        info = self._LastInputInfo()
        info.cbSize = ctypes.sizeof(info)
        if not self._user32.GetLastInputInfo(ctypes.byref(info)):
            return float("inf")
        elapsed_ms = (int(self._kernel32.GetTickCount()) - int(info.dwTime)) & 0xFFFFFFFF
        return elapsed_ms / 1000.0


class MacIdleProbe:
    """CGEventSourceSecondsSinceLastEventType(HID system state, any input event)."""

    _HID_SYSTEM_STATE = 1
    _ANY_INPUT_EVENT = 0xFFFFFFFF

    def __init__(self) -> None:
        self._since: Any
        if sys.platform != "darwin":
            raise PlatformUnavailable("CoreGraphics exists only on macOS")
        location = ctypes.util.find_library("CoreGraphics") or ctypes.util.find_library(
            "ApplicationServices"
        )
        if location is None:
            raise PlatformUnavailable("CoreGraphics not found")
        try:
            library = ctypes.CDLL(location)
            self._since = library.CGEventSourceSecondsSinceLastEventType
        except (OSError, AttributeError) as exc:
            raise PlatformUnavailable(f"CoreGraphics unusable: {exc}") from exc
        self._since.restype = ctypes.c_double
        self._since.argtypes = (ctypes.c_int32, ctypes.c_uint32)

    def idle_seconds(self) -> float:
        return float(self._since(self._HID_SYSTEM_STATE, self._ANY_INPUT_EVENT))


def make_idle_probe() -> IdleProbe | None:
    """The probe for this OS, or None: S1 then relies on the app's own input events."""
    for factory in (WindowsIdleProbe, MacIdleProbe, LinuxDBusIdleProbe):
        try:
            probe: IdleProbe = factory()
        except PlatformUnavailable as exc:
            log.debug("%s: %s", factory.__name__, exc)
            continue
        return probe
    return None
