"""The desktop's start-up in a team (T5), apart from the solo start in app/desktop.py.

A data folder is in team mode when it holds a saved account (`<data>/team/account.json`) and
the keyring holds its token. Then the window's service is the replica
(`services.team.open_replica_service`: an ordinary Service on `<data>/team`), started with
`mail=False` (the server alone sends email, T3) and never `start_mail()`. The first window
opens on it as on a local workspace (plain sqlite3, issue 9); its `TeamSync` and the server's
client (aiohttp, the service's core) load behind the window and connect in the background,
and `reconnect_now()` follows a resume from sleep. Only an empty replica (the first start)
waits for the sync's snapshot before its window.

Signing out ends the session on the server, forgets the token and removes the team folder,
replica included. People expect "sign out" to leave nothing of the team's conversations
(customers' messages among them) on a computer that may be shared or handed on, and nothing
is lost: the server holds everything, and signing in again fetches it anew. Writes still
waiting to be sent would be lost, so the window asks first when there are any.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from services.errors import AuthenticationError, DeskbellError, NotFoundError

if TYPE_CHECKING:
    from services.api import PersonInfo, Service, TeamAccount, TeamSync
    from services.secrets import SecretStore
    from services.team.account import AccountStore

__all__ = ["TeamStart", "saved_team", "sign_out"]

log = logging.getLogger("deskbell.team")


@dataclass
class TeamStart:
    """A saved account (its token read when first needed): the folder starts in team mode."""

    store: AccountStore
    account: TeamAccount
    saved_token: str | None = None
    token_read: bool = False  # `saved_token` is the keyring's answer
    sync: TeamSync | None = None  # made once the replica's service is whole (`open`)
    sync_started: bool = False
    _linked: list[Callable[[TeamSync], object]] = field(default_factory=list)

    async def open(self, folder: Path) -> Service:
        """The replica's service, opened as a local workspace's: the first window reads it on
        plain sqlite3. The server's client and the sync (`sync`, not started) load behind the
        window, when the rest of the service opens and before any write made meanwhile runs,
        so every write queues for the server."""
        from services.team import open_replica_service

        service = await open_replica_service(data_dir=folder, first_window=True)
        service.when_open(lambda: self._link(service))
        return service

    @property
    def token(self) -> str | None:
        """The session's token, read from the keyring when first needed: for a loaded replica
        that is behind the first window (loading keyring was the team start's one cost over a
        local start). None when it is gone: the sync then says the session ended, and signing
        out and in again mends it, as for a session the server ended."""
        if not self.token_read:
            self.saved_token = self.store.token(self.account)
            self.token_read = True
            if self.saved_token is None:
                log.warning("team: no token for %s in the keyring", self.account.email)
        return self.saved_token

    def _link(self, service: Service) -> None:
        from services.team.sync import TeamSync

        try:
            token = self.token
        except DeskbellError as exc:  # no keyring to read behind the window: signed out
            log.warning("team: the keyring cannot be read: %s", exc)
            token = None
        self.sync = TeamSync(
            service,
            self.account.client(token),
            person_id=self.account.person_id,
            clock=service.clock,
        )
        for callback in self._linked:
            callback(self.sync)
        self._linked.clear()

    def with_sync(self, callback: Callable[[TeamSync], object]) -> None:
        """`callback(sync)` once the sync is made (at once if it is)."""
        if self.sync is not None:
            callback(self.sync)
        else:
            self._linked.append(callback)

    async def linked(self, service: Service) -> TeamSync:
        """The sync of `service` (from `open`), opening the rest of the service if need be."""
        await service.opened()
        if self.sync is None:
            raise DeskbellError("the team's sync was not made: open the replica with open()")
        return self.sync

    async def start_sync(self, service: Service) -> None:
        """Start the sync once (it may have started early for an empty replica)."""
        if not self.sync_started:
            sync = await self.linked(service)
            self.sync_started = True
            await sync.start()

    async def me(self, service: Service) -> PersonInfo:
        """This user in the replica. A new replica is empty until the sync's first snapshot:
        then the sync starts now, and the loading frame stays until it is current."""
        try:
            return await service.person_by_id(self.account.person_id)
        except NotFoundError:
            log.info("team: empty replica, fetching the team's conversations first")
        if self.token is None:  # its first snapshot cut short, then the token lost
            raise AuthenticationError(
                f"this computer is no longer signed in to {self.account.server_url} and has "
                "no copy of the team's conversations yet: remove the folder team/ in the "
                "data folder and start Deskbell again to sign in"
            )
        await self.start_sync(service)
        await (await self.linked(service)).wait_current()
        return await service.person_by_id(self.account.person_id)


def saved_team(folder: Path, *, secrets: SecretStore | None = None) -> TeamStart | None:
    """The folder's team account, or None (this computer only). Before its first replica an
    account whose token is gone (a new keyring) counts as none: the first-run choice offers to
    sign in again. With a replica the token is read behind the first window (`token`)."""
    from services.store.window_sql import DB_FILENAME
    from services.team.account import AccountStore

    store = AccountStore(folder, secrets=secrets)
    account = store.load()
    if account is None:
        return None
    team = TeamStart(store=store, account=account)
    if not (store.folder / DB_FILENAME).is_file() and team.token is None:
        return None
    return team


async def sign_out(team: TeamStart, *, timeout_s: float = 10.0) -> str | None:
    """End the session on the server, forget the token, remove the team folder (the replica
    must be closed). Returns what to tell the person when the server could not be told."""
    from services.team.signin import end_team_session

    left: str | None
    try:
        async with team.account.client(team.token, timeout_s=timeout_s) as client:
            left = await end_team_session(client)
    except (TimeoutError, OSError) as exc:  # never keep a person from signing out
        left = f"the server could not be told ({exc})"
    team.store.remove(team.account)
    log.info("team: signed out of %s", team.account.server_url)
    return left
