"""New item: a title and followers picked from people (the creator is ticked)."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from services.api import PersonInfo, PersonKind
from ui.widgets.center_style import style_sheet, theme_for

__all__ = ["NewItemDialog"]


class NewItemDialog(QDialog):
    """A title, then who follows it: the team first, customers after, the creator ticked."""

    def __init__(
        self, *, people: Sequence[PersonInfo], me: PersonInfo, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("New item")
        self.setAccessibleName("New item")
        self.setStyleSheet(style_sheet(theme_for(self)))  # the Messaging Center's look
        heading = QLabel("New item", self)
        heading.setObjectName("mcSectionTitle")
        self.title_edit = QLineEdit(self)
        self.title_edit.setAccessibleName("Item title")
        self.title_edit.setPlaceholderText("What is it about?")
        title_label = QLabel("&Title", self)
        title_label.setObjectName("mcCaption")
        title_label.setBuddy(self.title_edit)
        self.followers = QListWidget(self)
        self.followers.setObjectName("mcList")
        self.followers.setAccessibleName("Followers")
        self.followers.setWordWrap(True)
        self.followers.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.followers.setMinimumHeight(220)
        ordered = sorted(people, key=lambda p: (p.kind == PersonKind.CUSTOMER, p.name.lower()))
        for person in ordered:
            who = "Customer" if person.kind == PersonKind.CUSTOMER else "Team"
            # Two short lines instead of one long one: nothing is cut at the list's width.
            item = QListWidgetItem(f"{person.name}\n{person.email} · {who}")
            item.setToolTip(f"{person.name} <{person.email}>")
            item.setData(Qt.ItemDataRole.UserRole, person.email)
            item.setData(Qt.ItemDataRole.AccessibleTextRole, f"{person.name}, {who}")
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(
                Qt.CheckState.Checked if person.id == me.id else Qt.CheckState.Unchecked
            )
            self.followers.addItem(item)
        followers_label = QLabel("&Followers (they are told about every message)", self)
        followers_label.setObjectName("mcCaption")
        followers_label.setBuddy(self.followers)
        # Plain, labelled buttons (stock ones carry icons in Fusion), Create as the primary.
        buttons = QDialogButtonBox(self)
        self.ok_button = QPushButton("Create", self)
        self.ok_button.setObjectName("mcPrimary")
        self.ok_button.setDefault(True)
        self.ok_button.setEnabled(False)
        buttons.addButton(self.ok_button, QDialogButtonBox.ButtonRole.AcceptRole)
        buttons.addButton(QPushButton("Cancel", self), QDialogButtonBox.ButtonRole.RejectRole)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        self.title_edit.textChanged.connect(self._on_title_text_changed)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(20, 16, 20, 16)
        layout.setSpacing(6)
        layout.addWidget(heading)
        layout.addSpacing(8)
        layout.addWidget(title_label)
        layout.addWidget(self.title_edit)
        layout.addSpacing(8)
        layout.addWidget(followers_label)
        layout.addWidget(self.followers, 1)
        layout.addSpacing(8)
        layout.addWidget(buttons)
        self.setMinimumWidth(520)
        self.resize(560, 540)

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
