"""The email fallback's scheduler: unseen deliveries that fall due become outbox emails (E1-E3, E8).

Due work is rows: a pending delivery with a due time. One loop sleeps until the earliest due
row, or at most `max_sleep_s`, so a restart, a suspended laptop or a wall-clock jump is noticed
within seconds and whatever fell due meanwhile goes out at once, after the check of E3. The
decision and the outbox row are written in one transaction (E6).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.clock import Clock
from services.domain.email_plan import MessageView, build_mime, plan_notification_email
from services.domain.model import ConversationKind, DeliveryState, EmailStatus
from services.domain.schedule import DeliveryFacts, dnd_ends_at, recheck
from services.domain.tokens import make_token
from services.store import queries
from services.store.models import Conversation, Delivery, Email, EmailThread, Item, Message, Person
from services.templates import TemplateRenderer

__all__ = [
    "CAP_PER_CONVERSATION",
    "CAP_PER_RECIPIENT",
    "CAP_WINDOW",
    "FallbackScheduler",
    "MailIdentity",
    "message_id_domain",
]

log = logging.getLogger(__name__)

# I6: outgoing caps, per conversation and per recipient, in a sliding window.
CAP_WINDOW = timedelta(minutes=10)
CAP_PER_CONVERSATION = 10
CAP_PER_RECIPIENT = 30
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


class FallbackScheduler:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        clock: Clock,
        identity: Callable[[], MailIdentity],
        renderer: Callable[[], TemplateRenderer],
        on_queued: Callable[[], None],
        max_sleep_s: float = 5.0,
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._identity = identity
        self._renderer = renderer
        self._on_queued = on_queued
        self._max_sleep_s = max_sleep_s
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        """Look again now: new deliveries, something seen, a resume from sleep."""
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="deskbell-fallback")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                next_at = await self.run_once()
            except Exception:
                log.exception("the fallback scheduler failed; retrying shortly")
                next_at = None
            delay = self._max_sleep_s
            if next_at is not None:
                delay = min(delay, max(0.0, (next_at - self._clock.now()).total_seconds()))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._wake.wait()
            self._wake.clear()

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
        queued = 0
        identity = self._identity()
        renderer = self._renderer()
        for start in range(0, len(groups), GROUPS_PER_TRANSACTION):
            async with self._sessions.begin() as session:
                for group in groups[start : start + GROUPS_PER_TRANSACTION]:
                    outcome = await self._decide(session, group, now, identity, renderer)
                    if isinstance(outcome, datetime):
                        held.append(outcome)
                    else:
                        queued += outcome
            if queued:
                self._on_queued()
        return min(held) if held else None

    async def _decide(
        self,
        session: AsyncSession,
        group: _Group,
        now: datetime,
        identity: MailIdentity,
        renderer: TemplateRenderer,
    ) -> int | datetime:
        """One recipient and conversation: queue one email, or say until when it is held."""
        recipient = await session.get(Person, group.recipient_id)
        conversation = await session.get(Conversation, group.conversation_id)
        assert recipient is not None and conversation is not None
        settings = queries.settings_of(recipient, default_delay_s=identity.default_delay_s)
        rows = (
            await session.execute(
                select(Delivery, Message)
                .join(Message, Message.id == Delivery.message_id)
                .where(
                    Delivery.recipient_id == group.recipient_id,
                    Delivery.conversation_id == group.conversation_id,
                    Delivery.state == DeliveryState.PENDING,
                )
                .order_by(Delivery.message_id)
            )
        ).all()
        if not rows:
            return 0
        thread = await session.get(EmailThread, (group.recipient_id, group.conversation_id))
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
        if not verdict.send:
            if verdict.waiting:
                return not_before if not_before and not_before > now else now + timedelta(seconds=1)
            return 0
        sending = [by_id[i] for i in verdict.send]
        cap = await self._cap_reason(session, group, now)
        if cap is not None:
            email = await self._log_suppressed(session, recipient, conversation, now, cap)
            for delivery, _ in sending:
                delivery.state = DeliveryState.SUPPRESSED
                delivery.reason = cap
                delivery.email_id = email.id
            queries.add_change(session, kind="email", at=now, conversation_id=conversation.id)
            return 0
        email = await self._queue_email(
            session,
            recipient=recipient,
            conversation=conversation,
            messages=[m for _, m in sending],
            thread=thread,
            now=now,
            identity=identity,
            renderer=renderer,
        )
        await session.execute(
            update(Delivery)
            .where(Delivery.id.in_(verdict.send))
            .values(state=DeliveryState.EMAILED, email_id=email.id)
        )
        queries.add_change(session, kind="email", at=now, conversation_id=conversation.id)
        return 1

    async def _cap_reason(self, session: AsyncSession, group: _Group, now: datetime) -> str | None:
        since = now - CAP_WINDOW
        recent = and_(
            Email.direction == "out",
            Email.created_at > since,
            Email.status != EmailStatus.SUPPRESSED,
        )
        per_conv = await session.scalar(
            select(func.count()).where(recent, Email.conversation_id == group.conversation_id)
        )
        if (per_conv or 0) >= CAP_PER_CONVERSATION:
            return (
                f"loop guard: more than {CAP_PER_CONVERSATION} emails "
                "for this conversation in 10 minutes"
            )
        per_recipient = await session.scalar(
            select(func.count()).where(recent, Email.recipient_id == group.recipient_id)
        )
        if (per_recipient or 0) >= CAP_PER_RECIPIENT:
            return (
                f"loop guard: more than {CAP_PER_RECIPIENT} emails to this recipient in 10 minutes"
            )
        return None

    async def _log_suppressed(
        self,
        session: AsyncSession,
        recipient: Person,
        conversation: Conversation,
        now: datetime,
        reason: str,
    ) -> Email:
        item = await session.get(Item, conversation.item_id) if conversation.item_id else None
        email = Email(
            direction="out",
            kind="notification",
            status=EmailStatus.SUPPRESSED,
            uid=uuid.uuid4().hex,
            from_addr=self._identity().from_addr,
            to_addrs=[recipient.email],
            subject=f"[#{item.number}] {item.title}" if item else "",
            conversation_id=conversation.id,
            recipient_id=recipient.id,
            item_number=item.number if item else None,
            reason=reason,
            created_at=now,
        )
        session.add(email)
        await session.flush()
        return email

    async def _queue_email(
        self,
        session: AsyncSession,
        *,
        recipient: Person,
        conversation: Conversation,
        messages: Sequence[Message],
        thread: EmailThread | None,
        now: datetime,
        identity: MailIdentity,
        renderer: TemplateRenderer,
    ) -> Email:
        item = await session.get(Item, conversation.item_id) if conversation.item_id else None
        first_id = min(m.id for m in messages)
        earlier = (
            (
                await session.execute(
                    select(Message)
                    .where(
                        Message.conversation_id == conversation.id,
                        Message.id < first_id,
                        Message.deleted_at.is_(None),
                    )
                    .order_by(Message.id.desc())
                    .limit(3)
                )
            )
            .scalars()
            .all()
        )
        author_ids = {m.author_id for m in (*messages, *earlier) if m.author_id is not None}
        authors = {
            p.id: p
            for p in (await session.execute(select(Person).where(Person.id.in_(author_ids))))
            .scalars()
            .all()
        }

        def view(m: Message) -> MessageView:
            author = authors.get(m.author_id) if m.author_id is not None else None
            return MessageView(
                id=m.id,
                author_name=author.name if author else "Deskbell",
                author_email=author.email if author else identity.from_addr,
                created_at=m.created_at,
                text=m.text,
            )

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
            new_messages=[view(m) for m in messages],
            earlier_messages=[view(m) for m in earlier],
            token=token,
            email_uid=uid,
            domain=identity.message_id_domain,
            from_name=identity.from_name,
            from_addr=identity.from_addr,
            previous_message_ids=list(thread.message_ids) if thread else [],
        )
        text_body, html_body = renderer.render_notification(plan)
        mime = build_mime(plan, text_body=text_body, html_body=html_body, date=now)
        email = Email(
            direction="out",
            kind="notification",
            status=EmailStatus.QUEUED,
            uid=uid,
            message_id=plan.message_id,
            from_addr=identity.from_addr,
            to_addrs=[recipient.email],
            subject=plan.subject,
            body_text=text_body,
            raw=mime.as_bytes(),
            conversation_id=conversation.id,
            recipient_id=recipient.id,
            item_number=item.number if item else None,
            created_at=now,
            next_attempt_at=now,
        )
        session.add(email)
        await session.flush()
        if thread is None:
            thread = EmailThread(
                recipient_id=recipient.id, conversation_id=conversation.id, message_ids=[]
            )
            session.add(thread)
        thread.last_emailed_at = now
        thread.message_ids = [*(thread.message_ids or []), plan.message_id][-20:]
        return email
