"""T1, T6: the desktop's and the command line's main flows through the API answer what the
local service answers: each answer, read back with `codec.from_plain` into the service's own
dataclass, equals the same read made on the service, and a write through the API is what the
service reads afterwards."""

from __future__ import annotations

from typing import Any

from aiohttp import ClientSession

from services.accounts import NewUser, PasswordSet, SignedIn
from services.api import ConversationKind, Inbox, PersonKind, Service
from services.automations import AutomationInfo
from services.email_log import EmailDetail
from services.incoming.decide import IncomingResult
from services.server.codec import from_plain
from services.system_emails import SystemEmailInfo
from services.template_store import TemplateInfo
from services.views import (
    Changes,
    ConversationInfo,
    ConversationRow,
    EmailLogEntry,
    ItemInfo,
    ItemMessage,
    MessageRow,
    PersonInfo,
    PostResult,
    UnseenCounts,
)
from tests.integration.server.conftest import ANN, BOB, CARL, PW, call, sign_in
from tests.support.world import World


class Api:
    """Calls as one signed-in person, each answer read back into `kind`."""

    def __init__(self, http: ClientSession, base_url: str, token: str) -> None:
        self.http, self.base_url, self.token = http, base_url, token

    async def __call__(
        self, kind: Any, method: str, path: str, json: object = None, *, status: int = 200
    ) -> Any:
        got, body = await call(self.http, self.base_url, method, path, self.token, json=json)
        assert got == status, (method, path, got, body)
        return body if kind is None else from_plain(kind, body)


async def test_t1_an_agents_flow_through_the_api_is_the_services(
    http: ClientSession, base_url: str, world: World, svc: Service
) -> None:
    bob = Api(http, base_url, await sign_in(http, base_url, BOB))
    ann = Api(http, base_url, await sign_in(http, base_url, ANN))
    assert await bob(SignedIn, "GET", "/me") == await svc.authenticate(bob.token)

    item = await bob(
        ItemInfo, "POST", "/items", {"title": "VPN down", "followers": [ANN, CARL]}, status=201
    )
    assert item == await svc.item(item.number)
    assert await bob(list[ItemInfo], "GET", "/items") == await svc.items()
    assert await bob(list[PersonInfo], "GET", "/people") == await svc.people()
    customers = await bob(list[PersonInfo], "GET", "/people?kind=customer")
    assert customers == await svc.people(kind=PersonKind.CUSTOMER)

    posted = await bob(
        PostResult,
        "POST",
        f"/items/{item.number}/messages",
        {"kind": "internal", "text": "looking at it"},
        status=201,
    )
    [(kind, row)] = await svc.item_messages(item.number)
    assert (kind, row.id, row.text, row.author and row.author.email) == (
        ConversationKind.INTERNAL,
        posted.message_id,
        "looking at it",
        BOB,
    )
    assert await bob(list[ItemMessage], "GET", f"/items/{item.number}/messages") == [
        ItemMessage(conversation=k, message=r) for k, r in await svc.item_messages(item.number)
    ]
    external = await bob(
        PostResult,
        "POST",
        f"/conversations/{item.external_conversation_id}/messages",
        {"text": "we are on it"},
        status=201,
    )
    assert external.conversation_id == item.external_conversation_id

    # Ann's window: her lists, counts and pages are the service's, and seeing lowers them.
    person = await svc.person(ANN)
    rows = await ann(list[ConversationRow], "GET", "/conversations?inbox=internal")
    assert rows == await svc.open_conversations(person_id=person.id, inbox=Inbox.INTERNAL)
    rows = await ann(list[ConversationRow], "GET", "/conversations?inbox=external")
    assert rows == await svc.open_conversations(person_id=person.id, inbox=Inbox.EXTERNAL)
    found = await ann(list[ConversationRow], "GET", "/conversations/search?text=vpn")
    assert found == await svc.find_conversations(person_id=person.id, text="vpn")
    counts = await ann(UnseenCounts, "GET", "/unseen-counts")
    assert counts == await svc.unseen_counts(person_id=person.id) and counts.total == 2
    cid = item.internal_conversation_id
    page = await ann(list[MessageRow], "GET", f"/conversations/{cid}/messages")
    assert page == await svc.messages(conversation_id=cid, viewer_id=person.id)
    assert await ann(ConversationInfo, "GET", f"/conversations/{cid}") == await svc.conversation(
        cid
    )
    changes = await ann(Changes, "POST", "/seen", {"message_ids": [posted.message_id]})
    assert changes.conversations == {cid}
    assert (await svc.unseen_counts(person_id=person.id)).total == 1
    await ann(Changes, "POST", f"/items/{item.number}/seen")
    assert (await svc.unseen_counts(person_id=person.id)).total == 0

    # The item's life: status, assignee, followers; the acting person is the caller.
    assert (
        await bob(ItemInfo, "PUT", f"/items/{item.number}/status", {"status": "pending"})
    ).status == "pending"
    assigned = await bob(ItemInfo, "PUT", f"/items/{item.number}/assignee", {"email": ANN})
    assert assigned == await svc.item(item.number) and assigned.assignee is not None
    await bob(Changes, "DELETE", f"/items/{item.number}/followers/{CARL}")
    await bob(Changes, "PUT", f"/items/{item.number}/followers/{CARL}")
    assert CARL in [f.email for f in (await svc.item(item.number)).followers]
    assert (await bob(ItemInfo, "POST", f"/items/{item.number}/close")).status == "closed"
    await bob(Changes, "DELETE", f"/messages/{posted.message_id}")
    left = [r.id for _, r in await svc.item_messages(item.number)]
    assert posted.message_id not in left and external.message_id in left


async def test_t4_r5_settings_and_accounts_through_the_api(
    http: ClientSession, base_url: str, world: World, svc: Service
) -> None:
    bob = Api(http, base_url, await sign_in(http, base_url, BOB))
    ann = Api(http, base_url, await sign_in(http, base_url, ANN))
    mine = await bob(PersonInfo, "GET", f"/people/{BOB}")
    wanted = {"in_app": True, "email": False, "sound": False, "delay_s": 300}
    changed = await bob(PersonInfo, "PUT", f"/people/{BOB}/notifications", wanted)
    assert changed == await svc.person(BOB) and changed.settings.sound is False
    refused = await bob(None, "PUT", f"/people/{ANN}/notifications", wanted, status=403)
    assert refused["error"]["type"] == "PermissionDeniedError"
    quiet = await ann(PersonInfo, "PUT", f"/people/{BOB}/do-not-disturb", {"choice": "1h"})
    assert quiet.settings.dnd_until is not None and quiet != mine
    await bob(None, "PUT", f"/people/{ANN}/do-not-disturb", {"choice": "1h"}, status=403)
    assert (await svc.person(ANN)).settings.dnd_until is None

    assert await bob(dict[str, str], "GET", "/settings") == svc.known_settings()
    new = await ann(
        NewUser, "POST", "/users", {"email": "dan@example.com", "name": "Dan"}, status=201
    )
    assert new.person == await svc.person("dan@example.com")
    customer = await bob(
        PersonInfo, "POST", "/people", {"email": "eve@cust.org", "name": "Eve"}, status=201
    )
    assert customer.kind is PersonKind.CUSTOMER
    await bob(
        None, "POST", "/people", {"email": "f@example.com", "name": "F", "kind": "user"}, status=403
    )

    done = await bob(
        PasswordSet, "POST", "/me/password", {"current": PW, "new": "a brand new password"}
    )
    assert done.ended_sessions == 0
    assert await sign_in(http, base_url, BOB, "a brand new password")
    same = [
        await call(http, base_url, "POST", "/password-resets", json={"email": email})
        for email in (BOB, "nobody@example.com", CARL, "not an address")
    ]
    assert all(answer == (202, None) for answer in same)


async def test_m1_m8_the_messaging_center_through_the_api(
    http: ClientSession, base_url: str, world: World, svc: Service
) -> None:
    ann = Api(http, base_url, await sign_in(http, base_url, ANN))
    assert await ann(list[AutomationInfo], "GET", "/automations") == await svc.automations.list()
    first = (await svc.automations.list())[0]
    assert await ann(AutomationInfo, "GET", f"/automations/{first.id}") == first
    assert await ann(list[TemplateInfo], "GET", "/templates") == await svc.templates.list()
    systems = await ann(list[SystemEmailInfo], "GET", "/system-emails")
    assert systems == await svc.system_emails.list()
    raw = (
        b"From: Zed <zed@cust.org>\r\nTo: help@example.com\r\nSubject: Help please\r\n"
        b"Message-ID: <z1@cust.org>\r\n\r\nMy screen is blank.\r\n"
    )
    async with http.post(
        f"{base_url}/api/v1/mail",
        data=raw,
        headers={"Authorization": f"Bearer {ann.token}", "Content-Type": "message/rfc822"},
    ) as response:
        assert response.status == 200
        result = from_plain(IncomingResult, await response.json())
    entries = await ann(list[EmailLogEntry], "GET", "/emails?direction=in")
    assert entries == await svc.emails(direction="in") and entries[0].id == result.email_id
    detail = await ann(EmailDetail, "GET", f"/emails/{result.email_id}")
    assert detail == await svc.email_detail(result.email_id)
    async with http.get(
        f"{base_url}/api/v1/emails/{result.email_id}/raw",
        headers={"Authorization": f"Bearer {ann.token}"},
    ) as response:
        assert response.content_type == "message/rfc822"
        assert await response.read() == await svc.email_raw(result.email_id)
