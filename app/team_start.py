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

from services.errors import DeskbellError, NotFoundError

if TYPE_CHECKING:
    from services.api import PersonInfo, Service, TeamAccount, TeamSync
    from services.secrets import SecretStore
    from services.team.account import AccountStore

__all__ = ["TeamStart", "saved_team", "sign_out"]

log = logging.getLogger("deskbell.team")


@dataclass
class TeamStart:
    """A saved account with its token: the folder starts in team mode."""

    store: AccountStore
    account: TeamAccount
    token: str
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

    def _link(self, service: Service) -> None:
        from services.team.sync import TeamSync

        self.sync = TeamSync(
            service,
            self.account.client(self.token),
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
        await self.start_sync(service)
        await (await self.linked(service)).wait_current()
        return await service.person_by_id(self.account.person_id)


def saved_team(folder: Path, *, secrets: SecretStore | None = None) -> TeamStart | None:
    """The folder's team account with its token, or None (this computer only). An account
    whose token is gone (signed out elsewhere, a new keyring) counts as none: the first-run
    choice offers to sign in again."""
    from services.team.account import AccountStore

    store = AccountStore(folder, secrets=secrets)
    account = store.load()
    if account is None:
        return None
    token = store.token(account)
    if token is None:
        log.warning("team: no token for %s in the keyring: sign in again", account.email)
        return None
    return TeamStart(store=store, account=account, token=token)


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
