"""Issue 8 item 20: the rest brought to the main window's standard, each as a person meets it."""

from __future__ import annotations

from datetime import timedelta

import shiboken6
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QLabel, QPushButton
from pytestqt.qtbot import QtBot

from services.api import Service
from services.clock import ManualClock
from tests.support.world import World
from tests.unit.ui.desk import Desk, until, with_desk
from ui.widgets.new_item_dialog import NewItemDialog
from ui.widgets.quick_switch import QuickSwitch
from ui.windows.messaging_center import MessagingCenter
from ui.windows.settings_dialog import SettingsDialog

BOB = "bob@example.com"
ANN = "ann@example.com"
SPEC_CODE = r"\b[RNSEMIDTC][0-9]+\b"


async def test_settings_has_no_literal_ampersand_and_plain_buttons(
    qtbot: QtBot, world: tuple[Service, World, ManualClock]
) -> None:
    service, w, _ = world
    dialog = SettingsDialog(service=service, me=await service.person_by_id(w.ann))
    qtbot.addWidget(dialog)
    await dialog.load()
    for label in dialog.findChildren(QLabel):
        if "&" in label.text():
            assert label.buddy() is not None, label.text()  # else the & shows as is
    for button in dialog.findChildren(QPushButton):
        assert button.icon().isNull(), button.text()
    assert dialog.ok_button.text() == "Save"


async def test_new_item_lists_followers_whole_with_plain_buttons(
    qtbot: QtBot, world: tuple[Service, World, ManualClock]
) -> None:
    service, w, _ = world
    await service.add_person(
        email="a.very.long.address.for.a.customer@some-company.example.org",
        name="Maximilian Alexander Longname",
    )
    dialog = NewItemDialog(people=await service.people(), me=await service.person_by_id(w.ann))
    qtbot.addWidget(dialog)
    dialog.show()
    for button in dialog.findChildren(QPushButton):
        assert button.icon().isNull(), button.text()
    view = dialog.followers
    fm = view.fontMetrics()
    for row in range(view.count()):
        item = view.item(row)
        for line in item.text().splitlines():
            # Each line fits the list's width (no elided "…").
            assert fm.horizontalAdvance(line) + 40 <= view.viewport().width(), line


async def test_messaging_center_shows_no_template_syntax_or_spec_codes(
    qtbot: QtBot, world: tuple[Service, World, ManualClock]
) -> None:
    import re

    service, w, _ = world
    center = MessagingCenter(service, await service.person_by_id(w.ann))
    qtbot.addWidget(center)
    center.show()
    await center.wait_idle()
    page = center.messages_page
    for label in page.findChildren(QLabel):
        assert "{{" not in label.text(), label.text()
        assert not re.search(SPEC_CODE, label.text()), label.text()
    assert "[#12] Printer on fire" in page.preview.text()  # the words, with sample data
    center.show_section("System emails")
    await center.wait_idle()
    texts = [center.system_page.list.item(i).text() for i in range(center.system_page.list.count())]
    tips = [
        center.system_page.list.item(i).toolTip() for i in range(center.system_page.list.count())
    ]
    assert texts and not any(re.search(SPEC_CODE, t) for t in texts + tips), texts + tips


async def test_email_log_shows_from_to_and_details_whole(
    qtbot: QtBot, world: tuple[Service, World, ManualClock]
) -> None:
    service, w, _ = world
    long_to = "someone.with.a.rather.long.address@customer-department.example.com"
    await service.templates.test_send("welcome", to=long_to)
    center = MessagingCenter(service, await service.person_by_id(w.ann))
    qtbot.addWidget(center)
    center.resize(1240, 760)
    center.show()
    center.show_section("Incoming & Outgoing")
    await center.wait_idle()
    page = center.log_page
    await until(lambda: page.model.rowCount() > 0)
    table = page.table
    fm = table.fontMetrics()
    to_index = page.model.index(0, 3)
    await until(lambda: table.columnWidth(3) >= fm.horizontalAdvance(long_to))
    assert table.columnWidth(2) >= fm.horizontalAdvance(page.model.entry(0).from_addr)
    assert page.model.data(to_index, Qt.ItemDataRole.ToolTipRole) == long_to
    assert table.columnWidth(6) >= 200  # Details is not a sliver


@with_desk
async def test_d5_ctrl_k_arrows_move_the_selection(desk: Desk, qtbot: QtBot) -> None:
    for title in ("VPN one", "VPN two", "VPN three"):
        await desk.service.create_item(title=title, followers=[ANN, BOB])
    qtbot.keyClick(desk.window, Qt.Key.Key_K, Qt.KeyboardModifier.ControlModifier)
    dialog = desk.window.findChild(QuickSwitch)
    assert dialog is not None
    qtbot.keyClicks(dialog.query, "vpn")
    await until(lambda: dialog.results.count() == 3)
    assert dialog.results.currentRow() == 0
    qtbot.keyClick(dialog.query, Qt.Key.Key_Down)
    assert dialog.results.currentRow() == 1
    qtbot.keyClick(dialog.query, Qt.Key.Key_Up)
    assert dialog.results.currentRow() == 0
    assert dialog.query.hasFocus() or not dialog.isActiveWindow()
    dialog.reject()


@with_desk
async def test_jump_to_latest_when_scrolled_up(desk: Desk, qtbot: QtBot) -> None:
    one = await desk.conversation(1)
    for i in range(40):
        await desk.service.post(author=BOB, text=f"message {i} " * 5, conversation_id=one)
    await desk.window.open_conversation(one)
    view = desk.window.message_view
    await until(lambda: len(desk.window.messages.rows) == 40)
    assert not view.jump_button.isVisible()
    view.verticalScrollBar().setValue(0)
    assert view.jump_button.isVisible()
    await desk.service.post(author=BOB, text="newest", conversation_id=one)
    await until(lambda: "1 new" in view.jump_button.text())
    qtbot.mouseClick(view.jump_button, Qt.MouseButton.LeftButton)
    bar = view.verticalScrollBar()
    assert bar.value() == bar.maximum()
    assert not view.jump_button.isVisible()


@with_desk
async def test_date_separators_and_the_unread_divider(desk: Desk, qtbot: QtBot) -> None:
    one = await desk.conversation(1)
    first = await desk.service.post(author=BOB, text="yesterday's", conversation_id=one)
    await desk.service.mark_seen(person_id=desk.me.id, message_ids=[first.message_id])
    desk.clock.advance(timedelta(days=1).total_seconds())
    await desk.service.post(author=BOB, text="seen today", conversation_id=one)
    await desk.service.post(author=BOB, text="new one", conversation_id=one)
    await desk.service.post(author=BOB, text="newer one", conversation_id=one)
    rows = await desk.service.messages(conversation_id=one, viewer_id=desk.me.id)
    await desk.service.mark_seen(person_id=desk.me.id, message_ids=[rows[1].id])
    await desk.window.open_conversation(one)
    await until(lambda: len(desk.window.messages.rows) == 4)
    model, delegate = desk.window.messages, desk.window.pane.message_delegate
    marks = [delegate.separators(model.index(i, 0)) for i in range(4)]
    assert marks[0][0] not in (None, "Today") and marks[0][1] is False
    assert marks[1] == ("Today", False)
    assert marks[2] == (None, True)  # the first unseen message
    assert marks[3] == (None, False)
    view = desk.window.message_view
    assert view.visualRect(model.index(2, 0)).height() > view.visualRect(model.index(3, 0)).height()
    # Painted: the row above the unread divider leaves its space, so nothing overlaps.
    assert view.indexAt(QPoint(20, view.visualRect(model.index(2, 0)).top() + 2)).row() == 2


@with_desk
async def test_n6_do_not_disturb_shows_after_a_restart_in_window_and_tray(
    desk: Desk, qtbot: QtBot
) -> None:
    from ui.widgets.tray import Tray
    from ui.windows.main_window import MainWindow

    await desk.service.set_do_not_disturb(person_id=desk.me.id, choice="1h")
    await until(lambda: desk.bridge.me.settings.dnd_until is not None)
    # A restart: a new window and tray read the stored settings.
    window = MainWindow(
        service=desk.service,
        bridge=desk.bridge,
        theme=desk.window.theme,
        tasks=desk.tasks,
        now=desk.clock.now,
        clock=desk.clock,
    )
    assert window.dnd.active
    assert window.sidebar.dnd_label.isVisibleTo(window)
    assert "Do not disturb until" in window.sidebar.dnd_label.text()
    tray = Tray()
    tray.set_dnd(window.dnd.text)
    assert "do not disturb until" in tray.tooltip()
    assert tray.dnd_status.text().startswith("Do not disturb until")
    assert not any(a.isChecked() for a in tray.dnd_actions.values())
    # When it ends, both say so without a restart.
    desk.clock.advance(3601)
    window.refresh_dnd()
    assert not window.dnd.active and not window.sidebar.dnd_label.isVisibleTo(window)
    tray.set_dnd(window.dnd.text)
    assert tray.dnd_actions[None].isChecked() and "do not disturb" not in tray.tooltip()
    shiboken6.delete(window)  # never shown; closing it would minimize it (no tray here)
