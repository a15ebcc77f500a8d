"""Desktop notifications (D3, N1, N5, N6): the in-app banner always, plus one system adapter.

One notification per conversation (`Notice.key`), updated in place where the platform allows.
People's text is plain text everywhere: labels are set to Qt.PlainText, and the body sent to a
notification daemon (which may render markup) is HTML-escaped.
"""

from __future__ import annotations

import html
import importlib
import importlib.util
import logging
import shutil
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from PySide6.QtCore import QObject, Signal, SignalInstance
from PySide6.QtDBus import QDBus, QDBusConnection, QDBusMessage
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QSystemTrayIcon, QWidget

from ui.format import first_words
from ui.platform import PlatformUnavailable
from ui.widgets.banner import AUTO_HIDE_MS, BannerArea

__all__ = [
    "BannerNotifier",
    "Notice",
    "NotificationCenter",
    "Notifier",
    "PlyerNotifier",
    "TrayMessageNotifier",
    "system_notifier_chain",
]

log = logging.getLogger(__name__)

_NOTIFICATIONS_SERVICE = "org.freedesktop.Notifications"


@dataclass(frozen=True, slots=True)
class Notice:
    """One conversation's notification: `key` is the conversation id as a string."""

    key: str
    title: str
    body: str


class Notifier(Protocol):
    def show(self, notice: Notice) -> None:
        """Show `notice`, replacing this key's earlier one where the platform can."""
        ...

    def close(self, key: str) -> None:
        """Withdraw this key's notification (its conversation was seen)."""
        ...


def _safe_argument(text: str) -> str:
    # plyer passes title and body to notify-send as arguments: a leading '-' would be an option.
    return "\u2060" + text if text.startswith("-") else text


def _notification_daemon_present(bus: QDBusConnection) -> bool:
    """A daemon owns org.freedesktop.Notifications now, or D-Bus can start one."""
    interface = bus.interface()
    if interface is not None and interface.isServiceRegistered(_NOTIFICATIONS_SERVICE).value():
        return True
    call = QDBusMessage.createMethodCall(
        "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
        "ListActivatableNames",
    )  # fmt: skip
    reply = bus.call(call, QDBus.CallMode.Block, 500)
    if reply.type() != QDBusMessage.MessageType.ReplyMessage or not reply.arguments():
        return False
    names = reply.arguments()[0]
    return isinstance(names, list) and _NOTIFICATIONS_SERVICE in names


class PlyerNotifier:
    """Linux notification daemons through plyer (dbus-python or notify-send underneath).

    plyer cannot replace or close a notification (no replaces_id, no CloseNotification): a
    second message in the same conversation shows again, under the same app name so the daemon
    groups them, and `close` only forgets the key; the daemon expires it after `timeout_s`.
    plyer reports no clicks either: the banner and the tray carry "open" (N1).
    """

    def __init__(
        self,
        *,
        app_name: str = "Deskbell",
        app_icon: Path | None = None,
        timeout_s: int = 8,
        bus: QDBusConnection | None = None,
    ) -> None:
        if not sys.platform.startswith("linux"):
            # macOS: plyer's backend is broken; Windows: it adds a second tray icon (NOTES.md).
            raise PlatformUnavailable("plyer notifications are used on Linux only")
        if importlib.util.find_spec("dbus") is None and shutil.which("notify-send") is None:
            raise PlatformUnavailable("plyer needs dbus-python or notify-send")
        session = bus if bus is not None else QDBusConnection.sessionBus()
        if not session.isConnected():
            raise PlatformUnavailable("no D-Bus session bus")
        if not _notification_daemon_present(session):
            raise PlatformUnavailable("no notification daemon on the session bus")
        try:
            self._notification = importlib.import_module("plyer").notification
        except ImportError as exc:
            raise PlatformUnavailable(f"plyer cannot be imported: {exc}") from exc
        self._app_name = app_name
        self._app_icon = str(app_icon) if app_icon is not None else ""
        self._timeout_s = timeout_s
        self._shown: set[str] = set()
        # notify-send and dbus-python calls block for a few ms: keep them off the GUI thread.
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="deskbell-notify")

    def show(self, notice: Notice) -> None:
        self._shown.add(notice.key)
        future = self._worker.submit(
            self._notification.notify,
            title=_safe_argument(first_words(notice.title, limit=60)),
            message=_safe_argument(html.escape(first_words(notice.body), quote=False)),
            app_name=self._app_name,
            app_icon=self._app_icon,
            timeout=self._timeout_s,
        )
        future.add_done_callback(self._on_worker_done)

    def close(self, key: str) -> None:
        self._shown.discard(key)

    @staticmethod
    def _on_worker_done(future: Future[object]) -> None:
        error = future.exception()
        if error is not None:
            log.warning("desktop notification failed: %s", error)


class TrayMessageNotifier(QObject):
    """The tray icon's own balloon (Windows, macOS, Linux with a tray but no daemon)."""

    opened = Signal(str)

    def __init__(
        self,
        tray: QSystemTrayIcon,
        *,
        icon: QIcon | None = None,
        timeout_ms: int = AUTO_HIDE_MS,
        parent: QObject | None = None,
    ) -> None:
        if not QSystemTrayIcon.isSystemTrayAvailable():
            raise PlatformUnavailable("no system tray")
        if not QSystemTrayIcon.supportsMessages():
            raise PlatformUnavailable("the tray cannot show messages")
        super().__init__(parent)
        self._tray = tray
        self._icon = icon
        self._timeout_ms = timeout_ms
        # A tray shows one balloon at a time: a click opens the latest one's conversation.
        self._current: str | None = None
        tray.messageClicked.connect(self._on_tray_message_clicked)

    def show(self, notice: Notice) -> None:
        self._current = notice.key
        title = first_words(notice.title, limit=60)
        body = first_words(notice.body)
        if self._icon is not None:
            self._tray.showMessage(title, body, self._icon, self._timeout_ms)
        else:
            self._tray.showMessage(
                title, body, QSystemTrayIcon.MessageIcon.Information, self._timeout_ms
            )

    def close(self, key: str) -> None:
        # Qt cannot withdraw a balloon; a click on it must no longer open a seen conversation.
        if self._current == key:
            self._current = None

    def _on_tray_message_clicked(self) -> None:
        if self._current is not None:
            self.opened.emit(self._current)


class BannerNotifier(QObject):
    """The in-app banner over `parent` (always on, D3)."""

    opened = Signal(str)

    def __init__(self, parent: QWidget, *, auto_hide_ms: int = AUTO_HIDE_MS) -> None:
        super().__init__(parent)
        self.area = BannerArea(parent, auto_hide_ms=auto_hide_ms)
        self.area.clicked.connect(self.opened)

    def show(self, notice: Notice) -> None:
        self.area.show_banner(key=notice.key, title=notice.title, body=notice.body)

    def close(self, key: str) -> None:
        self.area.close_banner(key)


def system_notifier_chain(
    *, tray: QSystemTrayIcon | None, app_icon: Path | None = None
) -> list[Callable[[], Notifier]]:
    """The system adapters in order of preference (D3): the notification service spoken
    directly, plyer (it cannot replace, withdraw or open), then the tray's balloon."""
    chain: list[Callable[[], Notifier]] = []
    if sys.platform.startswith(("linux", "freebsd")):
        from ui.platform.freedesktop import FreedesktopNotifier

        chain.append(lambda: FreedesktopNotifier(app_icon=app_icon))
    chain.append(lambda: PlyerNotifier(app_icon=app_icon))
    if tray is not None:
        chain.append(lambda: TrayMessageNotifier(tray))
    return chain


class NotificationCenter(QObject):
    """The banner plus the first system adapter that works; `opened(key)` on any click."""

    opened = Signal(str)

    def __init__(
        self,
        *,
        banner: BannerNotifier,
        system: Sequence[Callable[[], Notifier]] = (),
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._banner = banner
        banner.opened.connect(self._on_notifier_opened)
        self.system: Notifier | None = None
        for factory in system:
            try:
                self.system = factory()
            except PlatformUnavailable as exc:
                log.info("notifier unavailable: %s", exc)
                continue
            log.info("desktop notifications: %s", type(self.system).__name__)
            break
        signal = getattr(self.system, "opened", None)
        if isinstance(signal, SignalInstance):
            signal.connect(self._on_notifier_opened)

    def notify(self, notice: Notice) -> None:
        """Show `notice` in the banner and the system's notifications (`AlertPolicy` decided
        that it should show: not in do not disturb, N6; not switched off, R5)."""
        self._banner.show(notice)
        if self.system is not None:
            self.system.show(notice)

    def close(self, key: str) -> None:
        """The conversation was seen or opened: withdraw its notifications."""
        self._banner.close(key)
        if self.system is not None:
            self.system.close(key)

    async def aclose(self) -> None:
        """At shut-down: let the system adapter withdraw what it shows and hang up."""
        closer = getattr(self.system, "aclose", None)
        if closer is not None:
            await closer()

    def _on_notifier_opened(self, key: str) -> None:
        self.close(key)
        self.opened.emit(key)
