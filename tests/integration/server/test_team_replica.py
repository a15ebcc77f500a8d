"""Desktops in a team (T5, S4, N3, D7): replicas (`open_replica` + `TeamSync`) against the real
server application on loopback, over SQLite and PostgreSQL. Posts and seen marks made on one
replica reach the server once and the other replicas; counts agree with the server's after
every step; offline writes wait in order and arrive once; a connection cut mid-send, a cursor
too old, a refused write."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import insert, select

from services.api import (
    ConnectionState,
    ConversationKind,
    Service,
    TeamSync,
    UnseenCounts,
    open_replica,
)
from services.clock import ManualClock
from services.events import KEEP
from services.server_client import ServerClient
from services.store.database import Tx
from services.store.models import Conversation, ConversationMember, Message
from services.team.replica import PROVISIONAL_BASE
from tests.integration.server.conftest import ANN, BOB, PW
from tests.support.loopback_server import LoopbackServer
from tests.support.proc_stats import measure, wait_until_quiet
from tests.support.tcp_proxy import TcpProxy
from tests.support.world import World

REPO = Path(__file__).resolve().parents[3]
DEADLINE_S = 60.0  # generous: the machine is shared and can be slow


@dataclass
class Desktop:
    """One desktop's replica: its service, its sync, its client."""

    service: Service
    sync: TeamSync
    client: ServerClient
    person_id: int

    async def counts(self) -> UnseenCounts:
        return await self.service.unseen_counts(person_id=self.person_id)

    async def current(self) -> None:
        await asyncio.wait_for(self.sync.wait_current(), DEADLINE_S)

    async def close(self) -> None:
        await self.sync.stop()
        await self.service.close()
        await self.client.close()


@pytest.fixture
async def server(svc: Service, world: World) -> AsyncIterator[LoopbackServer]:
    await svc.start(mail=False)
    loopback = LoopbackServer(svc)
    await loopback.start()
    yield loopback
    await loopback.stop()


@pytest.fixture
async def desktops(tmp_path: Path) -> AsyncIterator[Callable[..., Awaitable[Desktop]]]:
    opened: list[Desktop] = []

    async def open_desktop(
        name: str, url: str, email: str, *, token: str | None = None, start: bool = True
    ) -> Desktop:
        client = ServerClient(url, token)
        if token is None:
            await client.sign_in(email=email, password=PW, device=name)
        me = await client.me() if start else None
        person_id = me.person_id if me else int(name.rsplit("-", 1)[-1])
        service, sync = await open_replica(
            data_dir=tmp_path / name.rsplit("-", 1)[0], client=client, person_id=person_id
        )
        await service.start(mail=False)
        desktop = Desktop(service, sync, client, person_id)
        opened.append(desktop)
        await sync.start()
        if start:
            await desktop.current()
        return desktop

    yield open_desktop
    for desktop in opened:
        with contextlib.suppress(Exception):
            await desktop.close()


async def until(condition: Callable[[], Awaitable[bool]], what: str) -> None:
    async def wait() -> None:
        while not await condition():  # noqa: ASYNC110 - a polled condition, not an event
            await asyncio.sleep(0.05)

    try:
        await asyncio.wait_for(wait(), DEADLINE_S)
    except TimeoutError:
        raise AssertionError(f"still not {what} after {DEADLINE_S} s") from None


async def texts(service: Service, conversation_id: int, viewer_id: int) -> list[str]:
    rows = await service.messages(conversation_id=conversation_id, viewer_id=viewer_id)
    return [row.text for row in rows]


async def test_t5_s4_n3_two_agents_and_a_second_desktop_agree_at_every_step(
    svc: Service, world: World, server: LoopbackServer, desktops: Callable[..., Awaitable[Desktop]]
) -> None:
    """T5: a post on Bob's desktop reaches the server once and Ann's two desktops; S4: Ann
    sees it on one desktop, the other drops it from its counts; N3: every replica's counts
    equal the server's after each step."""
    ann1 = await desktops("ann1", server.url, ANN)
    ann2 = await desktops("ann2", server.url, ANN)
    bob = await desktops("bob", server.url, BOB)
    item = await svc.item(world.item)
    internal = item.internal_conversation_id

    async def agree() -> None:
        # Every desktop's writes reach the server, then every desktop has all the server has.
        for _ in range(2):
            for desktop in (ann1, ann2, bob):
                await desktop.current()
        for desktop in (ann1, ann2, bob):
            assert await desktop.counts() == await svc.unseen_counts(person_id=desktop.person_id)

    await agree()
    posted = await bob.service.post(author=BOB, text="the printer again", conversation_id=internal)
    assert posted.message_id >= PROVISIONAL_BASE  # shown at once, before the server has it
    assert "the printer again" in await texts(bob.service, internal, bob.person_id)
    await agree()
    on_server = [r for r in await svc.messages(conversation_id=internal, viewer_id=world.ann)]
    assert [r.text for r in on_server].count("the printer again") == 1
    server_id = on_server[-1].id
    for desktop in (ann1, ann2, bob):  # the server's row, in place of the provisional one
        rows = await desktop.service.messages(conversation_id=internal, viewer_id=world.ann)
        assert [(r.id, r.text) for r in rows][-1] == (server_id, "the printer again")
    assert (await ann2.counts()).total == 1

    await ann1.service.mark_seen(person_id=world.ann, message_ids=[server_id])
    assert (await ann1.counts()).total == 0  # at once, locally
    await agree()
    assert (await ann2.counts()).total == 0  # S4: seen on the other desktop
    assert (await svc.unseen_counts(person_id=world.ann)).total == 0

    await ann2.service.post(author=ANN, text="on it", conversation_id=internal)
    await agree()
    assert (await bob.counts()).total == 1


async def test_t5_d7_offline_writes_wait_and_arrive_once_in_order(
    svc: Service, world: World, server: LoopbackServer, desktops: Callable[..., Awaitable[Desktop]]
) -> None:
    """D7/T5: the server stops; Ann posts twice and marks Bob's message seen on her desktop,
    which keeps working and says it is offline; the server comes back: everything arrives,
    once, in order, and the counts agree (N3)."""
    item = await svc.item(world.item)
    internal = item.internal_conversation_id
    earlier = await svc.post(author=BOB, text="are you there?", conversation_id=internal)
    ann = await desktops("ann", server.url, ANN)
    assert (await ann.counts()).total == 1
    states: list[ConnectionState] = []
    ann.sync.subscribe_state(states.append)

    await server.stop()
    await until(lambda: _is(ann.sync, ConnectionState.OFFLINE), "offline")
    await ann.service.post(author=ANN, text="first", conversation_id=internal)
    await ann.service.post(author=ANN, text="second", conversation_id=internal)
    await ann.service.mark_seen(person_id=world.ann, message_ids=[earlier.message_id])
    assert (await ann.counts()).total == 0
    assert await ann.sync.pending_writes() == 3
    assert (await texts(ann.service, internal, world.ann))[-2:] == ["first", "second"]

    await server.start()
    ann.sync.reconnect_now()
    await ann.current()
    assert ann.sync.state is ConnectionState.ONLINE
    assert ConnectionState.OFFLINE in states
    on_server = await texts(svc, internal, world.ann)
    assert on_server[-2:] == ["first", "second"]
    assert on_server.count("first") == on_server.count("second") == 1
    assert (await svc.unseen_counts(person_id=world.ann)).total == 0
    assert await ann.counts() == await svc.unseen_counts(person_id=world.ann)
    assert await texts(ann.service, internal, world.ann) == on_server


async def test_t5_d7_a_desktop_closed_with_writes_waiting_sends_them_once_when_reopened(
    svc: Service, world: World, server: LoopbackServer, desktops: Callable[..., Awaitable[Desktop]]
) -> None:
    """The queue lives in the replica's SQLite file: closed offline with a post waiting,
    opened again, the post arrives once."""
    internal = (await svc.item(world.item)).internal_conversation_id
    ann = await desktops("ann", server.url, ANN)
    token = ann.client.token
    await server.stop()
    await ann.service.post(author=ANN, text="kept", conversation_id=internal)
    await ann.close()
    await server.start()
    again = await desktops("ann", server.url, ANN, token=token)
    await again.current()
    assert (await texts(svc, internal, world.ann)).count("kept") == 1
    assert (await texts(again.service, internal, world.ann)).count("kept") == 1
    assert await again.sync.pending_writes() == 0


async def test_t5_a_connection_cut_mid_send_posts_once(
    svc: Service, world: World, server: LoopbackServer, desktops: Callable[..., Awaitable[Desktop]]
) -> None:
    """The network goes in the middle of a post: the server has it, the answer never comes;
    the desktop sends it again with the same client id and the server makes it once."""
    internal = (await svc.item(world.item)).internal_conversation_id
    proxy = await TcpProxy.start("127.0.0.1", server.port)
    try:
        ann = await desktops("ann", proxy.url, ANN)
        proxy.hold_replies = True
        await ann.service.post(author=ANN, text="through the cut", conversation_id=internal)

        async def arrived() -> bool:
            return "through the cut" in await texts(svc, internal, world.ann)

        await until(arrived, "on the server")
        proxy.cut()
        proxy.hold_replies = False
        ann.sync.reconnect_now()
        await ann.current()
        assert (await texts(svc, internal, world.ann)).count("through the cut") == 1
        assert (await texts(ann.service, internal, world.ann)).count("through the cut") == 1
        assert await ann.counts() == await svc.unseen_counts(person_id=world.ann)
    finally:
        await proxy.close()


async def test_t5_a_cursor_too_old_reloads_the_snapshot(
    svc: Service,
    world: World,
    clock: ManualClock,
    server: LoopbackServer,
    desktops: Callable[..., Awaitable[Desktop]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Away longer than the server keeps events: the replica is told to resync and reloads
    everything from the snapshot, then follows the stream again."""
    internal = (await svc.item(world.item)).internal_conversation_id
    ann = await desktops("ann", server.url, ANN)
    token = ann.client.token
    await ann.close()
    await svc.post(author=BOB, text="while you were away", conversation_id=internal)
    clock.advance(2 * KEEP.total_seconds())
    await svc.feed.purge()
    await svc.post(author=BOB, text="and now", conversation_id=internal)
    caplog.set_level("INFO", logger="services.team.sync")
    again = await desktops("ann", server.url, ANN, token=token)
    await again.current()
    assert "asks for a fresh copy" in caplog.text
    assert (await texts(again.service, internal, world.ann))[-2:] == [
        "while you were away",
        "and now",
    ]
    assert await again.counts() == await svc.unseen_counts(person_id=world.ann)


async def test_t5_a_write_the_server_refuses_is_dropped_and_undone(
    svc: Service, world: World, server: LoopbackServer, desktops: Callable[..., Awaitable[Desktop]]
) -> None:
    """A post the server refuses (a conversation that is not Ann's) leaves the queue with a
    log line and its provisional message goes; what follows it still goes out."""
    internal = (await svc.item(world.item)).internal_conversation_id
    await svc.add_person(email="dora@example.com", name="Dora Agent")
    theirs = await svc.direct_conversation(a=BOB, b="dora@example.com")
    ann = await desktops("ann", server.url, ANN)

    def pretend(tx: Tx, cid: int) -> None:  # the replica wrongly believes Ann is in it
        conn = tx.conn
        conn.execute(
            insert(Conversation).values(
                id=cid, kind=ConversationKind.DIRECT.value, created_at=ann.service.clock.now()
            )
        )
        conn.execute(
            insert(ConversationMember),
            [{"conversation_id": cid, "person_id": p} for p in (world.ann, world.bob)],
        )

    await ann.service.db.write(pretend, theirs)
    await ann.service.post(author=ANN, text="not yours", conversation_id=theirs)
    await ann.service.post(author=ANN, text="still sent", conversation_id=internal)
    await ann.current()
    assert await texts(ann.service, internal, world.ann) == await texts(svc, internal, world.ann)
    assert "still sent" in await texts(svc, internal, world.ann)

    async def undone() -> bool:
        rows = await ann.service.db.read(_texts_everywhere)
        return "not yours" not in rows

    await until(undone, "undone")


def _texts_everywhere(tx: Tx) -> list[str]:
    return [t for (t,) in tx.conn.execute(select(Message.text))]


async def _is(sync: TeamSync, state: ConnectionState) -> bool:
    return sync.state is state


@pytest.mark.parametrize("how", ["offline", "answer lost"])
async def test_t5_d7_a_desktop_killed_with_a_write_waiting_loses_nothing_and_doubles_nothing(
    svc: Service,
    world: World,
    server: LoopbackServer,
    desktops: Callable[..., Awaitable[Desktop]],
    tmp_path: Path,
    how: str,
) -> None:
    """D7/T5: a desktop process is killed (SIGKILL) with a post in its queue, the server
    stopped ("offline"), or the server having applied it while its answer never came back
    ("answer lost"); started again, the post reaches the server exactly once."""
    internal = (await svc.item(world.item)).internal_conversation_id
    ann = await desktops("ann", server.url, ANN)
    token = ann.client.token
    assert token is not None
    await ann.close()
    proxy = await TcpProxy.start("127.0.0.1", server.port)
    try:
        if how == "offline":
            await server.stop()
        else:
            proxy.hold_replies = True
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.support.team_desktop",
            proxy.url,
            token,
            str(world.ann),
            str(tmp_path / "ann"),
            str(internal),
            "before the kill",
            cwd=REPO,
            stdout=asyncio.subprocess.PIPE,
        )
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), DEADLINE_S)
        assert line.strip() == b"posted"
        if how == "answer lost":

            async def arrived() -> bool:
                return "before the kill" in await texts(svc, internal, world.ann)

            await until(arrived, "on the server")
        process.kill()
        await process.wait()
        if how == "offline":
            await server.start()
        proxy.hold_replies = False
        again = await desktops("ann", server.url, ANN, token=token)
        await again.current()
        assert (await texts(svc, internal, world.ann)).count("before the kill") == 1
        assert (await texts(again.service, internal, world.ann)).count("before the kill") == 1
        assert await again.sync.pending_writes() == 0
    finally:
        await proxy.close()


async def test_t5_an_idle_connected_desktop_waits_on_its_connection_only(
    svc: Service,
    world: World,
    server: LoopbackServer,
    desktops: Callable[..., Awaitable[Desktop]],
    tmp_path: Path,
) -> None:
    """Idle means idle (issue 11): a desktop process connected and current, once settled,
    wakes at most a couple of times in two seconds (no polling; the WebSocket's heartbeat is
    30 s) and spends next to no CPU."""
    ann = await desktops("ann", server.url, ANN)
    token = ann.client.token
    assert token is not None
    await ann.close()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.support.team_desktop",
        server.url,
        token,
        str(world.ann),
        str(tmp_path / "ann"),
        "0",
        "-",
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), DEADLINE_S)
        assert line.strip() == b"current"
        quiet = await asyncio.to_thread(wait_until_quiet, process.pid, timeout_s=DEADLINE_S)
        assert quiet is not None, "the desktop never went quiet"
        usage = await asyncio.to_thread(measure, process.pid, 2.0)
        assert usage.switches <= 4, usage
        assert usage.cpu_percent < 2, usage
    finally:
        process.kill()
        await process.wait()


async def test_t5_s4_follows_and_settings_reach_the_server_and_the_other_desktop(
    svc: Service, world: World, server: LoopbackServer, desktops: Callable[..., Awaitable[Desktop]]
) -> None:
    """Unfollowing an item and do not disturb, set on one of Ann's desktops, are the
    server's and her other desktop's too (M7, N6)."""
    ann1 = await desktops("ann1", server.url, ANN)
    ann2 = await desktops("ann2", server.url, ANN)
    await ann1.service.unfollow(number=world.item, email=ANN)
    await ann1.service.set_do_not_disturb(person_id=world.ann, choice="1h")
    for desktop in (ann1, ann2, ann1, ann2):
        await desktop.current()
    on_server = await svc.person(ANN)
    assert on_server.settings.dnd_until is not None
    assert ANN not in {p.email for p in (await svc.item(world.item)).followers}

    async def followed_on_ann2() -> bool:
        item = await ann2.service.item(world.item)
        return ANN not in {p.email for p in item.followers}

    async def quiet_on_ann2() -> bool:
        return (await ann2.service.person(ANN)).settings.dnd_until == on_server.settings.dnd_until

    await until(followed_on_ann2, "unfollowed on the other desktop")
    await until(quiet_on_ann2, "in do not disturb on the other desktop")
