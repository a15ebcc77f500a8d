"""The first-run dialog: name and email, validated through the service's address rules (E11)."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QLineEdit
from pytestqt.qtbot import QtBot

from ui.windows.first_run import FirstRunDialog, check_name


def make(qtbot: QtBot) -> FirstRunDialog:
    dialog = FirstRunDialog()
    qtbot.addWidget(dialog)
    dialog.show()
    return dialog


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
    with pytest.raises(ValueError, match="line breaks"):
        check_name("Ann\nBcc: x")
    with pytest.raises(ValueError, match="line breaks"):
        check_name("=?utf-8?q?Ann?=")


def test_d6_first_run_widgets_have_accessible_names(qtbot: QtBot) -> None:
    dialog = make(qtbot)
    for widget in dialog.findChildren(QLineEdit):
        assert widget.accessibleName()
    assert dialog.start_button.accessibleName()
    assert dialog.error_label.accessibleName()
    assert any(label.text() == "Welcome to Deskbell" for label in dialog.findChildren(QLabel))
