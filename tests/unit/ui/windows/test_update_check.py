"""The update check as a person meets it (issue 13): opt-in, off by default; a newer version
offers its download page (opened in the browser, nothing downloaded); the menus' action always
answers; a bad announcement says why. Against a real HTTP server on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import shiboken6
from PySide6.QtCore import QSettings, QUrl
from PySide6.QtWidgets import QMessageBox, QPushButton

from tests.support.announcements import PUBLIC, AnnouncementServer, serve, signed
from tests.unit.ui.desk import until
from ui.windows.update_check import UpdateChecker, UpdatePrefs

NOW = datetime(2026, 12, 1, 9, tzinfo=UTC)
NEWER = {"version": "0.2.0", "url": "https://deskbell.app/download/0.2.0", "sha256": "ab" * 32}


@pytest.fixture
def server() -> Iterator[AnnouncementServer]:
    with serve() as s:
        yield s


@pytest.fixture
def prefs(tmp_path: Path, server: AnnouncementServer) -> UpdatePrefs:
    settings = QSettings(str(tmp_path / "desktop.ini"), QSettings.Format.IniFormat)
    settings.setValue("updates/url", server.url("/latest.json"))
    return UpdatePrefs(settings)


@pytest.fixture
def opened() -> list[QUrl]:
    return []


@pytest.fixture
def checker(prefs: UpdatePrefs, opened: list[QUrl]) -> Iterator[UpdateChecker]:
    made = UpdateChecker(
        prefs=prefs, current="0.1.0", now=lambda: NOW, public_key=PUBLIC, open_url=opened.append
    )
    yield made
    if made.box is not None:
        made.box.close()
        shiboken6.delete(made.box)
    shiboken6.delete(made)


def _listen(checker: UpdateChecker) -> list[str]:
    said: list[str] = []
    checker.said.connect(said.append)
    return said


def test_updates_are_off_by_default(tmp_path: Path) -> None:
    fresh = UpdatePrefs(QSettings(str(tmp_path / "new.ini"), QSettings.Format.IniFormat))
    assert not fresh.enabled()
    assert fresh.url().startswith("https://")
    assert fresh.last_check() is None


async def test_no_check_at_all_unless_the_person_opted_in(
    checker: UpdateChecker, server: AnnouncementServer
) -> None:
    server.routes["/latest.json"] = (200, signed(NEWER))
    checker.check_if_due()
    await checker.wait_idle()
    assert server.requests == []  # not even a request: nothing leaves the machine
    assert checker.box is None


async def test_a_newer_version_opens_its_download_page_on_request(
    checker: UpdateChecker, server: AnnouncementServer, opened: list[QUrl]
) -> None:
    server.routes["/latest.json"] = (200, signed(NEWER))
    checker.prefs.set_enabled(True)
    said = _listen(checker)
    checker.check_if_due()
    await checker.wait_idle()
    assert "Deskbell 0.2.0 is available (you have 0.1.0)" in said[0]
    assert "ab" * 32 in said[0]
    assert checker.prefs.last_check() == NOW
    assert opened == []  # nothing happens by itself
    box = checker.box
    assert box is not None and box.isVisible()
    download = next(b for b in box.findChildren(QPushButton) if "download" in b.text())
    download.click()
    assert opened == [QUrl("https://deskbell.app/download/0.2.0")]


async def test_the_daily_check_waits_a_day_and_stays_quiet_when_up_to_date(
    checker: UpdateChecker, server: AnnouncementServer
) -> None:
    server.routes["/latest.json"] = (200, signed({**NEWER, "version": "0.1.0"}))
    checker.prefs.set_enabled(True)
    checker.prefs.set_last_check(NOW - timedelta(hours=3))
    checker.check_if_due()
    await checker.wait_idle()
    assert server.requests == []  # checked three hours ago
    checker.prefs.set_last_check(NOW - timedelta(days=2))
    checker.check_if_due()
    await checker.wait_idle()
    assert len(server.requests) == 1
    assert checker.box is None  # up to date: a quiet check says nothing


@pytest.mark.parametrize(
    ("version", "answer"),
    [("0.1.0", "You have the newest Deskbell (0.1.0)."), ("0.0.9", "You have the newest")],
)
async def test_check_now_always_answers(
    checker: UpdateChecker, server: AnnouncementServer, version: str, answer: str
) -> None:
    server.routes["/latest.json"] = (200, signed({**NEWER, "version": version}))
    said = _listen(checker)
    checker.check_now()
    await checker.wait_idle()
    assert said[0].startswith(answer)
    assert checker.box is not None
    assert checker.box.icon() == QMessageBox.Icon.Information


async def test_a_tampered_announcement_is_refused_with_the_reason(
    checker: UpdateChecker, server: AnnouncementServer, opened: list[QUrl]
) -> None:
    document = signed(NEWER).replace(b"deskbell.app", b"evil.example")
    server.routes["/latest.json"] = (200, document)
    said = _listen(checker)
    checker.check_now()
    await checker.wait_idle()
    assert said[0].startswith("Could not check for updates: ")
    assert "not signed with Deskbell's key" in said[0]
    assert checker.box is not None
    assert checker.box.icon() == QMessageBox.Icon.Warning
    assert not any("download" in b.text() for b in checker.box.findChildren(QPushButton))
    assert opened == []
    assert checker.prefs.last_check() is None


async def test_keep_checking_checks_at_once_after_each_pause_and_stops_on_close(
    checker: UpdateChecker, server: AnnouncementServer
) -> None:
    """The daily loop belongs to the checker, so closing the checker ends it: the app's
    shut-down no longer waits on an endless task (it did, and every quit failed on its
    timeout)."""
    server.routes["/latest.json"] = (200, signed({**NEWER, "version": "0.1.0"}))
    checker.prefs.set_enabled(True)
    pauses: list[asyncio.Event] = []

    async def pause() -> None:  # the hour between two turns, ended by the test
        pauses.append(asyncio.Event())
        await pauses[-1].wait()

    checker.keep_checking(pause)
    await until(lambda: len(pauses) == 1 and checker.prefs.last_check() == NOW)
    assert len(server.requests) == 1  # at once: never checked before
    pauses[-1].set()
    await until(lambda: len(pauses) == 2)
    assert len(server.requests) == 1  # an hour later: not due yet
    checker.prefs.set_last_check(NOW - timedelta(days=2))
    pauses[-1].set()
    await until(lambda: len(pauses) == 3 and checker.prefs.last_check() == NOW)
    assert len(server.requests) == 2  # a day has passed
    await checker.aclose()
    await asyncio.wait_for(checker.wait_idle(), timeout=60)  # nothing left running
