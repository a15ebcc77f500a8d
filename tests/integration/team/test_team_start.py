"""T4, T5: the desktop's team start-up (app/team_start.py): a saved account with its token
starts team mode, an empty replica waits for the sync's first snapshot, signing out ends the
server's session and removes the team folder with the replica."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from app.team_start import SyncHandle, TeamStart, replica_opener, saved_team, sign_out
from services.api import Service
from services.clock import ManualClock
from services.errors import AuthenticationError, DeskbellError
from services.secrets import SecretStore
from services.server_client import ServerClient, path
from services.server_client import ServerClient as _Client
from services.team.account import AccountStore
from services.team.signin import sign_in_to_team
from tests.support.team_server import ANN, BOB, PW, TeamServer, team_server
from tests.unit.ui.fake_sync import FakeSync, State


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[TeamServer]:
    async with team_server(tmp_path) as running:
        yield running


async def _signed_in(server: TeamServer, folder: Path, secrets: SecretStore) -> TeamStart:
    new = await sign_in_to_team(server_url=server.url, email=BOB, password=PW, device="d")
    AccountStore(folder, secrets=secrets).save(new.account, new.token)
    team = saved_team(folder, secrets=secrets)
    assert team is not None
    return team


class SnapshotSync(FakeSync):
    """A sync whose first `wait_current` brings the server's users into the replica, with
    the server's ids (added in the server's order), as a snapshot would."""

    def __init__(self, service: Service) -> None:
        super().__init__(State.CONNECTING)
        self.service = service
        self.started = 0

    async def start(self) -> None:
        self.started += 1

    async def stop(self) -> None:
        self.set(State.OFFLINE)

    async def wait_current(self) -> None:
        for email, name in ((ANN, "Ann Agent"), (BOB, "Bob Agent")):
            await self.service.add_person(email=email, name=name)
        self.set(State.ONLINE)

    async def pending_writes(self) -> int:
        return 0

    def reconnect_now(self) -> None:
        self.set(State.CONNECTING)


def _opener() -> Callable[..., object]:
    """An opener of open_replica's shape: a real Service on `<data>/team`, a fake sync."""

    async def open_replica(
        *, data_dir: Path, client: ServerClient, person_id: int, first_window: bool = False
    ) -> tuple[Service, SyncHandle]:
        assert isinstance(client, _Client) and client.token is not None
        service = await Service.open(data_dir=data_dir / "team", clock=ManualClock())
        return service, SnapshotSync(service)

    return open_replica


async def test_t5_no_account_or_no_token_means_this_computer_only(
    tmp_path: Path, secrets: SecretStore, server: TeamServer
) -> None:
    assert saved_team(tmp_path / "data", secrets=secrets) is None
    team = await _signed_in(server, tmp_path / "data", secrets)
    team.store.forget_token(team.account)
    assert saved_team(tmp_path / "data", secrets=secrets) is None


async def test_t5_an_empty_replica_waits_for_the_first_snapshot_and_starts_once(
    tmp_path: Path, secrets: SecretStore, server: TeamServer
) -> None:
    folder = tmp_path / "data"
    team = await _signed_in(server, folder, secrets)
    service, sync = await team.open(folder, opener=_opener())  # type: ignore[arg-type]
    try:
        assert isinstance(sync, SnapshotSync)
        me = await team.me(service, sync)
        assert me.email == BOB and sync.started == 1
        await team.start_sync(sync)
        assert sync.started == 1
        assert (folder / "team" / "deskbell.db").exists()
    finally:
        await service.close()


async def test_t4_sign_out_ends_the_session_and_removes_the_replica(
    tmp_path: Path, secrets: SecretStore, server: TeamServer
) -> None:
    folder = tmp_path / "data"
    team = await _signed_in(server, folder, secrets)
    service, _sync = await team.open(folder, opener=_opener())  # type: ignore[arg-type]
    await service.close()
    assert await sign_out(team) is None
    assert not (folder / "team").exists()
    assert saved_team(folder, secrets=secrets) is None
    async with ServerClient(server.url, team.token) as client:
        with pytest.raises(AuthenticationError):
            await client.call("GET", path("me"))


async def test_t4_sign_out_with_the_server_away_still_forgets_everything(
    tmp_path: Path, secrets: SecretStore
) -> None:
    folder = tmp_path / "data"
    async with team_server(tmp_path / "gone") as server:
        team = await _signed_in(server, folder, secrets)
    left = await sign_out(team, timeout_s=5)
    assert left is not None and "could not be told" in left
    assert not (folder / "team").exists()


def test_t5_a_build_without_the_sync_says_so_in_one_line() -> None:
    import services.team

    if hasattr(services.team, "open_replica"):
        assert replica_opener() is services.team.open_replica
    else:
        with pytest.raises(DeskbellError, match="no team sync"):
            replica_opener()
