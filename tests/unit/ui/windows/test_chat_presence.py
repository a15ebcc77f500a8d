"""C2 in the desktop: on a customer conversation the header says whether the customer has the
chat open now, from the server's presence records, and follows as the customer comes and goes
(the change feed's person event); nothing on an internal conversation."""

from __future__ import annotations

from pytestqt.qtbot import QtBot

from services.api import LOCAL_OPERATOR
from tests.unit.ui.desk import Desk, until, with_desk

CARL = "carl@customer.org"


@with_desk
async def test_c2_the_header_says_whether_the_customer_is_in_the_chat(
    desk: Desk, qtbot: QtBot
) -> None:
    window, service = desk.window, desk.service
    presence = window.pane.header_presence
    await window.open_conversation(await desk.conversation(1))
    assert not presence.isVisible()  # internal: no customer

    external = await desk.conversation(1, external=True)
    await window.open_conversation(external)
    assert presence.isVisible()
    assert presence.accessibleName() == "Carl Customer is not in the chat"

    # Carl opens the chat page, and later closes it (as the server records it for every
    # process): the header follows without anything else happening in the conversation.
    session = await service.open_customer_session(
        acting=LOCAL_OPERATOR, email=CARL, device="customer chat", address="127.0.0.1"
    )
    page = await service.chat.join(await service.authenticate(session.token))
    await until(lambda: presence.accessibleName() == "Carl Customer is in the chat now")
    await service.chat.leave(page)
    await until(lambda: presence.accessibleName() == "Carl Customer is not in the chat")

    await window.open_conversation(await desk.conversation(1))
    assert not presence.isVisible()
