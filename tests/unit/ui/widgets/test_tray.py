"""The tray (D1, N3, N6): tooltip with the count, the bubble, the DND and quit menu."""

from __future__ import annotations

from pytestqt.qtbot import QtBot

from ui.widgets.tray import DND_MENU, Tray


def test_n3_tooltip_and_bubble_follow_the_count(qtbot: QtBot) -> None:
    tray = Tray()
    assert tray.tooltip() == "Deskbell — nothing unseen"
    blank = tray.icon.icon().pixmap(32).toImage()
    tray.set_count(3)
    assert tray.tooltip() == "Deskbell — 3 unseen"
    assert tray.icon.toolTip() == "Deskbell — 3 unseen"
    assert tray.icon.icon().pixmap(32).toImage() != blank  # the green bubble is drawn
    tray.set_dnd("Do not disturb until 14:30")
    assert tray.tooltip() == "Deskbell — 3 unseen · do not disturb until 14:30"


def test_d1_n6_menu_open_dnd_quit(qtbot: QtBot) -> None:
    tray = Tray()
    texts = [a.text() for a in tray.menu.actions() if a.text()]
    assert texts == ["Open Deskbell", "Do not disturb", "Check for updates…", "Quit"]
    choices = [a.text() for a in tray.dnd_menu.actions() if a.isEnabled() and a.text()]
    assert choices == [t for t, _ in DND_MENU]
    chosen: list[object] = []
    tray.dnd_requested.connect(chosen.append)
    tray.dnd_actions["30m"].trigger()
    tray.dnd_actions[None].trigger()
    assert chosen == ["30m", None]
    with qtbot.waitSignal(tray.update_check_requested, timeout=30_000):
        tray.menu.actions()[-2].trigger()  # issue 13: it only asks; the app answers
    with qtbot.waitSignal(tray.quit_requested, timeout=30_000):
        tray.menu.actions()[-1].trigger()
