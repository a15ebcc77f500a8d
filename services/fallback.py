"""The email fallback's scheduler: unseen deliveries that fall due become outbox emails (E1-E3, E8).

Due work is rows: a pending delivery with a due time. One loop sleeps until the earliest due
row (services/due_loop.py), waking at once on a wall-clock jump, so after a restart, a suspended
laptop or a clock change whatever fell due meanwhile goes out at once, after the check of E3. The
decision is read, the email rendered with no transaction open, and the outbox row written in
one transaction that checks the decision still holds (E6). Each is a unit of work in the
database worker (services/store/database.py): one thread hop per read or write.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import (
    Executable,
    FromClause,
    Integer,
    Select,
    Table,
    TextClause,
    bindparam,
    literal_column,
    select,
    text,
)
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from services.clock import Clock
from services.domain.chat_links import chat_url
from services.domain.email_plan import (
    MAX_CONTEXT_MESSAGES,
    MessageView,
    build_mime,
    plan_notification_email,
)
from services.domain.model import ConversationKind, DeliveryState, EmailStatus, PersonKind
from services.domain.model import Person as DomainPerson
from services.domain.schedule import DeliveryFacts, dnd_ends_at, next_email_at, recheck
from services.domain.tokens import make_token
from services.due_loop import DueLoop
from services.mail.caps import cap_reason, count_recent_sends
from services.mail.identity import MailIdentity
from services.store import queries
from services.store.changes import record_change
from services.store.database import Database, Tx
from services.store.email_bodies import store_bodies
from services.store.models import (
    Conversation,
    Delivery,
    Email,
    EmailThread,
    Item,
    Message,
    Person,
    UtcDateTime,
)
from services.store.prepared import Prepared
from services.templates import TemplateRenderer
from services.views import ChangeKind

__all__ = [
    "FallbackScheduler",
]

log = logging.getLogger(__name__)

# Write transactions stay short: the outbox records its outcomes between them.
GROUPS_PER_TRANSACTION = 50
# Due times a few ms apart (a burst of posts) are decided together, not one run each: a run
# costs about twenty statements however few groups it decides (E1: never earlier, this late).
RUN_GAP = timedelta(seconds=0.2)


@dataclass(frozen=True, slots=True, order=True)
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
    recipient: DomainPerson
    conversation_kind: ConversationKind
    item_number: int | None
    item_title: str
    new: tuple[MessageView, ...]
    earlier: tuple[MessageView, ...]
    thread_ids: tuple[str, ...]
    last_emailed_at: datetime | None  # the thread's, as read: if it moved, decide again


@dataclass(frozen=True, slots=True)
class _Decisions:
    """A chunk decided from one read: deliveries to suppress, emails to render, wake times."""

    suppress: tuple[tuple[int, str, int], ...]  # (delivery id, reason, conversation id)
    drafts: tuple[_Draft, ...]
    held: tuple[datetime, ...]


@dataclass(frozen=True, slots=True)
class _Due:
    groups: tuple[_Group, ...]
    later: datetime | None  # the earliest pending due time after now


@dataclass(frozen=True, slots=True)
class _NewEmail:
    """An outbox row as rendered (no transaction open), written by `_write_chunk`."""

    status: EmailStatus
    uid: str
    from_addr: str
    to_addrs: tuple[str, ...]
    conversation_id: int
    recipient_id: int
    item_number: int | None
    created_at: datetime
    subject: str = ""
    body_text: str = ""
    raw: bytes | None = None
    message_id: str | None = None
    next_attempt_at: datetime | None = None
    reason: str | None = None

    def row(self) -> Email:
        return Email(
            direction="out",
            kind="notification",
            status=self.status.value,
            uid=self.uid,
            message_id=self.message_id,
            from_addr=self.from_addr,
            to_addrs=list(self.to_addrs),
            subject=self.subject,
            body_text=self.body_text,
            conversation_id=self.conversation_id,
            recipient_id=self.recipient_id,
            item_number=self.item_number,
            reason=self.reason,
            created_at=self.created_at,
            next_attempt_at=self.next_attempt_at,
        )


@dataclass(frozen=True, slots=True)
class _Written:
    queued: int
    changed: bool  # something moved while rendering: decide those groups again


class FallbackScheduler:
    def __init__(
        self,
        db: Database,
        *,
        clock: Clock,
        identity: Callable[[], MailIdentity],
        renderer: Callable[[], TemplateRenderer],
        on_queued: Callable[[], None],
    ) -> None:
        self._db = db
        self._clock = clock
        self._identity = identity
        self._renderer = renderer
        self._on_queued = on_queued
        self._loop = DueLoop(name="email fallback", clock=clock, step=self.run_once)

    def wake(self) -> None:
        """Look again now: settings or follows changed, a resume from sleep."""
        self._loop.wake()

    def wake_soon(self) -> None:
        """Look again within RUN_GAP: new messages (their deliveries fall due a delay of at
        least a second after them) or something seen (which only cancels); a burst of posts
        costs the scheduler one look, not one per post."""
        self._loop.wake_within(RUN_GAP)

    def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()

    async def run_once(self) -> datetime | None:
        """Queue every email that is due now; return when to look again.

        Per chunk of groups: decide from one read, render with no transaction open (a slow
        or broken template holds no lock and blocks no other writer), then write in one short
        transaction that first checks nothing it decided on changed meanwhile (E3, E6), the
        group's thread row locked so that no other process queues the same email (issue 9).
        """
        now = self._clock.now()
        due = await self._db.read(_due, now)
        held: list[datetime] = [due.later] if due.later is not None else []
        identity = self._identity()
        renderer = self._renderer()
        for start in range(0, len(due.groups), GROUPS_PER_TRANSACTION):
            chunk = due.groups[start : start + GROUPS_PER_TRANSACTION]
            decided = await self._db.read(_decide_chunk, chunk, now, identity)
            rows = tuple(
                self._email_row(d, now=now, identity=identity, renderer=renderer)
                for d in decided.drafts
            )
            written = await self._db.write(_write_chunk, decided, rows, now)
            held.extend(decided.held)
            if written.changed:
                held.append(now)  # something moved while rendering: decide those again now
            if written.queued:
                self._on_queued()
        return max(min(held), now + RUN_GAP) if held else None

    def _email_row(
        self, draft: _Draft, *, now: datetime, identity: MailIdentity, renderer: TemplateRenderer
    ) -> _NewEmail:
        """The queued row with its exact bytes (E4, E7), or a failed one saying why."""
        recipient, group = draft.recipient, draft.group
        # 64 random bits are plenty beside the token, and keep the Message-ID on one line.
        uid = uuid.uuid4().hex[:16]
        try:
            token = make_token(
                key=identity.token_key,
                conversation_id=group.conversation_id,
                recipient_id=recipient.id,
            )
            plan = plan_notification_email(
                recipient=recipient,
                conversation_kind=draft.conversation_kind,
                item_number=draft.item_number,
                item_title=draft.item_title,
                new_messages=draft.new,
                earlier_messages=draft.earlier,
                token=token,
                email_uid=uid,
                domain=identity.message_id_domain,
                from_name=identity.from_name,
                from_addr=identity.from_addr,
                previous_message_ids=draft.thread_ids,
                chat_url=_chat_url(identity, draft, now),
            )
            text_body, html_body = renderer.render_notification(plan)
            raw = build_mime(plan, text_body=text_body, html_body=html_body, date=now)
        except Exception as exc:  # one email's template or data: that email fails, not the rest
            log.warning(
                "the email to %s about conversation %d was not sent: %s",
                recipient.email,
                group.conversation_id,
                exc,
            )
            return _log_row(
                draft, now, identity, status=EmailStatus.FAILED, reason=f"not rendered: {exc}"
            )
        return _NewEmail(
            status=EmailStatus.QUEUED,
            uid=uid,
            message_id=plan.message_id,
            from_addr=identity.from_addr,
            to_addrs=(recipient.email,),
            subject=plan.subject,
            body_text=text_body,
            raw=raw,
            conversation_id=group.conversation_id,
            recipient_id=recipient.id,
            item_number=draft.item_number,
            created_at=now,
            next_attempt_at=now,
        )


def _chat_url(identity: MailIdentity, draft: _Draft, now: datetime) -> str:
    """C1: every email to a customer about their conversation links into the chat."""
    if draft.recipient.kind is not PersonKind.CUSTOMER:
        return ""
    return chat_url(
        identity.chat_entry,
        key=identity.token_key,
        conversation_id=draft.group.conversation_id,
        person_id=draft.recipient.id,
        now=now,
    )


_deliveries = cast(Table, Delivery.__table__)
_PENDING_DUE_INDEX = "ix_deliveries_pending_due"


def _due_queries(*, sqlite: bool) -> tuple[Prepared[tuple[int, int]], Prepared[tuple[datetime]]]:
    """The scheduler's question, answered from the partial index of pending deliveries, so
    its cost grows with what is due, not with history, whatever the statistics say (issue 9):
    SQLite is told the index (`INDEXED BY`, which SQLAlchemy cannot render, hence the text);
    on PostgreSQL `_due` turns sequential scans off for its transaction."""
    if sqlite:
        table: FromClause | TextClause = text(f"deliveries INDEXED BY {_PENDING_DUE_INDEX}")
        recipient = literal_column("deliveries.recipient_id", Integer())
        conversation = literal_column("deliveries.conversation_id", Integer())
        due: ColumnElement[datetime] = literal_column("deliveries.due_at", UtcDateTime())
        # Literal, not bound: SQLite uses a partial index only for its very predicate.
        pending = literal_column("deliveries.state") == literal_column("'pending'")
    else:
        table = _deliveries
        recipient, conversation = _deliveries.c.recipient_id, _deliveries.c.conversation_id
        due = _deliveries.c.due_at
        pending = _deliveries.c.state == literal_column("'pending'")
    now = bindparam("b_now", type_=UtcDateTime())
    groups = Prepared[tuple[int, int]](
        select(recipient, conversation).select_from(table).where(pending, due <= now).distinct()
    )
    later = Prepared[tuple[datetime]](
        select(due).select_from(table).where(pending, due > now).order_by(due).limit(1)
    )
    return groups, later


_DUE_SQLITE = _due_queries(sqlite=True)
_DUE_POSTGRES = _due_queries(sqlite=False)


def _due(tx: Tx, now: datetime) -> _Due:
    groups_query, later_query = _DUE_SQLITE
    if tx.is_postgres:
        groups_query, later_query = _DUE_POSTGRES
        tx.conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
    groups = tuple(sorted(_Group(r, c) for r, c in tx.run(groups_query, {"b_now": now})))
    later = tx.run(later_query, {"b_now": now})
    return _Due(groups=groups, later=later[0][0] if later else None)


def _decide_chunk(
    tx: Tx, groups: Sequence[_Group], now: datetime, identity: MailIdentity
) -> _Decisions:
    """E1-E3, N6: what each group of a chunk should get, read in a handful of queries."""
    session = tx.session
    facts = _load_facts(session, groups)
    suppress: list[tuple[int, str, int]] = []
    held: list[datetime] = []
    to_queue: list[tuple[_Group, list[tuple[Delivery, Message]]]] = []
    for group in groups:
        rows = facts.pending.get(group)
        if not rows:
            continue
        settings = queries.settings_of(
            facts.persons[group.recipient_id], default_delay_s=identity.default_delay_s
        )
        thread = facts.threads.get(group)
        # E2 (at least one delay after the last email) and N6 (held while do-not-disturb
        # lasts, then sent as one email): the domain's own rule.
        not_before = next_email_at(
            pending_due=[d.due_at for d, _ in rows if d.due_at is not None],
            last_emailed_at=thread.last_emailed_at if thread is not None else None,
            delay_s=settings.delay_s if settings.email else None,
            hold_until=dnd_ends_at(settings, now_local=now.astimezone()),
        )
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
        suppress.extend((i, reason, group.conversation_id) for i, reason in verdict.suppressed)
        if verdict.send:
            to_queue.append((group, [by_id[i] for i in verdict.send]))
        elif verdict.waiting:
            held.append(
                not_before if not_before and not_before > now else now + timedelta(seconds=1)
            )
    if not to_queue:
        return _Decisions(suppress=tuple(suppress), drafts=(), held=tuple(held))
    earlier = _context_messages(session, to_queue)
    author_ids = {
        m.author_id for _, rows in to_queue for _, m in rows if m.author_id is not None
    } | {m.author_id for ms in earlier.values() for m in ms if m.author_id is not None}
    missing = author_ids - facts.persons.keys()
    if missing:
        for person in session.execute(select(Person).where(Person.id.in_(missing))).scalars():
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

    drafts = []
    for group, rows in to_queue:
        conversation = facts.conversations[group.conversation_id]
        item = facts.items.get(conversation.item_id) if conversation.item_id else None
        thread = facts.threads.get(group)
        messages = [m for _, m in rows]
        drafts.append(
            _Draft(
                group=group,
                delivery_ids=tuple(d.id for d, _ in rows),
                recipient=queries.domain_person(facts.persons[group.recipient_id]),
                conversation_kind=ConversationKind(conversation.kind),
                item_number=item.number if item else None,
                item_title=item.title if item else "",
                new=tuple(view(m) for m in messages),
                earlier=tuple(view(m) for m in earlier.get((group, messages[0].id), [])),
                thread_ids=tuple(thread.message_ids or ()) if thread else (),
                last_emailed_at=thread.last_emailed_at if thread else None,
            )
        )
    return _Decisions(suppress=tuple(suppress), drafts=tuple(drafts), held=tuple(held))


def _write_chunk(tx: Tx, decided: _Decisions, rows: Sequence[_NewEmail], now: datetime) -> _Written:
    """Write a decided chunk (E6) after checking, inside this transaction, that nothing it
    rests on changed while it rendered (E3): its deliveries still pending and not emailed, its
    messages not deleted, the recipient's emails still on, no other email for the group since.
    Each group's thread row is locked first (created if missing), so a scheduler of another
    process deciding the same group waits, then sees the email and queues none (issue 9).
    The I6 caps are counted again here.
    """
    session = tx.session
    touched: set[int] = set()
    if decided.suppress:
        tx.run_many(
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
            record_change(tx, kind=ChangeKind.EMAIL, at=now, conversation_id=conversation_id)
        return _Written(queued=0, changed=False)
    groups = sorted({d.group for d, _ in drafts})
    recipient_ids = {g.recipient_id for g in groups}
    conversation_ids = {g.conversation_id for g in groups}
    _claim_threads(tx, groups)
    threads = _threads(session, recipient_ids, conversation_ids, lock=True)
    still_pending = _still_pending(session, [i for d, _ in drafts for i in d.delivery_ids])
    emails_on = set(
        session.execute(
            select(Person.id).where(Person.id.in_(recipient_ids), Person.notify_email)
        ).scalars()
    )
    sends = count_recent_sends(
        tx, conversation_ids=conversation_ids, recipient_ids=recipient_ids, now=now
    )
    changed = False
    written: list[tuple[_Draft, Email, bytes | None]] = []
    for draft, new in drafts:
        group = draft.group
        thread = threads[group]
        if (
            not still_pending.issuperset(draft.delivery_ids)
            or group.recipient_id not in emails_on
            or thread.last_emailed_at != draft.last_emailed_at
        ):
            changed = True
            continue
        if new.status == EmailStatus.QUEUED:
            cap = cap_reason(
                sends, conversation_id=group.conversation_id, recipient_id=group.recipient_id
            )
            if cap is not None:
                new = _held_back(new, cap)
            else:
                sends.add(conversation_id=group.conversation_id, recipient_id=group.recipient_id)
                thread.last_emailed_at = now
                assert new.message_id is not None
                thread.message_ids = [*(thread.message_ids or []), new.message_id][-20:]
        email = new.row()
        session.add(email)
        written.append((draft, email, new.raw))
    session.flush()  # one multi-row INSERT for the chunk's emails
    store_bodies(tx, [(email.id, raw) for _, email, raw in written])
    updates = [
        {
            "b_id": delivery_id,
            "b_email_id": email.id,
            "b_state": (
                DeliveryState.SUPPRESSED.value
                if email.status == EmailStatus.SUPPRESSED
                else DeliveryState.EMAILED.value
            ),
            "b_reason": email.reason if email.status == EmailStatus.SUPPRESSED else None,
        }
        for draft, email, _ in written
        for delivery_id in draft.delivery_ids
    ]
    tx.run_many(_HAND_TO_EMAIL, updates)
    touched.update(d.group.conversation_id for d, _, _ in written)
    for conversation_id in sorted(touched):
        record_change(tx, kind=ChangeKind.EMAIL, at=now, conversation_id=conversation_id)
    queued = sum(1 for _, e, _ in written if e.status == EmailStatus.QUEUED)
    return _Written(queued=queued, changed=changed)


_email_threads = cast(Table, EmailThread.__table__)


def _claim_threads(tx: Tx, groups: Sequence[_Group]) -> None:
    """Make sure every group has its thread row, without failing on one another process
    inserts at the same moment (it waits for that process's commit, then does nothing)."""
    statement: Executable
    if tx.is_postgres:  # the PostgreSQL dialect loads only for PostgreSQL
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        statement = pg_insert(_email_threads).on_conflict_do_nothing()
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        statement = sqlite_insert(_email_threads).on_conflict_do_nothing()
    tx.conn.execute(
        statement,
        [{"recipient_id": g.recipient_id, "conversation_id": g.conversation_id} for g in groups],
    )


def _threads(
    session: Session,
    recipient_ids: Collection[int],
    conversation_ids: Collection[int],
    *,
    lock: bool = False,
) -> dict[_Group, EmailThread]:
    """E2, E4: the last email's time and threading ids, per recipient and conversation;
    `lock`: held until the transaction ends (PostgreSQL; SQLite's write lock holds them all)."""
    query = (
        select(EmailThread)
        .where(
            EmailThread.recipient_id.in_(recipient_ids),
            EmailThread.conversation_id.in_(conversation_ids),
        )
        .order_by(EmailThread.recipient_id, EmailThread.conversation_id)
    )
    if lock:
        query = query.with_for_update()
    rows = session.execute(query).scalars()
    return {_Group(t.recipient_id, t.conversation_id): t for t in rows}


def _still_pending(session: Session, delivery_ids: Sequence[int]) -> set[int]:
    """Those of `delivery_ids` still pending, unseen, not handed to an email, message kept."""
    found: set[int] = set()
    for start in range(0, len(delivery_ids), 500):  # stay under bound-parameter limits
        found.update(
            session.execute(
                select(Delivery.id)
                .join(Message, Message.id == Delivery.message_id)
                .where(
                    Delivery.id.in_(delivery_ids[start : start + 500]),
                    Delivery.state == DeliveryState.PENDING,
                    Delivery.seen_at.is_(None),
                    Delivery.email_id.is_(None),
                    Message.deleted_at.is_(None),
                )
            ).scalars()
        )
    return found


def _load_facts(session: Session, groups: Sequence[_Group]) -> _Facts:
    wanted = set(groups)
    recipient_ids = {g.recipient_id for g in groups}
    conversation_ids = {g.conversation_id for g in groups}
    persons = {
        p.id: p
        for p in session.execute(select(Person).where(Person.id.in_(recipient_ids))).scalars()
    }
    conversations: dict[int, Conversation] = {}
    items: dict[int, Item] = {}
    for conversation, item in session.execute(
        select(Conversation, Item)
        .outerjoin(Item, Item.id == Conversation.item_id)
        .where(Conversation.id.in_(conversation_ids))
    ):
        conversations[conversation.id] = conversation
        if item is not None:
            items[item.id] = item
    pending: dict[_Group, list[tuple[Delivery, Message]]] = {}
    for delivery, message in session.execute(
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
    threads = _threads(session, recipient_ids, conversation_ids)
    return _Facts(
        persons=persons,
        conversations=conversations,
        items=items,
        pending=pending,
        threads={g: t for g, t in threads.items() if g in wanted},
    )


def _earlier(conversation_id: int, first_id: int) -> Select[Message]:
    """E4's context: the 3 messages before `first_id` in its conversation, newest first."""
    return (
        select(Message)
        .where(queries.messages_before(conversation_id, first_id))
        .order_by(Message.id.desc())
        .limit(MAX_CONTEXT_MESSAGES)
    )


def _context_messages(
    session: Session, to_queue: Sequence[tuple[_Group, list[tuple[Delivery, Message]]]]
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
        earlier = list(session.execute(_earlier(conversation_id, first_id)).scalars())
        for group in members:
            found[(group, first_id)] = earlier
    return found


def _log_row(
    draft: _Draft, now: datetime, identity: MailIdentity, *, status: EmailStatus, reason: str
) -> _NewEmail:
    """A log line for an email that will not leave (M6), with the reason."""
    number = draft.item_number
    return _NewEmail(
        status=status,
        uid=uuid.uuid4().hex,
        from_addr=identity.from_addr,
        to_addrs=(draft.recipient.email,),
        subject=f"[#{number}] {draft.item_title}" if number is not None else "",
        conversation_id=draft.group.conversation_id,
        recipient_id=draft.recipient.id,
        item_number=number,
        reason=reason[:500],
        created_at=now,
    )


def _held_back(email: _NewEmail, reason: str) -> _NewEmail:
    """The loop guard held this rendered email back (I6): log it as suppressed, unsent."""
    return replace(
        email,
        status=EmailStatus.SUPPRESSED,
        reason=reason,
        raw=None,
        body_text="",
        message_id=None,
        next_attempt_at=None,
    )


# A suppression decided from a snapshot applies only if the delivery is still pending.
_SUPPRESS_PENDING = Prepared(
    _deliveries.update()
    .where(
        _deliveries.c.id == bindparam("b_id"),
        _deliveries.c.state == DeliveryState.PENDING.value,
    )
    .values(state=DeliveryState.SUPPRESSED.value, reason=bindparam("b_reason"))
)
_HAND_TO_EMAIL = Prepared(
    _deliveries.update()
    .where(_deliveries.c.id == bindparam("b_id"))
    .values(
        email_id=bindparam("b_email_id"), state=bindparam("b_state"), reason=bindparam("b_reason")
    )
)
