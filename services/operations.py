"""The service's writes that fire automations, each one unit of work (one transaction).

A write and what it triggers commit together (M2): posting runs the "message posted"
automations, creating an item "item created", a new person their system email and "person
created", a status change "status changed" and "item closed". The automations come from the
service's cache (`Context.rules`), so a post without automations reads nothing for them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from services import conversations, items, people
from services.automations import AutomationEvent, FireResult, Rules, Trigger, fire
from services.domain.model import ConversationKind, PersonKind
from services.mail.identity import MailIdentity
from services.store import queries
from services.store.database import Tx
from services.system_emails import on_person_created
from services.views import Changes, ItemInfo, PersonInfo, PostResult

__all__ = [
    "Context",
    "add_person",
    "create_item",
    "fire_for",
    "item_created",
    "message_posted",
    "person_created",
    "post",
    "set_item_status",
]


@dataclass(frozen=True, slots=True)
class Context:
    """What a write needs from the service besides its own arguments."""

    now: datetime
    default_delay_s: int
    rules: Rules
    identity: MailIdentity


def fire_for(tx: Tx, ctx: Context, event: AutomationEvent) -> FireResult:
    return fire(
        tx,
        event,
        rules=ctx.rules,
        now=ctx.now,
        identity=ctx.identity,
        default_delay_s=ctx.default_delay_s,
    )


def message_posted(tx: Tx, ctx: Context, posted: conversations.Posted) -> FireResult:
    """The "message posted" automations of a message a person wrote (also by email)."""
    return fire_for(
        tx,
        ctx,
        AutomationEvent(
            trigger=Trigger.MESSAGE_POSTED,
            actor_id=posted.author_id,
            item_id=posted.conversation.item_id,
            message_id=posted.message_id,
            conversation_kind=posted.conversation.kind,
        ),
    )


def post(
    tx: Tx,
    ctx: Context,
    *,
    author: str,
    text: str,
    conversation_id: int | None,
    item_number: int | None,
    kind: ConversationKind | None,
    client_id: str | None = None,
) -> PostResult:
    """Post as `author` into a conversation, or into item N's internal/external one.
    `client_id` (T5): a post already made with it is answered again, not made twice."""
    if client_id is not None:
        done = conversations.posted_with_client_id(tx, client_id=client_id, author=author)
        if done is not None:
            return PostResult(
                message_id=done.message_id,
                conversation_id=done.conversation.id,
                recipients=done.recipient_ids,
                changes=Changes(conversations=frozenset({done.conversation.id}), counts=True),
            )
    target = conversations.find_target(
        tx,
        author=author,
        default_delay_s=ctx.default_delay_s,
        conversation_id=conversation_id,
        item_number=item_number,
        kind=kind,
    )
    posted = conversations.post_message(
        tx,
        conversation=target.conversation,
        author=target.author,
        audience_=target.audience,
        text=text,
        now=ctx.now,
        default_delay_s=ctx.default_delay_s,
        client_id=client_id,
    )
    fired = message_posted(tx, ctx, posted)
    return PostResult(
        message_id=posted.message_id,
        conversation_id=posted.conversation.id,
        recipients=posted.recipient_ids,
        changes=Changes(
            conversations=frozenset({posted.conversation.id}) | fired.conversations,
            counts=True,
            emails=bool(fired.emails),
        ),
    )


def person_created(tx: Tx, ctx: Context, person: PersonInfo) -> None:
    """A new person's system email (welcome, or a new customer's note) and automations."""
    on_person_created(tx, person=person, now=ctx.now, identity=ctx.identity)
    fire_for(tx, ctx, AutomationEvent(trigger=Trigger.PERSON_CREATED, person_id=person.id))


def add_person(
    tx: Tx,
    ctx: Context,
    *,
    email: str,
    name: str,
    kind: PersonKind,
    is_admin: bool | None,
) -> PersonInfo:
    person = people.add_person(
        tx,
        email=email,
        name=name,
        kind=kind,
        now=ctx.now,
        default_delay_s=ctx.default_delay_s,
        is_admin=is_admin,
    )
    person_created(tx, ctx, person)
    return person


def item_created(tx: Tx, ctx: Context, item_id: int) -> None:
    fire_for(tx, ctx, AutomationEvent(trigger=Trigger.ITEM_CREATED, item_id=item_id))


def create_item(
    tx: Tx,
    ctx: Context,
    *,
    title: str,
    followers: Sequence[str],
    requester: str | None,
) -> ItemInfo:
    def person(email: str) -> PersonInfo:
        return queries.person_by_email(tx, email, default_delay_s=ctx.default_delay_s)

    item_id = items.create_item(
        tx,
        title=title,
        followers=[person(e) for e in followers],
        requester=person(requester) if requester else None,
        now=ctx.now,
    ).id
    item_created(tx, ctx, item_id)
    return items.item_info(tx, item_id, default_delay_s=ctx.default_delay_s)


def set_item_status(
    tx: Tx, ctx: Context, *, number: int, status: str, acting: str | None
) -> ItemInfo:
    """Item N's status; fires "item status changed", and "item closed" on closing."""
    change = items.set_status(tx, number=number, status=status, now=ctx.now)
    actor = (
        queries.person_by_email(tx, acting, default_delay_s=ctx.default_delay_s) if acting else None
    )
    if change.old != change.new:
        base = AutomationEvent(
            trigger=Trigger.ITEM_STATUS_CHANGED,
            actor_id=actor.id if actor else None,
            item_id=change.item_id,
            old_status=change.old,
            new_status=change.new,
        )
        fire_for(tx, ctx, base)
        if change.new == "closed":
            fire_for(tx, ctx, replace(base, trigger=Trigger.ITEM_CLOSED))
    return items.item_info(tx, change.item_id, default_delay_s=ctx.default_delay_s)
