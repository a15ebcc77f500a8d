"""C1, C3: starting a conversation from the widget: name and email in, a code emailed
through the outbox over real SMTP (aiosmtpd), confirmed once, and only then the customer's
session; nothing of an existing conversation before that. Through real HTTP on loopback."""

from __future__ import annotations

import re
from email.message import EmailMessage

from aiohttp import ClientSession

from services.api import ConversationKind, PersonKind, Service
from tests.integration.server.chat_support import browser, csrf_of
from tests.integration.server.conftest import CARL
from tests.support.smtpd import SmtpServer
from tests.support.world import World

_FORM_CSRF = re.compile(r'name="csrf" value="([0-9a-f]+)"')


async def _mail_to(svc: Service, smtp: SmtpServer) -> None:
    await svc.set_config("smtp.host", "127.0.0.1")
    await svc.set_config("smtp.port", str(smtp.port))
    await svc.set_config("smtp.security", "none")
    await svc.set_config("smtp.from", "support@deskbell.test")


async def _form(http: ClientSession, url: str) -> tuple[int, str, str]:
    async with http.get(url) as response:
        page = await response.text()
        found = _FORM_CSRF.search(page)
        return response.status, page, found.group(1) if found else ""


async def _code_for(svc: Service, smtp: SmtpServer, email: str) -> str:
    await svc.outbox.flush()
    sent = [m for m in smtp.handler.messages if email in str(m["To"])]
    assert sent, "no code was emailed"
    last = sent[-1]
    assert isinstance(last, EmailMessage)
    body = last.get_body(preferencelist=("plain",))
    assert body is not None
    found = re.search(r"\b([0-9]{6})\b", body.get_content())
    assert found
    return found.group(1)


async def test_c1_a_new_customer_starts_a_conversation_from_the_widget_with_an_emailed_code(
    svc: Service, world: World, base_url: str, smtp_server: SmtpServer
) -> None:
    await _mail_to(svc, smtp_server)
    async with browser(base_url) as http:
        async with http.get(f"{base_url}/chat/widget.js") as response:
            assert response.status == 200
            assert response.headers["Content-Type"].startswith("text/javascript")
            assert "/chat/start" in await response.text()
        status, page, csrf = await _form(http, f"{base_url}/chat/start")
        assert status == 200 and csrf
        async with http.post(
            f"{base_url}/chat/start/code",
            data={"csrf": csrf, "name": "Nia New", "email": "Nia@New.example"},
        ) as response:
            assert response.status == 200
            page = await response.text()
        assert 'id="start-confirm"' in page
        code = await _code_for(svc, smtp_server, "nia@new.example")
        wrong = f"{(int(code) + 1) % 10**6:06d}"
        async with http.post(
            f"{base_url}/chat/start/confirm",
            data={"csrf": csrf, "email": "nia@new.example", "code": wrong},
            allow_redirects=False,
        ) as response:
            assert response.status == 403
        async with http.post(
            f"{base_url}/chat/start/confirm",
            data={"csrf": csrf, "email": "nia@new.example", "code": code},
            allow_redirects=False,
        ) as response:
            assert response.status == 303
            assert "__Host-deskbell-chat=" in response.headers.getall("Set-Cookie", [""])[0]
        async with http.get(f"{base_url}/chat") as response:
            page = await response.text()
        async with http.post(
            f"{base_url}/chat/new",
            json={"text": "My router blinks red\nSince this morning."},
            headers={"X-CSRF-Token": csrf_of(page)},
        ) as response:
            assert response.status == 201
            conversation_id = (await response.json())["conversation_id"]
        async with http.get(f"{base_url}/chat/c/{conversation_id}") as response:
            assert response.status == 200
            assert "Since this morning." in await response.text()
    nia = await svc.person("nia@new.example")
    assert (nia.name, nia.kind) == ("Nia New", PersonKind.CUSTOMER)
    [item] = [i for i in await svc.items() if i.external_conversation_id == conversation_id]
    assert item.title == "My router blinks red"
    assert [f.email for f in item.followers if f.kind is PersonKind.CUSTOMER] == [nia.email]


async def test_c1_an_existing_customer_sees_nothing_before_the_code_is_confirmed(
    svc: Service, world: World, base_url: str, smtp_server: SmtpServer
) -> None:
    await _mail_to(svc, smtp_server)
    await svc.post(
        author="ann@example.com",
        text="The technician comes Tuesday",
        item_number=world.item,
        kind=ConversationKind.EXTERNAL,
    )
    external = (await svc.item(world.item)).external_conversation_id
    async with browser(base_url) as http:
        _, _, csrf = await _form(http, f"{base_url}/chat/start")
        async with http.post(
            f"{base_url}/chat/start/code", data={"csrf": csrf, "name": "Me", "email": CARL}
        ) as response:
            page = await response.text()
        for url in ("/chat", f"/chat/c/{external}"):
            async with http.get(base_url + url) as response:
                page += await response.text()
        assert "technician" not in page and "Printer on fire" not in page
        # A code used once is spent; its session sees the conversation.
        code = await _code_for(svc, smtp_server, CARL)
        form = {"csrf": csrf, "email": CARL, "code": code}
        async with http.post(
            f"{base_url}/chat/start/confirm", data=form, allow_redirects=False
        ) as response:
            assert response.status == 303
        async with http.get(f"{base_url}/chat/c/{external}") as response:
            assert "technician" in await response.text()
    async with browser(base_url) as again:
        _, _, csrf = await _form(again, f"{base_url}/chat/start")
        form["csrf"] = csrf
        async with again.post(
            f"{base_url}/chat/start/confirm", data=form, allow_redirects=False
        ) as response:
            assert response.status == 403
    assert (await svc.person(CARL)).name == "Carl Customer"  # the name typed changes nothing


async def test_c3_the_widget_refuses_forms_without_their_token_and_limits_codes(
    svc: Service, world: World, base_url: str, smtp_server: SmtpServer
) -> None:
    await _mail_to(svc, smtp_server)
    async with browser(base_url) as http:
        async with http.post(
            f"{base_url}/chat/start/code", data={"name": "X", "email": "x@new.example"}
        ) as response:
            assert response.status == 403
        _, _, csrf = await _form(http, f"{base_url}/chat/start")
        statuses = []
        for _ in range(5):
            async with http.post(
                f"{base_url}/chat/start/code",
                data={"csrf": csrf, "name": "Flo", "email": "flo@new.example"},
            ) as response:
                statuses.append(response.status)
                if response.status == 429:
                    assert int(response.headers["Retry-After"]) > 60
        assert statuses == [200, 200, 200, 429, 429]
        # A user's address never gets a chat code.
        async with http.post(
            f"{base_url}/chat/start/code",
            data={"csrf": csrf, "name": "Ann", "email": "ann@example.com"},
        ) as response:
            assert response.status == 403
        # Guessing: five wrong tries spend the code, the right one then fails too.
        code = await _code_for(svc, smtp_server, "flo@new.example")
        for n in range(1, 6):
            wrong = f"{(int(code) + n) % 10**6:06d}"
            async with http.post(
                f"{base_url}/chat/start/confirm",
                data={"csrf": csrf, "email": "flo@new.example", "code": wrong},
            ) as response:
                assert response.status == 403
        async with http.post(
            f"{base_url}/chat/start/confirm",
            data={"csrf": csrf, "email": "flo@new.example", "code": code},
            allow_redirects=False,
        ) as response:
            assert response.status == 403
    sent = [m for m in smtp_server.handler.messages if "flo@new.example" in str(m["To"])]
    assert len(sent) == 3
    assert all("ann@example.com" not in str(m["To"]) for m in smtp_server.handler.messages)
