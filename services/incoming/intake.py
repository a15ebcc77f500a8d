"""Incoming mail's unit of work: look up what the decision needs, then write what it says.

    results = await db.write(take_in, ctx, policy, arrivals, position=position)

For each mail, in order: `screen` (the mail alone), the look-ups it asks for (the sender's
recent mail for the hold and the sender: two indexed statements; each conversation a token or
`[#N]` names, with its item's conversations and audience: one joined statement), `decide`
(services/incoming/decide.py), then the writes: the log row (M6), and the post or the new item,
with the automations fired as a post fires them (services/operations.py) and every change
recorded for clients. A batch of mails and the IMAP position commit together (I1).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, insert, or_, select, update
from sqlalchemy.orm import aliased

from services import conversations, items, operations
from services.conversations import (
    _AUDIENCE_COLUMNS,
    ConversationRef,
    _with_audience,
)
from services.domain.model import ConversationKind, EmailStatus, PersonKind
from services.errors import DeskbellError
from services.incoming.bounces import DeliveryReport, apply_report, looks_like_report, read_report
from services.incoming.cursor import CursorPosition, save_position
from services.incoming.decide import (
    HOLD_REPLAY_ROWS,
    Facts,
    Ignore,
    IncomingResult,
    MailPolicy,
    NewItem,
    Reply,
    Screened,
    Thread,
    decide,
    hold_since,
    log_fields,
    screen,
)
from services.incoming.parse import ParsedMail, parse_mail
from services.store import queries
from services.store.changes import record_change
from services.store.database import Tx
from services.store.email_bodies import store_bodies
from services.store.models import Conversation, Email, Item, Person
from services.store.prepared import Prepared
from services.views import ChangeKind, PersonInfo

__all__ = ["Arrival", "arrive", "log_ignored", "take_in"]


@dataclass(frozen=True, slots=True)
class Arrival:
    """One raw mail, parsed, with its delivery report when it is one (E7)."""

    raw: bytes
    mail: ParsedMail
    report: DeliveryReport | None


def arrive(raw: bytes) -> Arrival:
    """Parse `raw` (CPU-bound: run it off the event loop). Never raises for a bad mail."""
    mail = parse_mail(raw)
    return Arrival(raw, mail, read_report(raw) if looks_like_report(mail) else None)


# --- the look-ups ------------------------------------------------------------------------------

# I6: one sender's recent incoming mail, newest first (ix_emails_sender_direction_created_at).
_RECENT = Prepared[tuple[datetime]](
    select(Email.created_at)
    .where(
        Email.from_addr == bindparam("sender"),
        Email.created_at >= bindparam("since"),
        Email.direction == "in",
    )
    .order_by(Email.created_at.desc(), Email.id.desc())
    .limit(HOLD_REPLAY_ROWS)
)
_SENDER = Prepared(select(*queries.PERSON_COLUMNS).where(Person.email == bindparam("email")))

_named = aliased(Conversation, name="named")
_THREAD_COLUMNS = (
    Conversation.id,
    Conversation.kind,
    Conversation.item_id,
    Item.number,
    *_AUDIENCE_COLUMNS,
)
# A conversation, its item's other conversation, and their audience: one statement.
_THREAD_BY_CONVERSATION = Prepared(
    _with_audience(
        select(*_THREAD_COLUMNS)
        .select_from(_named)
        .join(
            Conversation,
            or_(Conversation.id == _named.id, Conversation.item_id == _named.item_id),
        )
        .outerjoin(Item, Item.id == Conversation.item_id)
        .where(_named.id == bindparam("conversation_id"))
    )
)
# The items a subject's `[#N]` names, each with its conversations and followers.
_THREADS_BY_NUMBER = Prepared(
    _with_audience(
        select(*_THREAD_COLUMNS)
        .select_from(Item)
        .join(Conversation, Conversation.item_id == Item.id)
        .where(Item.number.in_(bindparam("numbers", expanding=True)))
    )
)
_AT_MEMBER = 4  # where the audience's person columns start in _THREAD_COLUMNS


def _threads(rows: Iterable[Sequence[Any]], default_delay_s: int) -> dict[int | None, Thread]:
    """Rows of the thread statements grouped by item (None: a direct conversation)."""
    found: dict[int | None, tuple[Any, dict[int, ConversationRef], dict[int, PersonInfo]]] = {}
    for row in rows:
        cid, kind, item_id, number = row[:_AT_MEMBER]
        _number, refs, people = found.setdefault(item_id, (number, {}, {}))
        refs.setdefault(cid, ConversationRef(id=cid, kind=ConversationKind(kind), item_id=item_id))
        if row[_AT_MEMBER] is not None and row[_AT_MEMBER] not in people:
            people[row[_AT_MEMBER]] = queries.person_info_from_row(
                row[_AT_MEMBER:], default_delay_s=default_delay_s
            )
    return {
        item_id: Thread(
            item_id=item_id,
            item_number=number,
            conversations=tuple(refs.values()),
            audience=tuple(people.values()),
        )
        for item_id, (number, refs, people) in found.items()
    }


def _look_up(tx: Tx, screened: Screened, *, now: datetime, default_delay_s: int) -> Facts:
    """What `decide` needs for this mail, and nothing more."""
    if not screened.needs_sender:
        return Facts()
    assert screened.sender is not None
    recent = tx.run(_RECENT, {"sender": screened.sender, "since": hold_since(now)})
    rows = tx.run(_SENDER, {"email": screened.sender})
    if not rows:
        return Facts(recent=tuple(r[0] for r in recent))
    sender = queries.person_info_from_row(rows[0], default_delay_s=default_delay_s)
    by_conversation: dict[int, Thread] = {}
    for conversation_id in screened.conversation_ids:
        found = tx.run(_THREAD_BY_CONVERSATION, {"conversation_id": conversation_id})
        by_conversation.update(
            (conversation_id, thread) for thread in _threads(found, default_delay_s).values()
        )
    by_number: dict[int, Thread] = {}
    if screened.numbers:
        found = tx.run(_THREADS_BY_NUMBER, {"numbers": list(screened.numbers)})
        by_number = {
            thread.item_number: thread
            for thread in _threads(found, default_delay_s).values()
            if thread.item_number is not None
        }
    return Facts(
        recent=tuple(r[0] for r in recent),
        sender=sender,
        by_conversation=by_conversation,
        by_number=by_number,
    )


# --- the writes --------------------------------------------------------------------------------

_INSERT_LOG = Prepared[tuple[int]](insert(Email).returning(Email.id))
_IGNORE_LOG = Prepared(
    update(Email)
    .where(Email.id == bindparam("b_id"))
    .values(
        status=EmailStatus.IGNORED.value,
        action="ignored",
        reason=bindparam("b_reason"),
        conversation_id=None,
        item_number=None,
    )
)


def _log(
    tx: Tx,
    arrival: Arrival,
    now: datetime,
    *,
    action: str,
    reason: str | None = None,
    conversation_id: int | None = None,
    item_number: int | None = None,
) -> int:
    """M6: the mail's row in the log, as what it did."""
    ignored = action == "ignored"
    ((email_id,),) = tx.run(
        _INSERT_LOG,
        {
            "direction": "in",
            "kind": "incoming",
            "status": (EmailStatus.IGNORED if ignored else EmailStatus.RECEIVED).value,
            "uid": uuid.uuid4().hex,
            **log_fields(arrival.mail),
            "created_at": now,
            "action": action,
            "reason": reason[:500] if reason is not None else None,
            "conversation_id": conversation_id,
            "item_number": item_number,
        },
    )
    store_bodies(tx, [(email_id, arrival.raw)])
    record_change(tx, kind=ChangeKind.EMAIL, at=now)
    return int(email_id)


def _ignored(tx: Tx, arrival: Arrival, now: datetime, reason: str) -> IncomingResult:
    email_id = _log(tx, arrival, now, action="ignored", reason=reason)
    return IncomingResult(
        email_id=email_id, status=EmailStatus.IGNORED, action="ignored", reason=reason[:500]
    )


def _bounce(
    tx: Tx, arrival: Arrival, report: DeliveryReport, policy: MailPolicy, now: datetime
) -> IncomingResult:
    """E7: a report about an email we sent, before the loop rules that would ignore it."""
    bounce = apply_report(tx, report=report, now=now, key=policy.token_key)
    if bounce.email_id is None:
        return _ignored(tx, arrival, now, f"delivery report that {bounce.action}")
    email_id = _log(
        tx,
        arrival,
        now,
        action=bounce.action,
        reason=bounce.found_by,
        conversation_id=bounce.conversation_id,
        item_number=bounce.item_number,
    )
    return IncomingResult(
        email_id=email_id,
        status=EmailStatus.RECEIVED,
        action=bounce.action,
        reason=bounce.found_by,
        item_number=bounce.item_number,
        conversation_id=bounce.conversation_id,
    )


def _reply(tx: Tx, ctx: operations.Context, arrival: Arrival, reply: Reply) -> IncomingResult:
    """I2, I3: the mail's new text posted into the conversation it was tracked to."""
    conversation = reply.conversation
    email_id = _log(
        tx,
        arrival,
        ctx.now,
        action=reply.action,
        reason=reply.found_by,
        conversation_id=conversation.id,
        item_number=reply.item_number,
    )
    try:
        posted = conversations.post_message(
            tx,
            conversation=conversation,
            author=reply.author,
            audience_=reply.audience,
            text=reply.text,
            now=ctx.now,
            default_delay_s=ctx.default_delay_s,
            source="email",
            email_id=email_id,
        )
    except DeskbellError as exc:  # refused before it wrote anything: the row says why
        reason = f"could not post into conversation {conversation.id}: {exc}"[:500]
        tx.run(_IGNORE_LOG, {"b_id": email_id, "b_reason": reason})
        return IncomingResult(
            email_id=email_id, status=EmailStatus.IGNORED, action="ignored", reason=reason
        )
    # Loop-checked mail was written by a person, so it fires like a post (M3 keeps
    # automatic mail out before it gets here).
    operations.message_posted(tx, ctx, posted)
    return IncomingResult(
        email_id=email_id,
        status=EmailStatus.RECEIVED,
        action=reply.action,
        reason=reply.found_by,
        item_number=reply.item_number,
        conversation_id=conversation.id,
        message_id=posted.message_id,
    )


def _new_item(tx: Tx, ctx: operations.Context, arrival: Arrival, new: NewItem) -> IncomingResult:
    """I5: a new item with the sender as customer, requester and follower; what fails here
    propagates, and the caller logs the mail as ignored with the error (I7)."""
    author = new.author or operations.add_person(
        tx, ctx, email=new.address, name=new.name, kind=PersonKind.CUSTOMER, is_admin=False
    )
    item = items.create_item(tx, title=new.title, followers=[author], requester=author, now=ctx.now)
    operations.item_created(tx, ctx, item.id)
    action = f"created #{item.number}"
    email_id = _log(
        tx,
        arrival,
        ctx.now,
        action=action,
        conversation_id=item.external_id,
        item_number=item.number,
    )
    posted = conversations.post_message(
        tx,
        conversation=ConversationRef(
            id=item.external_id, kind=ConversationKind.EXTERNAL, item_id=item.id
        ),
        author=author,
        text=new.text,
        now=ctx.now,
        default_delay_s=ctx.default_delay_s,
        source="email",
        email_id=email_id,
    )
    operations.message_posted(tx, ctx, posted)
    return IncomingResult(
        email_id=email_id,
        status=EmailStatus.RECEIVED,
        action=action,
        item_number=item.number,
        conversation_id=item.external_id,
        message_id=posted.message_id,
    )


def _take_one(
    tx: Tx, ctx: operations.Context, policy: MailPolicy, arrival: Arrival
) -> IncomingResult:
    screened = screen(arrival.mail, policy, arrival.report)
    if screened.report is not None:
        return _bounce(tx, arrival, screened.report, policy, ctx.now)
    facts = _look_up(tx, screened, now=ctx.now, default_delay_s=ctx.default_delay_s)
    decision = decide(screened, facts, policy, ctx.now)
    if isinstance(decision, Ignore):
        return _ignored(tx, arrival, ctx.now, decision.reason)
    if isinstance(decision, Reply):
        return _reply(tx, ctx, arrival, decision)
    return _new_item(tx, ctx, arrival, decision)


def take_in(
    tx: Tx,
    ctx: operations.Context,
    policy: MailPolicy,
    arrivals: Sequence[Arrival],
    *,
    position: CursorPosition | None = None,
) -> list[IncomingResult]:
    """Log each mail and do what it asks (I2-I7, M6), then store the IMAP `position`: one
    unit of work. Raises if any mail fails, with nothing written."""
    results = [_take_one(tx, ctx, policy, arrival) for arrival in arrivals]
    if position is not None:
        save_position(tx, position, now=ctx.now)
    return results


def log_ignored(
    tx: Tx,
    arrival: Arrival,
    reason: str,
    *,
    now: datetime,
    position: CursorPosition | None = None,
) -> IncomingResult:
    """The log row of a mail that could not be processed, with the IMAP `position` (the
    reader moves past it). Its text is storable and bounded (parse_mail), so only an
    unusable database makes this raise."""
    result = _ignored(tx, arrival, now, reason)
    if position is not None:
        save_position(tx, position, now=now)
    return result
