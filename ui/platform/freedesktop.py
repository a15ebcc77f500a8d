"""Desktop notifications through the freedesktop notification service (D3, N1, N5), spoken
directly on the session bus: one notification per conversation, replaced in place
(`replaces_id`), withdrawn when seen (`CloseNotification`), with the app icon, a timeout, and a
default action that opens the conversation (`ActionInvoked`).

Why jeepney and not QtDBus: `Notify` takes `replaces_id` as a D-Bus `uint32`, and PySide6 marshals
every Python int as `int32`, which the daemon refuses ("(sisssasa{sv}i) does not match
(susssasa{sv}i)"); PySide6 offers no way to build an unsigned argument. jeepney (pure Python,
already here as keyring's Secret Service client on Linux) takes the signature explicitly and
runs on the app's asyncio loop (qasync), so no call blocks the window.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from jeepney import (
    DBusAddress,
    HeaderFields,
    MatchRule,
    Message,
    MessageType,
    message_bus,
    new_method_call,
)
from jeepney.io import blocking
from jeepney.io.asyncio import DBusConnection, DBusRouter, Proxy, open_dbus_connection
from PySide6.QtCore import QObject, Signal

from resources import APP_ID
from ui.format import first_words
from ui.platform import PlatformUnavailable
from ui.tasks import Tasks

if TYPE_CHECKING:
    from ui.platform.notify import Notice

__all__ = ["DEFAULT_TIMEOUT_MS", "FreedesktopNotifier"]

log = logging.getLogger(__name__)

SERVICE = "org.freedesktop.Notifications"
_NOTIFICATIONS = DBusAddress("/org/freedesktop/Notifications", bus_name=SERVICE, interface=SERVICE)
DEFAULT_TIMEOUT_MS = 10_000  # long enough to read two lines, short enough not to pile up
_OPEN = "default"  # the action a click on the notification's body invokes


def _daemon_present(bus: str) -> None:
    """Raise PlatformUnavailable unless a notification daemon owns the name or can be started."""
    try:
        with blocking.open_dbus_connection(bus=bus) as conn:
            proxy = blocking.Proxy(message_bus, conn, timeout=2)
            if proxy.NameHasOwner(SERVICE)[0]:
                return
            if SERVICE in proxy.ListActivatableNames()[0]:
                return
    except (OSError, KeyError, ValueError, TimeoutError) as exc:
        # KeyError: no DBUS_SESSION_BUS_ADDRESS; OSError: nobody listens there.
        raise PlatformUnavailable(f"no D-Bus session bus: {exc}") from exc
    raise PlatformUnavailable("no notification daemon on the session bus")


class FreedesktopNotifier(QObject):
    """`opened(key)` when the person clicks a notification; `aclose()` withdraws them all."""

    opened = Signal(str)

    def __init__(
        self,
        *,
        bus: str = "SESSION",
        app_name: str = "Deskbell",
        app_icon: Path | None = None,
        desktop_entry: str = APP_ID,
        timeout_ms: int = DEFAULT_TIMEOUT_MS,
        parent: QObject | None = None,
    ) -> None:
        if not sys.platform.startswith("linux") and not sys.platform.startswith("freebsd"):
            raise PlatformUnavailable("the freedesktop notification service is a Linux/BSD one")
        _daemon_present(bus)
        super().__init__(parent)
        self._bus = bus
        self._app_name = app_name
        self._app_icon = str(app_icon) if app_icon is not None else ""
        self._hints = {
            "desktop-entry": ("s", desktop_entry),
            "category": ("s", "im.received"),
            "urgency": ("y", 1),
        }
        self._timeout_ms = timeout_ms
        self._tasks = Tasks()  # the calls; the signal listener runs apart, until aclose()
        self._listener: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()  # calls go out in the order show/close were asked
        self._conn: DBusConnection | None = None
        self._router: DBusRouter | None = None
        self._ids: dict[str, int] = {}  # key -> the daemon's id of its notification
        self._keys: dict[int, str] = {}
        self._failed = False

    def show(self, notice: Notice) -> None:
        self._tasks.start(self._notify(notice.key, notice.title, notice.body), name="notify")

    def close(self, key: str) -> None:
        if key in self._ids:
            self._tasks.start(self._close(key), name="notify-close")

    async def aclose(self) -> None:
        """Withdraw what is still shown (a click could no longer open it) and hang up."""
        await self._tasks.drain()
        for key in list(self._ids):
            await self._close(key)
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
            self._listener = None
        if self._router is not None:
            await self._router.__aexit__(None, None, None)
            self._router = None
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    # --- the calls -------------------------------------------------------------------------

    async def _notify(self, key: str, title: str, body: str) -> None:
        async with self._lock:
            router = await self._connected()
            replaces = self._ids.get(key, 0)
            call = new_method_call(
                _NOTIFICATIONS,
                "Notify",
                "susssasa{sv}i",
                (
                    self._app_name,
                    replaces,
                    self._app_icon,
                    first_words(title, limit=60),
                    # Daemons may render a little markup: people's text stays text.
                    html.escape(first_words(body), quote=False),
                    [_OPEN, "Open"],
                    self._hints,
                    self._timeout_ms,
                ),
            )
            reply = await self._call(router, call)
            if reply is None:
                return
            new_id = int(reply.body[0])
            if replaces and replaces != new_id:
                self._keys.pop(replaces, None)
            self._ids[key] = new_id
            self._keys[new_id] = key

    async def _close(self, key: str) -> None:
        async with self._lock:
            notification = self._ids.pop(key, None)
            if notification is None or self._router is None:
                return
            self._keys.pop(notification, None)
            call = new_method_call(_NOTIFICATIONS, "CloseNotification", "u", (notification,))
            await self._call(self._router, call)

    async def _call(self, router: DBusRouter, call: Message) -> Message | None:
        try:
            reply = await asyncio.wait_for(router.send_and_get_reply(call), timeout=5)
        except (OSError, EOFError, TimeoutError) as exc:
            self._warn(f"the notification service did not answer: {exc}")
            return None
        if reply.header.message_type == MessageType.error:
            self._warn(f"the notification service refused: {reply.body}")
            return None
        self._failed = False
        return reply

    def _warn(self, text: str) -> None:
        if not self._failed:  # once per state change, not once per message
            log.warning("%s", text)
        self._failed = True

    async def _connected(self) -> DBusRouter:
        if self._router is None:
            self._conn = await open_dbus_connection(self._bus)
            self._router = DBusRouter(self._conn)
            rule = MatchRule(
                type="signal", interface=SERVICE, path="/org/freedesktop/Notifications"
            )
            add_match = Proxy(message_bus, self._router).AddMatch(rule)
            await asyncio.wait_for(add_match, timeout=5)
            self._listener = asyncio.get_running_loop().create_task(
                self._listen(self._router, rule), name="notify-signals"
            )
        return self._router

    async def _listen(self, router: DBusRouter, rule: MatchRule) -> None:
        with router.filter(rule, bufsize=0) as queue:
            while True:
                message: Message = await queue.get()
                member = message.header.fields.get(HeaderFields.member)
                if member == "ActionInvoked":
                    notification, action = message.body
                    key = self._keys.get(int(notification))
                    if key is not None and action == _OPEN:
                        self.opened.emit(key)
                elif member == "NotificationClosed":
                    # Expired, dismissed or clicked: the next message shows a new one.
                    key = self._keys.pop(int(message.body[0]), None)
                    if key is not None and self._ids.get(key) == int(message.body[0]):
                        del self._ids[key]
