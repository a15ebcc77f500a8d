"""C1: the chat link in every email to a customer: signed, expiring, single-use, exchanged for
an HttpOnly Secure SameSite session cookie and a clean URL; through real HTTP on loopback."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from services.api import LOCAL_OPERATOR, ConversationKind, Service
from services.clock import ManualClock
from services.domain.chat_links import LINK_LIFETIME
from services.store.models import Email
from tests.integration.server.chat_support import browser, csrf_of, enter, link_for
from tests.integration.server.conftest import ANN, CARL
from tests.support.world import World


async def _external(svc: Service, world: World) -> int:
    item = await svc.item(world.item)
    return item.external_conversation_id


async def test_c1_a_link_opens_the_conversation_with_a_secure_session_cookie(
    svc: Service, world: World, base_url: str
) -> None:
    conversation_id = await _external(svc, world)
    await svc.post(author=ANN, text="We are on it", conversation_id=conversation_id)
    async with browser(base_url) as http:
        link = link_for(svc, base_url, conversation_id=conversation_id, person_id=world.carl)
        async with http.get(link, allow_redirects=False) as response:
            assert response.status == 303
            assert response.headers["Location"] == f"/chat/c/{conversation_id}"
            cookie = response.headers["Set-Cookie"]
        assert cookie.startswith("__Host-deskbell-chat=")
        flags = {part.strip().lower() for part in cookie.split(";")[1:]}
        assert {"httponly", "secure", "samesite=lax", "path=/"} <= flags
        async with http.get(f"{base_url}/chat/c/{conversation_id}") as response:
            page = await response.text()
            assert response.status == 200
        assert "We are on it" in page
        assert csrf_of(page)
    sessions = await svc.sessions(acting=LOCAL_OPERATOR, email=CARL)
    assert [s.device for s in sessions] == ["customer chat"]


async def test_c1_a_used_link_is_refused_the_second_time(
    svc: Service, world: World, base_url: str
) -> None:
    conversation_id = await _external(svc, world)
    link = link_for(svc, base_url, conversation_id=conversation_id, person_id=world.carl)
    async with browser(base_url) as first:
        assert (await enter(first, link))[0] == 303
        # The same browser opening it again is let through: it is in already.
        assert await enter(first, link) == (303, f"/chat/c/{conversation_id}")
    async with browser(base_url) as second:
        status, _ = await enter(second, link)
        assert status == 403
        async with second.get(f"{base_url}/chat/c/{conversation_id}") as response:
            assert response.status == 401  # no session came of it


async def test_c1_an_expired_link_is_refused(
    svc: Service, world: World, base_url: str, clock: ManualClock
) -> None:
    conversation_id = await _external(svc, world)
    link = link_for(svc, base_url, conversation_id=conversation_id, person_id=world.carl)
    clock.advance((LINK_LIFETIME + timedelta(seconds=1)).total_seconds())
    async with browser(base_url) as http:
        status, _ = await enter(http, link)
    assert status == 403


async def test_c1_an_altered_link_is_refused(svc: Service, world: World, base_url: str) -> None:
    conversation_id = await _external(svc, world)
    item = await svc.item(world.item)
    link = link_for(svc, base_url, conversation_id=conversation_id, person_id=world.carl)
    token = link.partition("?t=")[2]
    cid, pid, expires, nonce, sig = token.split(".")
    altered = [
        f"{item.internal_conversation_id}.{pid}.{expires}.{nonce}.{sig}",  # another conversation
        f"{cid}.{world.ann}.{expires}.{nonce}.{sig}",  # another person
        f"{cid}.{pid}.{int(expires) + 86400}.{nonce}.{sig}",  # a later expiry
        f"{cid}.{pid}.{expires}.{nonce}.{sig[:-1]}{'A' if sig[-1] != 'A' else 'B'}",
        f"{cid}.{pid}.{expires}.{nonce}",
        "",
        "x" * 5000,
    ]
    async with browser(base_url) as http:
        for token in altered:
            status, _ = await enter(http, f"{base_url}/chat/enter?t={token}")
            assert status == 403, token
        assert (await enter(http, link))[0] == 303  # the genuine one still works


async def test_c1_a_link_signed_for_an_internal_conversation_or_a_user_is_refused(
    svc: Service, world: World, base_url: str
) -> None:
    """R2: even a genuine signature never lets a customer into an internal conversation, and
    a link never opens a user's session."""
    item = await svc.item(world.item)
    async with browser(base_url) as http:
        internal = link_for(
            svc, base_url, conversation_id=item.internal_conversation_id, person_id=world.carl
        )
        assert (await enter(http, internal))[0] == 403
        user = link_for(
            svc, base_url, conversation_id=item.external_conversation_id, person_id=world.bob
        )
        assert (await enter(http, user))[0] == 403


def _chat_link(text: str) -> str:
    [line] = [line for line in text.splitlines() if "/chat/enter?t=" in line]
    return line.split(": ", 1)[1].strip()


async def test_c1_the_email_to_a_customer_carries_a_working_chat_link(
    svc: Service, world: World, base_url: str, clock: ManualClock
) -> None:
    await svc.set_config("server.public_url", base_url)
    await svc.post(
        author=ANN,
        text="Your printer is fixed",
        item_number=world.item,
        kind=ConversationKind.EXTERNAL,
    )
    clock.advance(61)
    await svc.run_scheduler_once()
    rows = await svc.db.read(
        lambda tx: tx.conn.execute(
            select(Email.to_addrs, Email.body_text).where(Email.kind == "notification")
        ).all()
    )
    by_recipient = {r.to_addrs[0]: r.body_text for r in rows}
    assert "/chat/enter" not in by_recipient["bob@example.com"]
    link = _chat_link(by_recipient[CARL])
    assert link.startswith(f"{base_url}/chat/enter?t=")
    async with browser(base_url) as http:
        async with http.get(link) as response:  # follows the redirect with the cookie
            page = await response.text()
            assert response.status == 200
            assert str(response.url).endswith(
                f"/chat/c/{(await svc.item(world.item)).external_conversation_id}"
            )
        assert "Your printer is fixed" in page


async def test_c1_no_link_when_the_chat_is_off(
    svc: Service, world: World, base_url: str, clock: ManualClock
) -> None:
    await svc.set_config("server.public_url", base_url)
    await svc.set_config("chat.enabled", "false")
    await svc.post(author=ANN, text="Fixed", item_number=world.item, kind=ConversationKind.EXTERNAL)
    clock.advance(61)
    await svc.run_scheduler_once()
    raws = await svc.db.read(
        lambda tx: tx.conn.execute(
            select(Email.body_text).where(Email.kind == "notification")
        ).all()
    )
    assert raws and all("/chat/enter" not in r.body_text for r in raws)
    async with browser(base_url) as http, http.get(f"{base_url}/chat") as response:
        assert response.status == 503
        assert "closed" in await response.text()


async def test_c1_an_automations_email_to_a_customer_carries_a_working_chat_link(
    svc: Service, world: World, base_url: str
) -> None:
    await svc.set_config("server.public_url", base_url)
    await svc.automations.create(
        name="closed, tell them",
        trigger="item_closed",
        actions=[{"kind": "email", "to": "followers", "template": "item_closed"}],
    )
    await svc.close_item(number=world.item, acting=ANN)
    rows = await svc.db.read(
        lambda tx: tx.conn.execute(
            select(Email.to_addrs, Email.body_text).where(Email.kind == "template")
        ).all()
    )
    by_recipient = {r.to_addrs[0]: r.body_text for r in rows}
    assert "/chat/enter" not in by_recipient["bob@example.com"]
    link = _chat_link(by_recipient[CARL])
    external = (await svc.item(world.item)).external_conversation_id
    async with browser(base_url) as http:
        assert await enter(http, link) == (303, f"/chat/c/{external}")
