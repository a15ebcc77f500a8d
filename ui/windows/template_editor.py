"""The template editor (M4, M5): subject, plain text and HTML on the left, a live preview with
sample data on the right, the variables it may use, a test send, and errors with their line.

The preview is rendered by the service in its sandbox; the HTML is shown in a QTextBrowser,
which runs no scripts and loads nothing from the network.
"""

from __future__ import annotations

import asyncio

from PySide6.QtCore import QTimer, Signal
from PySide6.QtGui import QFontDatabase
from PySide6.QtWidgets import (
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QTabWidget,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from services.api import CenterFacade, DeskbellError, TemplateInfo
from ui.tasks import Tasks
from ui.widgets.center_style import caption, text_color, theme_for

__all__ = ["TemplateEditor"]


class TemplateEditor(QWidget):
    """Edits one stored template; `saved` carries its new state."""

    saved = Signal(TemplateInfo)

    def __init__(self, service: CenterFacade, tasks: Tasks, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._service = service
        self._tasks = tasks
        self.template: TemplateInfo | None = None
        mono = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)

        self.title_label = QLabel("Choose a template")
        self.title_label.setWordWrap(True)
        self.title_label.setObjectName("mcEditorTitle")
        self.subject_edit = QLineEdit()
        self.subject_edit.setAccessibleName("Subject template")
        self.text_edit = QPlainTextEdit()
        self.text_edit.setAccessibleName("Plain text template")
        self.html_edit = QPlainTextEdit()
        self.html_edit.setAccessibleName("HTML template")
        for edit in (self.text_edit, self.html_edit):
            edit.setFont(mono)
        self.source_tabs = QTabWidget()
        self.source_tabs.addTab(self.text_edit, "Plain text")
        self.source_tabs.addTab(self.html_edit, "HTML")
        self.variables_label = QLabel()
        self.variables_label.setWordWrap(True)
        self.variables_label.setObjectName("mcHint")
        self.variables_label.setAccessibleName("Variables this template may use")

        form = QFormLayout()
        form.addRow(caption("Subject"), self.subject_edit)
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 8, 0)
        left_layout.setSpacing(8)
        left_layout.addWidget(self.title_label)
        left_layout.addLayout(form)
        left_layout.addWidget(self.source_tabs, 1)
        left_layout.addWidget(self.variables_label)

        self.preview_subject = QLabel()
        self.preview_subject.setAccessibleName("Preview subject")
        self.preview_subject.setWordWrap(True)
        self.preview_subject.setObjectName("mcPreviewSubject")
        self.preview_text = QPlainTextEdit()
        self.preview_text.setReadOnly(True)
        self.preview_text.setAccessibleName("Plain text preview")
        self.preview_text.setFont(mono)
        self.preview_html = QTextBrowser()
        self.preview_html.setOpenLinks(False)
        self.preview_html.setOpenExternalLinks(False)
        self.preview_html.setAccessibleName("HTML preview")
        # Mail clients show HTML email on white; its own colours assume so, also in dark mode.
        self.preview_html.setObjectName("mcHtmlPreview")
        self.preview_tabs = QTabWidget()
        self.preview_tabs.addTab(self.preview_html, "HTML preview")
        self.preview_tabs.addTab(self.preview_text, "Plain text preview")
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(8, 0, 0, 0)
        right_layout.setSpacing(8)
        right_layout.addWidget(caption("Preview with sample data"))
        right_layout.addWidget(self.preview_subject)
        right_layout.addWidget(self.preview_tabs, 1)

        split = QSplitter()
        split.addWidget(left)
        split.addWidget(right)

        self.error_label = QLabel()
        self.error_label.setWordWrap(True)
        self.error_label.setAccessibleName("Template status")
        self.save_button = QPushButton("Save")
        self.save_button.setObjectName("mcPrimary")
        self.save_button.setAccessibleName("Save template")
        self.test_to_edit = QLineEdit()
        self.test_to_edit.setPlaceholderText("address for a test")
        self.test_to_edit.setAccessibleName("Test address")
        self.test_button = QPushButton("Send test")
        self.test_button.setAccessibleName("Send a test email")
        buttons = QHBoxLayout()
        buttons.addWidget(self.error_label, 1)
        buttons.addWidget(self.test_to_edit)
        buttons.addWidget(self.test_button)
        buttons.addWidget(self.save_button)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(10)
        layout.addWidget(split, 1)
        layout.addLayout(buttons)

        self._preview_timer = QTimer(self)
        self._preview_timer.setSingleShot(True)
        self._preview_timer.setInterval(300)
        self._preview_timer.timeout.connect(self.refresh_preview)
        self.subject_edit.textChanged.connect(self._preview_timer.start)
        self.text_edit.textChanged.connect(self._preview_timer.start)
        self.html_edit.textChanged.connect(self._preview_timer.start)
        self.save_button.clicked.connect(self._on_save_clicked)
        self.test_button.clicked.connect(self._on_test_clicked)
        self._set_enabled(False)

    def _set_enabled(self, enabled: bool) -> None:
        for widget in (self.subject_edit, self.source_tabs, self.save_button, self.test_button):
            widget.setEnabled(enabled)

    def show_status(self, text: str, *, error: bool) -> None:
        self.error_label.setText(text)
        color = text_color(error=error, theme=theme_for(self.error_label))
        self.error_label.setStyleSheet(f"color: {color};")

    async def open(self, name: str) -> None:
        template = await self._service.templates.get(name)
        self.template = template
        self._preview_timer.stop()
        for edit in (self.subject_edit, self.text_edit, self.html_edit):
            edit.blockSignals(True)
        self.subject_edit.setText(template.subject)
        self.text_edit.setPlainText(template.body_text)
        self.html_edit.setPlainText(template.body_html)
        for edit in (self.subject_edit, self.text_edit, self.html_edit):
            edit.blockSignals(False)
        # The new-message email's subject is fixed by E4 ([#N] title).
        self.subject_edit.setEnabled(template.kind != "notification")
        kind = "built-in" if template.builtin else "custom"
        self.title_label.setText(
            f"<b>{template.name}</b> ({template.kind}, {kind}): {template.description}"
        )
        self.variables_label.setText(
            "Variables: " + "; ".join(f"<b>{k}</b> — {v}" for k, v in template.variables)
        )
        self._set_enabled(True)
        self.subject_edit.setEnabled(template.kind != "notification")
        self.show_status("", error=False)
        await self._preview()

    def refresh_preview(self) -> None:
        if self.template is not None:
            self._tasks.start(self._preview(), name="template-preview")

    async def _preview(self) -> None:
        if self.template is None:
            return
        try:
            rendered = await self._service.templates.preview(
                self.template.name,
                subject=self.subject_edit.text() if self.template.kind != "notification" else None,
                body_text=self.text_edit.toPlainText(),
                body_html=self.html_edit.toPlainText(),
            )
        except DeskbellError as exc:
            self.show_status(str(exc), error=True)
            return
        self.show_status("", error=False)
        self.preview_subject.setText(rendered.subject)
        self.preview_text.setPlainText(rendered.text)
        self.preview_html.setHtml(rendered.html or "<p><i>(no HTML part)</i></p>")

    def _on_save_clicked(self) -> None:
        self._tasks.start(self.save(), name="template-save")

    def _on_test_clicked(self) -> None:
        self._tasks.start(self.send_test(), name="template-test")

    async def save(self) -> bool:
        if self.template is None:
            return False
        try:
            saved = await self._service.templates.save(
                name=self.template.name,
                subject=self.subject_edit.text() if self.template.kind != "notification" else None,
                body_text=self.text_edit.toPlainText(),
                body_html=self.html_edit.toPlainText(),
            )
        except DeskbellError as exc:
            self.show_status(f"Not saved: {exc}", error=True)
            return False
        self.template = saved
        self.show_status("Saved.", error=False)
        self.saved.emit(saved)
        return True

    async def send_test(self) -> None:
        if self.template is None:
            return
        address = self.test_to_edit.text().strip()
        if not address:
            self.show_status("Give an address to send the test to.", error=True)
            return
        try:
            await self._service.templates.test_send(self.template.name, to=address)
        except DeskbellError as exc:
            self.show_status(f"Not sent: {exc}", error=True)
            return
        self.show_status(f"Test queued to {address}; see Incoming & Outgoing.", error=False)

    def pending(self) -> asyncio.Task[None] | None:
        """Flush a debounced preview now (tests)."""
        if self._preview_timer.isActive():
            self._preview_timer.stop()
            if self.template is not None:
                return self._tasks.start(self._preview(), name="template-preview")
        return None
