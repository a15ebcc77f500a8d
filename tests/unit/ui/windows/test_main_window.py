"""The window over a real Service (SQLite file), live through the change feed.

N2 ordering and the blue count, N3 counts that agree, N4/N5/N6 alerts, S1 seen after the dwell,
E10 live status icons, plain text only, and the D5 keys.
"""

from __future__ import annotations

import shiboken6
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QColor, QFont, QFontMetrics
from pytestqt.qtbot import QtBot

from services.api import MessageRow
from tests.unit.ui.desk import Desk, until, with_desk
from ui.bridge import ServiceBridge
from ui.format import status_parts
from ui.platform.notify import Notice
from ui.roles import ROW_ROLE
from ui.tasks import Tasks
from ui.theme import LIGHT
from ui.widgets.message_view import TextBlock
from ui.widgets.quick_switch import QuickSwitch
from ui.widgets.tray import Tray
from ui.windows.main_window import EXTERNAL_TAB, INTERNAL_TAB, MainWindow

BOB = "bob@example.com"
ANN = "ann@example.com"
CARL = "carl@customer.org"


async def _two_items(desk: Desk) -> tuple[int, int]:
    await desk.service.create_item(title="VPN drops", followers=[ANN, BOB])
    one = await desk.conversation(1)
    two = await desk.conversation(2)
    await desk.service.post(author=BOB, text="first in #1", conversation_id=one)
    desk.clock.advance(5)
    await desk.service.post(author=BOB, text="then #2", conversation_id=two)
    return one, two


def _internal_ids(desk: Desk) -> list[int]:
    return [r.id for r in desk.window.models[INTERNAL_TAB].rows]


def _has_colour(image: object, colour: QColor, x0: int, y0: int, x1: int, y1: int) -> bool:
    for x in range(x0, x1):
        for y in range(y0, y1):
            if image.pixelColor(x, y) == colour:  # type: ignore[attr-defined]
                return True
    return False


@with_desk
async def test_n2_new_message_moves_row_to_top_with_blue_count(desk: Desk, qtbot: QtBot) -> None:
    one, two = await _two_items(desk)
    await until(lambda: _internal_ids(desk)[:2] == [two, one])
    model = desk.window.models[INTERNAL_TAB]
    moves: list[tuple[int, int]] = []
    resets: list[bool] = []
    model.rowsMoved.connect(lambda _p, start, _e, _d, dest: moves.append((start, dest)))
    model.modelReset.connect(lambda: resets.append(True))
    desk.clock.advance(5)
    await desk.service.post(author=BOB, text="news in #1", conversation_id=one)
    await until(lambda: _internal_ids(desk)[0] == one)
    assert moves == [(1, 0)] and not resets  # a move, not a reset (keeps scroll, selection)
    top = model.index(0, 0).data(ROW_ROLE)
    assert top.unseen == 2
    # The count is painted as a blue pill at the right of the row.
    desk.window.show_inbox(INTERNAL_TAB)
    view = desk.window.lists[INTERNAL_TAB]
    rect = view.visualRect(model.index(0, 0))
    image = view.viewport().grab().toImage()
    assert _has_colour(
        image, LIGHT.accent, rect.right() - 50, rect.center().y(), rect.right(), rect.bottom()
    )
    # A row without unseen messages has no blue pill.
    await desk.service.mark_seen(
        person_id=desk.me.id,
        message_ids=[
            m.id for m in await desk.service.messages(conversation_id=one, viewer_id=desk.me.id)
        ],
    )
    await until(lambda: model.index(0, 0).data(ROW_ROLE).unseen == 0)
    image = view.viewport().grab().toImage()
    assert not _has_colour(
        image,
        LIGHT.accent,
        rect.right() - 50,
        rect.center().y() + 2,
        rect.right() - 12,
        rect.bottom() - 4,
    )


@with_desk
async def test_n3_counts_agree_in_bubble_tabs_rows_and_title(desk: Desk, qtbot: QtBot) -> None:
    tray = Tray()
    desk.bridge.counts_changed.connect(lambda c: tray.set_count(c.total))
    one, _two = await _two_items(desk)
    ext = await desk.conversation(1, external=True)
    await desk.service.post(author=CARL, text="hello from the customer", conversation_id=ext)
    await until(lambda: desk.window.windowTitle() == "(3) Deskbell")
    counts = await desk.service.unseen_counts(person_id=desk.me.id)
    assert counts.total == 3 and counts.internal == 2 and counts.external == 1
    assert tray.count == 3 and tray.tooltip() == "Deskbell — 3 unseen"
    assert desk.window.tabs.tabText(INTERNAL_TAB) == "Internal (2)"
    assert desk.window.tabs.tabText(EXTERNAL_TAB) == "External (1)"
    await desk.tasks.drain()  # the rows follow the counts by one query
    rows = desk.window.models[INTERNAL_TAB].rows + desk.window.models[EXTERNAL_TAB].rows
    assert sum(r.unseen for r in rows) == 3
    # They fall together as messages are seen (here: on another desktop, S4).
    await desk.service.mark_item_seen(number=1, email=ANN)
    await until(lambda: desk.window.windowTitle() == "(1) Deskbell")
    assert tray.count == 1
    assert desk.window.tabs.tabText(INTERNAL_TAB) == "Internal (1)"
    assert desk.window.tabs.tabText(EXTERNAL_TAB) == "External"
    assert desk.window.models[INTERNAL_TAB].conversation(one).unseen == 0  # type: ignore[union-attr]


@with_desk
async def test_n4_no_alert_for_own_message_or_conversation_on_screen(
    desk: Desk, qtbot: QtBot
) -> None:
    one = await desk.conversation(1)
    ext = await desk.conversation(1, external=True)
    await desk.window.open_conversation(one)
    assert desk.window.is_on_screen(one)
    await desk.service.post(author=ANN, text="my own words", conversation_id=ext)
    await desk.service.post(author=BOB, text="while you look at it", conversation_id=one)
    await until(lambda: any(r.text == "while you look at it" for r in desk.window.messages.rows))
    await desk.tasks.drain()
    assert desk.player.played == [] and desk.window.alerts.notices == 0
    await desk.service.post(author=CARL, text="in the other conversation", conversation_id=ext)
    await until(lambda: desk.window.alerts.notices == 1)
    assert len(desk.player.played) == 1
    assert desk.window.alerts.shown() == [ext]


@with_desk
async def test_n5_one_ping_per_burst_and_one_notice_per_conversation(
    desk: Desk, qtbot: QtBot
) -> None:
    ext = await desk.conversation(1, external=True)
    desk.window.hide()  # nothing is on screen
    for i in range(4):
        await desk.service.post(author=CARL, text=f"burst {i}", conversation_id=ext)
    await until(lambda: desk.window.alerts.notices == 4)
    assert len(desk.player.played) == 1
    assert desk.window.alerts.shown() == [ext]  # one notice, updated in place
    desk.clock.advance(2.1)
    await desk.service.post(author=CARL, text="after the burst", conversation_id=ext)
    await until(lambda: desk.window.alerts.notices == 5)
    assert len(desk.player.played) == 2


@with_desk
async def test_n6_do_not_disturb_silences_but_the_bubble_counts(desk: Desk, qtbot: QtBot) -> None:
    ext = await desk.conversation(1, external=True)
    desk.window.hide()
    await desk.service.set_do_not_disturb(person_id=desk.me.id, choice="1h")
    await until(lambda: desk.bridge.me.settings.dnd_until is not None)
    await desk.service.post(author=CARL, text="during dnd", conversation_id=ext)
    await until(lambda: desk.window.windowTitle() == "(1) Deskbell")
    await desk.tasks.drain()
    assert desk.player.played == [] and desk.window.alerts.notices == 0
    await desk.service.set_do_not_disturb(person_id=desk.me.id, choice=None)
    await until(lambda: desk.bridge.me.settings.dnd_until is None)
    await desk.service.post(author=CARL, text="after dnd", conversation_id=ext)
    await until(lambda: desk.window.alerts.notices == 1)
    assert len(desk.player.played) == 1


@with_desk
async def test_r5_sound_and_in_app_switches(desk: Desk, qtbot: QtBot) -> None:
    from dataclasses import replace

    ext = await desk.conversation(1, external=True)
    desk.window.hide()
    quiet = replace(desk.me.settings, sound=False, in_app=False)
    await desk.service.set_notification_settings(person_id=desk.me.id, settings=quiet)
    await until(lambda: not desk.bridge.me.settings.sound)
    await desk.service.post(author=CARL, text="quietly", conversation_id=ext)
    await until(lambda: desk.window.windowTitle() == "(1) Deskbell")
    await desk.tasks.drain()
    assert desk.player.played == [] and desk.window.alerts.notices == 0


@with_desk
async def test_s1_seen_only_after_dwell_with_input_then_mark_seen(desk: Desk, qtbot: QtBot) -> None:
    one = await desk.conversation(1)
    await desk.service.post(author=BOB, text="please read me", conversation_id=one)
    await desk.window.open_conversation(one)
    await until(lambda: desk.window.messages.unseen_ids())
    # Focus alone is not enough: no input yet, however long it stays on screen.
    desk.clock.advance(5)
    await until(lambda: desk.window.seen_tracker.ticking or True)
    await desk.tasks.drain()
    assert (await desk.service.unseen_counts(person_id=desk.me.id)).total == 1
    qtbot.mouseMove(desk.window.message_view.viewport(), QPoint(20, 20))
    desk.clock.advance(0.3)
    await until(lambda: desk.window.seen_tracker.ticking)
    assert (await desk.service.unseen_counts(person_id=desk.me.id)).total == 1
    desk.clock.advance(0.6)  # past the 0.75 s dwell
    await until(lambda: desk.window.windowTitle() == "Deskbell")
    counts = await desk.service.unseen_counts(person_id=desk.me.id)
    assert counts.total == 0
    rows = await desk.service.messages(conversation_id=one, viewer_id=desk.world.bob)
    assert [s.name for s in rows[-1].status.seen] == ["Ann Agent"]


@with_desk
async def test_e10_status_icons_change_from_sent_to_seen_live(desk: Desk, qtbot: QtBot) -> None:
    one = await desk.conversation(1)
    await desk.window.open_conversation(one)
    await desk.service.post(author=ANN, text="did you see this?", conversation_id=one)
    await until(lambda: any(r.text == "did you see this?" for r in desk.window.messages.rows))

    def mine() -> MessageRow:
        return next(r for r in desk.window.messages.rows if r.text == "did you see this?")

    assert [name for name, _ in status_parts(mine().status, now=desk.clock.now())] == ["sent"]
    desk.clock.advance(3)
    await desk.service.mark_seen(person_id=desk.world.bob, message_ids=[mine().id])
    await until(lambda: "seen" in [n for n, _ in status_parts(mine().status, now=desk.clock.now())])
    assert status_parts(mine().status, now=desk.clock.now())[1] == ("seen", "Seen by Bob Agent")
    tip = desk.window.messages.index(desk.window.messages.rows.index(mine()), 0).data(
        Qt.ItemDataRole.ToolTipRole
    )
    assert "Seen by Bob Agent <bob@example.com> at" in tip


@with_desk
async def test_messages_are_plain_text_never_html(desk: Desk, qtbot: QtBot) -> None:
    one = await desk.conversation(1)
    words = "word " * 5  # short enough that neither bubble wraps
    await desk.service.post(author=BOB, text=f"<b>{words}</b>", conversation_id=one)
    desk.clock.advance(1)
    await desk.service.post(author=BOB, text=words, conversation_id=one)
    await desk.window.open_conversation(one)
    await until(lambda: len(desk.window.messages.rows) == 2)
    model, view = desk.window.messages, desk.window.message_view
    assert model.index(0, 0).data() == f"<b>{words}</b>"
    # Painted literally: the tags take room, so the bubble with them is wider.
    image = view.viewport().grab().toImage()

    def bubble_right(row: int) -> int:
        rect = view.visualRect(model.index(row, 0))
        y = rect.bottom() - 48  # inside the bubble, below any date or unread separator
        return max(
            (x for x in range(rect.width()) if image.pixelColor(x, y) == LIGHT.bubble_other),
            default=-1,
        )

    assert bubble_right(0) > bubble_right(1) + 20


@with_desk
async def test_d5_ctrl_enter_sends_with_a_clear_audience(desk: Desk, qtbot: QtBot) -> None:
    ext = await desk.conversation(1, external=True)
    await desk.window.open_conversation(ext)
    composer = desk.window.composer
    assert composer.send_button.text() == "Send to customer"
    assert "customer sees this" in composer.indicator.text()
    composer.editor.setFocus()
    qtbot.keyClicks(composer.editor, "We are on it")
    qtbot.keyClick(composer.editor, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    await until(lambda: composer.text() == "")
    rows = await desk.service.messages(conversation_id=ext, viewer_id=desk.me.id)
    assert rows[-1].text == "We are on it" and rows[-1].author.email == ANN  # type: ignore[union-attr]
    await desk.window.open_conversation(await desk.conversation(1))
    assert composer.send_button.text() == "Send to team"
    assert "team only" in composer.indicator.text()


@with_desk
async def test_d5_ctrl_1_ctrl_2_and_ctrl_k(desk: Desk, qtbot: QtBot) -> None:
    _one, two = await _two_items(desk)
    await until(lambda: two in _internal_ids(desk))
    qtbot.keyClick(desk.window, Qt.Key.Key_2, Qt.KeyboardModifier.ControlModifier)
    assert desk.window.tabs.currentIndex() == EXTERNAL_TAB
    qtbot.keyClick(desk.window, Qt.Key.Key_1, Qt.KeyboardModifier.ControlModifier)
    assert desk.window.tabs.currentIndex() == INTERNAL_TAB
    qtbot.keyClick(desk.window, Qt.Key.Key_K, Qt.KeyboardModifier.ControlModifier)
    dialog = desk.window.findChild(QuickSwitch)
    assert dialog is not None and dialog.isVisible()
    qtbot.keyClicks(dialog.query, "vpn")
    assert dialog.results.count() == 1
    qtbot.keyClick(dialog.query, Qt.Key.Key_Return)
    await until(lambda: desk.window.current is not None and desk.window.current.id == two)
    assert desk.window.pane.header_title.text() == "#2 VPN drops"


@with_desk
async def test_d6_accessible_names(desk: Desk, qtbot: QtBot) -> None:
    w = desk.window
    for widget in (
        w.tabs,
        w.message_view,
        w.composer.editor,
        w.composer.send_button,
        w.pane.follow_button,
    ):
        assert widget.accessibleName()


@with_desk
async def test_follow_button_unfollows_and_follows(desk: Desk, qtbot: QtBot) -> None:
    one = await desk.conversation(1)
    await desk.window.open_conversation(one)
    assert desk.window.pane.follow_button.text() == "Unfollow"
    desk.window.pane.follow_button.click()
    await until(lambda: desk.window.pane.follow_button.text() == "Follow")
    assert ANN not in [f.email for f in (await desk.service.item(1)).followers]
    desk.window.pane.follow_button.click()
    await until(lambda: desk.window.pane.follow_button.text() == "Unfollow")


@with_desk
async def test_m7_settings_opens_from_the_menu_for_me(desk: Desk, qtbot: QtBot) -> None:
    w = desk.window
    assert w.sidebar.menu_button.accessibleName() and w.settings_action in w.app_menu.actions()
    w.settings_action.trigger()
    await until(lambda: w.settings_dialog is not None and w.settings_dialog.isVisible())
    dialog = w.settings_dialog
    assert dialog is not None and dialog.me.id == desk.me.id
    w.settings_action.trigger()  # a second time brings the same dialog forward
    await desk.tasks.drain()
    assert w.settings_dialog is dialog
    dialog.reject()
    await until(lambda: w.settings_dialog is None)
    await dialog.wait_idle()


@with_desk
async def test_m1_messaging_center_only_for_administrators(desk: Desk, qtbot: QtBot) -> None:
    w = desk.window
    assert desk.me.is_admin and w.messaging_center_action.isVisible()
    assert w.messaging_center_action.isEnabled()
    center = w.open_messaging_center()
    assert center is not None and center.isVisible() and w.messaging_center is center
    center.reject()
    await until(lambda: w.messaging_center is None)
    # Bob is not an administrator: no menu entry, and the window refuses to open it.
    bob = await desk.service.person(BOB)
    assert not bob.is_admin
    tasks = Tasks()
    bridge = ServiceBridge(service=desk.service, me=bob, tasks=tasks)
    window = MainWindow(
        service=desk.service,
        bridge=bridge,
        theme=LIGHT,
        tasks=tasks,
        now=desk.clock.now,
        clock=desk.clock,
    )
    try:
        assert not window.messaging_center_action.isEnabled()
        assert not window.messaging_center_action.isVisible()
        window.messaging_center_action.trigger()
        assert window.open_messaging_center() is None and window.messaging_center is None
    finally:
        await tasks.drain()
        shiboken6.delete(window)  # in the GUI thread, not whenever the collector runs


@with_desk
async def test_d5_ctrl_k_finds_conversations_that_are_not_loaded(desk: Desk, qtbot: QtBot) -> None:
    _one, two = await _two_items(desk)
    # No rows loaded at all: only the service can find it.
    dialog = QuickSwitch([], search=desk.window._find_conversations, tasks=desk.tasks)
    dialog.show()
    seen: list[str] = []
    dialog.searched.connect(seen.append)
    qtbot.keyClicks(dialog.query, "VPN dr")
    assert dialog.results.count() == 0
    await until(lambda: seen == ["VPN dr"])  # one query after the pause, not one per key
    assert dialog.results.count() == 1
    chosen: list[int] = []
    dialog.chosen.connect(chosen.append)
    qtbot.keyClick(dialog.query, Qt.Key.Key_Return)
    assert chosen == [two]
    dialog.query.setText("#1")
    await until(lambda: seen[-1:] == ["#1"])
    assert "#1 Printer on fire" in dialog.results.item(0).text()
    shiboken6.delete(dialog)


def test_d3_message_text_wraps_at_word_boundaries(qtbot: QtBot) -> None:
    """A line breaks between words ("router update." stays whole); only a word wider than
    the line is cut."""
    font = QFont()
    text = "Three people in the Lyon office report VPN drops every ~10 min since the router update."
    width = QFontMetrics(font).horizontalAdvance(text) * 2 // 3
    block = TextBlock(font, text, width)
    lines = [line.strip() for line in block.lines()]
    assert len(lines) == 2
    assert " ".join(lines) == text
    words = set(text.split())
    for line in lines:
        assert set(line.split()) <= words, lines  # no word cut in two
    assert block.width <= width
    assert block.height >= 2 * QFontMetrics(font).height()
    long_word = "x" * 400
    cut = TextBlock(font, f"see {long_word} now", 200)
    assert len(cut.lines()) > 2  # the one long word is broken, as it must be
    assert all(QFontMetrics(font).horizontalAdvance(line.strip()) <= 200 for line in cut.lines())
    assert TextBlock(font, "one\ntwo", 400).lines() == ["one\u2028", "two"]


@with_desk
async def test_d3_banner_pushes_the_conversation_down_and_rows_fit_the_text(
    desk: Desk, qtbot: QtBot
) -> None:
    """The banner takes its own room above the messages instead of covering the top one, and
    each message row is exactly as tall as its wrapped text needs (no clipped last line)."""
    one, _two = await _two_items(desk)
    words = " ".join(["wrapping"] * 60)
    await desk.service.post(author=BOB, text=words, conversation_id=one)
    await desk.window.open_conversation(one)
    view = desk.window.message_view
    await until(lambda: view.model().rowCount() == 2)
    area = desk.window.banner.area
    while area.keys():  # Bob's posts may have raised banners already
        area.close_banner(area.keys()[0])
    assert not area.isVisible()
    top_before = view.mapTo(desk.window, QPoint(0, 0)).y()
    desk.window.banner.show(Notice(key="9", title="Ann · #9", body="hello"))
    assert area.isVisible()
    area_rect = area.geometry().translated(area.parentWidget().mapTo(desk.window, QPoint(0, 0)))
    top_after = view.mapTo(desk.window, QPoint(0, 0)).y()
    assert top_after >= area_rect.bottom()  # below the banner, not under it
    assert top_after > top_before
    # Rows: the long message wraps to several lines and its row holds them all.
    delegate = desk.window.pane.message_delegate
    index = view.model().index(1, 0)
    rect = view.visualRect(index)
    assert rect.width() == view.viewport().width()  # no horizontal overflow
    inner = delegate._inner_width(rect.width())
    block = TextBlock(view.font(), words, inner)
    assert len(block.lines()) >= 3
    small = QFontMetrics(view.font()).height()
    assert rect.height() >= block.height + 2 * delegate.PAD + small
