"""The email fallback's scheduler: unseen deliveries that fall due become outbox emails (E1-E3, E8).

Due work is rows: a pending delivery with a due time. One loop sleeps until the earliest due
row (services/due_loop.py), waking at once on a wall-clock jump, so after a restart, a suspended
laptop or a clock change whatever fell due meanwhile goes out at once, after the check of E3. The
decision is read, the email rendered with no transaction open, and the outbox row written in
one transaction that checks the decision still holds (E6).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import Table, bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.clock import Clock
from services.domain.email_plan import MessageView, build_mime, plan_notification_email
from services.domain.model import ConversationKind, DeliveryState, EmailStatus
from services.domain.schedule import DeliveryFacts, dnd_ends_at, recheck
from services.domain.tokens import make_token
from services.due_loop import DueLoop
from services.mail.caps import cap_reason, recent_sends
from services.store import queries
from services.store.models import Conversation, Delivery, Email, EmailThread, Item, Message, Person
from services.templates import TemplateRenderer
from services.views import ChangeKind

__all__ = [
    "FallbackScheduler",
    "MailIdentity",
    "message_id_domain",
]

log = logging.getLogger(__name__)

# Write transactions stay short: the outbox records its outcomes between them.
GROUPS_PER_TRANSACTION = 50
# Due times a few ms apart (a burst of posts) are decided together, not one run each: a run
# costs about twenty statements however few groups it decides (E1: never earlier, this late).
RUN_GAP = timedelta(seconds=0.2)


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


@dataclass(frozen=True, slots=True)
class _Draft:
    """One decision to email, with everything its rendering needs, as read (no lock held)."""

    group: _Group
    delivery_ids: tuple[int, ...]
    recipient: Person
    conversation: Conversation
    item: Item | None
    new: tuple[MessageView, ...]
    earlier: tuple[MessageView, ...]
    thread_ids: tuple[str, ...]
    last_emailed_at: datetime | None  # the thread's, as read: if it moved, decide again


@dataclass(slots=True)
class _Decisions:
    """A chunk decided from one read: deliveries to suppress, emails to render, wake times."""

    suppress: list[tuple[int, str, int]]  # (delivery id, reason, conversation id)
    drafts: list[_Draft]
    held: list[datetime]


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
        """Queue every email that is due now; return when to look again.

        Per chunk of groups: decide from one read, render with no transaction open (a slow
        or broken template holds no lock and blocks no other writer), then write in one short
        transaction that first checks nothing it decided on changed meanwhile (E3, E6).
        """
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
            async with self._sessions() as session:
                decided = await _decide_chunk(session, chunk, now, identity)
            rows = [
                self._email_row(d, now=now, identity=identity, renderer=renderer)
                for d in decided.drafts
            ]
            async with self._sessions.begin() as session:
                queued, changed = await _write_chunk(session, decided, rows, now)
            held.extend(decided.held)
            if changed:
                held.append(now)  # something moved while rendering: decide those again now
            if queued:
                self._on_queued()
        return max(min(held), now + RUN_GAP) if held else None

    def _email_row(
        self, draft: _Draft, *, now: datetime, identity: MailIdentity, renderer: TemplateRenderer
    ) -> Email:
        """The queued row with its exact bytes (E4, E7), or a failed one saying why."""
        recipient, conversation, item = draft.recipient, draft.conversation, draft.item
        # 64 random bits are plenty beside the token, and keep the Message-ID on one line.
        uid = uuid.uuid4().hex[:16]
        try:
            token = make_token(
                key=identity.token_key, conversation_id=conversation.id, recipient_id=recipient.id
            )
            plan = plan_notification_email(
                recipient=queries.domain_person(recipient),
                conversation_kind=ConversationKind(conversation.kind),
                item_number=item.number if item else None,
                item_title=item.title if item else "",
                new_messages=draft.new,
                earlier_messages=draft.earlier,
                token=token,
                email_uid=uid,
                domain=identity.message_id_domain,
                from_name=identity.from_name,
                from_addr=identity.from_addr,
                previous_message_ids=draft.thread_ids,
            )
            text_body, html_body = renderer.render_notification(plan)
            raw = build_mime(plan, text_body=text_body, html_body=html_body, date=now)
        except Exception as exc:  # one email's template or data: that email fails, not the rest
            log.warning(
                "the email to %s about conversation %d was not sent: %s",
                recipient.email,
                conversation.id,
                exc,
            )
            return _log_row(
                draft, now, identity, status=EmailStatus.FAILED, reason=f"not rendered: {exc}"
            )
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
            raw=raw,
            conversation_id=conversation.id,
            recipient_id=recipient.id,
            item_number=item.number if item else None,
            created_at=now,
            next_attempt_at=now,
        )


async def _decide_chunk(
    session: AsyncSession, groups: Sequence[_Group], now: datetime, identity: MailIdentity
) -> _Decisions:
    """E1-E3, N6: what each group of a chunk should get, read in a handful of queries."""
    facts = await _load_facts(session, groups)
    decided = _Decisions(suppress=[], drafts=[], held=[])
    to_queue: list[tuple[_Group, list[tuple[Delivery, Message]]]] = []
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
        decided.suppress.extend(
            (i, reason, group.conversation_id) for i, reason in verdict.suppressed
        )
        if verdict.send:
            to_queue.append((group, [by_id[i] for i in verdict.send]))
        elif verdict.waiting:
            decided.held.append(
                not_before if not_before and not_before > now else now + timedelta(seconds=1)
            )
    if not to_queue:
        return decided
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

    for group, rows in to_queue:
        conversation = facts.conversations[group.conversation_id]
        thread = facts.threads.get(group)
        messages = [m for _, m in rows]
        decided.drafts.append(
            _Draft(
                group=group,
                delivery_ids=tuple(d.id for d, _ in rows),
                recipient=facts.persons[group.recipient_id],
                conversation=conversation,
                item=facts.items.get(conversation.item_id) if conversation.item_id else None,
                new=tuple(view(m) for m in messages),
                earlier=tuple(view(m) for m in earlier.get((group, messages[0].id), [])),
                thread_ids=tuple(thread.message_ids or ()) if thread else (),
                last_emailed_at=thread.last_emailed_at if thread else None,
            )
        )
    return decided


async def _write_chunk(
    session: AsyncSession, decided: _Decisions, rows: Sequence[Email], now: datetime
) -> tuple[int, bool]:
    """Write a decided chunk (E6) after checking, inside this transaction, that nothing it
    rests on changed while it rendered (E3): its deliveries still pending and not emailed, its
    messages not deleted, the recipient's emails still on, no other email for the group since.
    The I6 caps are counted again here. Returns (emails queued, whether anything was skipped).
    """
    touched: set[int] = set()
    if decided.suppress:
        await session.execute(
            _SUPPRESS_PENDING,
            [
                {"b_id": delivery_id, "b_reason": reason}
                for delivery_id, reason, _ in decided.suppress
            ],
        )
        touched.update(conversation_id for _, _, conversation_id in decided.suppress)
    drafts = list(zip(decided.drafts, rows, strict=True))
    if not drafts:
        for conversation_id in sorted(touched):
            queries.add_change(
                session, kind=ChangeKind.EMAIL, at=now, conversation_id=conversation_id
            )
        return 0, False
    groups = [d.group for d, _ in drafts]
    recipient_ids = {g.recipient_id for g in groups}
    conversation_ids = {g.conversation_id for g in groups}
    still_pending = await _still_pending(session, [i for d, _ in drafts for i in d.delivery_ids])
    emails_on = set(
        (
            await session.execute(
                select(Person.id).where(Person.id.in_(recipient_ids), Person.notify_email)
            )
        ).scalars()
    )
    threads = await _threads(session, recipient_ids, conversation_ids)
    sends = await session.run_sync(
        lambda sync: recent_sends(
            sync, conversation_ids=conversation_ids, recipient_ids=recipient_ids, now=now
        )
    )
    changed = False
    written: list[tuple[_Draft, Email]] = []
    for draft, email in drafts:
        group = draft.group
        thread = threads.get(group)
        if (
            not still_pending.issuperset(draft.delivery_ids)
            or group.recipient_id not in emails_on
            or (thread.last_emailed_at if thread else None) != draft.last_emailed_at
        ):
            changed = True
            continue
        if email.status == EmailStatus.QUEUED:
            cap = cap_reason(
                sends, conversation_id=group.conversation_id, recipient_id=group.recipient_id
            )
            if cap is not None:
                email = _held_back(email, cap)
            else:
                sends.add(conversation_id=group.conversation_id, recipient_id=group.recipient_id)
                if thread is None:
                    thread = EmailThread(
                        recipient_id=group.recipient_id,
                        conversation_id=group.conversation_id,
                        message_ids=[],
                    )
                    session.add(thread)
                    threads[group] = thread
                thread.last_emailed_at = now
                assert email.message_id is not None
                thread.message_ids = [*(thread.message_ids or []), email.message_id][-20:]
        session.add(email)
        written.append((draft, email))
    await session.flush()  # one multi-row INSERT for the chunk's emails
    updates = [
        {
            "b_id": delivery_id,
            "b_email_id": email.id,
            "b_state": (
                DeliveryState.SUPPRESSED
                if email.status == EmailStatus.SUPPRESSED
                else DeliveryState.EMAILED
            ),
            "b_reason": email.reason if email.status == EmailStatus.SUPPRESSED else None,
        }
        for draft, email in written
        for delivery_id in draft.delivery_ids
    ]
    if updates:
        await session.execute(_HAND_TO_EMAIL, updates)
    touched.update(d.group.conversation_id for d, _ in written)
    for conversation_id in sorted(touched):
        queries.add_change(session, kind=ChangeKind.EMAIL, at=now, conversation_id=conversation_id)
    return sum(1 for _, e in written if e.status == EmailStatus.QUEUED), changed


async def _threads(
    session: AsyncSession, recipient_ids: Collection[int], conversation_ids: Collection[int]
) -> dict[_Group, EmailThread]:
    """E2, E4: the last email's time and threading ids, per recipient and conversation."""
    rows = await session.execute(
        select(EmailThread).where(
            EmailThread.recipient_id.in_(recipient_ids),
            EmailThread.conversation_id.in_(conversation_ids),
        )
    )
    return {_Group(t.recipient_id, t.conversation_id): t for t in rows.scalars()}


async def _still_pending(session: AsyncSession, delivery_ids: Sequence[int]) -> set[int]:
    """Those of `delivery_ids` still pending, unseen, not handed to an email, message kept."""
    found: set[int] = set()
    for start in range(0, len(delivery_ids), 500):  # stay under bound-parameter limits
        found.update(
            (
                await session.execute(
                    select(Delivery.id)
                    .join(Message, Message.id == Delivery.message_id)
                    .where(
                        Delivery.id.in_(delivery_ids[start : start + 500]),
                        Delivery.state == DeliveryState.PENDING,
                        Delivery.seen_at.is_(None),
                        Delivery.email_id.is_(None),
                        Message.deleted_at.is_(None),
                    )
                )
            ).scalars()
        )
    return found


async def _load_facts(session: AsyncSession, groups: Sequence[_Group]) -> _Facts:
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
    threads = await _threads(session, recipient_ids, conversation_ids)
    return _Facts(
        persons=persons,
        conversations=conversations,
        items=items,
        pending=pending,
        threads={g: t for g, t in threads.items() if g in wanted},
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


def _log_row(
    draft: _Draft, now: datetime, identity: MailIdentity, *, status: EmailStatus, reason: str
) -> Email:
    """A log line for an email that will not leave (M6), with the reason."""
    item = draft.item
    return Email(
        direction="out",
        kind="notification",
        status=status,
        uid=uuid.uuid4().hex,
        from_addr=identity.from_addr,
        to_addrs=[draft.recipient.email],
        subject=f"[#{item.number}] {item.title}" if item else "",
        conversation_id=draft.conversation.id,
        recipient_id=draft.recipient.id,
        item_number=item.number if item else None,
        reason=reason[:500],
        created_at=now,
    )


def _held_back(email: Email, reason: str) -> Email:
    """The loop guard held this rendered email back (I6): log it as suppressed, unsent."""
    email.status = EmailStatus.SUPPRESSED
    email.reason = reason
    email.raw = None
    email.body_text = ""
    email.message_id = None
    email.next_attempt_at = None
    return email


_deliveries = cast(Table, Delivery.__table__)
# A suppression decided from a snapshot applies only if the delivery is still pending.
_SUPPRESS_PENDING = (
    _deliveries.update()
    .where(_deliveries.c.id == bindparam("b_id"), _deliveries.c.state == DeliveryState.PENDING)
    .values(state=DeliveryState.SUPPRESSED, reason=bindparam("b_reason"))
)
_HAND_TO_EMAIL = (
    _deliveries.update()
    .where(_deliveries.c.id == bindparam("b_id"))
    .values(
        email_id=bindparam("b_email_id"), state=bindparam("b_state"), reason=bindparam("b_reason")
    )
)
