"""The reads behind the window: unseen counts, the Open Conversations list, a conversation's
messages with their status icons (N2, N3, E10, D5). A part of `Service` (services/api.py)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from services.domain.model import (
    MAX_SEARCH_CHARS,
    ConversationKind,
    DeliveryState,
    EmailStatus,
    PersonKind,
)
from services.domain.recipients import may_see
from services.errors import NotFoundError, PermissionDeniedError
from services.store import queries
from services.store.db import StoreSessions
from services.store.models import (
    Conversation,
    ConversationMember,
    Delivery,
    Email,
    Item,
    Message,
    Person,
)
from services.views import (
    ConversationRow,
    EmailedEntry,
    Inbox,
    MessageRow,
    MessageStatus,
    PersonInfo,
    SeenEntry,
    UnseenCounts,
)

__all__ = ["InboxReads"]


class InboxReads:
    """Read-only queries of the desktop window; `Service` provides the sessions."""

    _sessions: StoreSessions
    # Service's: a person as the UI sees them, with the workspace's default delay.
    _info: Callable[[Person], PersonInfo]

    async def unseen_counts(self, *, person_id: int) -> UnseenCounts:
        """N3: one query; the bubble, the tabs and the rows all read from it."""
        async with self._sessions() as session:
            rows = await session.execute(
                select(Delivery.conversation_id, Conversation.kind, func.count())
                .join(Conversation, Conversation.id == Delivery.conversation_id)
                .where(Delivery.recipient_id == person_id, Delivery.seen_at.is_(None))
                .group_by(Delivery.conversation_id, Conversation.kind)
            )
            by_conv: dict[int, int] = {}
            internal = external = 0
            for conv_id, kind, n in rows:
                by_conv[conv_id] = n
                if kind == ConversationKind.EXTERNAL:
                    external += n
                else:
                    internal += n
        return UnseenCounts(
            total=internal + external, internal=internal, external=external, by_conversation=by_conv
        )

    async def open_conversations(
        self,
        *,
        person_id: int,
        inbox: Sequence[ConversationKind] = Inbox.INTERNAL,
        limit: int = 200,
        offset: int = 0,
        conversation_ids: Sequence[int] | None = None,
    ) -> list[ConversationRow]:
        """N2: the person's conversations with activity (a message, or a new item's internal
        conversation, which shows from its creation on), most recent activity first."""
        unseen = (
            select(Delivery.conversation_id, func.count().label("n"))
            .where(Delivery.recipient_id == person_id, Delivery.seen_at.is_(None))
            .group_by(Delivery.conversation_id)
            .subquery()
        )
        last = aliased(Message)
        author = aliased(Person)
        stmt = (
            select(
                Conversation.id,
                Conversation.kind,
                Item.number,
                Item.title,
                Conversation.last_message_at,
                last.text,
                author.name,
                func.coalesce(unseen.c.n, 0),
            )
            .outerjoin(Item, Item.id == Conversation.item_id)
            .outerjoin(last, last.id == Conversation.last_message_id)
            .outerjoin(author, author.id == last.author_id)
            .outerjoin(unseen, unseen.c.conversation_id == Conversation.id)
            .where(
                Conversation.kind.in_([k.value for k in inbox]),
                Conversation.last_message_at.is_not(None),
                queries.visible_conversations_clause(person_id),  # type: ignore[arg-type]
            )
            .order_by(Conversation.last_message_at.desc(), Conversation.id.desc())
        )
        if conversation_ids is not None:
            stmt = stmt.where(Conversation.id.in_(conversation_ids))
        else:
            stmt = stmt.limit(limit).offset(offset)
        async with self._sessions() as session:
            rows = (await session.execute(stmt)).all()
            direct_titles = await self._direct_titles(
                session, [r[0] for r in rows if r[1] == ConversationKind.DIRECT], person_id
            )
        return [
            ConversationRow(
                id=cid,
                kind=ConversationKind(kind),
                item_number=number,
                title=title if title is not None else direct_titles.get(cid, "Direct"),
                last_text=(text or "")[:300],
                # A message without an author is an automation's; no message, no author.
                last_author=author_name or ("Deskbell" if text is not None else ""),
                last_at=last_at,
                unseen=n,
            )
            for cid, kind, number, title, last_at, text, author_name, n in rows
        ]

    async def find_conversations(
        self, *, person_id: int, text: str, limit: int = 20
    ) -> list[ConversationRow]:
        """D5 (Ctrl+K): the person's conversations in both inboxes whose item number is `text`
        ('12' or '#12'), or whose title (a direct one's: the other person's name) holds every
        word of it, case-blind; the exact number first, then the most recent."""
        query = text.strip().lstrip("#").strip()
        words = query.lower().split()
        if not words or len(query) > MAX_SEARCH_CHARS:  # longer than anything it could match
            return []
        async with self._sessions() as session:
            person = await session.get(Person, person_id)
            if person is None:
                raise NotFoundError(f"no person {person_id}")
            # R2: a customer never learns that an internal conversation exists.
            kinds = (
                list(ConversationKind)
                if person.kind == PersonKind.USER
                else [ConversationKind.EXTERNAL]
            )
            other = aliased(Person)
            direct_names = (
                select(ConversationMember.conversation_id)
                .join(other, other.id == ConversationMember.person_id)
                .where(
                    ConversationMember.person_id != person_id,
                    *(func.lower(other.name).contains(w, autoescape=True) for w in words),
                )
            )
            found = or_(
                and_(*(func.lower(Item.title).contains(w, autoescape=True) for w in words)),
                and_(
                    Conversation.kind == ConversationKind.DIRECT.value,
                    Conversation.id.in_(direct_names),
                ),
            )
            number = int(query) if query.isdigit() and len(query) < 10 else None
            if number is not None:
                found = or_(Item.number == number, found)
            stmt = (
                select(Conversation.id)
                .outerjoin(Item, Item.id == Conversation.item_id)
                .where(
                    Conversation.kind.in_([k.value for k in kinds]),
                    Conversation.last_message_at.is_not(None),
                    queries.visible_conversations_clause(person_id),  # type: ignore[arg-type]
                    found,
                )
                .order_by(Conversation.last_message_at.desc(), Conversation.id.desc())
                .limit(limit)
            )
            if number is not None:
                stmt = stmt.order_by(None).order_by(
                    func.coalesce(Item.number == number, False).desc(),
                    Conversation.last_message_at.desc(),
                    Conversation.id.desc(),
                )
            ids = list((await session.execute(stmt)).scalars())
        rows = await self.open_conversations(person_id=person_id, inbox=kinds, conversation_ids=ids)
        order = {cid: i for i, cid in enumerate(ids)}
        return sorted(rows, key=lambda r: order[r.id])

    async def _direct_titles(
        self, session: AsyncSession, conv_ids: Sequence[int], person_id: int
    ) -> dict[int, str]:
        if not conv_ids:
            return {}
        rows = await session.execute(
            select(ConversationMember.conversation_id, Person.name)
            .join(Person, Person.id == ConversationMember.person_id)
            .where(
                ConversationMember.conversation_id.in_(conv_ids),
                ConversationMember.person_id != person_id,
            )
        )
        return dict(rows.all())  # a TupleResult has .keys(): dict() took it for a mapping

    async def messages(
        self,
        *,
        conversation_id: int,
        viewer_id: int,
        before_id: int | None = None,
        limit: int = 200,
        message_ids: Sequence[int] | None = None,
    ) -> list[MessageRow]:
        """A page of a conversation, oldest first, with each message's status (E10)."""
        async with self._sessions() as session:
            conv = await session.get(Conversation, conversation_id)
            viewer = await session.get(Person, viewer_id)
            if conv is None or viewer is None:
                raise NotFoundError("no such conversation or person")
            if not may_see(queries.domain_person(viewer), ConversationKind(conv.kind)):
                raise PermissionDeniedError("customers cannot read internal conversations")
            stmt = select(Message).where(
                Message.conversation_id == conversation_id, Message.deleted_at.is_(None)
            )
            if message_ids is not None:
                stmt = stmt.where(Message.id.in_(message_ids))
            else:
                if before_id is not None:
                    stmt = stmt.where(Message.id < before_id)
                stmt = stmt.order_by(Message.id.desc()).limit(limit)
            msgs = sorted((await session.execute(stmt)).scalars().all(), key=lambda m: m.id)
            return await self._message_rows(session, msgs, viewer_id)

    async def _message_rows(
        self, session: AsyncSession, msgs: Sequence[Message], viewer_id: int
    ) -> list[MessageRow]:
        ids = [m.id for m in msgs]
        author_ids = {m.author_id for m in msgs if m.author_id}
        authors = {
            p.id: self._info(p)
            for p in (
                await session.execute(select(Person).where(Person.id.in_(author_ids)))
            ).scalars()
        }
        seen: dict[int, list[SeenEntry]] = {}
        emailed: dict[int, list[EmailedEntry]] = {}
        waiting: dict[int, list[str]] = {}
        unseen_by_viewer: set[int] = set()
        for start in range(0, len(ids), 500):
            rows = await session.execute(
                select(
                    Delivery.message_id,
                    Delivery.recipient_id,
                    Delivery.seen_at,
                    Delivery.state,
                    Delivery.reason,
                    Person.name,
                    Person.email,
                    Email.status,
                    Email.sent_at,
                    Email.reply,
                    Email.next_attempt_at,
                    Email.reason,
                )
                .join(Person, Person.id == Delivery.recipient_id)
                .outerjoin(Email, Email.id == Delivery.email_id)
                .where(Delivery.message_id.in_(ids[start : start + 500]))
                .order_by(Delivery.id)
            )
            for (
                mid,
                rid,
                seen_at,
                state,
                reason,
                name,
                email,
                e_status,
                e_sent,
                e_reply,
                e_next,
                e_reason,
            ) in rows:
                if rid == viewer_id and seen_at is None:
                    unseen_by_viewer.add(mid)
                if seen_at is not None:
                    seen.setdefault(mid, []).append(SeenEntry(name=name, email=email, at=seen_at))
                if e_status is not None:
                    detail = e_reason or e_reply
                    if e_status == EmailStatus.RETRYING and e_next is not None:
                        detail = f"{e_reply or 'not reached'}; next try {e_next:%H:%M:%S} UTC"
                    emailed.setdefault(mid, []).append(
                        EmailedEntry(
                            name=name, email=email, status=e_status, at=e_sent, detail=detail
                        )
                    )
                elif state == DeliveryState.SUPPRESSED and seen_at is None:
                    emailed.setdefault(mid, []).append(
                        EmailedEntry(
                            name=name, email=email, status="suppressed", at=None, detail=reason
                        )
                    )
                elif seen_at is None:
                    waiting.setdefault(mid, []).append(name)
        return [
            MessageRow(
                id=m.id,
                conversation_id=m.conversation_id,
                author=authors.get(m.author_id) if m.author_id else None,
                text=m.text,
                created_at=m.created_at,
                source=m.source,
                status=MessageStatus(
                    sent_at=m.created_at,
                    seen=tuple(seen.get(m.id, ())),
                    emailed=tuple(emailed.get(m.id, ())),
                    waiting=tuple(waiting.get(m.id, ())),
                ),
                unseen_by_viewer=m.id in unseen_by_viewer,
            )
            for m in msgs
        ]

    async def item_messages(self, number: int) -> list[tuple[ConversationKind, MessageRow]]:
        """Every message of item N, both conversations, oldest first (`deskbell item show`)."""
        async with self._sessions() as session:
            item = await queries.item_by_number(session, number)
            rows = (
                await session.execute(
                    select(Message, Conversation.kind)
                    .join(Conversation, Conversation.id == Message.conversation_id)
                    .where(Conversation.item_id == item.id, Message.deleted_at.is_(None))
                    .order_by(Message.id)
                )
            ).all()
            kinds = {m.id: ConversationKind(k) for m, k in rows}
            views = await self._message_rows(session, [m for m, _ in rows], viewer_id=0)
        return [(kinds[v.id], v) for v in views]
