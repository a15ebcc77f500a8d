"""C1, C3, R2: the customer chat through real HTTP on loopback, as an attacker would use it:
other ids, cursors and parameters, stored script in names and messages, writes without the
CSRF token, floods; and the headers every answer carries."""

from __future__ import annotations

import itertools
import json
import re
from typing import Any

from aiohttp import ClientSession, WSMsgType, WSServerHandshakeError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from markupsafe import escape

from services.api import ConversationKind, PersonKind, Service
from services.server.chat.session import COOKIE
from services.server.endpoints import MAX_ID
from tests.integration.server.chat_support import browser, csrf_of, message_ids
from tests.integration.server.conftest import ANN, CARL, customer_token
from tests.integration.server.test_server_customers import Secrets, build, workspaces
from tests.support.world import World

XSS = (
    '<script>alert("x")</script>',
    '"><img src=x onerror=alert(1)>',
    "</textarea><svg onload=alert(1)>",
    "javascript:alert(1)",
    "{{ 7*7 }}",
)


async def _signed_in(svc: Service, http: ClientSession, base_url: str, email: str = CARL) -> None:
    """Give `http` a customer's session cookie, as the link exchange does."""
    token = await customer_token(svc, email)
    http.cookie_jar.update_cookies({COOKIE: token})


async def _page(http: ClientSession, url: str) -> tuple[int, str]:
    async with http.get(url) as response:
        return response.status, await response.text()


async def test_c3_every_chat_answer_sends_a_strict_csp_and_the_other_headers(
    svc: Service, world: World, base_url: str
) -> None:
    external = (await svc.item(world.item)).external_conversation_id
    async with browser(base_url) as http:
        await _signed_in(svc, http, base_url)
        status, page = await _page(http, f"{base_url}/chat/c/{external}")
        assert status == 200
        script = re.search(r'<script src="([^"]+)"', page)
        style = re.search(r'<link rel="stylesheet" href="([^"]+)"', page)
        assert script and style
        assert "<script>" not in page and "style=" not in page  # no inline script or style
        urls = [
            "/chat",
            f"/chat/c/{external}",
            f"/chat/c/{MAX_ID}",
            "/chat/enter?t=nope",
            script.group(1),
            style.group(1),
            "/chat/static/missing.js",
        ]
        for url in urls:
            async with http.get(base_url + url, headers={"Accept-Encoding": "gzip"}) as response:
                await response.read()
                headers = response.headers
                csp = headers.get("Content-Security-Policy", "")
                assert "default-src 'none'" in csp, url
                assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp, url
                assert "unsafe-inline" not in csp and "unsafe-eval" not in csp, url
                assert headers.get("X-Content-Type-Options") == "nosniff", url
                assert headers.get("Referrer-Policy") == "no-referrer", url
        async with http.get(base_url + script.group(1)) as response:
            assert response.status == 200
            assert "immutable" in response.headers["Cache-Control"]
            assert response.headers["Content-Type"].startswith("text/javascript")
        async with http.get(
            f"{base_url}/chat/c/{external}", headers={"Accept-Encoding": "gzip"}
        ) as response:
            assert response.headers.get("Content-Encoding") == "gzip"
            assert response.headers["Cache-Control"] == "no-store"


async def test_c3_stored_script_in_names_and_messages_renders_as_text(
    svc: Service, world: World, base_url: str
) -> None:
    for n, payload in enumerate(XSS):
        await svc.add_person(email=f"agent{n}@example.com", name=f"Agent {payload}")
        await svc.follow(number=world.item, email=f"agent{n}@example.com")
        await svc.post(
            author=f"agent{n}@example.com",
            text=f"text {payload}",
            item_number=world.item,
            kind=ConversationKind.EXTERNAL,
        )
    evil = "evil@customer.org"
    await svc.add_person(email=evil, name=f"Eve {XSS[0]}", kind=PersonKind.CUSTOMER)
    await svc.follow(number=world.item, email=evil)
    await svc.post(author=evil, text=XSS[1], item_number=world.item, kind=ConversationKind.EXTERNAL)
    item = await svc.item(world.item)
    async with browser(base_url) as http:
        await _signed_in(svc, http, base_url, evil)
        status, page = await _page(http, f"{base_url}/chat/c/{item.external_conversation_id}")
    assert status == 200
    assert str(escape(f"Eve {XSS[0]}")) in page  # the customer's own name, in the header
    for payload in XSS:
        if "<" in payload or '"' in payload:
            assert payload not in page, payload
        assert str(escape(payload)) in page, payload
    assert "<script>" not in page and "onerror=" not in page.replace("onerror=alert", "")


async def test_c3_a_write_without_the_csrf_token_is_refused(
    svc: Service, world: World, base_url: str
) -> None:
    external = (await svc.item(world.item)).external_conversation_id
    async with browser(base_url) as http:
        await _signed_in(svc, http, base_url)
        _, page = await _page(http, f"{base_url}/chat/c/{external}")
        csrf = csrf_of(page)
        url = f"{base_url}/chat/c/{external}/messages"
        refused = [
            http.post(url, json={"text": "no token"}),
            http.post(url, json={"text": "wrong"}, headers={"X-CSRF-Token": "0" * 64}),
            http.post(url, data={"text": "form, no token"}),
            http.post(url, data={"text": "form, wrong", "csrf": csrf[:-1] + "x"}),
            http.post(f"{base_url}/chat/seen", json={"message_ids": [1]}),
            http.post(f"{base_url}/chat/sign-out", data={}),
        ]
        for request in refused:
            async with request as response:
                assert response.status == 403, await response.text()
        messages = await svc.messages(conversation_id=external, viewer_id=world.ann)
        assert [m.text for m in messages] == []
        async with http.post(url, json={"text": "with"}, headers={"X-CSRF-Token": csrf}) as r:
            assert r.status == 201
        async with http.post(url, data={"text": "form", "csrf": csrf}, allow_redirects=False) as r:
            assert r.status == 303
        # Another session's token is no good either.
        async with browser(base_url) as other:
            await _signed_in(svc, other, base_url)
            async with other.post(url, json={"text": "x"}, headers={"X-CSRF-Token": csrf}) as r:
                assert r.status == 403
    messages = await svc.messages(conversation_id=external, viewer_id=world.ann)
    assert [m.text for m in messages] == ["with", "form"]


async def test_c3_posting_too_fast_answers_429_with_retry_after(
    svc: Service, world: World, base_url: str
) -> None:
    external = (await svc.item(world.item)).external_conversation_id
    async with browser(base_url) as http:
        await _signed_in(svc, http, base_url)
        _, page = await _page(http, f"{base_url}/chat/c/{external}")
        headers = {"X-CSRF-Token": csrf_of(page)}
        url = f"{base_url}/chat/c/{external}/messages"
        statuses = []
        for n in range(25):
            async with http.post(url, json={"text": f"m{n}"}, headers=headers) as response:
                statuses.append(response.status)
                if response.status == 429:
                    assert int(response.headers["Retry-After"]) >= 1
                    body = await response.json()
                    assert "too many" in body["error"]["message"]
    assert statuses.count(201) == 20 and statuses[20:] == [429] * 5


async def test_c1_r2_a_customer_reads_and_writes_only_their_own_external_conversations(
    svc: Service, world: World, base_url: str
) -> None:
    item = await svc.item(world.item)
    await svc.post(author=ANN, text="on it", item_number=world.item, kind=ConversationKind.EXTERNAL)
    await svc.post(
        author=ANN, text="internal secret", item_number=world.item, kind=ConversationKind.INTERNAL
    )
    await svc.add_person(email="dora@other.org", name="Dora Other", kind=PersonKind.CUSTOMER)
    other = await svc.create_item(title="Dora's own", followers=["dora@other.org"])
    await svc.post(
        author="dora@other.org",
        text="dora's words",
        item_number=other.number,
        kind=ConversationKind.EXTERNAL,
    )
    async with browser(base_url) as http:
        await _signed_in(svc, http, base_url)
        status, listing = await _page(http, f"{base_url}/chat")
        assert status == 200
        ids = {int(i) for i in re.findall(r'data-conversation-id="(\d+)"', listing)}
        assert ids == {item.external_conversation_id}
        _, page = await _page(http, f"{base_url}/chat/c/{item.external_conversation_id}")
        csrf = csrf_of(page)
        for hidden in (item.internal_conversation_id, other.external_conversation_id, MAX_ID):
            status, text = await _page(http, f"{base_url}/chat/c/{hidden}")
            assert status == 404
            assert "internal secret" not in text and "dora" not in text.lower()
            async with http.post(
                f"{base_url}/chat/c/{hidden}/messages",
                json={"text": "sneaky"},
                headers={"X-CSRF-Token": csrf},
            ) as response:
                assert response.status == 404
    assert "sneaky" not in [m.text for _k, m in await svc.item_messages(world.item)]


# --- the property: random workspaces, random ids, cursors and parameters ----------------------

RUNS = itertools.count()
PAGE_CALLS = st.lists(
    st.tuples(
        st.sampled_from(["list", "page", "post", "form", "seen", "live"]),
        st.integers(0, 40),  # which id of the pool
        st.sampled_from(["", "1", "-5", "0", "x", "9" * 25, "%00", "1e3"]),
    ),
    min_size=1,
    max_size=6,
)


def _leaks(text: str, secrets: Secrets) -> list[str]:
    return [s for s in secrets.texts | secrets.emails if s in text or str(escape(s)) in text]


async def _live(http: ClientSession, base_url: str, after: str) -> tuple[int, list[Any]]:
    """Open the page's live stream with cursor `after`: what it sends until ready."""
    query = f"?after={after}" if after else ""
    origin = {"Origin": base_url}
    try:
        async with http.ws_connect(f"{base_url}/chat/live{query}", headers=origin) as ws:
            events = []
            while True:
                message = await ws.receive(timeout=30)
                if message.type is not WSMsgType.TEXT:
                    return 101, events
                event = json.loads(message.data)
                events.append(event)
                if event["type"] in ("ready", "resync"):
                    return 101, events
    except WSServerHandshakeError as exc:  # refused: its status
        return exc.status, []


@settings(
    max_examples=10,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(plan=workspaces(), calls=PAGE_CALLS)
async def test_c1_r2_no_chat_page_or_stream_shows_anything_internal_or_another_customers(
    base_url: str, svc: Service, plan: dict[str, Any], calls: Any
) -> None:
    run = next(RUNS)
    token, secrets, ids = await build(svc, plan, run)
    pool = [*sorted(secrets.conversation_ids | secrets.allowed_conversations | set(ids)), MAX_ID]
    async with browser(base_url) as http:
        http.cookie_jar.update_cookies({COOKIE: token})
        status, page = await _page(http, f"{base_url}/chat")
        assert status == 200 and not _leaks(page, secrets)
        csrf = csrf_of(page)
        for kind, index, text in calls:
            some_id = pool[index % len(pool)]
            target = (
                text if text and kind in ("page", "post", "form") and index % 3 == 0 else some_id
            )
            if kind == "list":
                status, answer = await _page(http, f"{base_url}/chat?x={text}")
            elif kind == "page":
                status, answer = await _page(http, f"{base_url}/chat/c/{target}")
            elif kind in ("post", "form"):
                url = f"{base_url}/chat/c/{target}/messages"
                # Unique: a later example's customer must not see it, and a short word
                # would be found in any page.
                words = f"chat-post-{run}-{index}-{kind}"
                request = (
                    http.post(url, json={"text": words}, headers={"X-CSRF-Token": csrf})
                    if kind == "post"
                    else http.post(url, data={"text": words, "csrf": csrf}, allow_redirects=False)
                )
                async with request as response:
                    status, answer = response.status, await response.text()
            elif kind == "seen":
                async with http.post(
                    f"{base_url}/chat/seen",
                    json={"message_ids": [some_id, some_id + 1]},
                    headers={"X-CSRF-Token": csrf},
                ) as response:
                    status, answer = response.status, await response.text()
            else:
                status, events = await _live(http, base_url, text or str(index))
                answer = json.dumps(events)
                shown = {e.get("conversation_id") for e in events} - {None}
                assert shown <= secrets.allowed_conversations, events
            assert status in (101, 200, 201, 204, 303, 400, 404), (kind, status, answer)
            assert not _leaks(answer, secrets), (kind, answer)
            if kind == "page" and status == 200:
                assert int(str(target)) in secrets.allowed_conversations
                assert not set(message_ids(answer)) & secrets.message_ids
            if kind in ("post", "form") and status in (201, 303):
                assert int(str(target)) in secrets.allowed_conversations
