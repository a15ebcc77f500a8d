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
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from email import policy
from email.parser import BytesParser
from pathlib import Path
from typing import Any

from sqlalchemy import Text, and_, cast, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased, defer

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
from services.config import KEYS, parse_value
from services.domain.email_plan import AUTO_HEADERS
from services.domain.headers import format_address, normalize_address
from services.domain.mime import compose
from services.domain.model import (
    ConversationKind,
    DeliveryState,
    EmailStatus,
    NotificationSettings,
    PersonKind,
)
from services.domain.recipients import may_see
from services.domain.schedule import (
    DndChoice,
    check_dnd_window,
    dnd_until_choice,
    in_do_not_disturb,
)
from services.errors import (
    InputError,
    MailServerError,
    MailServerUnreachableError,
    NotFoundError,
    PermissionDeniedError,
)
from services.events import ChangeFeed, Listener
from services.fallback import FallbackScheduler, MailIdentity
from services.incoming.router import IncomingMail, IncomingResult, MailPolicy
from services.mail.outbox import OutboxWorker
from services.mail.smtp import Outgoing, Security, SmtpSender, SmtpSettings, SmtpVerdict
from services.secrets import SecretStore
from services.store import queries
from services.store.db import Store, open_store, sqlite_url
from services.store.models import (
    Automation,
    Conversation,
    ConversationMember,
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
    ChangeEvent,
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
    "ChangeEvent",
    "Changes",
    "ConversationInfo",
    "ConversationKind",
    "ConversationRow",
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
    "validate_address",
]

log = logging.getLogger(__name__)

LOG_WINDOW = timedelta(hours=72)  # M6
PURGE_EVERY = timedelta(hours=1)  # M6: the log is purged in the background this often
TOKEN_KEY_SETTING = "secret.token_key"


def validate_address(addr: str) -> str:
    """The normalised form of an email address typed by a person; InputError if it is not one.

    For the UI, which must not reach into `services.domain` (first-run dialog, settings).
    """
    return normalize_address(addr)


@dataclass(frozen=True, slots=True)
class EmailDetail:
    """M6: one log entry in full: its headers, its plain-text body, the server's reply."""

    entry: EmailLogEntry
    headers: tuple[tuple[str, str], ...]
    body: str


class Service:
    """Deskbell's embedded service. Open with `await Service.open(...)`, close with `close()`."""

    def __init__(self, store: Store, *, clock: Clock, secrets: SecretStore) -> None:
        self.store = store
        self.clock = clock
        self.secrets = secrets
        self._sessions = store.sessions
        self.feed = ChangeFeed(store.sessions, clock=clock)
        self._config: dict[str, str] = {}
        self._token_key = b""
        self.outbox = OutboxWorker(
            store.sessions,
            clock=clock,
            smtp_settings=self.smtp_settings,
            lease=lambda: timedelta(seconds=int(self.config("outbox.lease_s"))),
            on_change=self.feed.poke,
        )
        self.scheduler = FallbackScheduler(
            store.sessions,
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
        service = cls(store, clock=clock, secrets=secrets or SecretStore())
        await service._load_config()
        await service._seed_messaging_center()
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
        self._purge_task = asyncio.create_task(self._purge_forever(), name="deskbell-log-purge")
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
        if self._running:
            await self.incoming.stop()
            await self.outbox.stop()
            await self.scheduler.stop()
            await self.feed.stop()
            self._running = False
        await self.store.close()

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
        if kinds & {"message", "seen", "person", "settings", "follow"}:
            self.scheduler.wake()
        if kinds & {"email", "settings"}:
            self.outbox.wake()
        if "settings" in kinds:
            self._background(self._load_config())
        if "automation" in kinds:
            self._automation_cache.clear()
        if kinds & {"template", "automation"}:
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
        self._config = values
        await self._restart_incoming_if_changed()

    def config(self, key: str) -> str:
        if key not in KEYS:
            raise InputError(f"unknown setting {key!r}")
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
            queries.add_change(session, kind="settings", at=now)
        self._config[key] = stored
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
        host = self.config("smtp.host")
        if not host:
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
            queries.add_change(session, kind="email", at=now)
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
            queries.add_change(session, kind="person", at=self.clock.now(), person_id=person_id)
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
        return Changes(items=True, conversations=frozenset())

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
                item = await queries.item_by_number(session, item_number)
                conv = await queries.conversation_for_item(session, item.id, kind)
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
            await session.execute(
                update(Delivery)
                .where(Delivery.message_id == message_id, Delivery.state == DeliveryState.PENDING)
                .values(state=DeliveryState.SUPPRESSED, reason="message deleted", seen_at=now)
            )
            queries.add_change(
                session, kind="message", at=now, conversation_id=message.conversation_id
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
                    session, kind="seen", at=when, conversation_id=conv_id, person_id=person_id
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

    async def unseen_counts(self, *, person_id: int) -> UnseenCounts:
        """N3: one query; the bubble, the tabs and the rows all read from it."""
        async with self._sessions() as session:
            rows = await session.execute(
                select(Delivery.conversation_id, Conversation.kind, func.count())
                .join(Conversation, Conversation.id == Delivery.conversation_id)
                .where(Delivery.recipient_id == person_id, Delivery.seen_at.is_(None))
                .group_by(Delivery.conversation_id, Conversation.kind)
            )
            by_conv: dict[int, int] = {}
            internal = external = 0
            for conv_id, kind, n in rows:
                by_conv[conv_id] = n
                if kind == ConversationKind.EXTERNAL:
                    external += n
                else:
                    internal += n
        return UnseenCounts(
            total=internal + external, internal=internal, external=external, by_conversation=by_conv
        )

    async def open_conversations(
        self,
        *,
        person_id: int,
        inbox: Sequence[ConversationKind] = Inbox.INTERNAL,
        limit: int = 200,
        offset: int = 0,
        conversation_ids: Sequence[int] | None = None,
    ) -> list[ConversationRow]:
        """N2: the person's conversations with messages, most recent activity first."""
        unseen = (
            select(Delivery.conversation_id, func.count().label("n"))
            .where(Delivery.recipient_id == person_id, Delivery.seen_at.is_(None))
            .group_by(Delivery.conversation_id)
            .subquery()
        )
        last = aliased(Message)
        author = aliased(Person)
        stmt = (
            select(
                Conversation.id,
                Conversation.kind,
                Item.number,
                Item.title,
                Conversation.last_message_at,
                last.text,
                author.name,
                func.coalesce(unseen.c.n, 0),
            )
            .outerjoin(Item, Item.id == Conversation.item_id)
            .join(last, last.id == Conversation.last_message_id)
            .outerjoin(author, author.id == last.author_id)
            .outerjoin(unseen, unseen.c.conversation_id == Conversation.id)
            .where(
                Conversation.kind.in_([k.value for k in inbox]),
                queries.visible_conversations_clause(person_id),  # type: ignore[arg-type]
            )
            .order_by(Conversation.last_message_at.desc(), Conversation.id.desc())
        )
        if conversation_ids is not None:
            stmt = stmt.where(Conversation.id.in_(conversation_ids))
        else:
            stmt = stmt.limit(limit).offset(offset)
        async with self._sessions() as session:
            rows = (await session.execute(stmt)).all()
            direct_titles = await self._direct_titles(
                session, [r[0] for r in rows if r[1] == ConversationKind.DIRECT], person_id
            )
        return [
            ConversationRow(
                id=cid,
                kind=ConversationKind(kind),
                item_number=number,
                title=title if title is not None else direct_titles.get(cid, "Direct"),
                last_text=(text or "")[:300],
                last_author=author_name or "Deskbell",
                last_at=last_at,
                unseen=n,
            )
            for cid, kind, number, title, last_at, text, author_name, n in rows
        ]

    async def find_conversations(
        self, *, person_id: int, text: str, limit: int = 20
    ) -> list[ConversationRow]:
        """D5 (Ctrl+K): the person's conversations in both inboxes whose item number is `text`
        ('12' or '#12'), or whose title (a direct one's: the other person's name) holds every
        word of it, case-blind; the exact number first, then the most recent."""
        query = text.strip().lstrip("#").strip()
        words = query.lower().split()
        if not words:
            return []
        async with self._sessions() as session:
            person = await session.get(Person, person_id)
            if person is None:
                raise NotFoundError(f"no person {person_id}")
            # R2: a customer never learns that an internal conversation exists.
            kinds = (
                list(ConversationKind)
                if person.kind == PersonKind.USER
                else [ConversationKind.EXTERNAL]
            )
            other = aliased(Person)
            direct_names = (
                select(ConversationMember.conversation_id)
                .join(other, other.id == ConversationMember.person_id)
                .where(
                    ConversationMember.person_id != person_id,
                    *(func.lower(other.name).contains(w, autoescape=True) for w in words),
                )
            )
            found = or_(
                and_(*(func.lower(Item.title).contains(w, autoescape=True) for w in words)),
                and_(
                    Conversation.kind == ConversationKind.DIRECT.value,
                    Conversation.id.in_(direct_names),
                ),
            )
            number = int(query) if query.isdigit() and len(query) < 10 else None
            if number is not None:
                found = or_(Item.number == number, found)
            stmt = (
                select(Conversation.id)
                .outerjoin(Item, Item.id == Conversation.item_id)
                .where(
                    Conversation.kind.in_([k.value for k in kinds]),
                    Conversation.last_message_id.is_not(None),
                    queries.visible_conversations_clause(person_id),  # type: ignore[arg-type]
                    found,
                )
                .order_by(Conversation.last_message_at.desc(), Conversation.id.desc())
                .limit(limit)
            )
            if number is not None:
                stmt = stmt.order_by(None).order_by(
                    func.coalesce(Item.number == number, False).desc(),
                    Conversation.last_message_at.desc(),
                    Conversation.id.desc(),
                )
            ids = list((await session.execute(stmt)).scalars())
        rows = await self.open_conversations(person_id=person_id, inbox=kinds, conversation_ids=ids)
        order = {cid: i for i, cid in enumerate(ids)}
        return sorted(rows, key=lambda r: order[r.id])

    async def _direct_titles(
        self, session: AsyncSession, conv_ids: Sequence[int], person_id: int
    ) -> dict[int, str]:
        if not conv_ids:
            return {}
        rows = await session.execute(
            select(ConversationMember.conversation_id, Person.name)
            .join(Person, Person.id == ConversationMember.person_id)
            .where(
                ConversationMember.conversation_id.in_(conv_ids),
                ConversationMember.person_id != person_id,
            )
        )
        return dict(rows.all())  # a TupleResult has .keys(): dict() took it for a mapping

    async def messages(
        self,
        *,
        conversation_id: int,
        viewer_id: int,
        before_id: int | None = None,
        limit: int = 200,
        message_ids: Sequence[int] | None = None,
    ) -> list[MessageRow]:
        """A page of a conversation, oldest first, with each message's status (E10)."""
        async with self._sessions() as session:
            conv = await session.get(Conversation, conversation_id)
            viewer = await session.get(Person, viewer_id)
            if conv is None or viewer is None:
                raise NotFoundError("no such conversation or person")
            if not may_see(queries.domain_person(viewer), ConversationKind(conv.kind)):
                raise PermissionDeniedError("customers cannot read internal conversations")
            stmt = select(Message).where(
                Message.conversation_id == conversation_id, Message.deleted_at.is_(None)
            )
            if message_ids is not None:
                stmt = stmt.where(Message.id.in_(message_ids))
            else:
                if before_id is not None:
                    stmt = stmt.where(Message.id < before_id)
                stmt = stmt.order_by(Message.id.desc()).limit(limit)
            msgs = sorted((await session.execute(stmt)).scalars().all(), key=lambda m: m.id)
            return await self._message_rows(session, msgs, viewer_id)

    async def _message_rows(
        self, session: AsyncSession, msgs: Sequence[Message], viewer_id: int
    ) -> list[MessageRow]:
        ids = [m.id for m in msgs]
        author_ids = {m.author_id for m in msgs if m.author_id}
        authors = {
            p.id: self._info(p)
            for p in (
                await session.execute(select(Person).where(Person.id.in_(author_ids)))
            ).scalars()
        }
        seen: dict[int, list[SeenEntry]] = {}
        emailed: dict[int, list[EmailedEntry]] = {}
        waiting: dict[int, list[str]] = {}
        unseen_by_viewer: set[int] = set()
        for start in range(0, len(ids), 500):
            rows = await session.execute(
                select(
                    Delivery.message_id,
                    Delivery.recipient_id,
                    Delivery.seen_at,
                    Delivery.state,
                    Delivery.reason,
                    Person.name,
                    Person.email,
                    Email.status,
                    Email.sent_at,
                    Email.reply,
                    Email.next_attempt_at,
                    Email.reason,
                )
                .join(Person, Person.id == Delivery.recipient_id)
                .outerjoin(Email, Email.id == Delivery.email_id)
                .where(Delivery.message_id.in_(ids[start : start + 500]))
                .order_by(Delivery.id)
            )
            for (
                mid,
                rid,
                seen_at,
                state,
                reason,
                name,
                email,
                e_status,
                e_sent,
                e_reply,
                e_next,
                e_reason,
            ) in rows:
                if rid == viewer_id and seen_at is None:
                    unseen_by_viewer.add(mid)
                if seen_at is not None:
                    seen.setdefault(mid, []).append(SeenEntry(name=name, email=email, at=seen_at))
                if e_status is not None:
                    detail = e_reason or e_reply
                    if e_status == EmailStatus.RETRYING and e_next is not None:
                        detail = f"{e_reply or 'not reached'}; next try {e_next:%H:%M:%S} UTC"
                    emailed.setdefault(mid, []).append(
                        EmailedEntry(
                            name=name, email=email, status=e_status, at=e_sent, detail=detail
                        )
                    )
                elif state == DeliveryState.SUPPRESSED and seen_at is None:
                    emailed.setdefault(mid, []).append(
                        EmailedEntry(
                            name=name, email=email, status="suppressed", at=None, detail=reason
                        )
                    )
                elif seen_at is None:
                    waiting.setdefault(mid, []).append(name)
        return [
            MessageRow(
                id=m.id,
                conversation_id=m.conversation_id,
                author=authors.get(m.author_id) if m.author_id else None,
                text=m.text,
                created_at=m.created_at,
                source=m.source,
                status=MessageStatus(
                    sent_at=m.created_at,
                    seen=tuple(seen.get(m.id, ())),
                    emailed=tuple(emailed.get(m.id, ())),
                    waiting=tuple(waiting.get(m.id, ())),
                ),
                unseen_by_viewer=m.id in unseen_by_viewer,
            )
            for m in msgs
        ]

    async def item_messages(self, number: int) -> list[tuple[ConversationKind, MessageRow]]:
        """Every message of item N, both conversations, oldest first (`deskbell item show`)."""
        async with self._sessions() as session:
            item = await queries.item_by_number(session, number)
            rows = (
                await session.execute(
                    select(Message, Conversation.kind)
                    .join(Conversation, Conversation.id == Message.conversation_id)
                    .where(Conversation.item_id == item.id, Message.deleted_at.is_(None))
                    .order_by(Message.id)
                )
            ).all()
            kinds = {m.id: ConversationKind(k) for m, k in rows}
            views = await self._message_rows(session, [m for m, _ in rows], viewer_id=0)
        return [(kinds[v.id], v) for v in views]

    # --- the email log ---------------------------------------------------------------------

    async def emails(
        self,
        *,
        status: str | None = None,
        direction: str | None = None,
        search: str | None = None,
        limit: int = 500,
        offset: int = 0,
    ) -> list[EmailLogEntry]:
        """M6: the last 72 hours, newest first, optionally filtered; one page per call."""
        since = self.clock.now() - LOG_WINDOW
        # The list never shows bodies: leave the large columns in the database.
        stmt = (
            select(Email)
            .options(defer(Email.raw), defer(Email.body_text))
            .where(
                or_(
                    Email.created_at >= since,
                    Email.status.in_(
                        [EmailStatus.QUEUED, EmailStatus.SENDING, EmailStatus.RETRYING]
                    ),
                )
            )
        )
        if status:
            stmt = stmt.where(Email.status == status)
        if direction:
            stmt = stmt.where(Email.direction == direction)
        if search:
            escaped = search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            like = f"%{escaped}%"
            columns = (Email.subject, Email.from_addr, cast(Email.to_addrs, Text))
            # SQLite's LIKE is already case-blind (ASCII) and lower() on every row costs half
            # the scan of a rare term over 100,000 entries; PostgreSQL needs ILIKE.
            if self.store.is_sqlite:
                stmt = stmt.where(or_(*(c.like(like, escape="\\") for c in columns)))
            else:
                stmt = stmt.where(or_(*(c.ilike(like, escape="\\") for c in columns)))
        stmt = stmt.order_by(Email.created_at.desc(), Email.id.desc()).limit(limit).offset(offset)
        async with self._sessions() as session:
            rows = (await session.execute(stmt)).scalars().all()
        return [self._log_entry(e) for e in rows]

    @staticmethod
    def _log_entry(e: Email) -> EmailLogEntry:
        return EmailLogEntry(
            id=e.id,
            direction=e.direction,
            kind=e.kind,
            status=e.status,
            from_addr=e.from_addr,
            to_addrs=tuple(e.to_addrs),
            subject=e.subject,
            message_id=e.message_id,
            reason=e.reason,
            reply=e.reply,
            action=e.action,
            item_number=e.item_number,
            attempts=e.attempts,
            next_attempt_at=e.next_attempt_at,
            created_at=e.created_at,
            sent_at=e.sent_at,
        )

    async def email_raw(self, email_id: int) -> bytes | None:
        async with self._sessions() as session:
            email = await session.get(Email, email_id)
            return email.raw if email else None

    async def purge_log(self) -> int:
        """Remove log entries older than 72 hours; never a pending one (M6)."""
        cutoff = self.clock.now() - LOG_WINDOW
        async with self._sessions.begin() as session:
            pending = [EmailStatus.QUEUED, EmailStatus.SENDING, EmailStatus.RETRYING]
            await session.execute(
                update(Delivery)
                .where(
                    Delivery.email_id.in_(
                        select(Email.id).where(
                            Email.created_at < cutoff, Email.status.not_in(pending)
                        )
                    )
                )
                .values(email_id=None)
            )
            result = await session.execute(
                delete(Email).where(and_(Email.created_at < cutoff, Email.status.not_in(pending)))
            )
        return int(getattr(result, "rowcount", 0) or 0)

    async def email_detail(self, email_id: int) -> EmailDetail:
        """M6: one log entry with its headers, its plain-text body and the server's reply."""
        async with self._sessions() as session:
            email = await session.get(Email, email_id)
            if email is None:
                raise NotFoundError(f"no email {email_id}")
            entry = self._log_entry(email)
            raw = email.raw
            body = email.body_text
        headers: tuple[tuple[str, str], ...] = ()
        if raw:
            parsed = BytesParser(policy=policy.default).parsebytes(raw)
            headers = tuple((k, str(v)) for k, v in parsed.items())
            if not body:
                part = parsed.get_body(preferencelist=("plain", "html"))
                body = str(part.get_content()) if part is not None else ""
        return EmailDetail(entry=entry, headers=headers, body=body)

    async def _purge_forever(self) -> None:
        while True:
            try:
                removed = await self.purge_log()
                if removed:
                    log.info("purged %d log entries older than 72 hours", removed)
            except Exception:
                log.exception("purging the email log failed; trying again later")
            await asyncio.sleep(PURGE_EVERY.total_seconds())

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
        wanted = status.strip().lower()
        if not wanted or len(wanted) > 40 or not wanted.replace("-", "").replace("_", "").isalnum():
            raise InputError(f"{status!r} is not a status (a word, like open, pending, closed)")
        now = self.clock.now()
        async with self._sessions.begin() as session:
            item = await queries.item_by_number(session, number)
            actor = await queries.person_by_email(session, acting) if acting else None
            old = item.status
            if old != wanted:
                item.status = wanted
                item.updated_at = now
                queries.add_change(session, kind="item", at=now)
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
            queries.add_change(session, kind="item", at=now)
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
