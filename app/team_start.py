"""The desktop's start-up in a team (T5), apart from the solo start in app/desktop.py.

A data folder is in team mode when it holds a saved account (`<data>/team/account.json`) and
the keyring holds its token. Then the window's service is the replica
(`services.team.open_replica`: an ordinary Service on `<data>/team`), started with
`mail=False` (the server alone sends email, T3) and never `start_mail()`; its `TeamSync`
connects in the background, and `reconnect_now()` follows a resume from sleep.

Signing out ends the session on the server, forgets the token and removes the team folder,
replica included. People expect "sign out" to leave nothing of the team's conversations
(customers' messages among them) on a computer that may be shared or handed on, and nothing
is lost: the server holds everything, and signing in again fetches it anew. Writes still
waiting to be sent would be lost, so the window asks first when there are any.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from services.errors import NotFoundError

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
    sync_started: bool = False

    async def start_sync(self, sync: TeamSync) -> None:
        """Start the sync once (it may have started early for an empty replica)."""
        if not self.sync_started:
            self.sync_started = True
            await sync.start()

    async def open(self, folder: Path) -> tuple[Service, TeamSync]:
        """The replica's service (first window fast path) and its sync, not yet started."""
        from services.team import open_replica  # the core loads only now, behind the frame

        return await open_replica(
            data_dir=folder,
            client=self.account.client(self.token),
            person_id=self.account.person_id,
            first_window=True,
        )

    async def me(self, service: Service, sync: TeamSync) -> PersonInfo:
        """This user in the replica. A new replica is empty until the sync's first snapshot:
        then the sync starts now, and the loading frame stays until it is current."""
        try:
            return await service.person_by_id(self.account.person_id)
        except NotFoundError:
            log.info("team: empty replica, fetching the team's conversations first")
        await self.start_sync(sync)
        await sync.wait_current()
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
