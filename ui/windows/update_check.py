"""Check for updates: the opt-in daily check and the "Check for updates…" action.

The announcement is read and verified by `services.updates` (no Qt). Here: where the choice
and the time of the last check are kept (this machine's desktop.ini, beside the window's
place: a per-machine choice, not the workspace's), and what the person sees. Nothing is
downloaded or run: a newer version opens its download page in the browser.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from PySide6.QtCore import QObject, QSettings, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QMessageBox, QWidget

from services.api import DEFAULT_URL, PUBLIC_KEY, UpdateCheckError, check_due, check_for_update
from ui.tasks import Tasks

__all__ = ["UpdateChecker", "UpdatePrefs"]

log = logging.getLogger("deskbell.updates")


class UpdatePrefs:
    """`[updates]` in desktop.ini: enabled (off unless the person ticks it), url, last_check."""

    def __init__(self, settings: QSettings) -> None:
        self._settings = settings

    def enabled(self) -> bool:
        return str(self._settings.value("updates/enabled", "false")).lower() == "true"

    def set_enabled(self, on: bool) -> None:
        self._settings.setValue("updates/enabled", "true" if on else "false")
        self._settings.sync()

    def url(self) -> str:
        return str(self._settings.value("updates/url", DEFAULT_URL) or DEFAULT_URL)

    def last_check(self) -> datetime | None:
        value = str(self._settings.value("updates/last_check", "") or "")
        try:
            when = datetime.fromisoformat(value)
        except ValueError:
            return None
        return when if when.tzinfo is not None else when.replace(tzinfo=UTC)

    def set_last_check(self, when: datetime) -> None:
        self._settings.setValue("updates/last_check", when.isoformat())
        self._settings.sync()


class UpdateChecker(QObject):
    """Runs a check and says what it found; `said` carries the text (tests, logs)."""

    said = Signal(str)

    def __init__(
        self,
        *,
        prefs: UpdatePrefs,
        current: str,
        now: Callable[[], datetime],
        parent: QWidget | None = None,
        public_key: bytes = PUBLIC_KEY,
        open_url: Callable[[QUrl], object] = QDesktopServices.openUrl,
    ) -> None:
        super().__init__(parent)
        self.prefs = prefs
        self.current = current
        self._now = now
        self._window = parent
        self._public_key = public_key
        self._open_url = open_url
        self._tasks = Tasks()
        self.box: QMessageBox | None = None  # the answer on screen, if any

    def check_now(self) -> None:
        """The menu's "Check for updates…": always checks, and always answers."""
        self._tasks.start(self.run(quiet=False), name="update-check")

    def check_if_due(self) -> None:
        """At start and once a day: only when the person opted in; quiet unless newer."""
        if self.prefs.enabled() and check_due(self.prefs.last_check(), self._now()):
            self._tasks.start(self.run(quiet=True), name="update-check")

    def keep_checking(self, pause: Callable[[], Awaitable[object]]) -> None:
        """`check_if_due` now and after each `pause()` (an hour), until `aclose()`."""

        async def loop() -> None:
            while True:
                self.check_if_due()
                await pause()

        self._tasks.start(loop(), name="daily-update-check")

    async def run(self, *, quiet: bool) -> None:
        try:
            check = await check_for_update(
                url=self.prefs.url(), current=self.current, public_key=self._public_key
            )
        except UpdateCheckError as exc:
            log.warning("update check: %s", exc)
            if not quiet:
                self._show(QMessageBox.Icon.Warning, f"Could not check for updates: {exc}")
            return
        self.prefs.set_last_check(self._now())
        found = check.announcement
        if check.newer:
            self._show(
                QMessageBox.Icon.Information,
                f"Deskbell {found.version} is available (you have {self.current}).\n\n"
                f"Its installer's SHA-256 is {found.sha256}.",
                open_url=found.url,
            )
        elif not quiet:
            self._show(
                QMessageBox.Icon.Information, f"You have the newest Deskbell ({self.current})."
            )

    def _show(self, icon: QMessageBox.Icon, text: str, *, open_url: str | None = None) -> None:
        if self.box is not None:
            self.box.close()
        box = QMessageBox(icon, "Deskbell updates", text, parent=self._window)
        box.setAccessibleName("Deskbell updates")
        if open_url is not None:
            download = box.addButton("Open download page", QMessageBox.ButtonRole.AcceptRole)
            box.addButton("Later", QMessageBox.ButtonRole.RejectRole)
            box.setDefaultButton(download)
            download.clicked.connect(lambda: self._open_url(QUrl(open_url)))
        else:
            box.addButton(QMessageBox.StandardButton.Ok)
        self.box = box
        box.open()
        self.said.emit(text)

    async def wait_idle(self) -> None:
        """Until the checks started so far are done (tests)."""
        await self._tasks.drain()

    async def aclose(self) -> None:
        self._tasks.cancel()
        if self.box is not None:
            self.box.close()
