"""The customer chat under a real browser: the team server's aiohttp application on a loopback
port over a real Service (SQLite file, hand clock), a real SMTP catcher for its emails, and Ann
(an administrator) with a password to post through the HTTP API.

Shared by the browser tests, the screenshots (tests/support/chat_screenshots.py) and the page
benchmarks, so each drives the chat the same way a customer meets it: through the link in a
real email.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from email.message import Message
from pathlib import Path

from aiohttp import ClientSession

from services.api import LOCAL_OPERATOR, ConversationKind, Service
from services.clock import ManualClock
from services.server.app import build_app
from tests.support.loopback import serve_on_loopback
from tests.support.smtpd import SmtpServer
from tests.support.world import World, open_service, seed

__all__ = ["ANN", "CARL", "DELAY_S", "PW", "ChatWorld", "chat_link", "chat_world", "text_of"]

ANN, CARL = "ann@example.com", "carl@customer.org"
PW = "correct horse battery"
DELAY_S = 60
_LINK = re.compile(r"https?://[^\s<>\"']+/chat/enter\?t=[A-Za-z0-9._~%=-]+")


def text_of(message: Message) -> str:
    """The plain text of an email (its text/plain part)."""
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            return payload.decode(part.get_content_charset() or "utf-8")
    raise AssertionError(f"no text/plain part in {message['Subject']!r}")


def chat_link(message: Message) -> str:
    """The chat link an email to a customer carries."""
    found = _LINK.search(text_of(message))
    assert found is not None, f"no chat link in: {text_of(message)!r}"
    return found.group(0)


@dataclass
class ChatWorld:
    service: Service
    clock: ManualClock
    base_url: str
    people: World
    smtp: SmtpServer
    http: ClientSession
    ann_token: str = ""

    def emails_to(self, address: str) -> list[Message]:
        return [m for m in self.smtp.handler.messages if address in str(m["To"])]

    async def send_due_emails(self, *, after_s: float) -> None:
        """Let `after_s` seconds pass on the server's clock, then queue and send what fell due."""
        self.clock.advance(after_s)
        await self.service.run_scheduler_once()
        await self.service.outbox.flush()

    async def agent_posts(self, conversation_id: int, text: str) -> int:
        """Ann posts through the HTTP API, as a desktop in a team does; the message's id."""
        async with self.http.post(
            f"{self.base_url}/api/v1/conversations/{conversation_id}/messages",
            headers={"Authorization": f"Bearer {self.ann_token}"},
            json={"text": text},
        ) as response:
            body = await response.json()
            assert response.status == 201, body
        message_id = body["message_id"]
        assert isinstance(message_id, int)
        return message_id

    async def seen_by(self, message_id: int, conversation_id: int) -> list[str]:
        """Who has seen a message, as Ann's desktop shows it ("Seen by ...")."""
        rows = await self.service.messages(
            conversation_id=conversation_id, viewer_id=self.people.ann, message_ids=[message_id]
        )
        return [entry.email for entry in rows[0].status.seen]

    async def wait_seen_by(self, message_id: int, conversation_id: int, email: str) -> None:
        """Until the server has recorded that `email` saw the message: re-read at each change
        the feed reports (generous deadline)."""
        changed = asyncio.Event()
        unsubscribe = self.service.subscribe(lambda _events: changed.set())
        try:
            async with asyncio.timeout(60):
                while email not in await self.seen_by(message_id, conversation_id):
                    await changed.wait()
                    changed.clear()
        finally:
            unsubscribe()

    async def first_link(self) -> tuple[str, int]:
        """Ann writes to Carl in the item's external conversation; a minute later Carl gets the
        email with the chat link. The link and the conversation's id."""
        posted = await self.service.post(
            author=ANN,
            text="Hello Carl, we are on it.",
            item_number=1,
            kind=ConversationKind.EXTERNAL,
        )
        await self.send_due_emails(after_s=DELAY_S + 1)
        [email] = self.emails_to(CARL)
        return chat_link(email), posted.conversation_id


@asynccontextmanager
async def chat_world(data_dir: Path, smtp: SmtpServer) -> AsyncIterator[ChatWorld]:
    """The server on a free loopback port, its public address set to it, emails to `smtp`."""
    clock = ManualClock()
    service = await open_service(data_dir, clock=clock)
    try:
        for key, value in {
            "smtp.host": "127.0.0.1",
            "smtp.port": str(smtp.port),
            "smtp.security": "none",
            "smtp.from": "support@deskbell.test",
        }.items():
            await service.set_config(key, value)
        people = await seed(service, delay_s=DELAY_S)
        await service.set_password(acting=LOCAL_OPERATOR, email=ANN, password=PW)
        await service.start(mail=False)  # the change feed behind the live stream
        async with serve_on_loopback(build_app(service)) as base_url, ClientSession() as http:
            await service.set_config("server.public_url", base_url)
            world = ChatWorld(service, clock, base_url, people, smtp, http)
            async with http.post(
                f"{base_url}/api/v1/sessions",
                json={"email": ANN, "password": PW, "device": "test"},
            ) as response:
                assert response.status == 201, await response.text()
                world.ann_token = (await response.json())["token"]
            yield world
    finally:
        await service.close()
