"""T5 in the window: in a team what an administrator manages lives on the server. A real team
server on loopback (the application of `deskbell serve` over a real Service), a desktop's real
replica and sync (`open_replica`, `TeamSync`), and the main window over them with the server
as its `center` (`RemoteService`), as app/desktop.py wires it. What the window changes is read
back from the server over HTTP; the replica's own tables are not written."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import shiboken6
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from services.api import (
    LOCAL_OPERATOR,
    ConnectionState,
    PersonInfo,
    PersonKind,
    RemoteService,
    Service,
    TeamSync,
    open_replica,
)
from services.clock import ManualClock
from services.server_client import ServerClient, path
from tests.support.loopback_server import LoopbackServer
from tests.support.team_server import ANN, BOB, PW
from tests.unit.ui.desk import until
from ui.bridge import ServiceBridge
from ui.tasks import Tasks
from ui.theme import LIGHT
from ui.widgets.chat_settings import ChatSettings
from ui.windows.main_window import MainWindow
from ui.windows.messaging_center import MessagingCenter

DEADLINE_S = 60.0  # generous: the machine is shared and can be slow


@dataclass
class TeamDesk:
    server: Service
    loopback: LoopbackServer
    admin: ServerClient  # Ann's own client, to read back what the server has
    replica: Service
    sync: TeamSync
    center: RemoteService
    me: PersonInfo
    window: MainWindow
    tasks: Tasks

    async def open_center(self) -> MessagingCenter:
        center = self.window.open_messaging_center()
        assert center is not None
        await center.wait_idle()
        return center


@contextlib.asynccontextmanager
async def team_desk(tmp_path: Path, email: str) -> AsyncIterator[TeamDesk]:
    clock = ManualClock()
    server = await Service.open(data_dir=tmp_path / "server", clock=clock)
    await server.add_person(email=ANN, name="Ann Agent", is_admin=True)
    await server.add_person(email=BOB, name="Bob Agent")
    for address in (ANN, BOB):
        await server.set_password(acting=LOCAL_OPERATOR, email=address, password=PW)
    await server.start(mail=False)
    loopback = LoopbackServer(server)
    await loopback.start()
    client = ServerClient(loopback.url)
    who = await client.sign_in(email=email, password=PW, device="desktop")
    admin = ServerClient(loopback.url)
    await admin.sign_in(email=ANN, password=PW, device="test")
    replica, sync = await open_replica(
        data_dir=tmp_path / "desk", client=client, person_id=who.person_id
    )
    await replica.start(mail=False)
    await sync.start()
    await asyncio.wait_for(sync.wait_current(), DEADLINE_S)
    center = RemoteService(ServerClient(loopback.url, client.token))
    me = await replica.person_by_id(who.person_id)
    tasks = Tasks()
    bridge = ServiceBridge(service=replica, me=me, tasks=tasks)
    await bridge.start()
    window = MainWindow(
        service=replica,
        bridge=bridge,
        theme=LIGHT,
        tasks=tasks,
        now=clock.now,
        clock=clock,
        connection=sync,
        center=center,
    )
    window.show()
    await window.load()
    desk = TeamDesk(server, loopback, admin, replica, sync, center, me, window, tasks)
    try:
        yield desk
    finally:
        if window.messaging_center is not None:
            window.messaging_center.reject()
        bridge.stop()
        await window.notifications.aclose()
        window.hide()
        await tasks.drain()
        await sync.stop()
        await replica.close()
        await client.close()
        await center.close()
        await admin.close()
        await loopback.stop()
        await server.close()
        shiboken6.delete(window)
        gc.collect()
        QApplication.processEvents()


async def test_m1_m3_c1_t5_an_administrator_edits_on_the_server(
    tmp_path: Path, qtbot: QtBot
) -> None:
    async with team_desk(tmp_path, ANN) as desk:
        local_before = [a.text for a in await desk.replica.automations.list()]
        center = await desk.open_center()

        # M1: an automation's text.
        page = center.messages_page
        automation = page.current
        assert automation is not None
        page.text_edit.setPlainText("Written on the server {{ item.ref }}")
        await page.save_text()
        assert page.status_label.text() == "Saved."
        on_server = await desk.admin.call("GET", path("automations", automation.id))
        assert on_server["text"] == "Written on the server {{ item.ref }}"
        assert [a.text for a in await desk.replica.automations.list()] == local_before

        # M3: a template's subject.
        center.show_section("Automated emails")
        await center.wait_idle()
        editor = center.emails_page.editor
        assert editor.template is not None
        name = editor.template.name
        editor.subject_edit.setText("Server subject {{ item.ref }}")
        assert await editor.save()
        on_server = await desk.admin.call("GET", path("templates", name))
        assert on_server["subject"] == "Server subject {{ item.ref }}"
        assert (await desk.replica.templates.get(name)).subject != on_server["subject"]

        # C1: the chat's title.
        center.show_section("Chat")
        await center.wait_idle()
        shown = center.chat_page.shown
        assert shown is not None
        await center.chat_page.save(
            ChatSettings(
                enabled=shown.enabled,
                title="Help from the server",
                colour=shown.colour,
                logo_url=shown.logo_url,
                public_url=shown.public_url,
            )
        )
        assert center.chat_page.form.status_label.text() == "Saved."
        settings = await desk.admin.call("GET", path("chat", "settings"))
        assert settings["title"] == "Help from the server"
        assert desk.replica.config("chat.title") != "Help from the server"


async def test_m6_t5_the_email_log_shows_the_servers_emails(tmp_path: Path, qtbot: QtBot) -> None:
    async with team_desk(tmp_path, ANN) as desk:
        await desk.server.templates.test_send("item_closed", to="someone@example.com")
        assert await desk.replica.emails() == []  # a replica sends and receives no email
        center = await desk.open_center()
        center.show_section("Incoming & Outgoing")
        await center.wait_idle()
        model = center.log_page.model
        await until(lambda: model.rowCount() == 1, within=DEADLINE_S)
        assert model.entry(0).to_addrs == ("someone@example.com",)
        center.log_page.table.selectRow(0)
        await center.wait_idle()
        assert "someone@example.com" in center.log_page.detail.toPlainText()


async def test_m1_t5_an_agent_has_no_messaging_center(tmp_path: Path, qtbot: QtBot) -> None:
    async with team_desk(tmp_path, BOB) as desk:
        assert not desk.me.is_admin
        assert not desk.window.messaging_center_action.isVisible()
        assert desk.window.open_messaging_center() is None


async def test_m1_t5_offline_the_center_says_it_needs_the_server(
    tmp_path: Path, qtbot: QtBot
) -> None:
    async with team_desk(tmp_path, ANN) as desk:
        await desk.loopback.stop()
        await until(lambda: desk.sync.state is ConnectionState.OFFLINE, within=DEADLINE_S)
        center = await desk.open_center()
        banner = center.server_banner
        assert banner.isVisibleTo(center)
        assert "team's server" in banner.text() and "cannot be reached" in banner.text()
        assert not center.stack.isEnabled()
        assert not center.messages_page.save_button.isEnabled()
        assert center.messages_page.automations == []  # nothing read from the replica

        await desk.loopback.start()
        desk.sync.reconnect_now()
        await until(lambda: desk.sync.state is ConnectionState.ONLINE, within=DEADLINE_S)
        await until(lambda: bool(center.messages_page.automations), within=DEADLINE_S)
        assert not banner.isVisibleTo(center) and center.stack.isEnabled()


async def test_t5_a_new_item_is_numbered_by_the_server(
    tmp_path: Path, qtbot: QtBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    warnings: list[str] = []
    monkeypatch.setattr(
        "ui.windows.main_window.QMessageBox.warning",
        lambda _parent, _title, text: warnings.append(text),
    )
    async with team_desk(tmp_path, BOB) as desk:
        # The server numbers items: one made there first, which the desktop never created.
        first = await desk.server.create_item(title="Made on the server")
        await desk.window._create_item("Made on the desktop", [])
        assert warnings == []
        items = await desk.admin.call("GET", path("items"))
        made = next(i for i in items if i["title"] == "Made on the desktop")
        assert made["number"] > first.number
        # It arrives in the replica through the sync, and the window opens it.
        await until(
            lambda: (
                desk.window.current is not None
                and desk.window.current.item_number == made["number"]
            ),
            within=DEADLINE_S,
        )

        # Offline: one clear error, nothing made locally.
        await desk.loopback.stop()
        await desk.window._create_item("Never made", [])
        assert len(warnings) == 1 and "not created" in warnings[0]
        assert "Never made" not in [i.title for i in await desk.replica.items()]


async def test_c2_t5_in_the_chat_now_is_the_servers(tmp_path: Path, qtbot: QtBot) -> None:
    async with team_desk(tmp_path, ANN) as desk:
        carl = "carl@customer.org"
        await desk.server.add_person(email=carl, name="Carl Customer", kind=PersonKind.CUSTOMER)
        item = await desk.server.create_item(title="Carl's printer", requester=carl)
        await asyncio.wait_for(desk.sync.wait_current(), DEADLINE_S)
        await desk.window.open_conversation(item.external_conversation_id)
        presence = desk.window.pane.header_presence
        assert presence.accessibleName() == "Carl Customer is not in the chat"

        # Carl opens the chat page on the server; the replica relays the person event.
        session = await desk.server.open_customer_session(
            acting=LOCAL_OPERATOR, email=carl, device="customer chat", address="127.0.0.1"
        )
        page = await desk.server.chat.join(await desk.server.authenticate(session.token))
        await until(
            lambda: presence.accessibleName() == "Carl Customer is in the chat now",
            within=DEADLINE_S,
        )
        await desk.server.chat.leave(page)
        await until(
            lambda: presence.accessibleName() == "Carl Customer is not in the chat",
            within=DEADLINE_S,
        )


async def test_m7_t5_an_administrator_edits_another_users_notifications_on_the_server(
    tmp_path: Path, qtbot: QtBot
) -> None:
    async with team_desk(tmp_path, ANN) as desk:
        bob = await desk.server.person(BOB)
        assert bob.settings.sound is True
        dialog = await desk.window.open_settings()
        dialog.person_combo.setCurrentIndex(dialog.person_combo.findData(bob.id))
        dialog.sound_check.setChecked(False)
        assert await dialog.save()
        assert (await desk.server.person(BOB)).settings.sound is False
        assert (await desk.server.person(ANN)).settings.sound is True
        dialog.reject()
