"""Issue 8, items 17-19 on the real window over a real Service: seen after a keyboard open (S1),
"seen by" names others (S2), a new item shows at once (N2) with a placeholder, the internal
header names users only (R2), and screen readers hear the content (D6)."""

from __future__ import annotations

from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from tests.unit.ui.desk import Desk, until, with_desk
from ui.format import status_parts
from ui.widgets.quick_switch import QuickSwitch

BOB = "bob@example.com"
ANN = "ann@example.com"
CARL = "carl@customer.org"


@with_desk
async def test_s1_a_conversation_opened_with_ctrl_k_is_seen_without_more_input(
    desk: Desk, qtbot: QtBot
) -> None:
    """Choosing a conversation by keyboard is input: reading it must not wait for a mouse move."""
    item = await desk.service.create_item(title="VPN drops", followers=[ANN, BOB])
    await desk.service.post(
        author=BOB, text="read me", conversation_id=item.internal_conversation_id
    )
    await until(lambda: desk.window.windowTitle() == "(1) Deskbell")
    await desk.window.open_conversation(await desk.conversation(1))
    qtbot.keyClick(desk.window, Qt.Key.Key_K, Qt.KeyboardModifier.ControlModifier)
    dialog = desk.window.findChild(QuickSwitch)
    assert dialog is not None
    dialog.activateWindow()  # as a window manager does for a new dialog
    await until(dialog.isActiveWindow)
    qtbot.keyClicks(dialog.query, "vpn")
    qtbot.keyClick(dialog.query, Qt.Key.Key_Return)
    desk.clock.advance(0.05)  # the dialog closes a moment after the key
    await until(
        lambda: (
            desk.window.current is not None
            and desk.window.current.id == item.internal_conversation_id
        )
    )
    desk.window.activateWindow()  # the window manager hands focus back as the dialog closes
    await until(desk.window.isActiveWindow)
    await until(lambda: desk.window.messages.unseen_ids())
    desk.clock.advance(1.0)  # past the 0.75 s dwell; no key or mouse since the Return
    await until(lambda: desk.window.windowTitle() == "Deskbell", within=10)


@with_desk
async def test_s2_seen_by_names_others_not_me(desk: Desk, qtbot: QtBot) -> None:
    one = await desk.conversation(1, external=True)  # Carl, a customer, reads it too
    posted = await desk.service.post(author=BOB, text="hello", conversation_id=one)
    await desk.service.mark_seen(person_id=desk.me.id, message_ids=[posted.message_id])
    await desk.service.mark_seen(person_id=desk.world.carl, message_ids=[posted.message_id])
    await desk.window.open_conversation(one)
    await until(lambda: desk.window.messages.rows)
    row = desk.window.messages.rows[-1]
    assert sorted(s.name for s in row.status.seen) == ["Ann Agent", "Carl Customer"]
    texts = [t for _, t in desk.window.pane.message_delegate.status_parts(row)]
    assert "Seen by Carl Customer" in texts
    assert not any("Ann Agent" in t for t in texts)
    tooltip = desk.window.messages.data(
        desk.window.messages.index(len(desk.window.messages.rows) - 1, 0),
        Qt.ItemDataRole.ToolTipRole,
    )
    assert "Ann Agent" not in str(tooltip) and "Carl Customer" in str(tooltip)
    # Under my own message, who saw it is the point.
    mine = await desk.service.post(author=ANN, text="thanks", conversation_id=one)
    await desk.service.mark_seen(person_id=desk.world.bob, message_ids=[mine.message_id])
    await until(
        lambda: len(desk.window.messages.rows) == 2 and desk.window.messages.rows[-1].status.seen
    )
    assert ("seen", "Seen by Bob Agent") in status_parts(
        desk.window.messages.rows[-1].status, now=desk.clock.now()
    )


@with_desk
async def test_n2_a_new_item_shows_at_once_with_a_placeholder(desk: Desk, qtbot: QtBot) -> None:
    item = await desk.service.create_item(title="Brand new", followers=[ANN, BOB])
    conv = item.internal_conversation_id
    await until(lambda: desk.window.models[0].row_of(conv) == 0)
    await desk.window.open_conversation(conv)
    pane = desk.window.pane
    assert pane.placeholder.isVisible() and not pane.message_view.isVisible()
    assert "No messages yet" in pane.placeholder.text()
    await desk.service.post(author=BOB, text="first words", conversation_id=conv)
    await until(lambda: pane.message_view.isVisible() and not pane.placeholder.isVisible())


async def test_n2_the_empty_pane_says_what_to_do(tmp_path, qtbot: QtBot) -> None:  # type: ignore[no-untyped-def]
    from tests.unit.ui.desk import open_desk

    async with open_desk(tmp_path) as desk:
        pane = desk.window.pane
        # The seeded item has no message: it is the open conversation, empty.
        assert pane.placeholder.isVisible()


@with_desk
async def test_r2_the_internal_header_lists_users_only(desk: Desk, qtbot: QtBot) -> None:
    await desk.window.open_conversation(await desk.conversation(1))
    members = desk.window.pane.header_members.text()
    assert "Internal" in members and "Bob Agent" in members
    assert "Carl" not in members
    await desk.window.open_conversation(await desk.conversation(1, external=True))
    assert "Carl Customer" in desk.window.pane.header_members.text()


@with_desk
async def test_d6_screen_readers_hear_the_content(desk: Desk, qtbot: QtBot) -> None:
    await desk.window.open_conversation(await desk.conversation(1, external=True))
    pane = desk.window.pane
    assert pane.header_title.accessibleName() == "#1 Printer on fire"
    composer = desk.window.composer
    assert composer.indicator.accessibleName() == "External — the customer sees this"
    assert composer.send_button.accessibleName() == "Send to customer"
    await desk.window.open_conversation(await desk.conversation(1))
    assert composer.indicator.accessibleName() == "Internal — team only"
    assert composer.send_button.accessibleName() == "Send to team"
