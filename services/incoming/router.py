"""What an incoming email does (I2-I7, M6), decided and written inside the caller's transaction.

Order: log row first (so every mail shows in *Incoming*, whatever happens), then the loop
rules (I6), the sender hold (rebuilt from the log, so every process agrees), tracking (I2:
token in an address, token in In-Reply-To/References, `[#N]` for a follower), the target
conversation (I3), and otherwise a new item (I5) or "ignored". Nothing here raises for a
bad mail: every refusal becomes the log row's reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services import legacy_ops as ops
from services.clock import Clock
from services.domain.email_plan import LOOP_TAG
from services.domain.headers import clean_header_text
from services.domain.model import ConversationKind, EmailStatus, PersonKind
from services.domain.tokens import find_token
from services.errors import DeskbellError, InputError, StoreError
from services.incoming import reader_lease
from services.incoming.bounces import apply_report, looks_like_report, read_report
from services.incoming.cursor import DbImapCursor, account_key
from services.incoming.imap import (
    ImapMessage,
    ImapPosition,
    ImapReader,
    ImapSecurity,
    ImapSettings,
)
from services.incoming.loops import SenderHold, loop_reason
from services.incoming.parse import ParsedMail, parse_mail, storable
from services.incoming.reader_lease import LeaseState
from services.mail.identity import message_id_domain
from services.mail.leases import instance_id
from services.secrets import SecretStore
from services.store import queries
from services.store.database import Database
from services.store.models import Conversation, Email, Follower, Item, Message, Person
from services.views import ChangeKind

__all__ = [
    "IncomingMail",
    "IncomingResult",
    "MailPolicy",
    "Route",
    "own_address",
    "route_incoming",
]

log = logging.getLogger(__name__)

_SUBJECT_NUMBER = re.compile(r"\[#(\d{1,9})\]")
_REPLY_PREFIX = re.compile(r"^\s*((re|aw|sv|fw|fwd|wg|tr)\s*(\[\d+\])?\s*:\s*)+", re.IGNORECASE)
# Headers that carry the address a mail was delivered to; a token there is a reply address.
_ADDRESS_HEADERS = ("Delivered-To", "X-Original-To", "Envelope-To")
# The IMAP reader's lease on its mailbox: renewed at a third of it while reading (I1).
READER_LEASE_S = 60.0
_HOLD_REPLAY_ROWS = 200  # the hold decides on >15 mails: a few hundred rows rebuild it exactly


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
    default_delay_s: int


@dataclass(frozen=True, slots=True)
class Route:
    """Where a threaded mail goes, and how it was found."""

    conversation: Conversation
    found_by: str  # "token in address" | "token in In-Reply-To" | "[#N] in subject"


# Called after a message is posted or an item created, in the same transaction: the
# service fires its automations (M1) and system emails from here.
PostedHook = Callable[[AsyncSession, Message, Conversation, Person], Awaitable[None]]
CreatedHook = Callable[[AsyncSession, Item], Awaitable[None]]
PersonHook = Callable[[AsyncSession, Person], Awaitable[None]]
# Stores the IMAP position in the transaction of the mail(s) it follows.
SaveHook = Callable[[AsyncSession], Awaitable[None]]


def own_address(addr: str | None, own: str) -> bool:
    """Our own address, or a plus-addressed variant of it (our reply addresses)."""
    if not addr or "@" not in own:
        return False
    local, _, domain = addr.lower().rpartition("@")
    own_local, _, own_domain = own.lower().rpartition("@")
    return domain == own_domain and local.split("+", 1)[0] == own_local


async def _hold_reason(
    session: AsyncSession, hold: SenderHold, sender: str, now: datetime, *, row_id: int
) -> str | None:
    # Replay this sender's recent log rows into a fresh hold: no state lives in memory, so
    # a restart or a second process decides the same way.
    since = now - hold.window - hold.hold_for
    times = (
        (
            await session.execute(
                select(Email.created_at)
                .where(
                    Email.from_addr == sender,
                    Email.created_at >= since,
                    Email.direction == "in",
                    Email.id != row_id,
                )
                .order_by(Email.created_at.desc(), Email.id.desc())
                .limit(_HOLD_REPLAY_ROWS)
            )
        )
        .scalars()
        .all()
    )
    for at in reversed(times):
        hold.record(sender, at)
    return hold.record(sender, now)


async def _is_follower(session: AsyncSession, conv: Conversation, person: Person) -> bool:
    return any(p.id == person.id for p in await queries.audience(session, conv))


async def _conversation_for(
    session: AsyncSession, conv: Conversation, sender: Person
) -> Conversation | None:
    """I3: a customer's reply always goes to the item's external conversation."""
    if sender.kind == PersonKind.CUSTOMER:
        if conv.item_id is None:
            return None
        if conv.kind != ConversationKind.EXTERNAL:
            return await queries.conversation_for_item(
                session, conv.item_id, ConversationKind.EXTERNAL
            )
    return conv


async def _by_token(
    session: AsyncSession, texts: Iterable[str], key: bytes, sender: Person
) -> Conversation | None:
    found = find_token(" ".join(texts), key=key)
    if found is None:
        return None
    conversation_id, recipient_id = found
    conv = await session.get(Conversation, conversation_id)
    if conv is None:
        return None
    # A genuine token forwarded to someone else threads only for its recipient or a
    # follower; anyone else falls through to the other rules, never into this conversation.
    if sender.id != recipient_id and not await _is_follower(session, conv, sender):
        return None
    return await _conversation_for(session, conv, sender)


async def _by_subject(session: AsyncSession, subject: str, sender: Person) -> Conversation | None:
    for match in _SUBJECT_NUMBER.finditer(subject):
        item = await session.scalar(select(Item).where(Item.number == int(match.group(1))))
        if item is None:
            continue
        if await session.get(Follower, (item.id, sender.id)) is None:
            continue  # I2: [#N] counts only when the sender follows item N
        kind = (
            ConversationKind.EXTERNAL
            if sender.kind == PersonKind.CUSTOMER
            else ConversationKind.INTERNAL
        )
        return await queries.conversation_for_item(session, item.id, kind)
    return None


async def find_route(
    session: AsyncSession, mail: ParsedMail, *, sender: Person, key: bytes
) -> Route | None:
    """I2: by the token in a delivery address, then in the threading ids, then by `[#N]`."""
    addresses = [*mail.to_addrs, *mail.cc_addrs]
    for header in _ADDRESS_HEADERS:
        addresses.extend(mail.header_values(header))
    conv = await _by_token(session, addresses, key, sender)
    if conv is not None:
        return Route(conversation=conv, found_by="token in address")
    conv = await _by_token(session, [*mail.in_reply_to, *mail.references], key, sender)
    if conv is not None:
        return Route(conversation=conv, found_by="token in In-Reply-To/References")
    conv = await _by_subject(session, mail.subject, sender)
    if conv is not None:
        return Route(conversation=conv, found_by="[#N] in subject")
    return None


def _title(mail: ParsedMail, text: str) -> str:
    subject = _SUBJECT_NUMBER.sub(" ", _REPLY_PREFIX.sub("", mail.subject))
    title = clean_header_text(subject, max_len=ops.MAX_TITLE_CHARS)
    if not title:
        words = " ".join(text.split()[:12])
        title = clean_header_text(words, max_len=80)
    return title or f"Email from {mail.from_addr}"


def _display_name(mail: ParsedMail) -> str:
    name = clean_header_text(mail.from_name, max_len=ops.MAX_NAME_CHARS)
    return name or (mail.from_addr or "unknown").split("@", 1)[0] or "Customer"


def _log_row(raw: bytes, mail: ParsedMail, now: datetime) -> Email:
    from_addr = mail.from_addr or clean_header_text(mail.header("From") or "", max_len=300)
    return Email(
        direction="in",
        kind="incoming",
        status=EmailStatus.RECEIVED,
        uid=uuid.uuid4().hex,
        message_id=f"<{mail.message_id}>"[:300] if mail.message_id else None,
        from_addr=from_addr,
        to_addrs=list(mail.to_addrs),
        subject=clean_header_text(mail.subject, max_len=500) if mail.subject else "",
        body_text=mail.text,
        raw=raw,
        created_at=now,
    )


async def route_incoming(
    session: AsyncSession,
    *,
    raw: bytes,
    mail: ParsedMail,
    now: datetime,
    policy: MailPolicy,
    on_posted: PostedHook,
    on_item_created: CreatedHook,
    on_person_created: PersonHook,
    hold: SenderHold | None = None,
) -> IncomingResult:
    """Log one incoming mail and do what it asks, in the caller's transaction (I2-I7, M6)."""
    row = _log_row(raw, mail, now)
    session.add(row)
    await session.flush()
    queries.add_change(session, kind=ChangeKind.EMAIL, at=now)

    def ignore(reason: str) -> IncomingResult:
        row.status = EmailStatus.IGNORED
        row.action = "ignored"
        row.reason = reason[:500]
        return IncomingResult(
            email_id=row.id, status=EmailStatus.IGNORED, action="ignored", reason=row.reason
        )

    if looks_like_report(mail) and (report := read_report(raw)) is not None:
        # E7: a bounce for an email we sent, before the loop rules that would ignore it.
        bounce = await apply_report(session, report=report, now=now, key=policy.token_key)
        if bounce.email_id is None:
            return ignore(f"delivery report that {bounce.action}")
        row.action, row.reason = bounce.action, bounce.found_by
        row.conversation_id, row.item_number = bounce.conversation_id, bounce.item_number
        return IncomingResult(
            email_id=row.id,
            status=EmailStatus.RECEIVED,
            action=bounce.action,
            reason=bounce.found_by,
            item_number=bounce.item_number,
            conversation_id=bounce.conversation_id,
        )
    sender_addr = mail.from_addr
    if sender_addr is None:
        bad = ", ".join(mail.defects) or "no From address"
        return ignore(f"malformed mail: no usable sender ({bad})")
    loop = loop_reason(
        mail,
        own_addresses=(policy.own_address,),
        own_domains=(message_id_domain(policy.own_address),),
        loop_tag=LOOP_TAG,
    )
    if loop is None and own_address(sender_addr, policy.own_address):
        loop = f"sent from our own address ({sender_addr})"
    # Every mail counts towards the hold, even one ignored for another reason.
    held = await _hold_reason(session, hold or SenderHold(), sender_addr, now, row_id=row.id)
    if loop is not None:
        return ignore(loop)
    if held is not None:
        return ignore(held)

    # A new item's request may be all forwarded or quoted text: then it is the whole mail.
    text = mail.reply_text or mail.text
    sender = await session.scalar(select(Person).where(Person.email == sender_addr))
    route = (
        await find_route(session, mail, sender=sender, key=policy.token_key)
        if sender is not None
        else None
    )
    if route is not None:
        assert sender is not None
        if not mail.reply_text and mail.text:
            # Posting the quoted history would email it to every follower again (I4).
            return ignore("no new text: the reply only quotes earlier mail")
        conv = route.conversation
        try:
            new = await ops.post_message(
                session,
                conversation=conv,
                author=sender,
                text=text,
                now=now,
                default_delay_s=policy.default_delay_s,
                source="email",
                email_id=row.id,
            )
        except DeskbellError as exc:
            return ignore(f"could not post into conversation {conv.id}: {exc}")
        item = await session.get(Item, conv.item_id) if conv.item_id is not None else None
        action = (
            f"threaded into #{item.number}"
            if item is not None
            else f"threaded into conversation {conv.id}"
        )
        row.action = action
        row.reason = route.found_by
        row.conversation_id = conv.id
        row.item_number = item.number if item is not None else None
        await on_posted(session, new.message, conv, sender)
        return IncomingResult(
            email_id=row.id,
            status=EmailStatus.RECEIVED,
            action=action,
            reason=route.found_by,
            item_number=row.item_number,
            conversation_id=conv.id,
            message_id=new.message.id,
        )

    if sender is not None and sender.kind == PersonKind.USER:
        return ignore("no conversation found")
    if not policy.create_items:
        return ignore("no conversation found, and new items from mail are turned off")
    return await _create_item(
        session,
        row=row,
        mail=mail,
        text=text or mail.subject,
        sender=sender,
        now=now,
        policy=policy,
        ignore=ignore,
        on_posted=on_posted,
        on_item_created=on_item_created,
        on_person_created=on_person_created,
    )


async def _create_item(
    session: AsyncSession,
    *,
    row: Email,
    mail: ParsedMail,
    text: str,
    sender: Person | None,
    now: datetime,
    policy: MailPolicy,
    ignore: Callable[[str], IncomingResult],
    on_posted: PostedHook,
    on_item_created: CreatedHook,
    on_person_created: PersonHook,
) -> IncomingResult:
    """I5: a new item with the sender as customer, requester and follower."""
    assert mail.from_addr is not None
    try:
        ops.clean_message_text(text)
    except DeskbellError:
        return ignore("the mail has neither text nor subject")
    # A failure from here on has written half an item: it propagates, and the caller rolls
    # the transaction back and logs the mail as ignored with the error.
    if sender is None:
        sender = await ops.add_person(
            session,
            email=mail.from_addr,
            name=_display_name(mail),
            kind=PersonKind.CUSTOMER,
            now=now,
            is_admin=False,
        )
        await on_person_created(session, sender)
    item = await ops.create_item(
        session, title=_title(mail, text), followers=[sender], requester=sender, now=now
    )
    await on_item_created(session, item)
    conv = await queries.conversation_for_item(session, item.id, ConversationKind.EXTERNAL)
    new = await ops.post_message(
        session,
        conversation=conv,
        author=sender,
        text=text,
        now=now,
        default_delay_s=policy.default_delay_s,
        source="email",
        email_id=row.id,
    )
    action = f"created #{item.number}"
    row.action = action
    row.conversation_id = conv.id
    row.item_number = item.number
    await on_posted(session, new.message, conv, sender)
    return IncomingResult(
        email_id=row.id,
        status=EmailStatus.RECEIVED,
        action=action,
        item_number=item.number,
        conversation_id=conv.id,
        message_id=new.message.id,
    )


async def _parse_off_loop(raws: Sequence[bytes]) -> list[ParsedMail]:
    """Parse in a worker thread: a crafted mail costs up to about a second of CPU (the
    parser's bounds, services/incoming/parse.py), which must not stall the event loop."""
    return await asyncio.to_thread(lambda: [parse_mail(raw) for raw in raws])


class IncomingMail:
    """The service's incoming side: `receive` (one raw mail), and the IMAP reader's life.

    Owned by `services.api.Service`, which hands in its settings, clock, keyring and the
    hooks that fire automations; the UI and the command line reach it through the Service.
    """

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        db: Database,
        clock: Clock,
        secrets: SecretStore,
        config: Callable[[str], str],
        policy: Callable[[], MailPolicy],
        on_posted: PostedHook,
        on_item_created: CreatedHook,
        on_person_created: PersonHook,
        on_written: Callable[[], None],
    ) -> None:
        self._sessions = sessions
        self._db = db
        self._owner = instance_id()
        self._clock = clock
        self._secrets = secrets
        self._config = config
        self._policy = policy
        self._on_posted = on_posted
        self._on_item_created = on_item_created
        self._on_person_created = on_person_created
        self._on_written = on_written
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.reader: ImapReader | None = None

    async def receive(self, raw: bytes) -> IncomingResult:
        """Process one raw email exactly as if fetched (I2-I7). Never raises for a bad mail;
        raises only when even the log row cannot be written (the database is unusable)."""
        return await self._receive_one(raw)

    async def _route(
        self, session: AsyncSession, raw: bytes, mail: ParsedMail, policy: MailPolicy
    ) -> IncomingResult:
        return await route_incoming(
            session,
            raw=raw,
            mail=mail,
            now=self._clock.now(),
            policy=policy,
            on_posted=self._on_posted,
            on_item_created=self._on_item_created,
            on_person_created=self._on_person_created,
        )

    async def _receive_one(self, raw: bytes, *, save: SaveHook | None = None) -> IncomingResult:
        """One mail in its own transaction, with `save` (the IMAP position) in the same one."""
        policy = self._policy()
        [mail] = await _parse_off_loop([raw])
        try:
            async with self._sessions.begin() as session:
                result = await self._route(session, raw, mail, policy)
                if save is not None:
                    await save(session)
        except StoreError:  # locked, full, read-only: not the mail's fault; it comes again
            raise
        except Exception as exc:  # I7: rolled back; the mail is still logged, as ignored
            reason = storable(f"could not be processed: {type(exc).__name__}: {exc}")
            # One line (`deskbell mail receive` prints what it did, not a traceback).
            log.warning("an incoming mail is logged as ignored: %s", reason)
            log.debug("the failure", exc_info=True)
            result = await self._log_ignored(raw, mail, reason, save=save)
        self._on_written()
        return result

    async def _log_ignored(
        self, raw: bytes, mail: ParsedMail, reason: str, *, save: SaveHook | None
    ) -> IncomingResult:
        """The log row of a mail that could not be processed, with `save` (the IMAP position:
        the reader moves past it). Its text is storable and bounded (parse_mail), so only an
        unusable database makes this raise."""
        now = self._clock.now()
        async with self._sessions.begin() as session:
            row = _log_row(raw, mail, now)
            row.status = EmailStatus.IGNORED
            row.action = "ignored"
            row.reason = reason[:500]
            session.add(row)
            await session.flush()
            queries.add_change(session, kind=ChangeKind.EMAIL, at=now)
            if save is not None:
                await save(session)
        return IncomingResult(
            email_id=row.id, status=EmailStatus.IGNORED, action="ignored", reason=row.reason
        )

    async def _receive_batch(
        self, raws: Sequence[bytes], *, save: SaveHook
    ) -> list[IncomingResult]:
        """Many mails and `save` in one transaction: one commit, automations read once.

        Raises if any mail fails, with nothing written: the caller then goes one by one.
        """
        policy = self._policy()
        mails = await _parse_off_loop(raws)
        async with self._sessions.begin() as session:
            results = [
                await self._route(session, raw, mail, policy)
                for raw, mail in zip(raws, mails, strict=True)
            ]
            await save(session)
        if results:
            self._on_written()
        return results

    async def _imap_batch(
        self, cursor: DbImapCursor, messages: Sequence[ImapMessage], end: ImapPosition
    ) -> None:
        """The reader's batch: its mails and the cursor commit together (I1)."""

        def save_at(uid: int) -> SaveHook:
            async def save(session: AsyncSession) -> None:
                await cursor.save_in(
                    session, folder=end.folder, uidvalidity=end.uidvalidity, uid=uid
                )

            return save

        try:
            results = await self._receive_batch([m.raw for m in messages], save=save_at(end.uid))
        except Exception:
            # One mail broke the batch (all of it rolled back): redo it mail by mail, so that
            # only that one is logged as ignored (I7); each commits with its own position.
            log.exception("a batch of %d incoming mails failed; one by one now", len(messages))
            results = []
            for n, message in enumerate(messages):
                uid = end.uid if n == len(messages) - 1 else message.uid
                results.append(await self._receive_one(message.raw, save=save_at(uid)))
            if not messages:
                await cursor.save(end.folder, end.uidvalidity, end.uid)
        for result in results:
            log.info("IMAP mail: %s", result)

    # --- IMAP (I1) -----------------------------------------------------------------------

    def set_password(self, password: str) -> None:
        if not password or "\n" in password or "\r" in password:
            raise InputError("the password is empty or contains a line break")
        self._secrets.set(name="imap", value=password)

    def settings(self) -> ImapSettings | None:
        host = self._config("imap.host")
        if not host:
            return None
        choice = self._config("imap.security")
        security: ImapSecurity
        if choice == "tls":
            security = "tls"
        elif choice == "starttls":
            security = "starttls"
        elif choice == "none":
            security = "none"
        else:
            raise InputError(f"unknown IMAP security {choice!r}")
        return ImapSettings(
            host=host,
            port=int(self._config("imap.port")),
            security=security,
            username=self._config("imap.username"),
            password=self._secrets.get(name="imap") or "",
            folder=self._config("imap.folder") or "INBOX",
            # The SMTP setting's extra CA file serves the mailbox too (one local CA).
            cafile=self._config("smtp.cafile") or None,
        )

    def reader_for(self, settings: ImapSettings) -> ImapReader:
        """The reader the service runs for `settings` (batches committed with the cursor)."""
        cursor = DbImapCursor(
            self._sessions,
            account=account_key(username=settings.username, host=settings.host, port=settings.port),
            clock=self._clock,
        )

        async def handle_batch(messages: Sequence[ImapMessage], end: ImapPosition) -> None:
            await self._imap_batch(cursor, messages, end)

        return ImapReader(settings, cursor=cursor, handle_batch=handle_batch)

    async def test(self) -> str:
        """Settings' "Test connection": a summary, or MailboxError with what is wrong."""
        settings = self.settings()
        if settings is None:
            raise InputError("set the IMAP host first")
        return await self.reader_for(settings).check()

    async def start(self, *, poll_interval_s: float = 60.0) -> bool:
        """Run the IMAP reader in the background when imap.host is set; whether it runs.

        One process of a workspace reads a mailbox at a time (issue 9): this one reads while
        it holds the mailbox's lease, and otherwise waits for it (`reader` is None meanwhile).
        """
        settings = self.settings()
        if settings is None or self._task is not None:
            return self._task is not None
        self._stop.clear()
        self._task = asyncio.create_task(
            self._read_while_leased(settings, poll_interval_s), name="deskbell-imap"
        )
        return True

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            self._stop.set()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.reader = None

    async def _read_while_leased(self, settings: ImapSettings, poll_interval_s: float) -> None:
        account = account_key(username=settings.username, host=settings.host, port=settings.port)
        wake = asyncio.Event()
        stopping = asyncio.ensure_future(self._stop.wait())
        stopping.add_done_callback(lambda _: wake.set())
        unwatch = await self._db.watch(wake.set)  # the holder may give the lease up
        try:
            while not self._stop.is_set():
                wake.clear()
                state = await self._take_lease(account)
                if state is not None and state.held:
                    await self._read_leased(settings, account, poll_interval_s, wake)
                    continue
                # Someone else reads it: look again when its lease runs out, or sooner if
                # the database changes (it may have stopped); a fault: after a pause.
                retry = self._clock.now() + timedelta(seconds=READER_LEASE_S / 3)
                ends_at = state.ends_at if state is not None else retry
                await self._clock.sleep_until(ends_at or retry, wake)
        finally:
            unwatch()
            stopping.cancel()

    async def _take_lease(self, account: str) -> LeaseState | None:
        try:
            return await self._db.write(
                reader_lease.take,
                account=account,
                owner=self._owner,
                now=self._clock.now(),
                span_s=READER_LEASE_S,
            )
        except StoreError as exc:
            log.warning("could not take the mailbox's reading lease: %s", exc)
            return None

    async def _read_leased(
        self, settings: ImapSettings, account: str, poll_interval_s: float, wake: asyncio.Event
    ) -> None:
        """Read while the lease holds, renewing it at a third of its span; give it up after."""
        stop_reader = asyncio.Event()
        self.reader = reader = self.reader_for(settings)
        reading = asyncio.create_task(reader.run(stop_reader, poll_interval_s=poll_interval_s))
        reading.add_done_callback(lambda _: wake.set())
        try:
            while not self._stop.is_set() and not reading.done():
                wake.clear()
                renew_at = self._clock.now() + timedelta(seconds=READER_LEASE_S / 3)
                await self._clock.sleep_until(renew_at, wake)
                if self._stop.is_set() or reading.done():
                    break
                if self._clock.now() < renew_at:
                    continue  # woken by a database change: nothing to renew yet
                state = await self._take_lease(account)
                if state is not None and not state.held:
                    log.warning("another process reads the mailbox now; this one stops reading")
                    break
        finally:
            stop_reader.set()
            with contextlib.suppress(asyncio.CancelledError):
                await reading
            self.reader = None
            # Bounded: a lease that cannot be given up runs out on its own.
            with contextlib.suppress(StoreError, TimeoutError):
                async with asyncio.timeout(5):
                    await asyncio.shield(
                        self._db.write(reader_lease.give_up, account=account, owner=self._owner)
                    )
