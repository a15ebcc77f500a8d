"""Real bounces for tests (E7): an email leaves through the outbox to a loopback SMTP server,
and a delivery report as a real mail system writes it comes back for it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from services.api import ConversationKind, Service
from services.clock import ManualClock
from tests.support.smtpd import SmtpServer

__all__ = ["CORPUS", "OUR", "Sent", "dsn", "email_bob", "use_smtp_server"]

CORPUS = Path(__file__).resolve().parents[1] / "corpus"
OUR = "support@deskbell.test"


@dataclass(frozen=True)
class Sent:
    envelope_sender: str
    message_id: str  # with its angle brackets
    email_id: int


async def use_smtp_server(service: Service, server: SmtpServer) -> None:
    """Send through `server`, plain, from `OUR`."""
    for key, value in (
        ("smtp.host", "127.0.0.1"),
        ("smtp.port", str(server.port)),
        ("smtp.security", "none"),
        ("smtp.from", OUR),
    ):
        await service.set_config(key, value)


async def email_bob(svc: Service, clock: ManualClock, server: SmtpServer, text: str) -> Sent:
    """Ann writes internally in item #1 (`tests.support.world.seed`); Bob does not see it,
    and his notification email leaves through the outbox."""
    await svc.post(
        author="ann@example.com", text=text, item_number=1, kind=ConversationKind.INTERNAL
    )
    clock.advance(61)
    await svc.run_scheduler_once()
    await svc.outbox.flush()
    envelope = server.handler.envelopes[-1]
    message = server.handler.messages[-1]
    [entry] = [e for e in await svc.emails() if e.message_id == message["Message-ID"]]
    return Sent(str(envelope.mail_from), str(message["Message-ID"]), entry.id)


def dsn(name: str, sent: Sent, *, to: str | None = None) -> bytes:
    """The report `tests/corpus/<name>` about `sent`, addressed to its bounce address (or `to`)."""
    raw = (CORPUS / name).read_bytes()
    return raw.replace(
        b"support+VERP@deskbell.test", (to or sent.envelope_sender).encode()
    ).replace(b"<ORIGINAL-MESSAGE-ID>", sent.message_id.encode())
