"""Issue 9 (idle means idle): the window shown with unseen messages on screen, active, and
nobody touching anything runs no Qt timer; the only one allowed is a real deadline (the end of
do not disturb), armed for that moment."""

from __future__ import annotations

from PySide6.QtCore import QTimer
from pytestqt.qtbot import QtBot

from tests.unit.ui.desk import Desk, until, with_desk

BOB = "bob@example.com"


def _ticking(desk: Desk) -> list[str]:
    return [
        f"{t.parent().__class__.__name__}: every {t.interval()} ms"
        for t in desk.window.findChildren(QTimer)
        if t.isActive()
    ]


@with_desk
async def test_issue9_an_idle_window_with_unseen_messages_on_screen_runs_no_timer(
    desk: Desk, qtbot: QtBot
) -> None:
    one = await desk.conversation(1)
    await desk.service.post(author=BOB, text="read me some day", conversation_id=one)
    await desk.window.open_conversation(one)
    await until(lambda: desk.window.messages.unseen_ids())
    await desk.tasks.drain()
    assert desk.window.isActiveWindow()
    # Nothing can become seen before the person's next input: nothing should be waiting.
    await until(lambda: not _ticking(desk))  # a refresh may still be settling
    assert _ticking(desk) == []
