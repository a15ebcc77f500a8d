"""The service's public API: the one module the desktop UI and the command line use.

`Service` owns the database, the change feed, the fallback scheduler and the outbox. Reads and
writes are `async` methods taking and returning plain data (`services.views`); every write
returns what it changed. Background work starts with `start()` (the desktop app and
`deskbell serve`); a one-shot command line call writes and leaves the sending to them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets as pysecrets
import uuid
from collections.abc import Callable, Coroutine, Iterable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services import conversations as ops
from services import system_emails as sysmail
from services.automations import (
    AutomationCache,
    AutomationEvent,
    AutomationInfo,
    Automations,
    FireResult,
    Trigger,
    seed_automations,
)
from services.automations import fire as fire_automations
from services.clock import Clock, SystemClock
from services.config import KEYS, parse_value, usable_settings
from services.domain.email_plan import AUTO_HEADERS
from services.domain.headers import check_header_text, format_address, normalize_address
from services.domain.mime import compose
from services.domain.model import (
    ITEM_STATUSES,
    ConversationKind,
    DeliveryState,
    EmailStatus,
    NotificationSettings,
    PersonKind,
)
from services.domain.schedule import (
    REASON_DELETED,
    DndChoice,
    check_dnd_window,
    dnd_ends_at,
    dnd_until_choice,
    in_do_not_disturb,
)
from services.email_log import LOG_WINDOW, PURGE_EVERY, EmailDetail, EmailLog
from services.errors import (
    InputError,
    MailServerError,
    MailServerUnreachableError,
    NotFoundError,
    PermissionDeniedError,
    quoted,
)
from services.events import ChangeFeed, Listener
from services.fallback import FallbackScheduler, MailIdentity
from services.inbox_reads import InboxReads
from services.incoming.router import IncomingMail, IncomingResult, MailPolicy
from services.mail.outbox import OutboxWorker
from services.mail.smtp import Outgoing, Security, SmtpSender, SmtpSettings, SmtpVerdict
from services.retry_log import RetryLog
from services.secrets import SecretStore
from services.store import queries
from services.store.database import Database
from services.store.db import Store, open_store, sqlite_url
from services.store.models import (
    Automation,
    Conversation,
    Delivery,
    Email,
    EmailTemplate,
    Item,
    Message,
    Person,
    Setting,
)
from services.system_emails import ResetRequest, SystemEmailInfo, SystemEmails
from services.template_store import (
    NEW_MESSAGE,
    RenderedEmail,
    TemplateInfo,
    TemplateStore,
    notification_renderer,
    seed_templates,
)
from services.templates import TemplateError, TemplateRenderer
from services.views import (
    BounceInfo,
    ChangeEvent,
    ChangeKind,
    Changes,
    ConversationInfo,
    ConversationRow,
    EmailedEntry,
    EmailLogEntry,
    Inbox,
    ItemInfo,
    MessageRow,
    MessageStatus,
    PersonInfo,
    PostResult,
    SeenEntry,
    UnseenCounts,
)

__all__ = [
    "LOG_WINDOW",
    "PURGE_EVERY",
    "AutomationInfo",
    "BounceInfo",
    "ChangeEvent",
    "ChangeKind",
    "Changes",
    "ConversationInfo",
    "ConversationKind",
    "ConversationRow",
    "DndChoice",
    "EmailDetail",
    "EmailLogEntry",
    "EmailedEntry",
    "Inbox",
    "IncomingResult",
    "ItemInfo",
    "MessageRow",
    "MessageStatus",
    "NotificationSettings",
    "PersonInfo",
    "PersonKind",
    "PostResult",
    "RenderedEmail",
    "ResetRequest",
    "SeenEntry",
    "Service",
    "SystemEmailInfo",
    "TemplateError",
    "TemplateInfo",
    "UnseenCounts",
    "dnd_ends_at",
    "dnd_until_choice",
    "in_do_not_disturb",
    "validate_address",
    "validate_name",
]

log = logging.getLogger(__name__)

TOKEN_KEY_SETTING = "secret.token_key"


def validate_address(addr: str) -> str:
    """The normalised form of an email address typed by a person; InputError if it is not one.

    For the UI, which must not reach into `services.domain` (first-run dialog, settings).
    """
    return normalize_address(addr)


def validate_name(name: str) -> str:
    """A person's name as typed; InputError where the service would refuse it (a line break or
    a control character: names go into email headers). Text that looks like an encoded word
    ("=?") is a name like any other: headers encode it when they are built. For the UI."""
    return check_header_text(name, field="the name")


class Service(InboxReads, EmailLog):
    """Deskbell's embedded service. Open with `await Service.open(...)`, close with `close()`."""

    def __init__(self, store: Store, *, db: Database, clock: Clock, secrets: SecretStore) -> None:
        self.store = store
        self.db = db
        self.clock = clock
        self.secrets = secrets
        self._sessions = store.sessions
        self.feed = ChangeFeed(db, clock=clock)
        self._config: dict[str, str] = {}
        self._refused: dict[str, str] = {}  # stored settings refused at load: key, why
        self._token_key = b""
        self.outbox = OutboxWorker(
            db,
            clock=clock,
            smtp_settings=self.smtp_settings,
            lease=lambda: timedelta(seconds=int(self.config("outbox.lease_s"))),
            bounce_key=lambda: self._token_key,
            on_change=self.feed.poke,
        )
        self.scheduler = FallbackScheduler(
            db,
            clock=clock,
            identity=self.mail_identity,
            renderer=self.template_renderer,
            on_queued=self._on_queued,
        )
        self._running = False
        self._imap_started_with: tuple[str, ...] = ()
        self.feed.subscribe(self._on_feed)
        # The Messaging Center (M1-M5): sub-APIs that share the store, clock and mail identity.
        self._renderer = TemplateRenderer()
        self._purge_task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._automation_cache = AutomationCache()
        self.automations = Automations(
            store.sessions, clock=clock, on_change=self._templates_changed
        )
        self.templates = TemplateStore(
            store.sessions,
            clock=clock,
            identity=self.mail_identity,
            on_change=self._templates_changed,
            on_queued=self._on_queued,
        )
        # Incoming mail (I1-I7): receive_mail, the IMAP reader, test_imap.
        self.incoming = IncomingMail(
            store.sessions,
            db=db,
            clock=clock,
            secrets=self.secrets,
            config=self.config,
            policy=self._mail_policy,
            on_posted=self._on_mail_posted,
            on_item_created=self._on_mail_item_created,
            on_person_created=self._on_person_created,
            on_written=self._on_queued,
        )
        self.system_emails = SystemEmails(
            store.sessions,
            clock=clock,
            identity=self.mail_identity,
            on_change=self._wrote,
            on_queued=self._on_queued,
        )

    # --- life cycle ------------------------------------------------------------------------

    @classmethod
    async def open(
        cls,
        *,
        data_dir: Path | None = None,
        url: str | None = None,
        clock: Clock | None = None,
        secrets: SecretStore | None = None,
    ) -> Service:
        if url is None:
            if data_dir is None:
                raise ValueError("give a data folder or a database URL")
            url = sqlite_url(data_dir)
        clock = clock or SystemClock()
        store = await open_store(url, now=clock.now())
        try:
            # The one-hop database worker (issue 9); modules move onto it from `store`.
            db = await Database.open(url)
        except BaseException:
            await store.close()
            raise
        try:
            service = cls(store, db=db, clock=clock, secrets=secrets or SecretStore())
            await service._load_config()
            await service._seed_messaging_center()
        except BaseException:  # a read-only or full database met after opening: close it
            await db.close()
            await store.close()
            raise
        return service

    @property
    def notice(self) -> str | None:
        """Something a person should read about start-up (a repaired database), or None."""
        return self.store.notice

    async def start(self) -> None:
        """Run the background work: change feed, fallback scheduler, outbox."""
        await self.feed.start()
        self.scheduler.start()
        self.outbox.start()
        self._purge_task = asyncio.create_task(self._upkeep_forever(), name="deskbell-upkeep")
        await self._start_incoming()
        self._running = True

    async def _start_incoming(self) -> None:
        """The IMAP reader, when imap.host is set (I1), with the settings it started with."""
        self._imap_started_with = self._imap_signature()
        await self.incoming.start()

    def _imap_signature(self) -> tuple[str, ...]:
        return tuple(self.config(k) for k in sorted(KEYS) if k.startswith("imap."))

    async def _restart_incoming_if_changed(self, *, force: bool = False) -> None:
        """New mailbox settings take effect at once, not at the next launch."""
        if self._running and (force or self._imap_signature() != self._imap_started_with):
            await self.incoming.stop()
            await self._start_incoming()

    async def close(self) -> None:
        if self._purge_task is not None:
            self._purge_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._purge_task
            self._purge_task = None
        await self.incoming.stop()  # also when started alone (its reader holds a lease)
        if self._running:
            await self.outbox.stop()
            await self.scheduler.stop()
            await self.feed.stop()
            self._running = False
        await self.db.close()
        await self.store.close()

    async def _upkeep_forever(self) -> None:
        """Hourly: the email log past 72 hours (M6) and the change feed past its window."""
        retry = RetryLog(log, "purging old log entries and changes")
        while True:
            try:
                removed = await self.purge_log()
                if removed:
                    log.info("purged %d log entries older than 72 hours", removed)
                await self.feed.purge()
                retry.succeeded()
            except Exception as exc:
                retry.failed(exc)
            await asyncio.sleep(PURGE_EVERY.total_seconds())

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Change events from any process, in batches, within 0.5 s (needs `start()`)."""
        return self.feed.subscribe(listener)

    def wake(self) -> None:
        """Re-check deadlines now (after a resume from sleep, for instance: E8)."""
        self.scheduler.wake()
        self.outbox.wake()

    def _on_queued(self) -> None:
        self.outbox.wake()
        self.feed.poke()

    def _on_feed(self, events: Sequence[ChangeEvent]) -> None:
        kinds = {e.kind for e in events}
        if kinds & {
            ChangeKind.MESSAGE,
            ChangeKind.SEEN,
            ChangeKind.PERSON,
            ChangeKind.SETTINGS,
            ChangeKind.FOLLOW,
        }:
            self.scheduler.wake()
        if kinds & {ChangeKind.EMAIL, ChangeKind.SETTINGS}:
            self.outbox.wake()
        if ChangeKind.SETTINGS in kinds:
            self._background(self._load_config())
        if ChangeKind.AUTOMATION in kinds:
            self._automation_cache.clear()
        if kinds & {ChangeKind.TEMPLATE, ChangeKind.AUTOMATION}:
            self._background(self._load_renderer())

    def _background(self, work: Coroutine[Any, Any, None]) -> None:
        # Keep a reference until done: the loop holds tasks only weakly.
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _wrote(self) -> None:
        self.feed.poke()

    # --- settings --------------------------------------------------------------------------

    async def _load_config(self) -> None:
        async with self._sessions.begin() as session:
            rows = (await session.execute(select(Setting))).scalars().all()
            values = {r.key: r.value for r in rows}
            if TOKEN_KEY_SETTING not in values:
                values[TOKEN_KEY_SETTING] = pysecrets.token_hex(32)
                session.add(Setting(key=TOKEN_KEY_SETTING, value=values[TOKEN_KEY_SETTING]))
        self._token_key = bytes.fromhex(values.pop(TOKEN_KEY_SETTING))
        self._config, self._refused = usable_settings(values)
        for key, reason in self._refused.items():
            log.warning(
                "a stored setting is refused: %s; using the default, %r", reason, KEYS[key].default
            )
        await self._restart_incoming_if_changed()

    def config(self, key: str) -> str:
        if key not in KEYS:
            raise InputError(f"unknown setting {quoted(key)}")
        return self._config.get(key, KEYS[key].default)

    async def set_config(self, key: str, value: str) -> Changes:
        stored = parse_value(key, value)
        now = self.clock.now()
        async with self._sessions.begin() as session:
            row = await session.get(Setting, key)
            if row is None:
                session.add(Setting(key=key, value=stored))
            else:
                row.value = stored
            queries.add_change(session, kind=ChangeKind.SETTINGS, at=now)
        self._config[key] = stored
        self._refused.pop(key, None)
        self._wrote()
        return Changes(emails=True)

    def mail_identity(self) -> MailIdentity:
        return MailIdentity(
            from_addr=self.config("smtp.from"),
            from_name=self.config("smtp.from_name"),
            token_key=self._token_key,
            default_delay_s=int(self.config("unseen_delay_s")),
        )

    @property
    def token_key(self) -> bytes:
        return self._token_key

    def template_renderer(self) -> TemplateRenderer:
        """The notification renderer: the stored new-message template and intro (E5, M1)."""
        return self._renderer

    async def smtp_settings(self) -> SmtpSettings | None:
        """None while no SMTP server is set; InputError while the stored one is refused."""
        host = self.config("smtp.host")
        if not host:
            if "smtp.host" in self._refused:
                # Its default, empty, means "no SMTP": say why nothing is sent, not go quiet.
                raise InputError(self._refused["smtp.host"])
            return None
        username = self.config("smtp.username") or None
        password = self.secrets.get(name="smtp") if username else None
        return SmtpSettings(
            host=host,
            port=int(self.config("smtp.port")),
            security=Security(self.config("smtp.security")),
            username=username,
            password=password,
            cafile=self.config("smtp.cafile") or None,
        )

    def set_smtp_password(self, password: str) -> None:
        if not password or "\n" in password or "\r" in password:
            raise InputError("the password is empty or contains a line break")
        self.secrets.set(name="smtp", value=password)

    async def test_smtp(self) -> str:
        """Connect, greet and log in with the current settings; returns the server's answer."""
        settings = await self.smtp_settings()
        if settings is None:
            raise InputError("set the SMTP host first")
        async with SmtpSender(settings=settings) as sender:
            return await sender.check()

    async def send_test_email(self, *, to: str) -> str:
        """Settings' "Send test email" (E9): a short plain email sent now, past the outbox.

        Returns the server's answer ("250 ..."); raises MailServerUnreachableError or
        MailServerError with the server's words. Logged in the email log with kind "test",
        as sent or failed, never pending, so the outbox leaves it alone.
        """
        address = normalize_address(to)
        settings = await self.smtp_settings()
        if settings is None:
            raise InputError("set the SMTP host first")
        identity = self.mail_identity()
        now = self.clock.now()
        uid = uuid.uuid4().hex
        subject = "Deskbell test email"
        body = (
            "This is a test email from Deskbell.\n\n"
            f"It was sent through {settings.host}:{settings.port} "
            f"({settings.security.value}). If you can read it, notification emails "
            "will reach people too.\n"
        )
        message_id = f"<test-{uid}@{identity.message_id_domain}>"
        raw = compose(
            headers=[
                ("From", format_address(name=identity.from_name, address=identity.from_addr)),
                ("To", address),
                ("Subject", subject),
                ("Message-ID", message_id),
                *AUTO_HEADERS,  # I6: our own mail coming back is recognised
            ],
            date=now,
            text=body,
        )
        async with SmtpSender(settings=settings) as sender:
            outcome = await sender.send(
                Outgoing(key=0, sender=identity.from_addr, recipients=(address,), data=raw)
            )
        sent = outcome.verdict is SmtpVerdict.SENT
        answer = f"{outcome.code} {outcome.reply}" if outcome.code is not None else outcome.reply
        async with self._sessions.begin() as session:
            session.add(
                Email(
                    direction="out",
                    kind="test",
                    status=EmailStatus.SENT if sent else EmailStatus.FAILED,
                    uid=uid,
                    message_id=message_id,
                    from_addr=identity.from_addr,
                    to_addrs=[address],
                    subject=subject,
                    body_text=body,
                    raw=raw,
                    attempts=1,
                    reply=answer,
                    reason=None if sent else answer,
                    created_at=now,
                    sent_at=now if sent else None,
                )
            )
            queries.add_change(session, kind=ChangeKind.EMAIL, at=now)
        self._wrote()
        if sent:
            return answer
        if outcome.code is None:
            raise MailServerUnreachableError(answer)
        raise MailServerError(f"the server refused the test email: {answer}")

    # --- incoming mail (I1-I7) -------------------------------------------------------------

    def _mail_policy(self) -> MailPolicy:
        return MailPolicy(
            own_address=self.config("smtp.from"),
            token_key=self._token_key,
            create_items=self.config("mail.create_items") == "true",
            default_delay_s=self._default_delay(),
        )

    async def _on_mail_posted(
        self, session: AsyncSession, message: Message, conv: Conversation, author: Person
    ) -> None:
        # Loop-checked mail was written by a person, so it fires like a post (M3 keeps
        # automatic mail out before it gets here).
        await self._fire(
            session,
            AutomationEvent(
                trigger=Trigger.MESSAGE_POSTED,
                actor_id=author.id,
                item_id=conv.item_id,
                message_id=message.id,
                conversation_kind=ConversationKind(conv.kind),
            ),
        )

    async def _on_mail_item_created(self, session: AsyncSession, item: Item) -> None:
        await self._fire(session, AutomationEvent(trigger=Trigger.ITEM_CREATED, item_id=item.id))

    async def receive_mail(self, raw: bytes) -> IncomingResult:
        """One raw incoming email, processed as if fetched: threaded, new item, or ignored."""
        return await self.incoming.receive(raw)

    def set_imap_password(self, password: str) -> None:
        self.incoming.set_password(password)
        if self._running:
            self._background(self._restart_incoming_if_changed(force=True))

    async def test_imap(self) -> str:
        """Settings' "Test connection" for the mailbox: a summary, or MailboxError."""
        return await self.incoming.test()

    # --- people ----------------------------------------------------------------------------

    def _default_delay(self) -> int:
        return int(self.config("unseen_delay_s"))

    def _info(self, person: Person) -> PersonInfo:
        return queries.person_info(person, default_delay_s=self._default_delay())

    async def add_person(
        self,
        *,
        email: str,
        name: str,
        kind: PersonKind = PersonKind.USER,
        is_admin: bool | None = None,
    ) -> PersonInfo:
        async with self._sessions.begin() as session:
            person = await ops.add_person(
                session, email=email, name=name, kind=kind, now=self.clock.now(), is_admin=is_admin
            )
            await self._on_person_created(session, person)
            info = self._info(person)
        self._on_queued()
        return info

    async def person(self, email: str) -> PersonInfo:
        async with self._sessions() as session:
            return self._info(await queries.person_by_email(session, normalize_address(email)))

    async def person_by_id(self, person_id: int) -> PersonInfo:
        async with self._sessions() as session:
            person = await session.get(Person, person_id)
            if person is None:
                raise NotFoundError(f"no person {person_id}")
            return self._info(person)

    async def people(self, *, kind: PersonKind | None = None) -> list[PersonInfo]:
        async with self._sessions() as session:
            stmt = select(Person).order_by(Person.name, Person.id)
            if kind is not None:
                stmt = stmt.where(Person.kind == kind)
            return [self._info(p) for p in (await session.execute(stmt)).scalars()]

    async def set_notification_settings(
        self, *, person_id: int, settings: NotificationSettings, acting_id: int | None = None
    ) -> PersonInfo:
        """R5, N6, M7: for oneself, or for another by an administrator."""
        if settings.delay_s is not None and settings.delay_s < 1:
            raise InputError("the delay must be at least one second")
        windows = [list(check_dnd_window(w)) for w in settings.dnd_weekly]
        async with self._sessions.begin() as session:
            person = await session.get(Person, person_id)
            if person is None:
                raise NotFoundError(f"no person {person_id}")
            if acting_id is not None and acting_id != person_id:
                actor = await session.get(Person, acting_id)
                if actor is None or not actor.is_admin:
                    raise PermissionDeniedError(
                        "only an administrator may change another's settings"
                    )
            person.notify_in_app = settings.in_app
            person.notify_email = settings.email
            person.notify_sound = settings.sound
            person.delay_s = queries.stored_delay(settings.delay_s)
            person.dnd_until = settings.dnd_until
            person.dnd_weekly = windows
            queries.add_change(
                session, kind=ChangeKind.PERSON, at=self.clock.now(), person_id=person_id
            )
            info = self._info(person)
        self._wrote()
        return info

    # --- items and conversations -----------------------------------------------------------

    async def create_item(
        self, *, title: str, followers: Iterable[str] = (), requester: str | None = None
    ) -> ItemInfo:
        async with self._sessions.begin() as session:
            people = [await queries.person_by_email(session, e) for e in followers]
            req = await queries.person_by_email(session, requester) if requester else None
            item = await ops.create_item(
                session, title=title, followers=people, requester=req, now=self.clock.now()
            )
            await self._fire(
                session, AutomationEvent(trigger=Trigger.ITEM_CREATED, item_id=item.id)
            )
            info = await self._item_info(session, item)
        self._on_queued()
        return info

    async def item(self, number: int) -> ItemInfo:
        async with self._sessions() as session:
            return await self._item_info(session, await queries.item_by_number(session, number))

    async def items(self) -> list[ItemInfo]:
        async with self._sessions() as session:
            rows = (await session.execute(select(Item).order_by(Item.number))).scalars().all()
            return [await self._item_info(session, i) for i in rows]

    async def _item_info(self, session: AsyncSession, item: Item) -> ItemInfo:
        convs = {
            c.kind: c.id
            for c in (
                await session.execute(select(Conversation).where(Conversation.item_id == item.id))
            ).scalars()
        }
        conv = await session.get(Conversation, convs[ConversationKind.INTERNAL])
        assert conv is not None
        followers = tuple(self._info(p) for p in await queries.audience(session, conv))
        requester = await session.get(Person, item.requester_id) if item.requester_id else None
        assignee = await session.get(Person, item.assignee_id) if item.assignee_id else None
        return ItemInfo(
            id=item.id,
            number=item.number,
            title=item.title,
            status=item.status,
            internal_conversation_id=convs[ConversationKind.INTERNAL],
            external_conversation_id=convs[ConversationKind.EXTERNAL],
            followers=followers,
            requester=self._info(requester) if requester else None,
            assignee=self._info(assignee) if assignee else None,
            created_at=item.created_at,
        )

    async def follow(self, *, number: int, email: str) -> Changes:
        async with self._sessions.begin() as session:
            item = await queries.item_by_number(session, number)
            person = await queries.person_by_email(session, email)
            await ops.follow(session, item=item, person=person, now=self.clock.now())
        self._wrote()
        return Changes(items=True)

    async def unfollow(self, *, number: int, email: str) -> Changes:
        async with self._sessions.begin() as session:
            item = await queries.item_by_number(session, number)
            person = await queries.person_by_email(session, email)
            await ops.unfollow(session, item=item, person=person, now=self.clock.now())
        self._wrote()
        return Changes(items=True)

    async def direct_conversation(self, *, a: str, b: str) -> int:
        async with self._sessions.begin() as session:
            conv = await ops.direct_conversation(
                session,
                a=await queries.person_by_email(session, a),
                b=await queries.person_by_email(session, b),
                now=self.clock.now(),
            )
            return conv.id

    async def conversation(self, conversation_id: int) -> ConversationInfo:
        async with self._sessions() as session:
            conv = await session.get(Conversation, conversation_id)
            if conv is None:
                raise NotFoundError(f"no conversation {conversation_id}")
            item = await session.get(Item, conv.item_id) if conv.item_id else None
            members = tuple(self._info(p) for p in await queries.audience(session, conv))
            title = item.title if item is not None else " & ".join(m.name for m in members)
            if conv.kind == ConversationKind.INTERNAL.value:
                # R2: an internal conversation is read by users only.
                members = tuple(m for m in members if m.kind == PersonKind.USER)
            return ConversationInfo(
                id=conv.id,
                kind=ConversationKind(conv.kind),
                item_number=item.number if item else None,
                title=title,
                members=members,
            )

    # --- messages --------------------------------------------------------------------------

    async def post(
        self,
        *,
        author: str,
        text: str,
        conversation_id: int | None = None,
        item_number: int | None = None,
        kind: ConversationKind | None = None,
    ) -> PostResult:
        """Post as `author` into a conversation, or into item N's internal/external one."""
        now = self.clock.now()
        async with self._sessions.begin() as session:
            person = await queries.person_by_email(session, author)
            if conversation_id is not None:
                conv = await session.get(Conversation, conversation_id)
                if conv is None:
                    raise NotFoundError(f"no conversation {conversation_id}")
            elif item_number is not None and kind is not None:
                conv = await queries.item_conversation(session, item_number, kind)
            else:
                raise InputError("say which conversation to post in")
            new = await ops.post_message(
                session,
                conversation=conv,
                author=person,
                text=text,
                now=now,
                default_delay_s=self._default_delay(),
            )
            fired = await self._fire(
                session,
                AutomationEvent(
                    trigger=Trigger.MESSAGE_POSTED,
                    actor_id=person.id,
                    item_id=conv.item_id,
                    message_id=new.message.id,
                    conversation_kind=ConversationKind(conv.kind),
                ),
            )
            result = PostResult(
                message_id=new.message.id,
                conversation_id=conv.id,
                recipients=new.recipient_ids,
                changes=Changes(
                    conversations=frozenset({conv.id}) | fired.conversations,
                    counts=True,
                    emails=bool(fired.emails),
                ),
            )
        self._on_queued()
        return result

    async def delete_message(self, *, message_id: int, acting: str) -> Changes:
        now = self.clock.now()
        async with self._sessions.begin() as session:
            message = await session.get(Message, message_id)
            if message is None or message.deleted_at is not None:
                raise NotFoundError(f"no message {message_id}")
            actor = await queries.person_by_email(session, acting)
            if message.author_id != actor.id and not actor.is_admin:
                raise PermissionDeniedError(
                    "only its author or an administrator may delete a message"
                )
            message.deleted_at = now
            # E3: a pending delivery will never be emailed; one already queued is left out by
            # the outbox's re-check. Either way the message stops counting as unseen (N3).
            await session.execute(
                update(Delivery)
                .where(Delivery.message_id == message_id, Delivery.state == DeliveryState.PENDING)
                .values(state=DeliveryState.SUPPRESSED, reason=REASON_DELETED)
            )
            await session.execute(
                update(Delivery)
                .where(Delivery.message_id == message_id, Delivery.seen_at.is_(None))
                .values(seen_at=now)
            )
            queries.add_change(
                session, kind=ChangeKind.MESSAGE, at=now, conversation_id=message.conversation_id
            )
        self._wrote()
        return Changes(conversations=frozenset({message.conversation_id}), counts=True)

    async def mark_seen(
        self, *, person_id: int, message_ids: Iterable[int], at: datetime | None = None
    ) -> Changes:
        """S2: record that `person_id` saw these messages (at `at`, default now)."""
        when = at or self.clock.now()
        async with self._sessions.begin() as session:
            convs = await queries.mark_seen_rows(
                session, person_id=person_id, message_ids=message_ids, at=when
            )
            for conv_id in convs:
                queries.add_change(
                    session,
                    kind=ChangeKind.SEEN,
                    at=when,
                    conversation_id=conv_id,
                    person_id=person_id,
                )
        if convs:
            self._wrote()
        return Changes(conversations=frozenset(convs), counts=bool(convs))

    async def mark_item_seen(self, *, number: int, email: str) -> Changes:
        """`deskbell seen N --as EMAIL`: everything EMAIL may see in item N."""
        async with self._sessions() as session:
            item = await queries.item_by_number(session, number)
            person = await queries.person_by_email(session, email)
            ids = (
                (
                    await session.execute(
                        select(Delivery.message_id)
                        .join(Conversation, Conversation.id == Delivery.conversation_id)
                        .where(
                            Conversation.item_id == item.id,
                            Delivery.recipient_id == person.id,
                            Delivery.seen_at.is_(None),
                        )
                    )
                )
                .scalars()
                .all()
            )
        return await self.mark_seen(person_id=person.id, message_ids=ids)

    # --- the Messaging Center: items, automations, templates (M1-M5) -------------------------

    async def _seed_messaging_center(self) -> None:
        """Built-in templates, system email switches and automations, once (then the admin's)."""
        async with self._sessions.begin() as session:
            now = self.clock.now()
            await seed_templates(session, now=now)
            await sysmail.seed_system_emails(session)
            await seed_automations(session, now=now)
        await self._load_renderer()

    async def _load_renderer(self) -> None:
        async with self._sessions() as session:
            template = await session.get(EmailTemplate, NEW_MESSAGE)
            intro = await session.scalar(
                select(Automation.text).where(Automation.critical.is_(True))
            )
        if template is not None:
            self._renderer = notification_renderer(
                intro=intro, body_text=template.body_text, body_html=template.body_html
            )

    async def _templates_changed(self) -> None:
        self._automation_cache.clear()
        await self._load_renderer()
        self._wrote()

    async def _fire(self, session: AsyncSession, event: AutomationEvent) -> FireResult:
        return await fire_automations(
            session,
            event,
            now=self.clock.now(),
            identity=self.mail_identity(),
            default_delay_s=self._default_delay(),
            cache=self._automation_cache,
        )

    async def _on_person_created(self, session: AsyncSession, person: Person) -> None:
        identity = self.mail_identity()
        await sysmail.on_person_created(
            session, person=person, now=self.clock.now(), identity=identity
        )
        await self._fire(
            session, AutomationEvent(trigger=Trigger.PERSON_CREATED, person_id=person.id)
        )

    async def set_item_status(
        self, *, number: int, status: str, acting: str | None = None
    ) -> ItemInfo:
        """Change item N's status; fires 'item status changed', and 'item closed' on closing."""
        wanted = status.strip().lower().replace("_", "-")
        if wanted not in ITEM_STATUSES:
            raise InputError(
                f"{quoted(status)} is not a status; one of: {', '.join(ITEM_STATUSES)}"
            )
        now = self.clock.now()
        async with self._sessions.begin() as session:
            item = await queries.item_by_number(session, number)
            actor = await queries.person_by_email(session, acting) if acting else None
            old = item.status
            if old != wanted:
                item.status = wanted
                item.updated_at = now
                queries.add_change(session, kind=ChangeKind.ITEM, at=now)
                base = AutomationEvent(
                    trigger=Trigger.ITEM_STATUS_CHANGED,
                    actor_id=actor.id if actor else None,
                    item_id=item.id,
                    old_status=old,
                    new_status=wanted,
                )
                await self._fire(session, base)
                if wanted == "closed":
                    await self._fire(session, replace(base, trigger=Trigger.ITEM_CLOSED))
            info = await self._item_info(session, item)
        self._on_queued()
        return info

    async def close_item(self, *, number: int, acting: str | None = None) -> ItemInfo:
        return await self.set_item_status(number=number, status="closed", acting=acting)

    async def assign_item(self, *, number: int, email: str | None) -> ItemInfo:
        """Assign item N to a user (who then follows it), or unassign with None."""
        now = self.clock.now()
        async with self._sessions.begin() as session:
            item = await queries.item_by_number(session, number)
            if email is None:
                item.assignee_id = None
            else:
                person = await queries.person_by_email(session, email)
                if person.kind != PersonKind.USER:
                    raise InputError(f"{person.email} is a customer: only users take items")
                item.assignee_id = person.id
                await ops.follow(session, item=item, person=person, now=now)
            item.updated_at = now
            queries.add_change(session, kind=ChangeKind.ITEM, at=now)
            info = await self._item_info(session, item)
        self._wrote()
        return info

    # --- internal helpers for the rest of the service --------------------------------------

    async def run_scheduler_once(self) -> datetime | None:
        """Queue what is due now (tests and benchmarks drive time by hand)."""
        return await self.scheduler.run_once()

    def known_settings(self) -> dict[str, str]:
        return {k: self.config(k) for k in sorted(KEYS)}

    # --- do not disturb for the desktop (N6) -----------------------------------------------

    def do_not_disturb(self, person: PersonInfo) -> bool:
        """N6: whether `person` is in do-not-disturb now (a menu choice or the weekly hours)."""
        return in_do_not_disturb(person.settings, now_local=self.clock.now().astimezone())

    async def set_do_not_disturb(self, *, person_id: int, choice: DndChoice | None) -> PersonInfo:
        """N6, tray menu: "30m", "1h", "tomorrow" (08:00), or None to end it now."""
        person = await self.person_by_id(person_id)
        until = (
            None
            if choice is None
            else dnd_until_choice(choice, now_local=self.clock.now().astimezone())
        )
        settings = replace(person.settings, dnd_until=until)
        return await self.set_notification_settings(person_id=person_id, settings=settings)
