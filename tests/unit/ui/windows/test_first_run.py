"""The first-run dialog: the choice between this computer only and a team (T5), then name and
email, validated through the service's address rules (E11)."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QLineEdit
from pytestqt.qtbot import QtBot

from ui.windows.first_run import FirstRunChoice, FirstRunDialog, check_name


def make(qtbot: QtBot) -> FirstRunDialog:
    """The dialog past its first page: "Work on this computer only" chosen."""
    dialog = FirstRunDialog()
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.mouseClick(dialog.local_button, Qt.MouseButton.LeftButton)
    return dialog


def test_t5_first_run_offers_this_computer_only_or_a_team(qtbot: QtBot) -> None:
    dialog = FirstRunDialog()
    qtbot.addWidget(dialog)
    dialog.show()
    assert dialog.pages.currentWidget() is dialog.choice_page
    assert dialog.local_button.accessibleName() == "Work on this computer only"
    assert dialog.team_button.accessibleName() == "Sign in to my team"
    assert not dialog.start_button.isVisible()
    dialog.accept()  # Enter on the choice page chooses nothing
    assert dialog.isVisible()
    qtbot.mouseClick(dialog.local_button, Qt.MouseButton.LeftButton)
    assert dialog.pages.currentWidget() is dialog.person_page
    assert dialog.choice is FirstRunChoice.LOCAL and dialog.start_button.isVisible()
    qtbot.mouseClick(dialog.back_button, Qt.MouseButton.LeftButton)
    assert dialog.pages.currentWidget() is dialog.choice_page and dialog.choice is None
    with qtbot.waitSignal(dialog.accepted, timeout=30_000):
        qtbot.mouseClick(dialog.team_button, Qt.MouseButton.LeftButton)
    assert dialog.choice is FirstRunChoice.TEAM
    with pytest.raises(RuntimeError):
        dialog.result_person()


def test_first_run_without_the_team_choice_asks_the_person_at_once(qtbot: QtBot) -> None:
    dialog = FirstRunDialog(offer_team=False)
    qtbot.addWidget(dialog)
    dialog.show()
    assert dialog.pages.currentWidget() is dialog.person_page
    assert not dialog.back_button.isVisible()


def test_first_run_accepts_a_valid_person_and_normalises_the_address(qtbot: QtBot) -> None:
    dialog = make(qtbot)
    assert not dialog.start_button.isEnabled()
    qtbot.keyClicks(dialog.name_edit, "  Alex   Morgan ")
    qtbot.keyClicks(dialog.email_edit, "Alex@Example.COM")
    assert dialog.start_button.isEnabled()
    with qtbot.waitSignal(dialog.accepted, timeout=30_000):
        qtbot.mouseClick(dialog.start_button, Qt.MouseButton.LeftButton)
    assert dialog.result_person() == ("Alex Morgan", "alex@example.com")


@pytest.mark.parametrize(
    "address",
    [
        "alex",
        "alex@",
        "Alex <alex@example.com>",
        "alex@example.com\r\nBcc: eve@example.com",
        "=?UTF-8?Q?x?=@example.com",
        "a b@example.com",
    ],
)
def test_e11_first_run_refuses_addresses_that_are_not_one_plain_address(
    qtbot: QtBot, address: str
) -> None:
    dialog = make(qtbot)
    dialog.name_edit.setText("Alex Morgan")
    dialog.email_edit.setText(address)
    assert not dialog.start_button.isEnabled()
    dialog.email_edit.editingFinished.emit()
    assert dialog.error_label.isVisible()
    assert "valid email address" in dialog.error_label.text()
    dialog.accept()  # Enter pressed anyway: refused, the dialog stays
    assert dialog.result() != FirstRunDialog.DialogCode.Accepted
    with pytest.raises(RuntimeError):
        dialog.result_person()
    # Fixing the address clears the message and enables Start.
    dialog.email_edit.setText("alex@example.com")
    assert dialog.start_button.isEnabled()
    assert not dialog.error_label.isVisible()


def test_first_run_needs_a_name_without_line_breaks(qtbot: QtBot) -> None:
    dialog = make(qtbot)
    dialog.email_edit.setText("alex@example.com")
    assert not dialog.start_button.isEnabled()
    dialog.accept()
    assert dialog.error_label.text() == "Please enter your name."
    assert check_name(" Ann  Lee ") == "Ann Lee"
    for broken in ("Ann\nBcc: x", "Ann\r", "Ann\u2028Lee", "Ann\x00", "Ann\x1b[2J"):
        with pytest.raises(ValueError, match="one line, without control characters"):
            check_name(broken)


def test_e11_a_name_that_looks_like_an_encoded_word_is_a_name(qtbot: QtBot) -> None:
    """E11 and issue 8's "=?" class: the service stores such a name and encodes it when a
    header is built, so the first-run dialog takes it too."""
    assert check_name(" =?utf-8?q?Ann?= ") == "=?utf-8?q?Ann?="
    dialog = make(qtbot)
    dialog.name_edit.setText("Ann =?x")
    dialog.email_edit.setText("ann@example.com")
    assert dialog.start_button.isEnabled()
    dialog.accept()
    assert dialog.result_person() == ("Ann =?x", "ann@example.com")


def test_d6_first_run_widgets_have_accessible_names(qtbot: QtBot) -> None:
    dialog = make(qtbot)
    for widget in dialog.findChildren(QLineEdit):
        assert widget.accessibleName()
    assert dialog.start_button.accessibleName()
    assert dialog.error_label.accessibleName()
    assert any(label.text() == "Welcome to Deskbell" for label in dialog.findChildren(QLabel))
