"""Workflow automations (M1-M3): on a trigger, if the conditions hold, insert messages and send
email templates, inside the transaction of the write that triggered them.

The critical new-message automation stands first. Its behaviour is the notification itself
(`conversations.post_message` plus the fallback scheduler); here it holds the editable intro
line of the notification email (E5), and the service refuses to disable or delete it (M1).

M3: an event caused by an automation (a message it inserted) or by mail that was generated
automatically carries `automated=True` and fires nothing. Inserted messages are written with
`source="automation"`, so their own "message posted" is never an event either.

R2: variables never give a customer the text of an internal message: `message.text` is empty
when an internal message is passed on into an external conversation or to a customer.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Final

from sqlalchemy import func, select

from services import conversations
from services.clock import Clock
from services.domain.chat_links import chat_url
from services.domain.model import ConversationKind, PersonKind
from services.errors import InputError, NotFoundError, PermissionDeniedError
from services.mail.compose import queue_template_email
from services.mail.identity import MailIdentity
from services.store import queries
from services.store.changes import record_change
from services.store.database import Database, Tx
from services.store.models import Automation, Conversation, EmailTemplate, Follower, Item, Message
from services.store.models import Person as PersonRow
from services.template_catalog import (
    DEFAULT_INTRO,
    obj,
    render_text,
    sample_variables,
    validate_intro,
)
from services.templates import validate_template
from services.views import ChangeKind, PersonInfo

__all__ = [
    "ACTION_KINDS",
    "CONDITIONS",
    "EMAIL_TARGETS",
    "TEXT_VARIABLES",
    "AutomationCache",
    "AutomationEvent",
    "AutomationInfo",
    "Automations",
    "FireResult",
    "Rules",
    "Trigger",
    "fire",
    "load_rules",
    "seed_automations",
]

log = logging.getLogger(__name__)


class Trigger(StrEnum):
    ITEM_CREATED = "item_created"
    ITEM_STATUS_CHANGED = "item_status_changed"
    ITEM_CLOSED = "item_closed"
    MESSAGE_POSTED = "message_posted"
    PERSON_CREATED = "person_created"


# name -> what it compares; a condition absent from an automation always holds.
CONDITIONS: Final[Mapping[str, str]] = {
    "item_status": "the item's status (after the change) is",
    "conversation_kind": "the message's conversation is internal / external / direct",
    "author_kind": "the message's author is a user / customer",
    "person_kind": "the new person is a user / customer",
}
ACTION_KINDS: Final = ("message", "email")
EMAIL_TARGETS: Final = ("followers", "requester", "assignee", "person")
MESSAGE_TARGETS: Final = ("internal", "external")
TEXT_VARIABLES: Final = frozenset({"item", "actor", "event", "message", "workspace"})
MAX_AUTOMATION_TEXT: Final = 5_000


@dataclass(frozen=True, slots=True)
class AutomationEvent:
    trigger: Trigger
    actor_id: int | None = None
    item_id: int | None = None
    person_id: int | None = None  # person created: the new person
    message_id: int | None = None
    conversation_kind: ConversationKind | None = None
    old_status: str | None = None
    new_status: str | None = None
    automated: bool = False  # M3: written by an automation, or mail generated automatically


@dataclass(frozen=True, slots=True)
class FireResult:
    automations: tuple[int, ...] = ()
    messages: tuple[int, ...] = ()
    emails: tuple[int, ...] = ()
    conversations: frozenset[int] = frozenset()


@dataclass(frozen=True, slots=True)
class AutomationInfo:
    id: int
    position: int
    name: str
    trigger: str
    conditions: Mapping[str, str]
    actions: tuple[Mapping[str, str], ...]
    text: str
    enabled: bool
    critical: bool
    updated_at: datetime
    summary: str = ""


# --- checking -------------------------------------------------------------------------------


def _check_conditions(trigger: Trigger, conditions: Mapping[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in conditions.items():
        if key not in CONDITIONS:
            raise InputError(f"unknown condition {key!r}; known: {', '.join(CONDITIONS)}")
        text = str(value).strip().lower()
        if key == "conversation_kind" and text not in {k.value for k in ConversationKind}:
            raise InputError(f"conversation_kind is internal, external or direct, not {text!r}")
        if key in ("author_kind", "person_kind") and text not in {k.value for k in PersonKind}:
            raise InputError(f"{key} is user or customer, not {text!r}")
        if key in ("conversation_kind", "author_kind") and trigger is not Trigger.MESSAGE_POSTED:
            raise InputError(f"{key} only applies to the 'message_posted' trigger")
        if key == "person_kind" and trigger is not Trigger.PERSON_CREATED:
            raise InputError("person_kind only applies to the 'person_created' trigger")
        out[key] = text
    return out


def _check_actions(trigger: Trigger, actions: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
    if not actions:
        raise InputError("an automation needs at least one action")
    out: list[dict[str, str]] = []
    for action in actions:
        kind = str(action.get("kind", ""))
        if kind == "message":
            where = str(action.get("conversation", ""))
            if where not in MESSAGE_TARGETS:
                raise InputError("a message action goes into the 'internal' or 'external' one")
            if trigger is Trigger.PERSON_CREATED:
                raise InputError("a new person has no item to write in")
            out.append({"kind": kind, "conversation": where})
        elif kind == "email":
            to = str(action.get("to", ""))
            template = str(action.get("template", "")).strip().lower()
            if to not in EMAIL_TARGETS:
                raise InputError(f"an email action goes to one of: {', '.join(EMAIL_TARGETS)}")
            if (to == "person") != (trigger is Trigger.PERSON_CREATED):
                raise InputError("'person' is the target of 'person_created' automations only")
            if not template:
                raise InputError("an email action needs a template")
            out.append({"kind": kind, "to": to, "template": template})
        else:
            raise InputError(f"unknown action {kind!r}; one of: {', '.join(ACTION_KINDS)}")
    return out


def _check_text(text: str) -> str:
    cleaned = text.strip()
    if len(cleaned) > MAX_AUTOMATION_TEXT:
        raise InputError(f"the text is too long (at most {MAX_AUTOMATION_TEXT} characters)")
    validate_template(cleaned, allowed=TEXT_VARIABLES, name="text")
    render_text(cleaned, sample_variables(kind="automation"))  # and it must finish, small
    return cleaned


def _summary(auto: Automation | AutomationInfo) -> str:
    when = auto.trigger.replace("_", " ")
    conds = ", ".join(f"{k.replace('_', ' ')} is {v}" for k, v in (auto.conditions or {}).items())
    does = []
    for a in auto.actions or []:
        if a.get("kind") == "message":
            does.append(f"write in the {a.get('conversation')} conversation")
        elif a.get("kind") == "email":
            does.append(f"email {a.get('template')} to the {a.get('to')}")
        elif a.get("kind") == "notify":
            does.append("notify every follower, emailed when unseen")
    return f"When {when}" + (f" and {conds}" if conds else "") + ": " + "; ".join(does)


def _info(auto: Automation) -> AutomationInfo:
    return AutomationInfo(
        id=auto.id,
        position=auto.position,
        name=auto.name,
        trigger=auto.trigger,
        conditions=dict(auto.conditions or {}),
        actions=tuple(dict(a) for a in auto.actions or []),
        text=auto.text,
        enabled=auto.enabled,
        critical=auto.critical,
        updated_at=auto.updated_at,
        summary=_summary(auto),
    )


# --- seeding ----------------------------------------------------------------------------------


CLOSED_TEXT: Final = "{{ item.ref }} {{ item.title }} was closed by {{ actor.name }}."


def seed_automations(tx: Tx, *, now: datetime) -> None:
    """The critical automation and the shipped examples, once, in an empty table."""
    session = tx.session
    if session.scalar(select(func.count()).select_from(Automation)):
        return
    session.add_all(
        [
            Automation(
                position=0,
                name="New message: notify all followers",
                trigger=Trigger.MESSAGE_POSTED,
                conditions={},
                actions=[{"kind": "notify"}],
                text=DEFAULT_INTRO,
                enabled=True,
                critical=True,
                created_at=now,
                updated_at=now,
            ),
            Automation(
                position=10,
                name="When an item is closed, tell its followers",
                trigger=Trigger.ITEM_CLOSED,
                conditions={},
                actions=[{"kind": "message", "conversation": "internal"}],
                text=CLOSED_TEXT,
                enabled=True,
                critical=False,
                created_at=now,
                updated_at=now,
            ),
            Automation(
                position=20,
                name="When an item is closed, email its requester",
                trigger=Trigger.ITEM_CLOSED,
                conditions={},
                actions=[{"kind": "email", "to": "requester", "template": "item_closed"}],
                text="",
                enabled=False,
                critical=False,
                created_at=now,
                updated_at=now,
            ),
        ]
    )


# --- the rules and their cache ------------------------------------------------------------------

# Each trigger's enabled, non-critical automations, in their order.
Rules = Mapping[Trigger, tuple[AutomationInfo, ...]]


def load_rules(tx: Tx) -> Rules:
    """Every enabled automation a trigger fires (the critical one is the notification
    itself, services/fallback.py), in position order."""
    rows = tx.session.scalars(
        select(Automation)
        .where(Automation.enabled.is_(True), Automation.critical.is_(False))
        .order_by(Automation.position, Automation.id)
    )
    rules: dict[Trigger, list[AutomationInfo]] = {}
    for auto in rows:
        try:
            trigger = Trigger(auto.trigger)
        except ValueError:
            continue  # a newer version's trigger: not ours to run
        rules.setdefault(trigger, []).append(_info(auto))
    return {trigger: tuple(found) for trigger, found in rules.items()}


class AutomationCache:
    """The rules, kept across transactions by the service: every post asks for them and they
    change rarely. Cleared on every "automation" change, from this process or another."""

    def __init__(self) -> None:
        self._rules: Rules | None = None
        self._generation = 0

    def clear(self) -> None:
        self._rules = None
        self._generation += 1

    async def rules(self, db: Database) -> Rules:
        if self._rules is not None:
            return self._rules
        generation = self._generation
        rules = await db.read(load_rules)
        if generation == self._generation:  # not cleared while reading
            self._rules = rules
        return rules


# --- the engine -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _ItemFacts:
    id: int
    number: int
    title: str
    status: str
    requester_id: int | None
    assignee_id: int | None


@dataclass(slots=True)
class _Facts:
    item: _ItemFacts | None = None
    actor: PersonInfo | None = None
    person: PersonInfo | None = None
    message_text: str | None = None
    author: PersonInfo | None = None
    conversation_kind: ConversationKind | None = None
    followers: list[PersonInfo] = field(default_factory=list)


def _facts(tx: Tx, event: AutomationEvent, default_delay_s: int) -> _Facts:
    facts = _Facts(conversation_kind=event.conversation_kind)

    def person(person_id: int | None) -> PersonInfo | None:
        if person_id is None:
            return None
        try:
            return queries.person_by_id(tx, person_id, default_delay_s=default_delay_s)
        except NotFoundError:
            return None

    if event.item_id is not None:
        row = tx.conn.execute(
            select(
                Item.id,
                Item.number,
                Item.title,
                Item.status,
                Item.requester_id,
                Item.assignee_id,
            ).where(Item.id == event.item_id)
        ).first()
        facts.item = _ItemFacts(*row) if row is not None else None
        facts.followers = [
            queries.person_info_from_row(r, default_delay_s=default_delay_s)
            for r in tx.conn.execute(
                select(*queries.PERSON_COLUMNS)
                .join(Follower, Follower.person_id == PersonRow.id)
                .where(Follower.item_id == event.item_id)
                .order_by(PersonRow.id)
            )
        ]
    facts.actor = person(event.actor_id)
    facts.person = person(event.person_id)
    if event.message_id is not None:
        message = tx.conn.execute(
            select(Message.text, Message.author_id).where(Message.id == event.message_id)
        ).first()
        if message is not None:
            facts.message_text = message.text
            facts.author = person(message.author_id)
    return facts


def _holds(auto: AutomationInfo, event: AutomationEvent, facts: _Facts) -> bool:
    for key, wanted in auto.conditions.items():
        if key == "item_status":
            have = event.new_status or (facts.item.status if facts.item else None)
        elif key == "conversation_kind":
            have = facts.conversation_kind.value if facts.conversation_kind else None
        elif key == "author_kind":
            have = facts.author.kind.value if facts.author else None
        elif key == "person_kind":
            have = facts.person.kind.value if facts.person else None
        else:
            return False
        if (have or "").lower() != wanted:
            return False
    return True


def _variables(
    event: AutomationEvent, facts: _Facts, identity: MailIdentity, *, show_text: bool
) -> dict[str, object]:
    item = facts.item
    return {
        "item": obj(
            number=item.number if item else None,
            title=item.title if item else "",
            ref=f"[#{item.number}]" if item else "",
            status=item.status if item else "",
        ),
        "actor": obj(name=facts.actor.name if facts.actor else identity.from_name),
        "event": obj(
            trigger=event.trigger.value,
            old_status=event.old_status or "",
            new_status=event.new_status or "",
        ),
        "message": obj(
            author=facts.author.name if facts.author else "",
            conversation=facts.conversation_kind.value if facts.conversation_kind else "",
            text=facts.message_text if facts.message_text is not None and show_text else "",
        ),
        "workspace": obj(name=identity.from_name, address=identity.from_addr),
        "chat_url": "",  # set per customer recipient of an email (`_chat_url`)
    }


def _may_pass_on(facts: _Facts, *, to_customer: bool) -> bool:
    """R2: internal message text never reaches a customer or an external conversation."""
    kind = facts.conversation_kind
    return kind is None or not kind.users_only or not to_customer


def fire(
    tx: Tx,
    event: AutomationEvent,
    *,
    rules: Rules,
    now: datetime,
    identity: MailIdentity,
    default_delay_s: int,
) -> FireResult:
    """Run every enabled automation for `event` in the caller's transaction.

    A failing action (a template that no longer renders, a missing conversation) is logged
    and skipped: an automation never makes a person's own write fail.
    """
    if event.automated:
        return FireResult()  # M3
    autos = rules.get(event.trigger, ())
    if not autos:
        return FireResult()
    facts = _facts(tx, event, default_delay_s)
    fired: list[int] = []
    messages: list[int] = []
    emails: list[int] = []
    convs: set[int] = set()
    for auto in autos:
        if not _holds(auto, event, facts):
            continue
        fired.append(auto.id)
        for action in auto.actions:
            try:
                if action.get("kind") == "message":
                    new = _insert_message(
                        tx, auto, action, event, facts, now, identity, default_delay_s
                    )
                    if new is not None:
                        messages.append(new.message_id)
                        convs.add(new.conversation.id)
                elif action.get("kind") == "email":
                    emails.extend(_send_template(tx, action, event, facts, now, identity))
            except (InputError, PermissionDeniedError) as exc:
                log.warning(
                    "automation %s (%s): action %s skipped: %s", auto.id, auto.name, action, exc
                )
    return FireResult(
        automations=tuple(fired),
        messages=tuple(messages),
        emails=tuple(emails),
        conversations=frozenset(convs),
    )


def _insert_message(
    tx: Tx,
    auto: AutomationInfo,
    action: Mapping[str, Any],
    event: AutomationEvent,
    facts: _Facts,
    now: datetime,
    identity: MailIdentity,
    default_delay_s: int,
) -> conversations.Posted | None:
    if facts.item is None:
        return None
    kind = ConversationKind(str(action.get("conversation")))
    conv_id = tx.conn.execute(
        select(Conversation.id).where(
            Conversation.item_id == facts.item.id, Conversation.kind == kind.value
        )
    ).scalar_one()
    show = _may_pass_on(facts, to_customer=not kind.users_only)
    text = render_text(auto.text, _variables(event, facts, identity, show_text=show))
    return conversations.post_message(
        tx,
        conversation=conversations.ConversationRef(id=conv_id, kind=kind, item_id=facts.item.id),
        author=None,
        text=text,
        now=now,
        default_delay_s=default_delay_s,
        source="automation",
        automation_id=auto.id,
    )


def _send_template(
    tx: Tx,
    action: Mapping[str, Any],
    event: AutomationEvent,
    facts: _Facts,
    now: datetime,
    identity: MailIdentity,
) -> list[int]:
    template = tx.session.get(EmailTemplate, str(action.get("template")))
    if template is None:
        raise NotFoundError(f"no template {action.get('template')!r}")
    to = action.get("to")
    item = facts.item
    targets: list[PersonInfo] = []
    if to == "followers":
        targets = [p for p in facts.followers if facts.actor is None or p.id != facts.actor.id]
    elif to in ("requester", "assignee") and item is not None:
        pid = item.requester_id if to == "requester" else item.assignee_id
        found = queries.person_by_id(tx, pid, default_delay_s=0) if pid is not None else None
        targets = [found] if found is not None else []
    elif to == "person" and facts.person is not None:
        targets = [facts.person]
    ids: list[int] = []
    for person in targets:
        to_customer = person.kind is PersonKind.CUSTOMER
        variables = _variables(
            event, facts, identity, show_text=_may_pass_on(facts, to_customer=to_customer)
        )
        variables["recipient"] = obj(name=person.name, email=person.email)
        variables["chat_url"] = _chat_url(tx, item, person, identity, now)
        email = queue_template_email(
            tx,
            template=template,
            variables=variables,
            to_addr=person.email,
            to_name=person.name,
            identity=identity,
            now=now,
            kind="template",
            recipient_id=person.id,
            item_number=item.number if item else None,
        )
        ids.append(email.id)
    return ids


def _chat_url(
    tx: Tx, item: _ItemFacts | None, person: PersonInfo, identity: MailIdentity, now: datetime
) -> str:
    """C1: an email to a customer about an item links into its external conversation."""
    if item is None or person.kind is not PersonKind.CUSTOMER or not identity.chat_entry:
        return ""
    conversation_id = tx.conn.execute(
        select(Conversation.id).where(
            Conversation.item_id == item.id,
            Conversation.kind == ConversationKind.EXTERNAL.value,
        )
    ).scalar()
    if conversation_id is None:
        return ""
    return chat_url(
        identity.chat_entry,
        key=identity.token_key,
        conversation_id=conversation_id,
        person_id=person.id,
        now=now,
    )


# --- the sub-API the service exposes ----------------------------------------------------------


def _row(tx: Tx, automation_id: int) -> Automation:
    auto = tx.session.get(Automation, automation_id)
    if auto is None:
        raise NotFoundError(f"no automation {automation_id}")
    return auto


def _list(tx: Tx) -> list[AutomationInfo]:
    rows = tx.session.scalars(select(Automation).order_by(Automation.position, Automation.id))
    return [_info(a) for a in rows]


def _get(tx: Tx, automation_id: int) -> AutomationInfo:
    return _info(_row(tx, automation_id))


def _create(
    tx: Tx,
    *,
    name: str,
    trigger: Trigger,
    actions: list[dict[str, str]],
    conditions: dict[str, str],
    text: str,
    enabled: bool,
    now: datetime,
) -> AutomationInfo:
    session = tx.session
    for a in actions:
        if a["kind"] == "email" and session.get(EmailTemplate, a["template"]) is None:
            raise NotFoundError(f"no template {a['template']!r}")
    last = session.scalar(select(func.max(Automation.position))) or 0
    auto = Automation(
        position=last + 10,
        name=name,
        trigger=trigger.value,
        conditions=conditions,
        actions=actions,
        text=text,
        enabled=enabled,
        critical=False,
        created_at=now,
        updated_at=now,
    )
    session.add(auto)
    session.flush()
    record_change(tx, kind=ChangeKind.AUTOMATION, at=now)
    return _info(auto)


def _set_enabled(tx: Tx, automation_id: int, *, enabled: bool, now: datetime) -> AutomationInfo:
    auto = _row(tx, automation_id)
    if auto.critical and not enabled:
        raise PermissionDeniedError(
            f"automation {auto.id} ({auto.name}) is critical: it cannot be disabled"
        )
    auto.enabled = enabled
    auto.updated_at = now
    record_change(tx, kind=ChangeKind.AUTOMATION, at=now)
    return _info(auto)


def _delete(tx: Tx, automation_id: int, *, now: datetime) -> None:
    auto = _row(tx, automation_id)
    if auto.critical:
        raise PermissionDeniedError(
            f"automation {auto.id} ({auto.name}) is critical: it cannot be deleted"
        )
    tx.session.delete(auto)
    record_change(tx, kind=ChangeKind.AUTOMATION, at=now)


def _set_text(tx: Tx, automation_id: int, text: str, *, now: datetime) -> AutomationInfo:
    auto = _row(tx, automation_id)
    body = validate_intro(text) if auto.critical else _check_text(text)
    if not body:
        raise InputError("the text is empty")
    auto.text = body
    auto.updated_at = now
    record_change(tx, kind=ChangeKind.AUTOMATION, at=now)
    return _info(auto)


def critical_text(tx: Tx) -> str | None:
    """The critical automation's text: the notification email's intro (E5)."""
    text: str | None = tx.session.scalar(
        select(Automation.text).where(Automation.critical.is_(True))
    )
    return text


class Automations:
    """`service.automations`: list, show, create, enable, disable, delete, set-text (M1, M8)."""

    def __init__(
        self,
        db: Database,
        *,
        clock: Clock,
        on_change: Callable[[], Awaitable[None]],
    ) -> None:
        self._db = db
        self._clock = clock
        self._on_change = on_change

    async def list(self) -> list[AutomationInfo]:
        return await self._db.read(_list)

    async def get(self, automation_id: int) -> AutomationInfo:
        return await self._db.read(_get, automation_id)

    async def create(
        self,
        *,
        name: str,
        trigger: str,
        actions: Sequence[Mapping[str, Any]],
        conditions: Mapping[str, Any] | None = None,
        text: str = "",
        enabled: bool = True,
    ) -> AutomationInfo:
        try:
            when = Trigger(trigger)
        except ValueError:
            raise InputError(
                f"unknown trigger {trigger!r}; one of: {', '.join(t.value for t in Trigger)}"
            ) from None
        checked_actions = _check_actions(when, actions)
        checked_conditions = _check_conditions(when, conditions or {})
        body = _check_text(text)
        if any(a["kind"] == "message" for a in checked_actions) and not body:
            raise InputError("a message action needs a text")
        clean_name = name.strip()
        if not clean_name or len(clean_name) > 200:
            raise InputError("the name is empty or longer than 200 characters")
        info = await self._db.write(
            _create,
            name=clean_name,
            trigger=when,
            actions=checked_actions,
            conditions=checked_conditions,
            text=body,
            enabled=enabled,
            now=self._clock.now(),
        )
        await self._on_change()
        return info

    async def set_enabled(self, automation_id: int, *, enabled: bool) -> AutomationInfo:
        info = await self._db.write(
            _set_enabled, automation_id, enabled=enabled, now=self._clock.now()
        )
        await self._on_change()
        return info

    async def enable(self, automation_id: int) -> AutomationInfo:
        return await self.set_enabled(automation_id, enabled=True)

    async def disable(self, automation_id: int) -> AutomationInfo:
        return await self.set_enabled(automation_id, enabled=False)

    async def delete(self, automation_id: int) -> None:
        await self._db.write(_delete, automation_id, now=self._clock.now())
        await self._on_change()

    async def set_text(self, automation_id: int, text: str) -> AutomationInfo:
        """The inserted message, or the critical automation's email intro (M1, E5)."""
        info = await self._db.write(_set_text, automation_id, text, now=self._clock.now())
        await self._on_change()
        return info

    def preview_text(self, text: str, *, critical: bool = False) -> str:
        """M1: what `text` says, rendered with sample data (the words, not the template):
        an inserted message, or the critical automation's email intro. InputError for a text
        that would be refused on save."""
        if critical:
            variables = sample_variables(kind="notification")
            return render_text(validate_intro(text), variables, name="text")
        return render_text(_check_text(text), sample_variables(kind="automation"), name="text")

    async def critical_text(self) -> str:
        return await self._db.read(critical_text) or DEFAULT_INTRO
