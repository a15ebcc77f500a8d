"""The customer chat's own records (C1, C2): chat links used once, and who is in the chat now.

The pages themselves are the server's (services/server/chat/); what they need to remember,
so that every `serve` process agrees, is here: a link's nonce once it was exchanged for a
session, and one presence row per open page, alive while its heartbeat keeps it ahead.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Final

from sqlalchemy import delete, insert, select, update

from services.accounts import LOCAL_OPERATOR, NewSession, SignedIn
from services.domain.chat_links import make_chat_link, read_chat_link
from services.domain.model import ConversationKind, PersonKind
from services.errors import AuthenticationError
from services.store.database import Tx
from services.store.models import ChatLinkUse, ChatPresence, Conversation, Follower, Person

if TYPE_CHECKING:
    from services.api import Service

__all__ = ["PRESENCE_BEAT", "PRESENCE_TTL", "REFUSED_LINK", "Chat", "Entered"]

PRESENCE_BEAT: Final = timedelta(seconds=20)  # an open page's row is refreshed this often
PRESENCE_TTL: Final = timedelta(seconds=60)  # and counts this long after its last beat
REFUSED_LINK: Final = (
    "this chat link has expired or was used already; the next email you get has a fresh one"
)


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


def _join(tx: Tx, *, person_id: int, session_id: int, now: datetime) -> int:
    tx.conn.execute(delete(ChatPresence).where(ChatPresence.expires_at <= now))
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


def _leave(tx: Tx, *, presence_id: int) -> None:
    tx.conn.execute(delete(ChatPresence).where(ChatPresence.id == presence_id))


def _in_chat(tx: Tx, *, person_ids: list[int], now: datetime) -> frozenset[int]:
    rows = tx.conn.execute(
        select(ChatPresence.person_id)
        .where(ChatPresence.person_id.in_(person_ids), ChatPresence.expires_at > now)
        .distinct()
    )
    return frozenset(int(r[0]) for r in rows)


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
        await self._service.db.write(_leave, presence_id=presence_id)

    async def in_chat(self, person_ids: Iterable[int]) -> frozenset[int]:
        """Which of these customers have a chat page open now (any process)."""
        ids = sorted(set(person_ids))
        if not ids:
            return frozenset()
        return await self._service.db.read(_in_chat, person_ids=ids, now=self._service.clock.now())
