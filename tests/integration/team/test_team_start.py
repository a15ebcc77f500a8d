"""T4, T5: the desktop's team start-up (app/team_start.py) against a real server: a saved
account with its token starts team mode on the real replica and TeamSync, an empty replica
waits for the sync's first snapshot, a self-signed server the person trusted (pinned) serves
the event stream too, signing out ends the server's session and removes the team folder with
the replica."""

from __future__ import annotations

import asyncio
import hashlib
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from app.team_start import TeamStart, saved_team, sign_out
from services.api import ConnectionState
from services.errors import AuthenticationError, PermissionDeniedError
from services.secrets import SecretStore
from services.server_client import ServerClient, fingerprint_text, path
from services.team.account import AccountStore
from services.team.signin import sign_in_to_team
from tests.support.team_server import ANN, BOB, PW, TeamServer, team_server

DEADLINE_S = 60.0  # generous: the machine is shared and can be slow


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[TeamServer]:
    async with team_server(tmp_path) as running:
        await running.service.start(mail=False)  # the change feed behind the event stream
        yield running


async def _signed_in(
    server: TeamServer, folder: Path, secrets: SecretStore, *, pin: str | None = None
) -> TeamStart:
    new = await sign_in_to_team(
        server_url=server.url, email=BOB, password=PW, device="d", pin_sha256=pin
    )
    AccountStore(folder, secrets=secrets).save(new.account, new.token)
    team = saved_team(folder, secrets=secrets)
    assert team is not None
    return team


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
    service = await team.open(folder)
    try:
        me = await asyncio.wait_for(team.me(service), DEADLINE_S)
        assert me.email == BOB and team.sync_started
        assert {p.email for p in await service.people()} >= {ANN, BOB}
        await team.start_sync(service)  # once: started already for the snapshot
        # T5: people are the server's: adding one here would never reach it (one clear error).
        with pytest.raises(PermissionDeniedError, match="team server"):
            await service.add_person(email="carol@example.com", name="Carol")
        assert (folder / "team" / "deskbell.db").exists()
    finally:
        if team.sync is not None:
            await team.sync.stop()
        await service.close()


async def test_t5_a_returning_replica_opens_without_its_sync_and_a_write_still_queues(
    tmp_path: Path, secrets: SecretStore, server: TeamServer
) -> None:
    """T5, issue 11's window measure: a loaded replica opens for the first window on plain
    sqlite3, its sync not made yet (the server's client and the core load behind the window);
    a write made before the rest of the service opens waits for it and is queued for the
    server by the sync made on the way, never kept only here."""
    folder = tmp_path / "data"
    item = await server.service.create_item(title="Printer on fire", followers=[BOB])
    first = await _signed_in(server, folder, secrets)
    service = await first.open(folder)
    try:
        await asyncio.wait_for(first.me(service), DEADLINE_S)  # the first start's snapshot
    finally:
        if first.sync is not None:
            await first.sync.stop()
        await service.close()
    team = saved_team(folder, secrets=secrets)
    assert team is not None
    service = await team.open(folder)
    try:
        me = await team.me(service)
        assert team.sync is None  # the first window's reads need no sync
        await service.post(
            author=me.email, text="behind the window", conversation_id=item.internal_conversation_id
        )
        sync = await team.linked(service)
        assert await sync.pending_writes() == 1
        await team.start_sync(service)
        await asyncio.wait_for(sync.wait_current(), DEADLINE_S)
        rows = await server.service.messages(
            conversation_id=item.internal_conversation_id, viewer_id=me.id
        )
        assert [row.text for row in rows] == ["behind the window"]
    finally:
        if team.sync is not None:
            await team.sync.stop()
        await service.close()


async def test_t5_a_loaded_replica_whose_token_is_gone_opens_and_says_signed_out(
    tmp_path: Path, secrets: SecretStore, server: TeamServer
) -> None:
    """T4, T5: a returning desktop reads its token from the keyring behind the first window,
    not before it; when the token is gone the replica still opens and the sync says the
    session ended (signing out, then in again, mends it), and signing out still works."""
    folder = tmp_path / "data"
    first = await _signed_in(server, folder, secrets)
    service = await first.open(folder)
    try:
        await asyncio.wait_for(first.me(service), DEADLINE_S)  # the first start's snapshot
    finally:
        if first.sync is not None:
            await first.sync.stop()
        await service.close()
    first.store.forget_token(first.account)
    team = saved_team(folder, secrets=secrets)
    assert team is not None and not team.token_read
    service = await team.open(folder)
    try:
        assert (await team.me(service)).email == BOB
        assert not team.token_read  # the first window's reads need no keyring
        sync = await team.linked(service)
        signed_out = asyncio.Event()
        sync.subscribe_state(lambda state: signed_out.set() if state == "signed_out" else None)
        await team.start_sync(service)
        await asyncio.wait_for(signed_out.wait(), DEADLINE_S)
        assert team.token is None
    finally:
        await sync.stop()
        await service.close()
    assert await sign_out(team) is None
    assert not (folder / "team").exists()


async def test_t4_t5_a_pinned_self_signed_server_serves_the_event_stream_too(
    tmp_path: Path, secrets: SecretStore
) -> None:
    """T4: "Trust this certificate" pins the server's certificate for the sync's event
    stream as well as its calls: without the pin passed on, the stream failed on the
    certificate and the desktop stayed offline (its snapshot call worked)."""
    folder = tmp_path / "data"
    async with team_server(tmp_path / "tls-server", tls=True) as server:
        await server.service.start(mail=False)
        assert server.certificates is not None
        der = ssl.PEM_cert_to_DER_cert(server.certificates.certfile.read_text())
        pin = fingerprint_text(hashlib.sha256(der).digest())
        team = await _signed_in(server, folder, secrets, pin=pin)
        assert team.account.pin_sha256 == pin
        service = await team.open(folder)
        sync = await team.linked(service)
        online = asyncio.Event()
        sync.subscribe_state(lambda state: online.set() if state == "online" else None)
        try:
            await asyncio.wait_for(team.me(service), DEADLINE_S)
            await asyncio.wait_for(online.wait(), DEADLINE_S)
            item = await server.service.create_item(title="Printer on fire", followers=[BOB])
            await server.service.post(
                author=ANN, text="over TLS", conversation_id=item.internal_conversation_id
            )
            await asyncio.wait_for(sync.wait_current(), DEADLINE_S)
            assert sync.state is ConnectionState.ONLINE
            rows = await service.messages(
                conversation_id=item.internal_conversation_id, viewer_id=team.account.person_id
            )
            assert [row.text for row in rows][-1] == "over TLS"
        finally:
            await sync.stop()
            await service.close()


async def test_t4_sign_out_ends_the_session_and_removes_the_replica(
    tmp_path: Path, secrets: SecretStore, server: TeamServer
) -> None:
    folder = tmp_path / "data"
    team = await _signed_in(server, folder, secrets)
    service = await team.open(folder)
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
