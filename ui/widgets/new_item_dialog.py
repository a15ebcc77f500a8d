"""New item: a title and followers picked from people (the creator is ticked)."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QWidget,
)

from services.domain.model import PersonKind
from services.views import PersonInfo

__all__ = ["NewItemDialog"]


class NewItemDialog(QDialog):
    def __init__(
        self, *, people: Sequence[PersonInfo], me: PersonInfo, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("New item")
        self.title_edit = QLineEdit(self)
        self.title_edit.setAccessibleName("Item title")
        self.title_edit.setPlaceholderText("What is it about?")
        self.followers = QListWidget(self)
        self.followers.setAccessibleName("Followers")
        for person in people:
            who = "customer" if person.kind == PersonKind.CUSTOMER else "team"
            item = QListWidgetItem(f"{person.name} <{person.email}> · {who}")
            item.setData(Qt.ItemDataRole.UserRole, person.email)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(
                Qt.CheckState.Checked if person.id == me.id else Qt.CheckState.Unchecked
            )
            self.followers.addItem(item)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self
        )
        self.ok_button = buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.ok_button.setText("Create")
        self.ok_button.setEnabled(False)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        self.title_edit.textChanged.connect(self._on_title_text_changed)
        form = QFormLayout(self)
        form.addRow("Title", self.title_edit)
        form.addRow("Followers", self.followers)
        form.addRow(buttons)
        self.resize(460, 420)

    def _on_title_text_changed(self, text: str) -> None:
        self.ok_button.setEnabled(bool(text.strip()))

    def title(self) -> str:
        return self.title_edit.text().strip()

    def follower_emails(self) -> list[str]:
        out = []
        for i in range(self.followers.count()):
            item = self.followers.item(i)
            if item.checkState() == Qt.CheckState.Checked:
                out.append(str(item.data(Qt.ItemDataRole.UserRole)))
        return out
