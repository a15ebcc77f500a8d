"""Driving the customer chat over real HTTP as a browser would: a cookie jar that keeps the
Secure session cookie on the loopback test server, the page's CSRF token, its message ids."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import ClientSession, CookieJar

from services.api import Service

__all__ = ["browser", "csrf_of", "enter", "link_for", "message_ids"]

_CSRF = re.compile(r'<meta name="csrf-token" content="([0-9a-f]+)">')
_IDS = re.compile(r'data-message-id="([0-9]+)"')


@asynccontextmanager
async def browser(base_url: str) -> AsyncIterator[ClientSession]:
    """A client with its own cookies; loopback counts as a secure origin, as in browsers."""
    jar = CookieJar(unsafe=True, treat_as_secure_origin=[base_url])
    async with ClientSession(cookie_jar=jar) as session:
        yield session


def link_for(svc: Service, base_url: str, *, conversation_id: int, person_id: int) -> str:
    token = svc.chat.link(conversation_id=conversation_id, person_id=person_id)
    return f"{base_url}/chat/enter?t={token}"


async def enter(http: ClientSession, link: str) -> tuple[int, str]:
    """Follow a chat link without following the redirect: (status, Location)."""
    async with http.get(link, allow_redirects=False) as response:
        await response.read()
        return response.status, response.headers.get("Location", "")


def csrf_of(page: str) -> str:
    found = _CSRF.search(page)
    assert found, "the page carries no CSRF token"
    return found.group(1)


def message_ids(page: str) -> list[int]:
    return [int(i) for i in _IDS.findall(page)]
