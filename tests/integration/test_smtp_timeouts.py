"""E7: every SMTP timeout follows RFC 5321 §4.5.3.2, against a real server that stalls.

The server (aiosmtpd, or a bare socket for the greeting) holds one step until the test lets
it go. The client runs in an event loop whose clock the test moves forward, so "still waiting
after 9 minutes" takes no time at all: the loop's timers see the moved clock, nothing else
does. Default settings are used, as `deskbell serve` uses them.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from services.domain.schedule import SmtpVerdict
from services.mail.smtp import Outgoing, Security, SmtpSender, SmtpSettings
from tests.support.smtpd import CatcherHandler, free_port

SENDER = "deskbell@desk.example"
MESSAGE = (
    b"From: <deskbell@desk.example>\r\nTo: <alice@example.org>\r\nSubject: slow\r\n"
    b"Message-ID: <slow.1@deskbell.desk.example>\r\n\r\nA new message is waiting.\r\n"
)
# RFC 5321 §4.5.3.2, in seconds.
GREETING, MAIL, RCPT, DATA_INIT, DATA_TERM = 300, 300, 300, 120, 600


class WarpLoop(asyncio.SelectorEventLoop):
    """An event loop whose clock a test moves forward: its timers fire as if time had passed."""

    def __init__(self) -> None:
        super().__init__()
        self.offset = 0.0

    def time(self) -> float:
        return super().time() + self.offset


@dataclass
class Stall(CatcherHandler):
    """Holds the reply to one step ("MAIL", "RCPT", "DATA" before 354, "." after the content)
    until `release` is set; `reached` tells the test the client is waiting on it."""

    step: str = "."
    reached: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)

    async def hold(self, step: str) -> None:
        if step == self.step:
            self.reached.set()
            await asyncio.to_thread(self.release.wait)

    async def handle_MAIL(self, server: SMTP, session: Session, envelope: Envelope, *a: Any) -> str:
        await self.hold("MAIL")
        return await super().handle_MAIL(server, session, envelope, *a)

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, *a: Any) -> str:
        await self.hold("RCPT")
        return await super().handle_RCPT(server, session, envelope, *a)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        await self.hold(".")
        return await super().handle_DATA(server, session, envelope)


class _StallingSMTP(SMTP):
    async def smtp_DATA(self, arg: str) -> None:
        assert isinstance(self.event_handler, Stall)
        await self.event_handler.hold("DATA")
        await super().smtp_DATA(arg)


class _Controller(Controller):
    def factory(self) -> SMTP:
        return _StallingSMTP(self.handler, **self.SMTP_kwargs)


@pytest.fixture
def stall_server() -> Iterator[tuple[Stall, int]]:
    handler = Stall()
    port = free_port()
    controller = _Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield handler, port
    finally:
        handler.release.set()
        controller.stop()


@pytest.fixture
def silent_server() -> Iterator[int]:
    """Accepts connections and never says its 220 greeting."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield listener.getsockname()[1]


def run_warped(main: Any) -> Any:
    with asyncio.Runner(loop_factory=WarpLoop) as runner:
        return runner.run(main())


async def _warp(seconds: float) -> None:
    """Move the loop's clock; let every timer now due run."""
    loop = asyncio.get_running_loop()
    assert isinstance(loop, WarpLoop)
    loop.offset += seconds
    for _ in range(5):
        await asyncio.sleep(0)
    await asyncio.sleep(0.05)


async def _until(event: threading.Event) -> None:
    assert await asyncio.to_thread(event.wait, 30), "the client never reached the stalled step"


def _send_after_stall(port: int, reached: threading.Event | None, limit: float) -> tuple[Any, bool]:
    """Send once; at the stall, move the clock to just before `limit`, then past it.
    Returns (outcome, whether the client was still waiting just before the limit)."""

    async def main() -> tuple[Any, bool]:
        settings = SmtpSettings(host="127.0.0.1", port=port, security=Security.NONE)
        async with SmtpSender(settings=settings, local_hostname="client.test") as sender:
            task = asyncio.create_task(
                sender.send(Outgoing(key=1, sender=SENDER, recipients=("a@x.org",), data=MESSAGE))
            )
            if reached is not None:
                await _until(reached)
            else:
                await asyncio.sleep(0.2)
            await _warp(limit - 2)
            waiting = not task.done()
            await _warp(4)
            return await asyncio.wait_for(task, 30), waiting

    return run_warped(main)


def test_e7_greeting_is_awaited_five_minutes(silent_server: int) -> None:
    outcome, waiting = _send_after_stall(silent_server, None, GREETING)
    assert waiting
    assert outcome.verdict is SmtpVerdict.RETRY
    assert "timed out after 300 s" in outcome.reply


@pytest.mark.parametrize(
    ("step", "limit", "words"),
    [("MAIL", MAIL, "MAIL FROM"), ("RCPT", RCPT, "RCPT TO"), ("DATA", DATA_INIT, "DATA")],
)
def test_e7_each_command_is_awaited_as_long_as_rfc_5321_says(
    stall_server: tuple[Stall, int], step: str, limit: int, words: str
) -> None:
    handler, port = stall_server
    handler.step = step
    outcome, waiting = _send_after_stall(port, handler.reached, limit)
    assert waiting
    assert outcome.verdict is SmtpVerdict.RETRY
    assert f"timed out after {limit} s" in outcome.reply and words in outcome.reply
    handler.release.set()
    assert handler.messages == []


def test_e7_slow_but_correct_end_of_data_is_not_retried(stall_server: tuple[Stall, int]) -> None:
    """The server takes 9 minutes to answer the final ".": the client is still there and the
    email is sent once, not retried (the old 30 s timeout left a copy per retry)."""
    handler, port = stall_server
    handler.step = "."

    async def main() -> tuple[Any, bool]:
        settings = SmtpSettings(host="127.0.0.1", port=port, security=Security.NONE)
        async with SmtpSender(settings=settings, local_hostname="client.test") as sender:
            task = asyncio.create_task(
                sender.send(Outgoing(key=1, sender=SENDER, recipients=("a@x.org",), data=MESSAGE))
            )
            await _until(handler.reached)
            await _warp(DATA_TERM - 60)
            waiting = not task.done()
            handler.release.set()
            return await asyncio.wait_for(task, 30), waiting

    outcome, waiting = run_warped(main)
    assert waiting
    assert outcome.verdict is SmtpVerdict.SENT
    assert len(handler.messages) == 1


def test_e7_end_of_data_gives_up_after_ten_minutes(stall_server: tuple[Stall, int]) -> None:
    handler, port = stall_server
    handler.step = "."
    outcome, waiting = _send_after_stall(port, handler.reached, DATA_TERM)
    assert waiting
    assert outcome.verdict is SmtpVerdict.RETRY
    assert "timed out after 600 s" in outcome.reply
