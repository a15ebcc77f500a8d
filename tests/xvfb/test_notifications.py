"""D3, N1, N5, S4 with a real notification daemon (dunst) on a private session bus, asserted on
the bus traffic dbus-monitor records: one notification per conversation replaced in place, the
app icon and a timeout, withdrawn once seen, and its action opens the conversation."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from tests.unit.ui.desk import open_desk, until
from tests.xvfb.session_bus import NotificationBus, notification_bus
from ui.icons import app_icon_file
from ui.platform.freedesktop import FreedesktopNotifier
from ui.platform.notify import system_notifier_chain

pytestmark = pytest.mark.xvfb

BOB = "bob@example.com"
ANN = "ann@example.com"


@pytest.fixture
def bus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[NotificationBus]:
    for running in notification_bus(tmp_path):
        monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", running.address)
        yield running


async def test_d3_one_notification_per_conversation_replaced_withdrawn_and_opening(
    tmp_path: Path, qtbot: QtBot, bus: NotificationBus
) -> None:
    chain = system_notifier_chain(tray=None, app_icon=app_icon_file())
    # No window manager here: the window is never "active", so nothing is on screen (N4).
    async with open_desk(tmp_path / "desk", activate=False, system_notifiers=chain) as desk:
        assert isinstance(desk.window.notifications.system, FreedesktopNotifier)
        one = await desk.conversation(1)
        other = await desk.service.create_item(title="VPN drops", followers=[ANN, BOB])
        await desk.window.open_conversation(other.internal_conversation_id)  # #1 is off screen

        # N5: two messages in one conversation, one notification, replaced in place.
        await desk.service.post(author=BOB, text="The printer is on fire", conversation_id=one)
        await until(
            lambda: len(bus.calls("Notify")) == 1 and bus.reply_to(bus.calls("Notify")[0]),
            within=30,
        )
        first = bus.calls("Notify")[0]
        assert first.uint(1) == 0  # replaces nothing
        reply = bus.reply_to(first)
        assert reply is not None and reply.kind == "method return"
        shown = reply.uint(0)
        assert first.args[0] == 'string "Deskbell"'
        assert first.args[2] == f'string "{app_icon_file()}"'  # the app icon
        assert first.args[3] == 'string "Bob Agent · #1 Printer on fire"'
        assert first.args[-1] == "int32 10000"  # expires by itself
        assert 'string "default"' in first.text  # a click opens the conversation
        await desk.service.post(author=BOB, text="Now the scanner too", conversation_id=one)
        await until(lambda: len(bus.calls("Notify")) == 2, within=30)
        second = bus.calls("Notify")[1]
        assert second.uint(1) == shown  # replaces_id: the same notification, updated
        assert second.args[4] == 'string "Now the scanner too"'

        # S4: seen on another device, the notification is withdrawn.
        unseen = [
            m.id
            for m in await desk.service.messages(conversation_id=one, viewer_id=desk.me.id)
            if m.unseen_by_viewer
        ]
        await desk.service.mark_seen(person_id=desk.me.id, message_ids=unseen)
        await until(lambda: len(bus.calls("CloseNotification")) == 1, within=30)
        assert bus.calls("CloseNotification")[0].uint(0) == shown

        # N1: a new message shows a new notification; its action opens the conversation.
        await desk.service.post(author=BOB, text="Fire is out", conversation_id=one)
        await until(
            lambda: len(bus.calls("Notify")) == 3 and bus.reply_to(bus.calls("Notify")[2]),
            within=30,
        )
        third = bus.calls("Notify")[2]
        assert third.uint(1) == 0  # the old one was closed: not replaced
        assert desk.window.current is not None and desk.window.current.id != one
        # dunst acts on what it displays: wait until the notification is on the screen.
        await until(lambda: bus.dunstctl("count", "displayed").strip() == "1", within=30)
        bus.dunstctl("action", "0")
        await until(lambda: bus.signals("ActionInvoked"), within=30)
        third_reply = bus.reply_to(third)
        assert third_reply is not None
        assert bus.signals("ActionInvoked")[0].uint(0) == third_reply.uint(0)
        await until(
            lambda: desk.window.current is not None and desk.window.current.id == one, within=30
        )
