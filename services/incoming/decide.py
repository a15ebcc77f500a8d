"""What an incoming email does (I2-I7, M6): a pure decision over the mail and what was looked up.

Two steps, both without I/O, so every rule is tested on plain data:

- `screen(mail, policy, report)`: what the mail alone says (a delivery report, a loop or an
  auto-reply, its sender, the tokens and `[#N]` it carries) and so what must be looked up;
- `decide(screened, facts, policy, now)`: given the look-ups (`Facts`: the sender's recent mail
  for the hold, the sender, the conversations the tokens and numbers name), one `Decision`:
  ignore it with a reason, post it into a conversation, or open a new item.

`services/incoming/intake.py` looks the facts up and applies the decision in one unit of work.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from services.conversations import (
    MAX_NAME_CHARS,
    MAX_TITLE_CHARS,
    ConversationRef,
    clean_message_text,
)
from services.domain.email_plan import LOOP_TAG
from services.domain.headers import clean_header_text
from services.domain.model import ConversationKind, EmailStatus, PersonKind
from services.domain.tokens import find_token
from services.errors import DeskbellError
from services.incoming.bounces import DeliveryReport
from services.incoming.loops import SenderHold, loop_reason
from services.incoming.parse import ParsedMail
from services.mail.identity import message_id_domain
from services.views import PersonInfo

__all__ = [
    "Decision",
    "Facts",
    "Ignore",
    "IncomingResult",
    "MailPolicy",
    "NewItem",
    "Reply",
    "Screened",
    "Thread",
    "decide",
    "display_name",
    "hold_reason",
    "hold_since",
    "log_fields",
    "own_address",
    "screen",
    "title_of",
]

_SUBJECT_NUMBER = re.compile(r"\[#(\d{1,9})\]")
_REPLY_PREFIX = re.compile(r"^\s*((re|aw|sv|fw|fwd|wg|tr)\s*(\[\d+\])?\s*:\s*)+", re.IGNORECASE)
# Headers that carry the address a mail was delivered to; a token there is a reply address.
_ADDRESS_HEADERS = ("Delivered-To", "X-Original-To", "Envelope-To")
# A subject naming more items than this is not a reply to any of them.
MAX_SUBJECT_NUMBERS = 20
# The hold decides on >15 mails: a few hundred of the sender's recent rows rebuild it exactly.
HOLD_REPLAY_ROWS = 200


@dataclass(frozen=True, slots=True)
class IncomingResult:
    """M6: what one incoming email did. `str()` is the line the command line prints."""

    email_id: int
    status: EmailStatus  # received | ignored
    action: str  # "threaded into #N", "created #N", "threaded into conversation N", "ignored"
    reason: str | None = None
    item_number: int | None = None
    conversation_id: int | None = None
    message_id: int | None = None

    @property
    def ignored(self) -> bool:
        return self.status is EmailStatus.IGNORED

    def __str__(self) -> str:
        return f"ignored: {self.reason}" if self.ignored else self.action


@dataclass(frozen=True, slots=True)
class MailPolicy:
    """The settings the decision needs, read by the service."""

    own_address: str  # smtp.from
    token_key: bytes
    create_items: bool  # mail.create_items (I5)


@dataclass(frozen=True, slots=True)
class Screened:
    """What the mail alone says, before any look-up."""

    mail: ParsedMail
    report: DeliveryReport | None = None  # E7: a delivery report, handled before the rest
    loop: str | None = None  # I6: why it must trigger nothing
    sender: str | None = None  # the From address, when usable
    # I2: (conversation id, recipient id) of a genuine token in a delivery address, then in
    # the threading ids; the item numbers of `[#N]` in the subject.
    address_token: tuple[int, int] | None = None
    thread_token: tuple[int, int] | None = None
    numbers: tuple[int, ...] = ()

    @property
    def needs_sender(self) -> bool:
        """Whether the sender and its hold must be looked up (not for a loop or a report)."""
        return self.report is None and self.loop is None and self.sender is not None

    @property
    def conversation_ids(self) -> tuple[int, ...]:
        """The conversations the tokens name, to look up with the sender."""
        found = (t[0] for t in (self.address_token, self.thread_token) if t is not None)
        return tuple(dict.fromkeys(found))


@dataclass(frozen=True, slots=True)
class Thread:
    """A conversation as the routing sees it: its item's conversations, and its audience
    (the item's followers, or a direct conversation's members)."""

    item_id: int | None
    item_number: int | None
    conversations: tuple[ConversationRef, ...]
    audience: tuple[PersonInfo, ...]

    def conversation(self, *, kind: ConversationKind) -> ConversationRef | None:
        return next((c for c in self.conversations if c.kind is kind), None)

    def by_id(self, conversation_id: int) -> ConversationRef | None:
        return next((c for c in self.conversations if c.id == conversation_id), None)

    def includes(self, person_id: int) -> bool:
        return any(p.id == person_id for p in self.audience)


@dataclass(frozen=True, slots=True)
class Facts:
    """What was looked up for a screened mail."""

    recent: tuple[datetime, ...] = ()  # the sender's earlier incoming mail, for the hold
    sender: PersonInfo | None = None
    by_conversation: Mapping[int, Thread] = field(default_factory=dict)  # token's conversation
    by_number: Mapping[int, Thread] = field(default_factory=dict)  # `[#N]`'s item


@dataclass(frozen=True, slots=True)
class Ignore:
    """Log the mail as ignored, with the reason (I6, I7, M6)."""

    reason: str


@dataclass(frozen=True, slots=True)
class Reply:
    """Post the mail's text into a conversation it was tracked to (I2, I3)."""

    author: PersonInfo
    conversation: ConversationRef
    audience: tuple[PersonInfo, ...]
    item_number: int | None
    text: str
    found_by: str  # "token in address" | "token in In-Reply-To/References" | "[#N] in subject"

    @property
    def action(self) -> str:
        if self.item_number is not None:
            return f"threaded into #{self.item_number}"
        return f"threaded into conversation {self.conversation.id}"


@dataclass(frozen=True, slots=True)
class NewItem:
    """I5: a new item, the sender its customer, requester and follower; `author` None means
    the sender becomes a new customer named `name`."""

    address: str
    name: str
    author: PersonInfo | None
    title: str
    text: str


Decision = Ignore | Reply | NewItem


def own_address(addr: str | None, own: str) -> bool:
    """Our own address, or a plus-addressed variant of it (our reply addresses)."""
    if not addr or "@" not in own:
        return False
    local, _, domain = addr.lower().rpartition("@")
    own_local, _, own_domain = own.lower().rpartition("@")
    return domain == own_domain and local.split("+", 1)[0] == own_local


def screen(mail: ParsedMail, policy: MailPolicy, report: DeliveryReport | None = None) -> Screened:
    """What `mail` says by itself; `report` is its delivery report when it is one (E7)."""
    if report is not None:
        return Screened(mail=mail, report=report)
    sender = mail.from_addr
    if sender is None:
        return Screened(mail=mail)
    loop = loop_reason(
        mail,
        own_addresses=(policy.own_address,),
        own_domains=(message_id_domain(policy.own_address),),
        loop_tag=LOOP_TAG,
    )
    if loop is None and own_address(sender, policy.own_address):
        loop = f"sent from our own address ({sender})"
    if loop is not None:
        return Screened(mail=mail, loop=loop, sender=sender)
    addresses = [*mail.to_addrs, *mail.cc_addrs]
    for header in _ADDRESS_HEADERS:
        addresses.extend(mail.header_values(header))
    numbers = dict.fromkeys(int(m.group(1)) for m in _SUBJECT_NUMBER.finditer(mail.subject))
    return Screened(
        mail=mail,
        sender=sender,
        address_token=find_token(" ".join(addresses), key=policy.token_key),
        thread_token=find_token(
            " ".join([*mail.in_reply_to, *mail.references]), key=policy.token_key
        ),
        numbers=tuple(numbers)[:MAX_SUBJECT_NUMBERS],
    )


def hold_reason(
    recent: Iterable[datetime], sender: str, now: datetime, hold: SenderHold | None = None
) -> str | None:
    """I6: the sender's recent mails replayed into a fresh hold, then this one: no state lives
    in memory, so a restart or a second process decides the same way."""
    replay = hold if hold is not None else SenderHold()
    for at in sorted(recent):
        replay.record(sender, at)
    return replay.record(sender, now)


def hold_since(now: datetime, hold: SenderHold | None = None) -> datetime:
    """How far back the sender's mails count for the hold at `now`."""
    rules = hold if hold is not None else SenderHold()
    return now - rules.window - rules.hold_for


def decide(screened: Screened, facts: Facts, policy: MailPolicy, now: datetime) -> Decision:
    """What the mail does (I2-I7). A delivery report is not decided here (see bounces)."""
    mail = screened.mail
    if screened.sender is None:
        bad = ", ".join(mail.defects) or "no From address"
        return Ignore(f"malformed mail: no usable sender ({bad})")
    if screened.loop is not None:
        return Ignore(screened.loop)
    held = hold_reason(facts.recent, screened.sender, now)
    if held is not None:
        return Ignore(held)
    # A new item's request may be all forwarded or quoted text: then it is the whole mail.
    text = mail.reply_text or mail.text
    sender = facts.sender
    reply = _route(screened, facts, sender, text) if sender is not None else None
    if reply is not None:
        if not mail.reply_text and mail.text:
            # Posting the quoted history would email it to every follower again (I4).
            return Ignore("no new text: the reply only quotes earlier mail")
        return reply
    if sender is not None and sender.kind is PersonKind.USER:
        return Ignore("no conversation found")
    if not policy.create_items:
        return Ignore("no conversation found, and new items from mail are turned off")
    request = text or mail.subject
    try:
        clean_message_text(request)
    except DeskbellError:
        return Ignore("the mail has neither text nor subject")
    return NewItem(
        address=screened.sender,
        name=display_name(mail),
        author=sender,
        title=title_of(mail, request),
        text=request,
    )


def _route(screened: Screened, facts: Facts, sender: PersonInfo, text: str) -> Reply | None:
    """I2: by the token in a delivery address, then in the threading ids, then by `[#N]`."""
    for token, found_by in (
        (screened.address_token, "token in address"),
        (screened.thread_token, "token in In-Reply-To/References"),
    ):
        if token is None:
            continue
        thread = facts.by_conversation.get(token[0])
        if thread is None:
            continue
        conversation = _by_token(thread, token, sender)
        if conversation is not None:
            return _reply(sender, thread, conversation, text, found_by)
    for number in screened.numbers:
        thread = facts.by_number.get(number)
        if thread is None or not thread.includes(sender.id):
            continue  # I2: [#N] counts only when the sender follows item N
        kind = (
            ConversationKind.EXTERNAL
            if sender.kind is PersonKind.CUSTOMER
            else ConversationKind.INTERNAL
        )
        conversation = thread.conversation(kind=kind)
        if conversation is not None:
            return _reply(sender, thread, conversation, text, "[#N] in subject")
    return None


def _by_token(thread: Thread, token: tuple[int, int], sender: PersonInfo) -> ConversationRef | None:
    conversation_id, recipient_id = token
    named = thread.by_id(conversation_id)
    if named is None:
        return None
    # A genuine token forwarded to someone else threads only for its recipient or a
    # follower; anyone else falls through to the other rules, never into this conversation.
    if sender.id != recipient_id and not thread.includes(sender.id):
        return None
    # I3: a customer's reply always goes to the item's external conversation.
    if sender.kind is PersonKind.CUSTOMER:
        if named.item_id is None:
            return None
        return thread.conversation(kind=ConversationKind.EXTERNAL)
    return named


def _reply(
    sender: PersonInfo, thread: Thread, conversation: ConversationRef, text: str, found_by: str
) -> Reply:
    return Reply(
        author=sender,
        conversation=conversation,
        audience=thread.audience,
        item_number=thread.item_number,
        text=text,
        found_by=found_by,
    )


def title_of(mail: ParsedMail, text: str) -> str:
    """A new item's title: the subject without reply prefixes and `[#N]`, else the text's
    first words, else who sent it."""
    subject = _SUBJECT_NUMBER.sub(" ", _REPLY_PREFIX.sub("", mail.subject))
    title = clean_header_text(subject, max_len=MAX_TITLE_CHARS)
    if not title:
        words = " ".join(text.split()[:12])
        title = clean_header_text(words, max_len=80)
    return title or f"Email from {mail.from_addr}"


def display_name(mail: ParsedMail) -> str:
    """A new customer's name: the From header's name, else the address's local part."""
    name = clean_header_text(mail.from_name, max_len=MAX_NAME_CHARS)
    return name or (mail.from_addr or "unknown").split("@", 1)[0] or "Customer"


def log_fields(mail: ParsedMail) -> dict[str, object]:
    """The log row's columns that come from the mail itself (M6)."""
    return {
        "message_id": f"<{mail.message_id}>"[:300] if mail.message_id else None,
        "from_addr": mail.from_addr or clean_header_text(mail.header("From") or "", max_len=300),
        "to_addrs": list(mail.to_addrs),
        "subject": clean_header_text(mail.subject, max_len=500) if mail.subject else "",
        "body_text": mail.text,
    }
