"""The email fallback's scheduler: unseen deliveries that fall due become outbox emails (E1-E3, E8).

Due work is rows: a pending delivery with a due time. One loop sleeps until the earliest due
row (services/due_loop.py), waking at once on a wall-clock jump, so after a restart, a suspended
laptop or a clock change whatever fell due meanwhile goes out at once, after the check of E3. The
decision and the outbox row are written in one transaction (E6).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.clock import Clock
from services.domain.email_plan import MessageView, build_mime, plan_notification_email
from services.domain.model import ConversationKind, DeliveryState, EmailStatus
from services.domain.schedule import DeliveryFacts, dnd_ends_at, recheck
from services.domain.tokens import make_token
from services.due_loop import DueLoop
from services.mail.caps import RecentSends, cap_reason, recent_sends
from services.store import queries
from services.store.models import Conversation, Delivery, Email, EmailThread, Item, Message, Person
from services.templates import TemplateRenderer

__all__ = [
    "FallbackScheduler",
    "MailIdentity",
    "message_id_domain",
]

log = logging.getLogger(__name__)

# Write transactions stay short: the outbox records its outcomes between them.
GROUPS_PER_TRANSACTION = 50


@dataclass(frozen=True, slots=True)
class MailIdentity:
    """Who our emails are from, and the key that signs their reply tokens (I2)."""

    from_addr: str
    from_name: str
    token_key: bytes
    default_delay_s: int

    @property
    def message_id_domain(self) -> str:
        """The right-hand side of our Message-IDs: a subdomain of the From address's own, so
        mail an agent writes from that domain is never mistaken for ours (I6)."""
        return message_id_domain(self.from_addr)


def message_id_domain(from_addr: str) -> str:
    return f"deskbell.{from_addr.rpartition('@')[2] or 'localhost'}"


@dataclass(frozen=True, slots=True)
class _Group:
    recipient_id: int
    conversation_id: int


@dataclass(slots=True)
class _Facts:
    """What the decisions of one chunk of groups read, in a handful of queries."""

    persons: dict[int, Person]
    conversations: dict[int, Conversation]
    items: dict[int, Item]
    pending: dict[_Group, list[tuple[Delivery, Message]]]
    threads: dict[_Group, EmailThread]
    sends: RecentSends  # I6: what the caps count, kept current as the chunk queues emails


@dataclass(frozen=True, slots=True)
class _Queued:
    """One decision to email: the group, its messages, and the email's row."""

    group: _Group
    delivery_ids: tuple[int, ...]
    email: Email


class FallbackScheduler:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        clock: Clock,
        identity: Callable[[], MailIdentity],
        renderer: Callable[[], TemplateRenderer],
        on_queued: Callable[[], None],
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._identity = identity
        self._renderer = renderer
        self._on_queued = on_queued
        self._loop = DueLoop(name="email fallback", clock=clock, step=self.run_once)

    def wake(self) -> None:
        """Look again now: new deliveries, something seen, a resume from sleep."""
        self._loop.wake()

    def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()

    async def run_once(self) -> datetime | None:
        """Queue every email that is due now; return when to look again."""
        now = self._clock.now()
        async with self._sessions() as session:
            groups = [
                _Group(r, c)
                for r, c in (
                    await session.execute(
                        select(Delivery.recipient_id, Delivery.conversation_id)
                        .where(Delivery.state == DeliveryState.PENDING, Delivery.due_at <= now)
                        .group_by(Delivery.recipient_id, Delivery.conversation_id)
                    )
                )
            ]
            later = await session.scalar(
                select(func.min(Delivery.due_at)).where(
                    Delivery.state == DeliveryState.PENDING, Delivery.due_at > now
                )
            )
        held: list[datetime] = [later] if later is not None else []
        identity = self._identity()
        renderer = self._renderer()
        for start in range(0, len(groups), GROUPS_PER_TRANSACTION):
            chunk = groups[start : start + GROUPS_PER_TRANSACTION]
            async with self._sessions.begin() as session:
                queued, chunk_held = await self._decide_chunk(
                    session, chunk, now, identity, renderer
                )
            held.extend(chunk_held)
            if queued:
                self._on_queued()
        return min(held) if held else None

    async def _decide_chunk(
        self,
        session: AsyncSession,
        groups: Sequence[_Group],
        now: datetime,
        identity: MailIdentity,
        renderer: TemplateRenderer,
    ) -> tuple[int, list[datetime]]:
        """Decide a chunk of groups in one transaction; (emails queued, times to look again)."""
        facts = await _load_facts(session, groups, now)
        held: list[datetime] = []
        to_queue: list[tuple[_Group, list[tuple[Delivery, Message]]]] = []
        touched: set[int] = set()
        for group in groups:
            rows = facts.pending.get(group)
            if not rows:
                continue
            settings = queries.settings_of(
                facts.persons[group.recipient_id], default_delay_s=identity.default_delay_s
            )
            thread = facts.threads.get(group)
            not_before: datetime | None = None
            if thread is not None and thread.last_emailed_at is not None and settings.delay_s:
                # E2: after an email, the next for this conversation waits at least one delay.
                not_before = thread.last_emailed_at + timedelta(seconds=settings.delay_s)
            dnd_end = dnd_ends_at(settings, now_local=now.astimezone())
            if dnd_end is not None:
                # N6: held while do-not-disturb lasts, then sent as one email.
                not_before = max(not_before, dnd_end) if not_before else dnd_end
            verdict = recheck(
                [
                    DeliveryFacts(
                        delivery_id=d.id,
                        message_id=m.id,
                        due_at=d.due_at,
                        seen_at=d.seen_at,
                        message_deleted=m.deleted_at is not None,
                        created_at=m.created_at,
                    )
                    for d, m in rows
                ],
                settings=settings,
                now=now,
                not_before=not_before,
            )
            by_id = {d.id: (d, m) for d, m in rows}
            for delivery_id, reason in verdict.suppressed:
                delivery = by_id[delivery_id][0]
                delivery.state = DeliveryState.SUPPRESSED
                delivery.reason = reason
                touched.add(group.conversation_id)
            if verdict.send:
                to_queue.append((group, [by_id[i] for i in verdict.send]))
            elif verdict.waiting:
                held.append(
                    not_before if not_before and not_before > now else now + timedelta(seconds=1)
                )
        queued = await self._queue(session, to_queue, facts, now, identity, renderer)
        touched.update(q.group.conversation_id for q in queued)
        for conversation_id in sorted(touched):
            queries.add_change(session, kind="email", at=now, conversation_id=conversation_id)
        return sum(1 for q in queued if q.email.status == EmailStatus.QUEUED), held

    async def _queue(
        self,
        session: AsyncSession,
        to_queue: Sequence[tuple[_Group, list[tuple[Delivery, Message]]]],
        facts: _Facts,
        now: datetime,
        identity: MailIdentity,
        renderer: TemplateRenderer,
    ) -> list[_Queued]:
        """Write one outbox row per decision (or a suppressed log row past the caps of I6)."""
        if not to_queue:
            return []
        earlier = await _context_messages(session, to_queue)
        author_ids = {
            m.author_id for _, rows in to_queue for _, m in rows if m.author_id is not None
        } | {m.author_id for ms in earlier.values() for m in ms if m.author_id is not None}
        missing = author_ids - facts.persons.keys()
        if missing:
            for person in (
                await session.execute(select(Person).where(Person.id.in_(missing)))
            ).scalars():
                facts.persons[person.id] = person

        def view(m: Message) -> MessageView:
            author = facts.persons.get(m.author_id) if m.author_id is not None else None
            return MessageView(
                id=m.id,
                author_name=author.name if author else "Deskbell",
                author_email=author.email if author else identity.from_addr,
                created_at=m.created_at,
                text=m.text,
            )

        queued: list[_Queued] = []
        for group, rows in to_queue:
            recipient = facts.persons[group.recipient_id]
            conversation = facts.conversations[group.conversation_id]
            item = facts.items.get(conversation.item_id) if conversation.item_id else None
            messages = [m for _, m in rows]
            cap = cap_reason(
                facts.sends,
                conversation_id=group.conversation_id,
                recipient_id=group.recipient_id,
            )
            if cap is not None:
                email = _suppressed_row(recipient, conversation, item, now, identity, cap)
            else:
                email = self._email_row(
                    recipient=recipient,
                    conversation=conversation,
                    item=item,
                    new=[view(m) for m in messages],
                    earlier=[view(m) for m in earlier.get((group, messages[0].id), [])],
                    thread=facts.threads.get(group),
                    now=now,
                    identity=identity,
                    renderer=renderer,
                )
                facts.sends.add(
                    conversation_id=group.conversation_id, recipient_id=group.recipient_id
                )
                thread = facts.threads.get(group)
                if thread is None:
                    thread = EmailThread(
                        recipient_id=group.recipient_id,
                        conversation_id=group.conversation_id,
                        message_ids=[],
                    )
                    session.add(thread)
                    facts.threads[group] = thread
                thread.last_emailed_at = now
                assert email.message_id is not None
                thread.message_ids = [*(thread.message_ids or []), email.message_id][-20:]
            session.add(email)
            queued.append(_Queued(group, tuple(d.id for d, _ in rows), email))
        await session.flush()  # one multi-row INSERT for the chunk's emails
        for q in queued:
            suppressed = q.email.status == EmailStatus.SUPPRESSED
            for delivery, _ in facts.pending[q.group]:
                if delivery.id in q.delivery_ids:
                    delivery.email_id = q.email.id
                    delivery.state = (
                        DeliveryState.SUPPRESSED if suppressed else DeliveryState.EMAILED
                    )
                    delivery.reason = q.email.reason if suppressed else None
        return queued

    def _email_row(
        self,
        *,
        recipient: Person,
        conversation: Conversation,
        item: Item | None,
        new: Sequence[MessageView],
        earlier: Sequence[MessageView],
        thread: EmailThread | None,
        now: datetime,
        identity: MailIdentity,
        renderer: TemplateRenderer,
    ) -> Email:
        # 64 random bits are plenty beside the token, and keep the Message-ID on one line.
        uid = uuid.uuid4().hex[:16]
        token = make_token(
            key=identity.token_key, conversation_id=conversation.id, recipient_id=recipient.id
        )
        plan = plan_notification_email(
            recipient=queries.domain_person(recipient),
            conversation_kind=ConversationKind(conversation.kind),
            item_number=item.number if item else None,
            item_title=item.title if item else "",
            new_messages=new,
            earlier_messages=earlier,
            token=token,
            email_uid=uid,
            domain=identity.message_id_domain,
            from_name=identity.from_name,
            from_addr=identity.from_addr,
            previous_message_ids=list(thread.message_ids) if thread else [],
        )
        text_body, html_body = renderer.render_notification(plan)
        return Email(
            direction="out",
            kind="notification",
            status=EmailStatus.QUEUED,
            uid=uid,
            message_id=plan.message_id,
            from_addr=identity.from_addr,
            to_addrs=[recipient.email],
            subject=plan.subject,
            body_text=text_body,
            raw=build_mime(plan, text_body=text_body, html_body=html_body, date=now),
            conversation_id=conversation.id,
            recipient_id=recipient.id,
            item_number=item.number if item else None,
            created_at=now,
            next_attempt_at=now,
        )


async def _load_facts(session: AsyncSession, groups: Sequence[_Group], now: datetime) -> _Facts:
    wanted = set(groups)
    recipient_ids = {g.recipient_id for g in groups}
    conversation_ids = {g.conversation_id for g in groups}
    persons = {
        p.id: p
        for p in (
            await session.execute(select(Person).where(Person.id.in_(recipient_ids)))
        ).scalars()
    }
    conversations: dict[int, Conversation] = {}
    items: dict[int, Item] = {}
    for conversation, item in await session.execute(
        select(Conversation, Item)
        .outerjoin(Item, Item.id == Conversation.item_id)
        .where(Conversation.id.in_(conversation_ids))
    ):
        conversations[conversation.id] = conversation
        if item is not None:
            items[item.id] = item
    pending: dict[_Group, list[tuple[Delivery, Message]]] = {}
    for delivery, message in await session.execute(
        select(Delivery, Message)
        .join(Message, Message.id == Delivery.message_id)
        .where(
            Delivery.state == DeliveryState.PENDING,
            Delivery.recipient_id.in_(recipient_ids),
            Delivery.conversation_id.in_(conversation_ids),
        )
        .order_by(Delivery.message_id)
    ):
        group = _Group(delivery.recipient_id, delivery.conversation_id)
        if group in wanted:
            pending.setdefault(group, []).append((delivery, message))
    threads = {
        _Group(t.recipient_id, t.conversation_id): t
        for t in (
            await session.execute(
                select(EmailThread).where(
                    EmailThread.recipient_id.in_(recipient_ids),
                    EmailThread.conversation_id.in_(conversation_ids),
                )
            )
        ).scalars()
    }
    sends = await recent_sends(
        session, conversation_ids=conversation_ids, recipient_ids=recipient_ids, now=now
    )
    return _Facts(
        persons=persons,
        conversations=conversations,
        items=items,
        pending=pending,
        threads={g: t for g, t in threads.items() if g in wanted},
        sends=sends,
    )


async def _context_messages(
    session: AsyncSession, to_queue: Sequence[tuple[_Group, list[tuple[Delivery, Message]]]]
) -> dict[tuple[_Group, int], list[Message]]:
    """E4's context: up to 3 earlier messages before each email's first new one.

    Recipients of one conversation usually share their first new message, so this is one
    query per conversation and starting point, not one per email.
    """
    starts: dict[tuple[int, int], list[_Group]] = {}
    for group, rows in to_queue:
        starts.setdefault((group.conversation_id, rows[0][1].id), []).append(group)
    found: dict[tuple[_Group, int], list[Message]] = {}
    for (conversation_id, first_id), members in starts.items():
        earlier = list(
            (
                await session.execute(
                    select(Message)
                    .where(
                        Message.conversation_id == conversation_id,
                        Message.id < first_id,
                        Message.deleted_at.is_(None),
                    )
                    .order_by(Message.id.desc())
                    .limit(3)
                )
            ).scalars()
        )
        for group in members:
            found[(group, first_id)] = earlier
    return found


def _suppressed_row(
    recipient: Person,
    conversation: Conversation,
    item: Item | None,
    now: datetime,
    identity: MailIdentity,
    reason: str,
) -> Email:
    """A log line for an email the loop guard held back (I6: the rest is logged as suppressed)."""
    return Email(
        direction="out",
        kind="notification",
        status=EmailStatus.SUPPRESSED,
        uid=uuid.uuid4().hex,
        from_addr=identity.from_addr,
        to_addrs=[recipient.email],
        subject=f"[#{item.number}] {item.title}" if item else "",
        conversation_id=conversation.id,
        recipient_id=recipient.id,
        item_number=item.number if item else None,
        reason=reason,
        created_at=now,
    )
