"""C1's other way in, in a real headless Chromium: the widget snippet on the help desk's own
site (another origin) opens the chat in a new tab; a name and an email address get a code by
real email (aiosmtpd); nothing of a conversation shows before the code; with it, the customer
writes and a new item starts, theirs."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from services.api import PersonKind
from tests.support.browser import Browser
from tests.support.chat_world import ChatWorld, chat_world, text_of
from tests.support.loopback import serve_on_loopback
from tests.support.smtpd import SmtpServer

DANA = "dana@newco.example"


@pytest.fixture
async def world(tmp_path: Path, smtp_server: SmtpServer) -> AsyncIterator[ChatWorld]:
    async with chat_world(tmp_path / "workspace", smtp_server) as started:
        yield started


@pytest.fixture
async def help_desk_site(world: ChatWorld) -> AsyncIterator[str]:
    """The help desk's own website, elsewhere, with the snippet the Chat section gives."""
    snippet = f'<script src="{world.base_url}/chat/widget.js" async></script>'
    page = f"<!doctype html><title>NewCo</title><h1>NewCo support</h1>{snippet}"

    async def home(request: web.Request) -> web.Response:
        return web.Response(text=page, content_type="text/html")

    app = web.Application()
    app.router.add_get("/", home)
    async with serve_on_loopback(app) as base_url:
        yield base_url + "/"


async def test_c1_the_widget_starts_a_conversation_after_an_emailed_code(
    browser: Browser, world: ChatWorld, help_desk_site: str
) -> None:
    await browser.open(help_desk_site)
    widget = "document.querySelector('a[data-deskbell-widget]')"
    await browser.wait_until(widget, what="the widget's button on the site")
    await browser.click("a[data-deskbell-widget]")
    await browser.follow_new_tab()
    await browser.wait_until("document.getElementById('start-details')", what="the start form")
    assert await browser.script("return location.origin") == world.base_url

    await browser.type_into("#start-name", "Dana Newco")
    await browser.type_into("#start-email", DANA)
    await browser.click("#start-send")
    await browser.wait_until("document.getElementById('start-confirm')", what="the code form")
    # Before the code: no conversation, no message list, no composer.
    assert await browser.script(
        "return [document.getElementById('messages'), document.getElementById('composer')]"
    ) == [None, None]

    await world.service.outbox.flush()
    [email] = world.emails_to(DANA)
    code = re.search(r"\b(\d{6})\b", text_of(email))
    assert code is not None, text_of(email)
    await browser.type_into("#start-code", code.group(1))
    await browser.click("#start-confirm-send")
    await browser.wait_until("document.getElementById('composer')", what="the composer")

    await browser.type_into("#composer-text", "My laptop will not boot\nIt beeps three times.")
    await browser.click("#composer-send")
    await browser.wait_until(
        "location.pathname.startsWith('/chat/c/') && document.body.dataset.ready === 'true'"
        " && document.getElementById('messages').innerText.includes('beeps three times')",
        what="the new conversation with the first message",
    )
    item = await world.service.item(2)  # the seeded workspace has item 1
    assert item.title == "My laptop will not boot"
    assert item.requester is not None
    assert (item.requester.email, item.requester.name, item.requester.kind) == (
        DANA,
        "Dana Newco",
        PersonKind.CUSTOMER,
    )
    assert DANA in {f.email for f in item.followers}
