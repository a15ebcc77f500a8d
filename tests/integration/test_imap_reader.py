"""The IMAP reader (I1, I7) against a real Dovecot on loopback."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable

import pytest

from services.errors import MailboxError
from services.incoming.imap import ImapReader, ImapSettings, MemoryCursor
from tests.support.dovecot import DovecotServer
from tests.support.loop_wakeups import idle_window

_folders = itertools.count(1)


def mail(n: int) -> bytes:
    return (
        f"From: Carl <carl@example.org>\r\nTo: support@deskbell.test\r\n"
        f"Subject: mail {n}\r\nMessage-ID: <m{n}@example.org>\r\n\r\nbody {n}\r\n"
    ).encode()


def subject(raw: bytes) -> str:
    return next(line for line in raw.decode().splitlines() if line.startswith("Subject:"))[9:]


@pytest.fixture
def folder(dovecot: DovecotServer) -> str:
    """A fresh folder per test, so tests sharing the module's server never see each other."""
    name = f"Test{next(_folders)}"
    dovecot.create_folder(name)
    return name


def settings_for(server: DovecotServer, folder: str, **kw: object) -> ImapSettings:
    base: dict[str, object] = {
        "host": "127.0.0.1",
        "port": server.port,
        "security": "none",
        "username": server.user,
        "password": server.password,
        "folder": folder,
        "timeout_s": 30,
    }
    base.update(kw)
    return ImapSettings(**base)  # type: ignore[arg-type]


class Collector:
    def __init__(self, fail_on: str | None = None) -> None:
        self.seen: list[str] = []
        self.fail_on = fail_on
        self.arrived = asyncio.Event()

    async def __call__(self, raw: bytes) -> None:
        self.seen.append(subject(raw))
        self.arrived.set()
        if self.fail_on is not None and subject(raw) == self.fail_on:
            raise RuntimeError("handler bug")


@pytest.fixture
async def make_reader() -> AsyncIterator[Callable[..., ImapReader]]:
    readers: list[ImapReader] = []

    def make(settings: ImapSettings, cursor: MemoryCursor, handle: Collector) -> ImapReader:
        reader = ImapReader(
            settings, cursor=cursor, handle=handle, backoff_initial_s=0.05, backoff_max_s=0.2
        )
        readers.append(reader)
        return reader

    yield make
    for reader in readers:
        await reader.close()


# Deadlines are generous: the machine may be shared and ten times slower than usual.
async def wait_for(condition: Callable[[], bool], timeout_s: float = 60.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not condition():  # noqa: ASYNC110 - a polled condition, not an event
            await asyncio.sleep(0.02)


async def test_i1_new_mail_in_uid_order_and_restart_takes_only_new(
    dovecot: DovecotServer, folder: str, make_reader: Callable[..., ImapReader]
) -> None:
    for n in (1, 2, 3):
        dovecot.deliver(mail(n), folder=folder)
    cursor, seen = MemoryCursor(), Collector()
    reader = make_reader(settings_for(dovecot, folder), cursor, seen)
    assert await reader.poll_once() == 3
    assert seen.seen == ["mail 1", "mail 2", "mail 3"]
    assert await reader.poll_once() == 0
    await reader.close()

    # A new reader with the same cursor (a restart) takes only what is new.
    dovecot.deliver(mail(4), folder=folder)
    again = Collector()
    restarted = make_reader(settings_for(dovecot, folder), cursor, again)
    assert await restarted.poll_once() == 1
    assert again.seen == ["mail 4"]
    assert cursor.positions[folder][1] == 4


async def test_i1_uidvalidity_change_reads_the_folder_again(
    dovecot: DovecotServer, folder: str, make_reader: Callable[..., ImapReader]
) -> None:
    dovecot.deliver(mail(1), folder=folder)
    dovecot.deliver(mail(2), folder=folder)
    cursor, seen = MemoryCursor(), Collector()
    reader = make_reader(settings_for(dovecot, folder), cursor, seen)
    assert await reader.poll_once() == 2
    old_validity = cursor.positions[folder][0]

    dovecot.recreate_folder(folder)  # new UIDVALIDITY, UIDs start again at 1
    dovecot.deliver(mail(3), folder=folder)
    assert await reader.poll_once() == 1
    assert seen.seen == ["mail 1", "mail 2", "mail 3"]
    assert cursor.positions[folder][0] != old_validity
    assert cursor.positions[folder][1] == 1


async def test_i7_a_failing_handler_does_not_stop_the_others(
    dovecot: DovecotServer, folder: str, make_reader: Callable[..., ImapReader]
) -> None:
    for n in (1, 2, 3):
        dovecot.deliver(mail(n), folder=folder)
    cursor, seen = MemoryCursor(), Collector(fail_on="mail 2")
    reader = make_reader(settings_for(dovecot, folder), cursor, seen)
    assert await reader.poll_once() == 3
    assert seen.seen == ["mail 1", "mail 2", "mail 3"]
    # The failed one is not taken again.
    assert cursor.positions[folder][1] == 3
    assert await reader.poll_once() == 0


async def test_i1_idle_picks_up_new_mail_quickly(
    dovecot: DovecotServer, folder: str, make_reader: Callable[..., ImapReader]
) -> None:
    seen = Collector()
    reader = make_reader(settings_for(dovecot, folder), MemoryCursor(), seen)
    stop = asyncio.Event()
    # A poll interval far beyond the test: only IDLE can bring the mail in time.
    task = asyncio.create_task(reader.run(stop, poll_interval_s=600))
    try:
        await wait_for(lambda: reader.idling)
        await asyncio.to_thread(dovecot.deliver, mail(1), folder=folder)
        await wait_for(lambda: seen.seen == ["mail 1"])  # long before the 600 s poll
    finally:
        stop.set()
        await asyncio.wait_for(task, 60)


@pytest.mark.parametrize("security", ["none", "tls"])
async def test_issue9_an_idling_reader_wakes_nothing_until_mail_or_stop(
    dovecot: DovecotServer,
    folder: str,
    make_reader: Callable[..., ImapReader],
    security: str,
) -> None:
    """Issue 9: while the server is in IDLE, no thread wakes (no slices, no poll) until mail
    arrives or the reader is stopped, which it then notices at once."""
    seen = Collector()
    settings = settings_for(dovecot, folder)
    if security == "tls":
        tls = settings_for(dovecot, folder, port=dovecot.tls_port, security="tls", host="localhost")
        settings = ImapSettings(**{**tls.__dict__, "cafile": dovecot.cafile})
    reader = make_reader(settings, MemoryCursor(), seen)
    stop = asyncio.Event()
    task = asyncio.create_task(reader.run(stop, poll_interval_s=600))
    try:
        await wait_for(lambda: reader.idling)
        loop_wakeups, switches = await idle_window(2.0)
        assert loop_wakeups <= 3 and switches <= 3, (
            f"{loop_wakeups} loop wake-ups, {switches} switches"
        )
        await asyncio.to_thread(dovecot.deliver, mail(1), folder=folder)
        await wait_for(lambda: seen.seen == ["mail 1"])
        await wait_for(lambda: reader.idling)
    finally:
        stop.set()
        await asyncio.wait_for(task, 60)


async def test_i1_reconnects_after_the_server_went_away(
    dovecot: DovecotServer, folder: str, make_reader: Callable[..., ImapReader]
) -> None:
    seen = Collector()
    reader = make_reader(settings_for(dovecot, folder), MemoryCursor(), seen)
    stop = asyncio.Event()
    task = asyncio.create_task(reader.run(stop, poll_interval_s=600))
    try:
        await asyncio.to_thread(dovecot.deliver, mail(1), folder=folder)
        await wait_for(lambda: seen.seen == ["mail 1"])
        await asyncio.to_thread(dovecot.stop)
        await wait_for(lambda: not reader.connected)
        await asyncio.to_thread(dovecot.start)
        await asyncio.to_thread(dovecot.deliver, mail(2), folder=folder)
        await wait_for(lambda: seen.seen == ["mail 1", "mail 2"])
        assert not task.done()
    finally:
        stop.set()
        await asyncio.wait_for(task, 60)


async def test_i1_check_over_tls_and_starttls_and_a_wrong_password(
    dovecot: DovecotServer, folder: str, make_reader: Callable[..., ImapReader]
) -> None:
    dovecot.deliver(mail(1), folder=folder)
    seen = Collector()
    tls = settings_for(dovecot, folder, port=dovecot.tls_port, security="tls", host="localhost")
    tls = ImapSettings(**{**tls.__dict__, "cafile": dovecot.cafile})
    summary = await make_reader(tls, MemoryCursor(), seen).check()
    assert f"1 messages in {folder}" in summary
    assert "IDLE" in summary
    starttls = ImapSettings(**{**tls.__dict__, "port": dovecot.port, "security": "starttls"})
    reader = make_reader(starttls, MemoryCursor(), seen)
    assert await reader.poll_once() == 1

    untrusted = ImapSettings(**{**tls.__dict__, "cafile": None})
    with pytest.raises(MailboxError, match="certificate"):
        await make_reader(untrusted, MemoryCursor(), seen).check()
    wrong = settings_for(dovecot, folder, password="nope")
    with pytest.raises(MailboxError, match="refused the login"):
        await make_reader(wrong, MemoryCursor(), seen).check()
