"""The service's public API: the one door the desktop UI and the command line use.

`Service` is a list of operations: reads and writes take and return plain data
(`services.views`), and every write returns what it changed. Each is one unit of work on the
database (`Database.read` / `Database.write`: one thread hop, one transaction) or a call into
a part of the service. How the parts are built, started and stopped is `services.wiring`; what
happens when the change feed reports a change is `services.reactor`.

Background work starts with `start()` (the desktop app and `deskbell serve`); a one-shot
command line call writes and leaves the sending to them.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Concatenate, ParamSpec, TypeVar

from services.clock import Clock, ManualClock, SystemClock, utcnow
from services.config import parse_value
from services.domain.chat_widget import widget_snippet
from services.domain.headers import check_header_text, normalize_address
from services.domain.model import (
    ConversationKind,
    NotificationSettings,
    PersonKind,
)
from services.domain.schedule import DndChoice, dnd_ends_at, dnd_until_choice, in_do_not_disturb
from services.errors import (
    AuthenticationError,
    DeskbellError,
    InputError,
    MailboxError,
    MailServerError,
    MailServerUnreachableError,
    NotFoundError,
    PermissionDeniedError,
    SecretStoreUnavailable,
    ServerError,
    ServerUnreachableError,
    StoreBusyError,
    StoreConflictError,
    StoreCorruptError,
    StoreError,
    StoreUnavailableError,
    StoreUnreachableError,
    TooManyAttemptsError,
    UntrustedCertificateError,
)
from services.first_window import FirstWindow
from services.secrets import SecretStore
from services.team.state import ConnectionState
from services.template_catalog import RenderedEmail
from services.templates import TemplateError
from services.updates import (
    DEFAULT_URL,
    PUBLIC_KEY,
    UpdateCheckError,
    check_due,
    check_for_update,
)
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

# The rest of the service is imported by `_load_core()`, when the service opens: the desktop's
# first window opens without it (SQLAlchemy and the models cost more than the window).
if TYPE_CHECKING:
    from services import (
        accounts,
        conversations,
        email_log,
        inbox_reads,
        items,
        operations,
        people,
    )
    from services.accounts import (
        LOCAL_OPERATOR,
        Accounts,
        Caller,
        NewSession,
        NewUser,
        PasswordSet,
        SessionInfo,
        SignedIn,
    )
    from services.automations import AutomationInfo, Automations
    from services.chat import Chat
    from services.email_log import LOG_WINDOW, PURGE_EVERY, EmailDetail
    from services.events import ChangeFeed, Listener
    from services.facade import CenterFacade
    from services.fallback import FallbackScheduler
    from services.incoming.router import IncomingMail, IncomingResult, MailPolicy
    from services.mail.identity import MailIdentity
    from services.mail.outbox import OutboxWorker
    from services.mail.smtp import SmtpSettings
    from services.remote import RemoteService
    from services.settings import store_setting
    from services.setup import first_start
    from services.store import queries
    from services.store.database import Database, Tx
    from services.store.db import file_problem, prepare_database, sqlite_url
    from services.system_emails import ResetRequest, SystemEmailInfo, SystemEmails
    from services.team import open_replica
    from services.team.account import AccountStore, TeamAccount
    from services.team.signin import (
        NewSignIn,
        end_team_session,
        request_password_reset,
        set_password_with_code,
        sign_in_to_team,
    )
    from services.team.sync import TeamSync
    from services.team.writes import ReplicaWrites
    from services.template_store import TemplateInfo, TemplateStore
    from services.wiring import Wiring

_core_loaded = False


def _load_core() -> None:
    """Import the service's core (SQLAlchemy, the models, the operations) and bind the names
    the operations below use. Idempotent; safe in a worker thread."""
    global _core_loaded, accounts, conversations, email_log, inbox_reads, items, operations
    global people, LOCAL_OPERATOR, Accounts, Caller, NewSession, NewUser, PasswordSet
    global SessionInfo, SignedIn, AutomationInfo, Automations, LOG_WINDOW, PURGE_EVERY
    global EmailDetail, ChangeFeed, store_setting, first_start, queries, Database
    global file_problem, prepare_database, sqlite_url, ResetRequest, SystemEmailInfo
    global SystemEmails, TemplateInfo, TemplateStore, Wiring
    if _core_loaded:
        return
    from services import (
        accounts,
        conversations,
        email_log,
        inbox_reads,
        items,
        operations,
        people,
    )
    from services.accounts import (
        LOCAL_OPERATOR,
        Accounts,
        Caller,
        NewSession,
        NewUser,
        PasswordSet,
        SessionInfo,
        SignedIn,
    )
    from services.automations import AutomationInfo, Automations
    from services.email_log import LOG_WINDOW, PURGE_EVERY, EmailDetail
    from services.events import ChangeFeed
    from services.settings import store_setting
    from services.setup import first_start
    from services.store import queries
    from services.store.database import Database
    from services.store.db import file_problem, prepare_database, sqlite_url
    from services.system_emails import ResetRequest, SystemEmailInfo, SystemEmails
    from services.template_store import TemplateInfo, TemplateStore
    from services.wiring import Wiring

    _core_loaded = True


# The public names that live in the core, for `from services.api import X` (PEP 562).
_CORE_EXPORTS = frozenset(
    {
        "LOCAL_OPERATOR",
        "LOG_WINDOW",
        "PURGE_EVERY",
        "AutomationInfo",
        "Caller",
        "EmailDetail",
        "NewSession",
        "NewUser",
        "PasswordSet",
        "ResetRequest",
        "SessionInfo",
        "SignedIn",
        "SystemEmailInfo",
        "TemplateInfo",
    }
)


# The desktop's team account and sign-in (issue 11), imported when first asked for: they
# bring aiohttp, which a solo desktop never needs.
_TEAM_EXPORTS = {
    "AccountStore": "services.team.account",
    "TeamAccount": "services.team.account",
    "NewSignIn": "services.team.signin",
    "end_team_session": "services.team.signin",
    "request_password_reset": "services.team.signin",
    "set_password_with_code": "services.team.signin",
    "sign_in_to_team": "services.team.signin",
    "TeamSync": "services.team.sync",
    "open_replica": "services.team",
    "CenterFacade": "services.facade",
    "RemoteService": "services.remote",
}


def __getattr__(name: str) -> object:
    if name in _CORE_EXPORTS:
        _load_core()
        return globals()[name]
    if name in _TEAM_EXPORTS:
        import importlib

        value: object = getattr(importlib.import_module(_TEAM_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DEFAULT_URL",
    "LOCAL_OPERATOR",
    "LOG_WINDOW",
    "PUBLIC_KEY",
    "PURGE_EVERY",
    "AccountStore",
    "AuthenticationError",
    "AutomationInfo",
    "BounceInfo",
    "Caller",
    "CenterFacade",
    "ChangeEvent",
    "ChangeKind",
    "Changes",
    "Clock",
    "ConnectionState",
    "ConversationInfo",
    "ConversationKind",
    "ConversationRow",
    "DeskbellError",
    "DndChoice",
    "EmailDetail",
    "EmailLogEntry",
    "EmailedEntry",
    "Inbox",
    "InputError",
    "ItemInfo",
    "MailServerError",
    "MailServerUnreachableError",
    "MailboxError",
    "ManualClock",
    "MessageRow",
    "MessageStatus",
    "NewSession",
    "NewSignIn",
    "NewUser",
    "NotFoundError",
    "NotificationSettings",
    "PasswordSet",
    "PermissionDeniedError",
    "PersonInfo",
    "PersonKind",
    "PostResult",
    "RemoteService",
    "RenderedEmail",
    "ResetRequest",
    "SecretStoreUnavailable",
    "SeenEntry",
    "ServerError",
    "ServerUnreachableError",
    "Service",
    "SessionInfo",
    "SignedIn",
    "StoreBusyError",
    "StoreError",
    "StoreUnavailableError",
    "StoreUnreachableError",
    "SystemClock",
    "SystemEmailInfo",
    "TeamAccount",
    "TeamSync",
    "TemplateError",
    "TemplateInfo",
    "TooManyAttemptsError",
    "UnseenCounts",
    "UntrustedCertificateError",
    "UpdateCheckError",
    "check_due",
    "check_for_update",
    "dnd_ends_at",
    "dnd_until_choice",
    "end_team_session",
    "in_do_not_disturb",
    "open_replica",
    "request_password_reset",
    "set_password_with_code",
    "sign_in_to_team",
    "utcnow",
    "validate_address",
    "validate_name",
    "widget_snippet",
]

log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")


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


class Service:
    """Deskbell's embedded service. Open with `await Service.open(...)`, close with `close()`.

    Opened with `first_window=True` on a local SQLite file at the current schema, it starts
    as the desktop's first window only: its first-page reads (who is signed in, the counts, the
    inbox pages, a conversation and its messages) run on plain `sqlite3`
    (`services.first_window`) and the rest opens with `open_rest()`, once the window shows.
    Until then every other operation waits for it, so a write made then is made once the
    whole service is open, never lost.
    """

    _rest: _RestOfTheService  # only while `_first` is set
    # Team mode (T5): the replica's own writes, applied here and queued for the server.
    team: ReplicaWrites | None = None

    def __init__(
        self,
        *,
        db: Database,
        clock: Clock,
        secrets: SecretStore,
        notice: str | None = None,
    ) -> None:
        _load_core()
        self.clock = clock
        self.secrets = secrets
        self._first: FirstWindow | None = None
        self._attach(db, notice)

    def _attach(self, db: Database, notice: str | None) -> None:
        self._notice = notice
        self.db = db
        self._parts = Wiring(
            db=db,
            clock=self.clock,
            secrets=self.secrets,
            identity=self.mail_identity,
            smtp_settings=self.smtp_settings,
            mail_policy=self._mail_policy,
        )
        self.config = self._parts.config
        self.feed: ChangeFeed = self._parts.feed
        self.automations: Automations = self._parts.automations
        self.templates: TemplateStore = self._parts.templates
        self.system_emails: SystemEmails = self._parts.system_emails
        self.accounts = Accounts(db, clock=self.clock)

    # --- life cycle ------------------------------------------------------------------------

    @classmethod
    async def open(
        cls,
        *,
        data_dir: Path | None = None,
        url: str | None = None,
        clock: Clock | None = None,
        secrets: SecretStore | None = None,
        check_file: bool = True,
        first_window: bool = False,
    ) -> Service:
        """`check_file=False`: a SQLite file that opens is not checked now; call
        `file_problem()` later (the desktop does, once its window shows). `first_window`:
        where it is safe (see the class), open only what the first window reads; the caller
        then calls `open_rest()`, which does nothing after a whole open."""
        clock = clock or SystemClock()
        secrets = secrets or SecretStore()
        if first_window and url is None and data_dir is not None and not check_file:
            reader = await FirstWindow.open(data_dir)
            if reader is not None:
                service = cls.__new__(cls)
                service.clock = clock
                service.secrets = secrets
                service._first = reader
                service._notice = None
                service._rest = _RestOfTheService(data_dir=data_dir)
                return service
        await asyncio.to_thread(_load_core)
        if url is None:
            if data_dir is None:
                raise ValueError("give a data folder or a database URL")
            url = sqlite_url(data_dir)
        notice = await prepare_database(url, now=clock.now(), check=check_file)
        db = await Database.open(url)
        try:
            service = cls(db=db, clock=clock, secrets=secrets, notice=notice)
            await service._open_parts()
        except BaseException:  # a read-only or full database met after opening: close it
            await db.close()
            raise
        return service

    async def _open_parts(self) -> None:
        await self.db.write(first_start, now=self.clock.now())
        await self._parts.load()

    async def open_rest(self) -> None:
        """After the first window (`open(first_window=True)`): import and open the rest of the
        service, as `open` does (the schema check and migrations included); then start the
        change feed if `start` was asked, from where the first window read, and let the
        operations that waited run. Does nothing on a service opened whole."""
        first, rest = self._first, getattr(self, "_rest", None)
        if first is None or rest is None or rest.started:
            if rest is not None:
                await rest.wait()
            return
        rest.started = True
        try:
            await asyncio.to_thread(_load_core)
            url = sqlite_url(rest.data_dir)
            notice = await prepare_database(url, now=self.clock.now(), check=False)
            if notice is not None:
                # Damaged behind the window, and moved aside: what the window shows is gone.
                raise StoreCorruptError(notice)
            db = await Database.open(url)
            try:
                self._attach(db, notice)
                await self._open_parts()
                for listener in rest.listeners:
                    rest.unsubscribers[listener] = self.feed.subscribe(listener)
                for callback in rest.when_open:
                    callback()
                if rest.start_feed:
                    await self._parts.start(mail=False, after=first.position)
            except BaseException:
                if getattr(self, "db", None) is db:
                    await self._parts.stop()
                await db.close()
                raise
        except BaseException as exc:
            rest.failed(exc)
            raise
        self._first = None
        rest.opened()

    async def _whole(self) -> None:
        """Wait until the whole service is open (at once unless opened for the first window)."""
        if self._first is not None:
            await self.open_rest()

    async def opened(self) -> None:
        """Wait until the whole service is open: for parts of the UI that use more than its
        operations (the settings, the Messaging Center)."""
        await self._whole()

    def when_open(self, callback: Callable[[], None]) -> None:
        """`callback()` once the whole service is open, before any operation that waited for
        it runs; at once on a service open whole. Team mode (T5) links its sync there, so no
        write made behind the first window misses the queue for the server."""
        if self._first is None:
            callback()
        else:
            self._rest.when_open.append(callback)

    async def file_problem(self) -> str | None:
        """What the database file's integrity check finds wrong, or None; moves nothing (D8:
        `open` with the check moves a damaged file aside and says so in `notice`)."""
        path = self.db.sqlite_path
        return None if path is None else await asyncio.to_thread(file_problem, path)

    async def ping(self) -> None:
        """Answers once the database does (a server's readiness); StoreError if it cannot."""
        await self.db.read(queries.ping)

    @property
    def notice(self) -> str | None:
        """Something a person should read about start-up (a repaired database), or None."""
        return self._notice

    async def start(self, *, mail: bool = True) -> None:
        """Run the background work: change feed, fallback scheduler, outbox, IMAP reader.

        `mail=False`: the change feed only, and `start_mail()` once the first window shows.
        Before `open_rest()` (first window): the feed starts when the rest is open."""
        if self._first is not None and not mail:
            self._rest.start_feed = True
            return
        await self._whole()
        await self._parts.start(mail=mail)

    async def start_mail(self) -> None:
        """The mail side of `start(mail=False)`: fallback scheduler, outbox, IMAP reader."""
        await self._parts.start_mail()

    async def close(self) -> None:
        if self._first is not None:  # the rest never opened: nothing to close
            self._rest.failed(StoreUnavailableError("the service was closed"))
            return
        await self._parts.stop()
        await self.db.close()

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Change events from any process, in batches, as they commit (needs `start()`)."""
        if self._first is not None:
            return self._rest.subscribe(listener)
        return self.feed.subscribe(listener)

    def wake(self) -> None:
        """Re-check deadlines now (after a resume from sleep, for instance: E8)."""
        if self._first is not None:
            return  # nothing runs yet; the mail parts' first pass looks at everything due
        self.scheduler.wake()
        self.outbox.wake()

    @property
    def scheduler(self) -> FallbackScheduler:
        return self._parts.scheduler

    @property
    def outbox(self) -> OutboxWorker:
        return self._parts.outbox

    @property
    def incoming(self) -> IncomingMail:
        return self._parts.incoming

    async def run_scheduler_once(self) -> datetime | None:
        """Queue what is due now (tests and benchmarks drive time by hand)."""
        return await self.scheduler.run_once()

    # --- settings --------------------------------------------------------------------------

    async def set_config(self, key: str, value: str) -> Changes:
        stored = parse_value(key, value)
        await self.db.write(store_setting, key=key, stored=stored, now=self.clock.now())
        self.config.remember(key, stored)
        return Changes(emails=True)

    def known_settings(self) -> dict[str, str]:
        return self.config.known()

    async def settings(self) -> dict[str, str]:
        """`known_settings` where the command line may be talking to a server (T6)."""
        return self.known_settings()

    @property
    def token_key(self) -> bytes:
        return self.config.token_key

    def mail_identity(self) -> MailIdentity:
        from services.mail.identity import MailIdentity

        return MailIdentity(
            from_addr=self.config("smtp.from"),
            from_name=self.config("smtp.from_name"),
            token_key=self.config.token_key,
            default_delay_s=int(self.config("unseen_delay_s")),
            chat_entry=self._chat_entry(),
        )

    def _chat_entry(self) -> str:
        public = self.config("server.public_url")
        if not public or self.config("chat.enabled") != "true":
            return ""
        return f"{public}/chat/enter"

    async def smtp_settings(self) -> SmtpSettings | None:
        from services.mail.smtp import Security, SmtpSettings

        host = self.config("smtp.host")
        if not host:
            if "smtp.host" in self.config.refused:
                # Its default, empty, means "no SMTP": say why nothing is sent, not go quiet.
                raise InputError(self.config.refused["smtp.host"])
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

    async def store_smtp_password(self, password: str) -> None:
        """`set_smtp_password` where the command line may be talking to a server (T6)."""
        self.set_smtp_password(password)

    async def test_smtp(self) -> str:
        """Connect, greet and log in with the current settings; returns the server's answer."""
        from services.mail.smtp import SmtpSender

        settings = await self.smtp_settings()
        if settings is None:
            raise InputError("set the SMTP host first")
        async with SmtpSender(settings=settings) as sender:
            return await sender.check()

    async def send_test_email(self, *, to: str) -> str:
        """Settings' "Send test email" (E9): sent now, past the outbox; returns the server's
        answer, or raises MailServerUnreachableError / MailServerError with its words."""
        from services.mail.trial_email import send_trial_email

        address = normalize_address(to)  # a bad address is refused before any connection
        settings = await self.smtp_settings()
        if settings is None:
            raise InputError("set the SMTP host first")
        return await send_trial_email(
            self.db,
            settings=settings,
            identity=self.mail_identity(),
            to=address,
            now=self.clock.now(),
        )

    # --- incoming mail (I1-I7) -------------------------------------------------------------

    def _mail_policy(self) -> MailPolicy:
        from services.incoming.router import MailPolicy

        return MailPolicy(
            own_address=self.config("smtp.from"),
            token_key=self.config.token_key,
            create_items=self.config("mail.create_items") == "true",
        )

    async def receive_mail(self, raw: bytes) -> IncomingResult:
        """One raw incoming email, processed as if fetched: threaded, new item, or ignored."""
        return await self.incoming.receive(raw)

    def set_imap_password(self, password: str) -> None:
        self.incoming.set_password(password)
        if self._parts.running:
            self._parts.restart_incoming_in_background()

    async def store_imap_password(self, password: str) -> None:
        """`set_imap_password` where the command line may be talking to a server (T6)."""
        self.set_imap_password(password)

    async def test_imap(self) -> str:
        """Settings' "Test connection" for the mailbox: a summary, or MailboxError."""
        return await self.incoming.test()

    # --- people ----------------------------------------------------------------------------

    async def add_person(
        self,
        *,
        email: str,
        name: str,
        kind: PersonKind = PersonKind.USER,
        is_admin: bool | None = None,
    ) -> PersonInfo:
        self._on_the_server("adding people")
        return await self.db.write(
            operations.add_person,
            await self._parts.context(),
            email=email,
            name=name,
            kind=kind,
            is_admin=is_admin,
        )

    async def person(self, email: str) -> PersonInfo:
        if self._first is not None:
            return await self._first.person(normalize_address(email))
        return await self.db.read(
            queries.person_by_email,
            normalize_address(email),
            default_delay_s=self._parts.default_delay_s(),
        )

    async def person_by_id(self, person_id: int) -> PersonInfo:
        if self._first is not None:
            return await self._first.person_by_id(person_id)
        return await self.db.read(
            queries.person_by_id, person_id, default_delay_s=self._parts.default_delay_s()
        )

    async def people(self, *, kind: PersonKind | None = None) -> list[PersonInfo]:
        return await self.db.read(
            people.people, kind=kind, default_delay_s=self._parts.default_delay_s()
        )

    async def set_notification_settings(
        self, *, person_id: int, settings: NotificationSettings, acting_id: int | None = None
    ) -> PersonInfo:
        """R5, N6, M7: for oneself, or for another by an administrator."""
        people.check_settings(settings)
        if self.team is not None:
            return await self.team.set_notification_settings(
                person_id=person_id, settings=settings, acting_id=acting_id
            )
        return await self.db.write(
            people.set_notification_settings,
            person_id=person_id,
            settings=settings,
            acting_id=acting_id,
            now=self.clock.now(),
            default_delay_s=self._parts.default_delay_s(),
        )

    # --- do not disturb for the desktop (N6) -----------------------------------------------

    def do_not_disturb(self, person: PersonInfo) -> bool:
        """N6: whether `person` is in do-not-disturb now (a menu choice or the weekly hours)."""
        return in_do_not_disturb(person.settings, now_local=self.clock.now().astimezone())

    async def set_do_not_disturb(
        self, *, person_id: int, choice: DndChoice | None, acting_id: int | None = None
    ) -> PersonInfo:
        """N6, tray menu: "30m", "1h", "tomorrow" (08:00), or None to end it now; for
        oneself, or for another by an administrator (`acting_id`, as for the settings)."""
        person = await self.person_by_id(person_id)
        until = (
            None
            if choice is None
            else dnd_until_choice(choice, now_local=self.clock.now().astimezone())
        )
        settings = replace(person.settings, dnd_until=until)
        return await self.set_notification_settings(
            person_id=person_id, settings=settings, acting_id=acting_id
        )

    def _on_the_server(self, what: str) -> None:
        """In team mode (T5) the server holds people, sessions and bounces: a change made to
        this desktop's copy would never reach it (and clash with the server's ids)."""
        if self.team is not None:
            raise PermissionDeniedError(
                f"in a team, {what} is done on the team server (an administrator's "
                "deskbell --server URL ...), not in this desktop's copy"
            )

    # --- items and conversations -----------------------------------------------------------

    async def create_item(
        self, *, title: str, followers: Iterable[str] = (), requester: str | None = None
    ) -> ItemInfo:
        """In team mode the server numbers items: online only (T5)."""
        if self.team is not None:
            return await self.team.create_item(
                title=title, followers=list(followers), requester=requester
            )
        return await self.db.write(
            operations.create_item,
            await self._parts.context(),
            title=title,
            followers=list(followers),
            requester=requester,
        )

    async def item(self, number: int) -> ItemInfo:
        return await self.db.read(_item_by_number, number, self._parts.default_delay_s())

    async def items(self) -> list[ItemInfo]:
        return await self.db.read(items.items, default_delay_s=self._parts.default_delay_s())

    async def follow(self, *, number: int, email: str) -> Changes:
        if self.team is not None:
            return await self.team.follow(number=number, email=email, on=True)
        await self.db.write(_follow, number=number, email=email, now=self.clock.now(), on=True)
        return Changes(items=True)

    async def unfollow(self, *, number: int, email: str) -> Changes:
        if self.team is not None:
            return await self.team.follow(number=number, email=email, on=False)
        await self.db.write(_follow, number=number, email=email, now=self.clock.now(), on=False)
        return Changes(items=True)

    async def set_item_status(
        self, *, number: int, status: str, acting: str | None = None
    ) -> ItemInfo:
        """Change item N's status; fires 'item status changed', and 'item closed' on closing."""
        items.check_status(status)
        return await self.db.write(
            operations.set_item_status,
            await self._parts.context(),
            number=number,
            status=status,
            acting=acting,
        )

    async def close_item(self, *, number: int, acting: str | None = None) -> ItemInfo:
        return await self.set_item_status(number=number, status="closed", acting=acting)

    async def assign_item(self, *, number: int, email: str | None) -> ItemInfo:
        """Assign item N to a user (who then follows it), or unassign with None."""
        return await self.db.write(
            _assign,
            number=number,
            email=email,
            now=self.clock.now(),
            default_delay_s=self._parts.default_delay_s(),
        )

    async def direct_conversation(self, *, a: str, b: str) -> int:
        return await self.db.write(
            conversations.direct_conversation, a=a, b=b, now=self.clock.now()
        )

    async def conversation(
        self, conversation_id: int, *, viewer_id: int | None = None
    ) -> ConversationInfo:
        """`viewer_id`: as that person may see it (a customer: only their own external
        conversations, R2; any other is NotFoundError as a missing one)."""
        if self._first is not None:
            return await self._first.conversation(conversation_id, viewer_id=viewer_id)
        return await self.db.read(
            conversations.conversation_info,
            conversation_id,
            default_delay_s=self._parts.default_delay_s(),
            viewer_id=viewer_id,
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
        client_id: str | None = None,
    ) -> PostResult:
        """Post as `author` into a conversation, or into item N's internal/external one.

        `client_id` (T5): the writer's own id for this post; sent again (an answer lost), the
        post is made once and answered again. In team mode the replica's writes queue."""
        if self.team is not None:
            return await self.team.post(
                author=author,
                text=text,
                conversation_id=conversation_id,
                item_number=item_number,
                kind=kind,
            )
        context = await self._parts.context()

        async def post() -> PostResult:
            return await self.db.write(
                operations.post,
                context,
                author=author,
                text=text,
                conversation_id=conversation_id,
                item_number=item_number,
                kind=kind,
                client_id=client_id,
            )

        try:
            return await post()
        except StoreConflictError:
            if client_id is None:
                raise
            # The same client id posted at once on another connection (PostgreSQL: both
            # looked, both inserted): now that one committed, looking again finds it.
            return await post()

    async def delete_message(self, *, message_id: int, acting: str) -> Changes:
        conversation_id = await self.db.write(
            _delete_message,
            message_id=message_id,
            acting=acting,
            now=self.clock.now(),
        )
        return Changes(conversations=frozenset({conversation_id}), counts=True)

    async def mark_seen(
        self, *, person_id: int, message_ids: Iterable[int], at: datetime | None = None
    ) -> Changes:
        """S2: record that `person_id` saw these messages (at `at`, default now)."""
        ids = list(message_ids)
        if not ids:
            return Changes()
        if self.team is not None:
            return await self.team.mark_seen(person_id=person_id, message_ids=ids)
        convs = await self.db.write(
            conversations.mark_seen,
            person_id=person_id,
            message_ids=ids,
            at=at or self.clock.now(),
        )
        return Changes(conversations=frozenset(convs), counts=bool(convs))

    async def mark_item_seen(self, *, number: int, email: str) -> Changes:
        """`deskbell seen N --as EMAIL`: everything EMAIL may see in item N."""
        convs = await self.db.write(
            conversations.mark_item_seen,
            number=number,
            email=email,
            at=self.clock.now(),
            default_delay_s=self._parts.default_delay_s(),
        )
        return Changes(conversations=frozenset(convs), counts=bool(convs))

    # --- the window's reads (N2, N3, E10, D5) ------------------------------------------------

    async def unseen_counts(self, *, person_id: int) -> UnseenCounts:
        """N3: one query; the bubble, the tabs and the rows all read from it."""
        if self._first is not None:
            return await self._first.unseen_counts(person_id=person_id)
        return await self.db.read(inbox_reads.unseen_counts, person_id)

    async def open_conversations(
        self,
        *,
        person_id: int,
        inbox: Sequence[ConversationKind] = Inbox.INTERNAL,
        limit: int = 200,
        offset: int = 0,
        conversation_ids: Sequence[int] | None = None,
    ) -> list[ConversationRow]:
        """N2: the person's conversations with activity, most recent first."""
        if self._first is not None:
            return await self._first.open_conversations(
                person_id=person_id,
                inbox=inbox,
                limit=limit,
                offset=offset,
                conversation_ids=conversation_ids,
            )
        return await self.db.read(
            inbox_reads.open_conversations,
            person_id=person_id,
            inbox=inbox,
            limit=limit,
            offset=offset,
            conversation_ids=conversation_ids,
        )

    async def find_conversations(
        self, *, person_id: int, text: str, limit: int = 20
    ) -> list[ConversationRow]:
        """D5 (Ctrl+K): by item number or title words, in both inboxes."""
        return await self.db.read(
            inbox_reads.find_conversations, person_id=person_id, text=text, limit=limit
        )

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
        if self._first is not None:
            return await self._first.messages(
                conversation_id=conversation_id,
                viewer_id=viewer_id,
                before_id=before_id,
                limit=limit,
                message_ids=message_ids,
            )
        return await self.db.read(
            inbox_reads.messages,
            conversation_id=conversation_id,
            viewer_id=viewer_id,
            default_delay_s=self._parts.default_delay_s(),
            before_id=before_id,
            limit=limit,
            message_ids=message_ids,
        )

    async def item_messages(self, number: int) -> list[tuple[ConversationKind, MessageRow]]:
        """Every message of item N, both conversations, oldest first (`deskbell item show`)."""
        return await self.db.read(
            inbox_reads.item_messages, number, default_delay_s=self._parts.default_delay_s()
        )

    # --- Incoming & Outgoing (M6) and bounces (E7) ------------------------------------------

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
        email_log.check_filters(status=status, direction=direction, search=search)
        return await self.db.read(
            email_log.emails,
            since=self.clock.now() - LOG_WINDOW,
            status=status,
            direction=direction,
            search=search,
            limit=limit,
            offset=offset,
        )

    async def email_raw(self, email_id: int) -> bytes | None:
        return await self.db.read(email_log.email_raw, email_id)

    async def email_detail(self, email_id: int) -> EmailDetail:
        """M6: one log entry with its headers, its plain-text body and the server's reply."""
        return await self.db.read(email_log.email_detail, email_id)

    async def purge_log(self) -> int:
        """Remove log entries older than 72 hours; never a pending one (M6)."""
        return await self.db.write(email_log.purge_log, before=self.clock.now() - LOG_WINDOW)

    async def bounced_addresses(self, *, blocked_only: bool = False) -> list[BounceInfo]:
        """E7: every address a delivery report spoke of, blocked ones first."""
        return await self.db.read(email_log.bounced_addresses, blocked_only=blocked_only)

    async def clear_bounces(self, *, address: str, acting: str) -> Changes:
        """E7, administrators only: forget an address's bounces, so emails go to it again."""
        self._on_the_server("forgetting an address's bounces")
        actor = await self.db.write(
            email_log.clear_bounces, address=address, acting=acting, now=self.clock.now()
        )
        log.info("%s cleared the bounces of %s", actor, address.strip().lower())
        return Changes(emails=True)

    # --- accounts and sign-in (T4) ---------------------------------------------------------

    async def add_user(
        self, *, acting: Caller, email: str, name: str, admin: bool = False
    ) -> NewUser:
        """An administrator adds a user; the welcome email (if on) invites them to set a
        password."""
        self._on_the_server("adding users")
        ctx = await self._parts.context()
        return await self.db.write(
            accounts.add_user, ctx, acting=acting, email=email, name=name, admin=admin
        )

    async def sign_in(self, *, email: str, password: str, device: str, address: str) -> NewSession:
        return await self.accounts.sign_in(
            email=email, password=password, device=device, address=address
        )

    async def open_customer_session(
        self, *, acting: Caller, email: str, device: str, address: str
    ) -> NewSession:
        return await self.accounts.open_customer_session(
            acting=acting, email=email, device=device, address=address
        )

    async def authenticate(self, token: str) -> SignedIn:
        return await self.accounts.authenticate(token)

    async def sign_out(self, who: SignedIn) -> None:
        await self.accounts.sign_out(who)

    async def sessions(self, *, acting: Caller, email: str) -> list[SessionInfo]:
        return await self.accounts.sessions(acting=acting, email=email)

    async def end_session(self, *, acting: Caller, session_id: int) -> SessionInfo:
        self._on_the_server("ending sessions")
        return await self.accounts.end_session(acting=acting, session_id=session_id)

    async def set_password(self, *, acting: Caller, email: str, password: str) -> PasswordSet:
        self._on_the_server("setting people's passwords")
        return await self.accounts.set_password(acting=acting, email=email, password=password)

    async def change_password(
        self, *, who: SignedIn, current: str, new: str, address: str
    ) -> PasswordSet:
        return await self.accounts.change_password(
            who=who, current=current, new=new, address=address
        )

    async def reset_password(
        self, *, email: str, code: str, password: str, address: str
    ) -> PasswordSet:
        """M5: the emailed code sets a new password (send one: `system_emails.reset_password`)."""
        return await self.accounts.reset_password(
            email=email, code=code, password=password, address=address
        )

    # --- the customer chat (C1, C2) --------------------------------------------------------

    @functools.cached_property
    def chat(self) -> Chat:
        """What the chat pages remember for every server process (services/chat.py)."""
        from services.chat import Chat

        return Chat(self)

    async def customers_in_chat(self, person_ids: Iterable[int]) -> frozenset[int]:
        """C2: which of these customers have the customer chat open now."""
        return await self.chat.in_chat(person_ids)


# --- small units of work that only put look-ups and one operation together --------------------


class _RestOfTheService:
    """What a service opened for the first window keeps until `open_rest()` has run: where the
    file is, who subscribed to the change feed, whether the feed was asked to start."""

    def __init__(self, *, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.started = False
        self.start_feed = False
        self.listeners: list[Listener] = []
        self.when_open: list[Callable[[], None]] = []
        self.unsubscribers: dict[Listener, Callable[[], None]] = {}
        self._done = asyncio.Event()
        self._error: BaseException | None = None

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        self.listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self.listeners:
                self.listeners.remove(listener)
            stop = self.unsubscribers.pop(listener, None)
            if stop is not None:
                stop()

        return unsubscribe

    def opened(self) -> None:
        self._done.set()

    def failed(self, exc: BaseException) -> None:
        self._error = exc
        self._done.set()

    async def wait(self) -> None:
        await self._done.wait()
        if self._error is not None:
            raise StoreUnavailableError(
                f"the service did not open: {self._error or type(self._error).__name__}"
            ) from self._error


# Every other operation waits for the whole service when the first window opened without it.
_FIRST_WINDOW_OPERATIONS = frozenset(
    {
        "close",
        "conversation",
        "messages",
        "open_conversations",
        "open_rest",
        "opened",
        "person",
        "person_by_id",
        "start",
        "unseen_counts",
    }
)


def _after_open(
    operation: Callable[Concatenate[Service, P], Awaitable[T]],
) -> Callable[Concatenate[Service, P], Awaitable[T]]:
    @functools.wraps(operation)
    async def waiting(self: Service, /, *args: P.args, **kwargs: P.kwargs) -> T:
        if self._first is not None:
            await self.open_rest()  # opens it if nobody has yet (a dialog before the window)
        return await operation(self, *args, **kwargs)

    return waiting


for _name, _operation in list(vars(Service).items()):
    if (
        inspect.iscoroutinefunction(_operation)
        and not _name.startswith("_")
        and _name not in _FIRST_WINDOW_OPERATIONS
    ):
        setattr(Service, _name, _after_open(_operation))


def _item_by_number(tx: Tx, number: int, default_delay_s: int) -> ItemInfo:
    return items.item_info(
        tx, queries.item_id_by_number(tx, number), default_delay_s=default_delay_s
    )


def _follow(tx: Tx, *, number: int, email: str, now: datetime, on: bool) -> None:
    item_id = queries.item_id_by_number(tx, number)
    person = queries.person_by_email(tx, email, default_delay_s=0)
    if on:
        items.follow(tx, item_id=item_id, person_id=person.id, now=now)
    else:
        items.unfollow(tx, item_id=item_id, person_id=person.id, now=now)


def _assign(
    tx: Tx, *, number: int, email: str | None, now: datetime, default_delay_s: int
) -> ItemInfo:
    item_id = items.assign_item(
        tx, number=number, email=email, now=now, default_delay_s=default_delay_s
    )
    return items.item_info(tx, item_id, default_delay_s=default_delay_s)


def _delete_message(tx: Tx, *, message_id: int, acting: str, now: datetime) -> int:
    actor = queries.person_by_email(tx, acting, default_delay_s=0)
    return conversations.delete_message(tx, message_id=message_id, actor=actor, now=now)
