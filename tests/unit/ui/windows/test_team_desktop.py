"""T5, S4, N3 in the real window: a desktop in a team (its replica from `open_replica`, the real
TeamSync) against the real server application on loopback. Another agent's post on the server
shows in the window with its count; with the server gone the quiet indicator says offline, a
post still shows at once and waits, a new item (numbered by the server) is refused with one
clear error; with the server back the post arrives there once and the indicator goes."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import shiboken6
from pytestqt.qtbot import QtBot

from services.api import (
    LOCAL_OPERATOR,
    ConnectionState,
    ServerUnreachableError,
    Service,
    TeamAccount,
    TeamSync,
    open_replica,
)
from services.clock import ManualClock
from services.server_client import ServerClient
from tests.support.loopback_server import LoopbackServer
from tests.unit.ui.desk import until
from ui.bridge import ServiceBridge
from ui.tasks import Tasks
from ui.theme import LIGHT
from ui.windows.main_window import INTERNAL_TAB, MainWindow

ANN, BOB, PW = "ann@example.com", "bob@example.com", "correct horse battery"
DEADLINE_S = 120.0  # generous: the machine is shared, and a reconnect waits its backoff


@dataclass
class TeamDesk:
    server: Service
    loopback: LoopbackServer
    service: Service  # the desktop's replica
    sync: TeamSync
    bridge: ServiceBridge
    window: MainWindow
    conversation: int  # the item's internal conversation (server ids, as in the replica)

    def row_texts(self) -> list[str]:
        return [row.last_text for row in self.window.models[INTERNAL_TAB].rows]

    async def server_texts(self) -> list[str]:
        ann = await self.server.person(ANN)
        rows = await self.server.messages(conversation_id=self.conversation, viewer_id=ann.id)
        return [row.text for row in rows]


@contextlib.asynccontextmanager
async def team_desk(tmp_path: Path) -> AsyncIterator[TeamDesk]:
    server = await Service.open(data_dir=tmp_path / "server", clock=ManualClock())
    for email, name, admin in ((ANN, "Ann Agent", True), (BOB, "Bob Agent", False)):
        await server.add_person(email=email, name=name, is_admin=admin)
        await server.set_password(acting=LOCAL_OPERATOR, email=email, password=PW)
    item = await server.create_item(title="Printer on fire", followers=[BOB])
    await server.start(mail=False)
    loopback = LoopbackServer(server)
    await loopback.start()
    client = ServerClient(loopback.url)
    await client.sign_in(email=BOB, password=PW, device="test desktop")
    me_id = (await client.me()).person_id
    service, sync = await open_replica(
        data_dir=tmp_path / "desk", client=client, person_id=me_id, first_window=False
    )
    tasks = Tasks()
    await service.start(mail=False)
    await sync.start()
    await asyncio.wait_for(sync.wait_current(), DEADLINE_S)
    me = await service.person_by_id(me_id)
    bridge = ServiceBridge(service=service, me=me, tasks=tasks)
    await bridge.start()
    clock = ManualClock()
    account = TeamAccount(
        server_url=loopback.url, email=BOB, person_id=me_id, name=me.name, pin_sha256=None
    )
    window = MainWindow(
        service=service,
        bridge=bridge,
        theme=LIGHT,
        tasks=tasks,
        now=clock.now,
        clock=clock,
        team_account=account,
        connection=sync,
    )
    window.show()
    await window.load()
    try:
        yield TeamDesk(
            server, loopback, service, sync, bridge, window, item.internal_conversation_id
        )
    finally:
        bridge.stop()
        await window.notifications.aclose()
        window.hide()
        await tasks.drain()
        await sync.stop()
        await service.close()
        await loopback.stop()
        await server.close()
        shiboken6.delete(window)


async def test_t5_n3_the_team_window_shows_a_teammates_post_and_works_offline(
    tmp_path: Path, qtbot: QtBot
) -> None:
    async with team_desk(tmp_path) as desk:
        indicator = desk.window.connection_indicator
        await until(lambda: desk.sync.state is ConnectionState.ONLINE, within=DEADLINE_S)
        assert not indicator.isVisible()
        assert desk.bridge.counts.total == 0

        # Another agent posts on the server: the window shows it, counted (N3).
        await desk.server.post(
            author=ANN, text="toner everywhere", conversation_id=desk.conversation
        )
        await until(lambda: "toner everywhere" in desk.row_texts(), within=DEADLINE_S)
        await until(lambda: desk.bridge.counts.total == 1, within=DEADLINE_S)
        assert desk.window.windowTitle().startswith("(1)")

        # The server goes away: the quiet indicator, no dialog.
        await desk.loopback.stop()
        await until(lambda: indicator.isVisible(), within=DEADLINE_S)
        assert indicator.text().startswith("Offline")

        # A post is shown at once and waits; a new item is refused, in one clear line.
        await desk.service.post(author=BOB, text="on my way", conversation_id=desk.conversation)
        await until(lambda: "on my way" in desk.row_texts(), within=DEADLINE_S)
        assert await desk.sync.pending_writes() == 1
        with pytest.raises(ServerUnreachableError, match="team server"):
            await desk.service.create_item(title="Made offline", followers=[])
        assert not any(row.title == "Made offline" for row in desk.window.models[INTERNAL_TAB].rows)
        assert "on my way" not in await desk.server_texts()

        # Back: the post arrives once, the indicator goes, the window's row stays one.
        await desk.loopback.start()
        await asyncio.wait_for(desk.sync.wait_current(), DEADLINE_S)
        assert (await desk.server_texts()).count("on my way") == 1
        await until(lambda: not indicator.isVisible(), within=DEADLINE_S)
        replica = await desk.service.messages(
            conversation_id=desk.conversation, viewer_id=desk.bridge.me.id
        )
        assert [row.text for row in replica].count("on my way") == 1

        # Online, a new item is made on the server and shows in the replica.
        item = await desk.service.create_item(title="Made online", followers=[BOB])
        assert (await desk.server.item(item.number)).title == "Made online"
