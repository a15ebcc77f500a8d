"""How the service is put together: its parts built in one place, started and stopped in order.

Start: the settings and the notification template are read at open; `start()` then runs the
change feed (with the reactor listening), the fallback scheduler, the outbox, the hourly
upkeep and the IMAP reader, in that order; `stop()` ends them in reverse. The mail parts
(scheduler, outbox, incoming mail) are built, and their code imported, on first use: a
window that only reads never waits for them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Generic, TypeVar

from services import operations
from services.accounts import purge_sessions
from services.automations import AutomationCache, Automations
from services.clock import Clock
from services.email_log import LOG_WINDOW, PURGE_EVERY, purge_log
from services.events import ChangeFeed
from services.reactor import ChangeReactor, Wakeable
from services.retry_log import RetryLog
from services.secrets import SecretStore
from services.settings import Config, load_settings
from services.store.database import Database
from services.system_emails import SystemEmails
from services.template_catalog import notification_renderer
from services.template_store import TemplateStore, notification_sources
from services.templates import TemplateRenderer

if TYPE_CHECKING:
    from services.fallback import FallbackScheduler
    from services.incoming.router import IncomingMail, MailPolicy
    from services.mail.identity import MailIdentity
    from services.mail.outbox import OutboxWorker
    from services.mail.smtp import SmtpSettings

__all__ = ["Wiring"]

log = logging.getLogger(__name__)

_Part = TypeVar("_Part", bound=Wakeable)


class Wiring:
    """The service's parts and their life; `services.api.Service` is the door to them."""

    def __init__(
        self,
        *,
        db: Database,
        clock: Clock,
        secrets: SecretStore,
        identity: Callable[[], MailIdentity],
        smtp_settings: Callable[[], Awaitable[SmtpSettings | None]],
        mail_policy: Callable[[], MailPolicy],
    ) -> None:
        self.db = db
        self.clock = clock
        self.secrets = secrets
        self.identity = identity
        self._smtp_settings = smtp_settings
        self._mail_policy = mail_policy
        self.config = Config()
        self.rules = AutomationCache()
        self._renderer: TemplateRenderer | None = None
        self._template_sources: tuple[str | None, str, str] | None = None
        self.feed = ChangeFeed(db, clock=clock)
        self.automations = Automations(db, clock=clock, on_change=self.templates_changed)
        self.templates = TemplateStore(
            db, clock=clock, identity=identity, on_change=self.templates_changed
        )
        self.system_emails = SystemEmails(db, clock=clock, identity=identity)
        self._scheduler: FallbackScheduler | None = None
        self._outbox: OutboxWorker | None = None
        self._incoming: IncomingMail | None = None
        self._reactor: ChangeReactor | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._upkeep: asyncio.Task[None] | None = None
        self._imap_started_with: tuple[str, ...] = ()
        self._restarts: set[asyncio.Task[None]] = set()
        self.running = False

    # --- the mail parts, built on first use ------------------------------------------------

    @property
    def scheduler(self) -> FallbackScheduler:
        if self._scheduler is None:
            from services.fallback import FallbackScheduler

            self._scheduler = FallbackScheduler(
                self.db,
                clock=self.clock,
                identity=self.identity,
                renderer=lambda: self.renderer,
                on_queued=self._queued,
            )
        return self._scheduler

    @property
    def outbox(self) -> OutboxWorker:
        if self._outbox is None:
            from services.mail.outbox import OutboxWorker

            self._outbox = OutboxWorker(
                self.db,
                clock=self.clock,
                smtp_settings=self._smtp_settings,
                lease=lambda: timedelta(seconds=int(self.config("outbox.lease_s"))),
                bounce_key=lambda: self.config.token_key,
                on_change=self.feed.poke,
            )
        return self._outbox

    @property
    def incoming(self) -> IncomingMail:
        if self._incoming is None:
            from services.incoming.router import IncomingMail

            self._incoming = IncomingMail(
                db=self.db,
                clock=self.clock,
                secrets=self.secrets,
                config=self.config,
                policy=self._mail_policy,
                context=self.context,
                on_written=self.feed.poke,
            )
        return self._incoming

    def _queued(self) -> None:
        self.outbox.wake()
        self.feed.poke()

    # --- what writes need ---------------------------------------------------------------------

    def default_delay_s(self) -> int:
        return int(self.config("unseen_delay_s"))

    async def context(self) -> operations.Context:
        """What a write needs: the time, the default delay, the automations, who mails."""
        return operations.Context(
            now=self.clock.now(),
            default_delay_s=self.default_delay_s(),
            rules=await self.rules.rules(self.db),
            identity=self.identity(),
        )

    # --- loading and reloading ------------------------------------------------------------

    async def load(self) -> None:
        """At open: the settings and the notification template."""
        self.config.use(await self.db.read(load_settings))
        await self.reload_templates()

    async def reload_settings(self) -> None:
        self.config.use(await self.db.read(load_settings))
        await self.restart_incoming_if_changed()

    async def reload_templates(self) -> None:
        """The notification renderer: the stored new-message template and intro (E5, M1)."""
        self._template_sources = await self.db.read(notification_sources)
        self._renderer = None

    @property
    def renderer(self) -> TemplateRenderer:
        """Built when first needed: checking the stored template loads Jinja2 (issue 9)."""
        if self._renderer is None:
            sources = self._template_sources
            if sources is None:
                self._renderer = TemplateRenderer()
            else:
                intro, body_text, body_html = sources
                self._renderer = notification_renderer(
                    intro=intro, body_text=body_text, body_html=body_html
                )
        return self._renderer

    async def templates_changed(self) -> None:
        """This process changed an automation or a template: in force for its next write."""
        self.rules.clear()
        await self.reload_templates()

    # --- start and stop ---------------------------------------------------------------------

    async def start(self, *, mail: bool = True, after: int | None = None) -> None:
        """Run the background work: change feed, fallback scheduler, outbox, upkeep, IMAP.

        `mail=False`: the change feed only; `start_mail()` runs the rest later (the desktop,
        once its first window shows: the mail stack is imported and queried only then).
        `after`: the feed's position to report changes after (default: the newest).
        """
        self._reactor = ChangeReactor(
            scheduler=_SchedulerIfBuilt(lambda: self._scheduler),
            outbox=_WakeIfBuilt(lambda: self._outbox),
            reload_settings=self.reload_settings,
            forget_automations=self.rules.clear,
            reload_templates=self.reload_templates,
        )
        self._unsubscribe = self.feed.subscribe(self._reactor)
        await self.feed.start(after=after)
        if mail:
            await self.start_mail()

    async def start_mail(self) -> None:
        """The fallback scheduler, outbox, upkeep and IMAP reader (after `start`): each first
        pass looks at everything due, so nothing the feed reported before is missed."""
        if self.running:
            return
        self.scheduler.start()
        self.outbox.start()
        self._upkeep = asyncio.create_task(self._upkeep_forever(), name="deskbell-upkeep")
        await self._start_incoming()
        self.running = True

    async def stop(self) -> None:
        if self._upkeep is not None:
            self._upkeep.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._upkeep
            self._upkeep = None
        if self._incoming is not None:
            await self._incoming.stop()  # also when started alone (its reader holds a lease)
        if self.running:
            await self.outbox.stop()
            await self.scheduler.stop()
            self.running = False
        await self.feed.stop()
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self._reactor is not None:
            await self._reactor.stop()
            self._reactor = None

    async def _upkeep_forever(self) -> None:
        """Hourly: the email log past 72 hours (M6), the change feed past its window, and
        sessions ended long ago with spent sign-in throttles (T4)."""
        retry = RetryLog(log, "purging old log entries, changes and sessions")
        while True:
            try:
                removed = await self.db.write(purge_log, before=self.clock.now() - LOG_WINDOW)
                if removed:
                    log.info("purged %d log entries older than 72 hours", removed)
                await self.feed.purge()
                ended = await self.db.write(purge_sessions, now=self.clock.now())
                if ended:
                    log.info("purged %d sessions ended over 30 days ago", ended)
                retry.succeeded()
            except Exception as exc:
                retry.failed(exc)
            await asyncio.sleep(PURGE_EVERY.total_seconds())

    # --- the IMAP reader (I1) ------------------------------------------------------------------

    def _imap_signature(self) -> tuple[str, ...]:
        return tuple(v for k, v in self.config.known().items() if k.startswith("imap."))

    async def _start_incoming(self) -> None:
        """The IMAP reader, when imap.host is set (I1), with the settings it started with."""
        self._imap_started_with = self._imap_signature()
        if self._incoming is None and not self.config("imap.host"):
            return  # no mailbox: the incoming code loads when first used
        await self.incoming.start()

    def restart_incoming_in_background(self) -> None:
        """A new IMAP password: the reader starts again with it."""
        task = asyncio.get_running_loop().create_task(self.restart_incoming_if_changed(force=True))
        self._restarts.add(task)
        task.add_done_callback(self._restarts.discard)

    async def restart_incoming_if_changed(self, *, force: bool = False) -> None:
        """New mailbox settings take effect at once, not at the next launch."""
        if self.running and (force or self._imap_signature() != self._imap_started_with):
            await self.incoming.stop()
            await self._start_incoming()


class _WakeIfBuilt(Generic[_Part]):
    """Wakes a mail part only once it exists: one not built yet starts with a full pass."""

    def __init__(self, part: Callable[[], _Part | None]) -> None:
        self._part = part

    def wake(self) -> None:
        part = self._part()
        if part is not None:
            part.wake()


class _SchedulerIfBuilt(_WakeIfBuilt["FallbackScheduler"]):
    def wake_soon(self) -> None:
        scheduler = self._part()
        if scheduler is not None:
            scheduler.wake_soon()
