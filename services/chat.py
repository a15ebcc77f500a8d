"""The customer chat's own records (C1, C2): chat links used once, the codes a customer
confirms their address with from the widget, and who is in the chat now.

The pages themselves are the server's (services/server/chat/); what they need to remember,
so that every `serve` process agrees, is here: a link's nonce once it was exchanged for a
session, and one presence row per open page, alive while its heartbeat keeps it ahead.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Final

from sqlalchemy import delete, insert, select, update

from services.accounts import LOCAL_OPERATOR, NewSession, SignedIn
from services.conversations import MAX_NAME_CHARS, clean_line
from services.domain.chat_links import make_chat_link, read_chat_link
from services.domain.headers import normalize_address
from services.domain.model import ConversationKind, PersonKind
from services.errors import (
    AuthenticationError,
    InputError,
    NotFoundError,
    PermissionDeniedError,
    TooManyAttemptsError,
)
from services.store.changes import record_change
from services.store.database import Tx
from services.store.models import (
    ChatCode,
    ChatLinkUse,
    ChatPresence,
    Conversation,
    Follower,
    Person,
)
from services.views import ChangeKind

if TYPE_CHECKING:
    from services.api import Service

__all__ = [
    "CODES_PER_WINDOW",
    "CODE_ATTEMPTS",
    "CODE_LIFETIME",
    "PRESENCE_BEAT",
    "PRESENCE_TTL",
    "REFUSED_LINK",
    "Chat",
    "Entered",
]

PRESENCE_BEAT: Final = timedelta(seconds=20)  # an open page's row is refreshed this often
PRESENCE_TTL: Final = timedelta(seconds=60)  # and counts this long after its last beat
REFUSED_LINK: Final = (
    "this chat link has expired or was used already; the next email you get has a fresh one"
)

CODE_LIFETIME: Final = timedelta(minutes=15)
CODE_ATTEMPTS: Final = 5  # wrong tries before a code is spent: 5 in 10^6 to guess it
CODES_PER_WINDOW: Final = 3  # codes one address is sent per CODE_WINDOW (C3)
CODE_WINDOW: Final = timedelta(hours=1)
_WRONG_CODE: Final = "the code is wrong or has expired; ask for a new one"
_CODE_CONTEXT: Final = b"deskbell/chat-code/v1:"


@dataclass(frozen=True, slots=True)
class Entered:
    session: NewSession
    conversation_id: int


def _use_link(
    tx: Tx, *, conversation_id: int, person_id: int, nonce: str, expires_at: datetime, now: datetime
) -> str | None:
    """The customer's address if the link may be used now (and it is now used), else None."""
    person = tx.conn.execute(
        select(Person.email, Person.kind).where(Person.id == person_id)
    ).first()
    if person is None or person.kind != PersonKind.CUSTOMER.value:
        return None
    follows = tx.conn.execute(
        select(Conversation.id)
        .join(Follower, Follower.item_id == Conversation.item_id)
        .where(
            Conversation.id == conversation_id,
            Conversation.kind == ConversationKind.EXTERNAL.value,
            Follower.person_id == person_id,
        )
    ).first()
    if follows is None:
        return None
    tx.conn.execute(delete(ChatLinkUse).where(ChatLinkUse.expires_at <= now))
    if tx.conn.execute(select(ChatLinkUse.nonce).where(ChatLinkUse.nonce == nonce)).first():
        return None
    tx.conn.execute(insert(ChatLinkUse).values(nonce=nonce, used_at=now, expires_at=expires_at))
    return str(person.email)


def _live_pages(tx: Tx, person_id: int, now: datetime) -> int:
    return len(
        tx.conn.execute(
            select(ChatPresence.id).where(
                ChatPresence.person_id == person_id, ChatPresence.expires_at > now
            )
        ).all()
    )


def _sweep(tx: Tx, *, now: datetime) -> frozenset[int]:
    """Presence rows past their expiry (pages of a process that died: no beat, no leave) go in
    one statement, so of processes sweeping at once each row is one's; a customer left with
    no live page gets the person event a page closing gives (C2). Those customers."""
    gone = tx.conn.execute(
        delete(ChatPresence).where(ChatPresence.expires_at <= now).returning(ChatPresence.person_id)
    )
    left = frozenset(int(p) for p in {r[0] for r in gone} if _live_pages(tx, p, now) == 0)
    for person_id in sorted(left):
        record_change(tx, kind=ChangeKind.PERSON, at=now, person_id=person_id)
    return left


def _join(tx: Tx, *, person_id: int, session_id: int, now: datetime) -> int:
    _sweep(tx, now=now)
    if _live_pages(tx, person_id, now) == 0:  # agents hear the customer came in (C2)
        record_change(tx, kind=ChangeKind.PERSON, at=now, person_id=person_id)
    ((row_id,),) = tx.conn.execute(
        insert(ChatPresence)
        .values(person_id=person_id, session_id=session_id, expires_at=now + PRESENCE_TTL)
        .returning(ChatPresence.id)
    )
    return int(row_id)


def _beat(tx: Tx, *, presence_id: int, now: datetime) -> None:
    tx.conn.execute(
        update(ChatPresence)
        .where(ChatPresence.id == presence_id)
        .values(expires_at=now + PRESENCE_TTL)
    )


def _leave(tx: Tx, *, presence_id: int, now: datetime) -> None:
    person_id = tx.conn.execute(
        delete(ChatPresence).where(ChatPresence.id == presence_id).returning(ChatPresence.person_id)
    ).scalar()
    if person_id is not None and _live_pages(tx, person_id, now) == 0:  # and that they left
        record_change(tx, kind=ChangeKind.PERSON, at=now, person_id=person_id)


def _in_chat(tx: Tx, *, person_ids: list[int], now: datetime) -> frozenset[int]:
    rows = tx.conn.execute(
        select(ChatPresence.person_id)
        .where(ChatPresence.person_id.in_(person_ids), ChatPresence.expires_at > now)
        .distinct()
    )
    return frozenset(int(r[0]) for r in rows)


def _code_hash(key: bytes, email: str, code: str) -> str:
    mac = hmac.new(key, _CODE_CONTEXT + f"{email}:{code}".encode(), hashlib.sha256)
    return mac.hexdigest()


def _store_code(tx: Tx, *, email: str, name: str, code_hash: str, now: datetime) -> datetime | None:
    """Keep the new code of `email` (the old one stops working); when the address was sent
    too many codes lately, nothing changes and the answer is when it may ask again."""
    row = tx.session.get(ChatCode, email)
    if row is None:
        row = ChatCode(email=email, window_start=now, sent=0, attempts=0)
        tx.session.add(row)
    elif now - row.window_start >= CODE_WINDOW:
        row.window_start, row.sent = now, 0
    if row.sent >= CODES_PER_WINDOW:
        return row.window_start + CODE_WINDOW
    row.sent += 1
    row.name, row.code_hash, row.attempts = name, code_hash, 0
    row.expires_at = now + CODE_LIFETIME
    tx.conn.execute(delete(ChatCode).where(ChatCode.window_start <= now - CODE_WINDOW))
    return None


def _queue_code(tx: Tx, *, email: str, name: str, code: str, service: Service) -> None:
    from services.mail.compose import queue_rendered_email
    from services.template_catalog import RenderedEmail

    identity = service.mail_identity()
    minutes = int(CODE_LIFETIME.total_seconds() // 60)
    text = (
        f"Hello {name},\n\nyour code for the chat is {code}\n\n"
        f"It works for {minutes} minutes. If you did not ask for it, ignore this email.\n"
    )
    queue_rendered_email(
        tx,
        rendered=RenderedEmail(subject=f"Your chat code: {code}", text=text, html=""),
        template_name=None,
        to_addr=email,
        to_name=name,
        identity=identity,
        now=service.clock.now(),
        kind="system",
    )


def _send_code(
    tx: Tx, *, email: str, name: str, code: str, code_hash: str, service: Service
) -> datetime | None:
    person = tx.conn.execute(select(Person.kind).where(Person.email == email)).first()
    if person is not None and person.kind != PersonKind.CUSTOMER.value:
        raise PermissionDeniedError(
            f"{email} belongs to the team: sign in to Deskbell instead of the chat"
        )
    retry_at = _store_code(tx, email=email, name=name, code_hash=code_hash, now=service.clock.now())
    if retry_at is None:
        _queue_code(tx, email=email, name=name, code=code, service=service)
    return retry_at


def _use_code(tx: Tx, *, email: str, code_hash: str, now: datetime) -> str | None:
    """The name given with the code when `code_hash` is right and in time (then the code is
    spent); None otherwise (a wrong try counts; the last one spends it)."""
    row = tx.session.get(ChatCode, email)
    if row is None or row.attempts >= CODE_ATTEMPTS or now >= row.expires_at:
        return None
    if not hmac.compare_digest(row.code_hash, code_hash):
        row.attempts += 1
        return None
    row.attempts = CODE_ATTEMPTS  # spent; the row stays to count the codes sent (C3)
    return row.name


class Chat:
    """`service.chat`: what the chat pages remember, for every process."""

    def __init__(self, service: Service) -> None:
        self._service = service

    def link(self, *, conversation_id: int, person_id: int) -> str:
        """A fresh single-use link token for a customer's conversation."""
        return make_chat_link(
            key=self._service.token_key,
            conversation_id=conversation_id,
            person_id=person_id,
            now=self._service.clock.now(),
        )

    async def enter(self, token: str, *, address: str) -> Entered:
        """Exchange a link from an email for a customer session (once); AuthenticationError
        when it is altered, expired, used already, or its customer no longer follows."""
        now = self._service.clock.now()
        link = read_chat_link(token, key=self._service.token_key, now=now)
        if link is None:
            raise AuthenticationError(REFUSED_LINK)
        email = await self._service.db.write(
            _use_link,
            conversation_id=link.conversation_id,
            person_id=link.person_id,
            nonce=link.nonce,
            expires_at=link.expires_at,
            now=now,
        )
        if email is None:
            raise AuthenticationError(REFUSED_LINK)
        session = await self._service.open_customer_session(
            acting=LOCAL_OPERATOR, email=email, device="customer chat", address=address
        )
        return Entered(session=session, conversation_id=link.conversation_id)

    async def send_code(self, *, name: str, email: str) -> None:
        """Email a code that confirms `email` is the customer's (C1); TooManyAttemptsError
        when the address was sent CODES_PER_WINDOW codes lately."""
        address = normalize_address(email)
        clean_name = clean_line(name, field="name", limit=MAX_NAME_CHARS)
        code = f"{secrets.randbelow(10**6):06d}"
        retry_at = await self._service.db.write(
            _send_code,
            email=address,
            name=clean_name,
            code=code,
            code_hash=_code_hash(self._service.token_key, address, code),
            service=self._service,
        )
        if retry_at is not None:
            raise TooManyAttemptsError(
                "a code was sent to this address several times lately; use the last one or "
                "ask again later",
                retry_at=retry_at,
            )

    async def confirm_code(self, *, email: str, code: str, address: str) -> NewSession:
        """The right code, in time, once: the customer's session (a new customer is added
        with the name they gave); AuthenticationError otherwise."""
        email = normalize_address(email)
        code = code.strip()
        if not (len(code) == 6 and code.isascii() and code.isdigit()):
            raise AuthenticationError(_WRONG_CODE)
        name = await self._service.db.write(
            _use_code,
            email=email,
            code_hash=_code_hash(self._service.token_key, email, code),
            now=self._service.clock.now(),
        )
        if name is None:
            raise AuthenticationError(_WRONG_CODE)
        try:
            await self._service.person(email)
        except NotFoundError:
            await self._service.add_person(email=email, name=name, kind=PersonKind.CUSTOMER)
        return await self._service.open_customer_session(
            acting=LOCAL_OPERATOR, email=email, device="customer chat", address=address
        )

    async def start_conversation(self, who: SignedIn, text: str) -> int:
        """A new item for a customer who wrote from the chat: its external conversation."""
        if not who.customer:
            raise PermissionDeniedError("only a customer starts a conversation from the chat")
        if not text.strip():
            raise InputError("write a message first")
        first_line = text.strip().splitlines()[0]
        title = first_line[:80] if len(first_line) <= 80 else first_line[:79] + "…"
        item = await self._service.create_item(
            title=title, followers=[who.email], requester=who.email
        )
        await self._service.post(
            author=who.email, text=text, conversation_id=item.external_conversation_id
        )
        return item.external_conversation_id

    async def join(self, who: SignedIn) -> int:
        """A page of `who` is open now: its presence row's id (beat it, then leave)."""
        return await self._service.db.write(
            _join,
            person_id=who.person_id,
            session_id=who.session_id,
            now=self._service.clock.now(),
        )

    async def beat(self, presence_id: int) -> None:
        await self._service.db.write(_beat, presence_id=presence_id, now=self._service.clock.now())

    async def leave(self, presence_id: int) -> None:
        await self._service.db.write(_leave, presence_id=presence_id, now=self._service.clock.now())

    async def sweep(self) -> frozenset[int]:
        """Expired presence goes, and agents hear who left by it (the customers); each
        `serve` runs it every `PRESENCE_BEAT` (services/server/chat/presence.py)."""
        return await self._service.db.write(_sweep, now=self._service.clock.now())

    async def in_chat(self, person_ids: Iterable[int]) -> frozenset[int]:
        """Which of these customers have a chat page open now (any process)."""
        ids = sorted(set(person_ids))
        if not ids:
            return frozenset()
        return await self._service.db.read(_in_chat, person_ids=ids, now=self._service.clock.now())
