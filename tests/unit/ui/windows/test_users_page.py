"""The Messaging Center's Users section (T4, M8), against a real Service on SQLite, offscreen:
an administrator adds a user, sees the devices a user is signed in on, and ends one."""

from __future__ import annotations

import pytest
from pytestqt.qtbot import QtBot

from services.api import LOCAL_OPERATOR, AuthenticationError, Service
from services.clock import ManualClock
from tests.support.world import World
from ui.windows.messaging_center import MessagingCenter

BOB = "bob@example.com"
PW = "correct horse battery"


async def _users(qtbot: QtBot, service: Service, w: World) -> MessagingCenter:
    center = MessagingCenter(service, await service.person_by_id(w.ann))
    qtbot.addWidget(center)
    center.show()
    center.show_section("Users")
    await center.wait_idle()
    return center


async def test_t4_m8_an_administrator_adds_a_user(
    qtbot: QtBot, world: tuple[Service, World, ManualClock]
) -> None:
    service, w, _ = world
    center = await _users(qtbot, service, w)
    page = center.users_page
    shown = [page.list.item(i).text() for i in range(page.list.count())]
    assert shown == [
        "Ann Agent <ann@example.com> · administrator",
        "Bob Agent <bob@example.com> · agent",
    ]  # users only: Carl is a customer

    page.email_edit.setText("not an address")
    page.name_edit.setText("Dan")
    page.add_button.click()
    await center.wait_idle()
    assert "address" in page.status_label.text()
    assert page.list.count() == 2

    page.email_edit.setText("dan@example.com")
    page.admin_check.setChecked(True)
    page.add_button.click()
    await center.wait_idle()
    assert page.status_label.text().startswith("dan@example.com added. The welcome email is off")
    assert page.selected_user is not None and page.selected_user.email == "dan@example.com"
    assert (await service.person("dan@example.com")).is_admin
    assert page.email_edit.text() == "" and not page.admin_check.isChecked()


async def test_t4_m8_an_administrator_sees_and_ends_a_users_sessions(
    qtbot: QtBot, world: tuple[Service, World, ManualClock]
) -> None:
    service, w, _ = world
    await service.set_password(acting=LOCAL_OPERATOR, email=BOB, password=PW)
    laptop = await service.sign_in(email=BOB, password=PW, device="laptop", address="192.0.2.1")
    phone = await service.sign_in(email=BOB, password=PW, device="phone", address="192.0.2.2")
    center = await _users(qtbot, service, w)
    page = center.users_page
    assert page.table.isHidden() and not page.empty_label.isHidden()  # Ann: no device
    page.list.setCurrentRow(1)
    await center.wait_idle()
    cells = [[page.table.item(r, c).text() for c in range(2)] for r in range(page.table.rowCount())]
    assert cells == [["laptop", "192.0.2.1"], ["phone", "192.0.2.2"]]
    assert not page.end_button.isEnabled()
    page.table.selectRow(0)
    page.end_button.click()
    await center.wait_idle()
    assert page.status_label.text() == "laptop is signed out."
    assert page.table.rowCount() == 1 and page.table.item(0, 0).text() == "phone"
    with pytest.raises(AuthenticationError):
        await service.authenticate(laptop.token)
    assert await service.authenticate(phone.token) == phone.who
