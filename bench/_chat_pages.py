"""The browser half of bench_chat.py: real Chromium pages on the chat (tests/support/browser.py).

- `first_load`: a cold profile opens a conversation; the bytes on the wire for every HTTP
  response (DevTools `Network.loadingFinished`'s `encodedDataLength`: compressed bodies plus
  headers) and the time from navigation start to the page being interactive (its live stream
  said ready: `<body data-ready="true">`, docs/chat.md), beside the same browser loading a
  bare page (the browser's own cost).
- `ShownPages`: a few pages kept open among the WebSocket clients; each notes, in the page, the
  wall-clock time a message's element appears, so an agent's post is timed to "the customer's
  page shows it".
"""

from __future__ import annotations

import statistics
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

import _common  # noqa: F401  (puts the project's root on the path, for tests.support)

from tests.support.browser import DESKTOP, Browser, chromium

__all__ = ["COOKIE", "FirstLoad", "ShownPages", "first_load"]

COOKIE = "__Host-deskbell-chat"
READY = "document.body && document.body.dataset.ready === 'true'"

# Runs before the page's own script (DevTools scripts are not bound by the page's CSP): the
# time the page became ready, and the wall-clock time each message element was added.
_OBSERVE = """
window.__bench = {ready: null, shown: {}};
new MutationObserver((records) => {
  const now = performance.timeOrigin + performance.now();
  if (window.__bench.ready === null && document.body && document.body.dataset.ready === 'true')
    window.__bench.ready = performance.now();
  for (const record of records)
    for (const node of record.addedNodes) {
      const id = node.dataset && node.dataset.messageId;
      if (id && !(id in window.__bench.shown)) window.__bench.shown[id] = now;
    }
}).observe(document, {subtree: true, childList: true, attributes: true,
                      attributeFilter: ['data-ready']});
"""


async def _sign_in(browser: Browser, base_url: str, token: str) -> None:
    """The customer's session cookie, as the emailed link would have set it."""
    await browser.cdp("Network.enable")
    await browser.cdp(
        "Network.setCookie",
        {
            "name": COOKIE,
            "value": token,
            "url": base_url + "/",
            "secure": True,
            "httpOnly": True,
            "sameSite": "Lax",
            "path": "/",
        },
    )
    await browser.cdp("Page.addScriptToEvaluateOnNewDocument", {"source": _OBSERVE})


@dataclass(frozen=True)
class FirstLoad:
    wire_bytes: int  # every HTTP response: headers + compressed body
    body_bytes: int  # the same bodies decoded
    requests: int
    interactive_ms: float  # navigation start -> data-ready
    dom_interactive_ms: float  # navigation start -> the document parsed
    bare_ms: float  # the same browser: navigation start -> a bare page's load event


async def first_load(base_url: str, token: str, conversation_id: int, rounds: int) -> FirstLoad:
    """Cold loads (a fresh profile each round); medians."""
    got: list[FirstLoad] = []
    for _ in range(rounds):
        async with chromium(network_log=True) as browser:
            await browser.show_as(DESKTOP)
            await browser.open("data:text/html,<title>bare</title><p>bare")
            bare = await browser.script(
                "const n = performance.getEntriesByType('navigation')[0];"
                "return n.loadEventEnd - n.startTime"
            )
            await _sign_in(browser, base_url, token)
            await browser.network_log()  # forget the bare page's events
            await browser.open(f"{base_url}/chat/c/{conversation_id}")
            await browser.wait_until(READY, what="the chat page live")
            await browser.wait_until("window.__bench.ready !== null")
            timing = await browser.script(
                "const n = performance.getEntriesByType('navigation')[0];"
                "return [window.__bench.ready - n.startTime, n.domInteractive - n.startTime]"
            )
            events = await browser.network_log()
            got.append(_first_load(events, timing, float(bare)))
    return FirstLoad(
        wire_bytes=int(statistics.median(g.wire_bytes for g in got)),
        body_bytes=int(statistics.median(g.body_bytes for g in got)),
        requests=int(statistics.median(g.requests for g in got)),
        interactive_ms=statistics.median(g.interactive_ms for g in got),
        dom_interactive_ms=statistics.median(g.dom_interactive_ms for g in got),
        bare_ms=statistics.median(g.bare_ms for g in got),
    )


def _first_load(events: list[dict[str, Any]], timing: list[float], bare_ms: float) -> FirstLoad:
    http = {
        e["params"]["requestId"]
        for e in events
        if e["method"] == "Network.responseReceived"
        and e["params"]["response"]["url"].startswith("http")
    }
    finished = [
        e["params"]
        for e in events
        if e["method"] == "Network.loadingFinished" and e["params"]["requestId"] in http
    ]
    decoded = sum(
        e["params"]["dataLength"]
        for e in events
        if e["method"] == "Network.dataReceived" and e["params"]["requestId"] in http
    )
    return FirstLoad(
        wire_bytes=int(sum(f["encodedDataLength"] for f in finished)),
        body_bytes=int(decoded),
        requests=len(finished),
        interactive_ms=float(timing[0]),
        dom_interactive_ms=float(timing[1]),
        bare_ms=bare_ms,
    )


class ShownPages:
    """Real pages held open during the load; `shown(message_id)` reads when one showed it."""

    def __init__(self) -> None:
        self._stack = AsyncExitStack()
        self.pages: dict[int, Browser] = {}  # conversation id -> its page

    async def open(self, base_url: str, pages: list[tuple[str, int]]) -> None:
        """`pages`: (session token, conversation id) for each page."""
        for token, conversation_id in pages:
            browser = await self._stack.enter_async_context(chromium())
            await _sign_in(browser, base_url, token)
            await browser.open(f"{base_url}/chat/c/{conversation_id}")
            await browser.wait_until(READY, what="the chat page live")
            self.pages[conversation_id] = browser

    async def shown_at(self, conversation_id: int, message_id: int) -> float:
        """Wall-clock seconds when the page showed the message (waits for it)."""
        browser = self.pages[conversation_id]
        at = await browser.wait_until(
            f"window.__bench.shown[{message_id}]", what=f"message {message_id} on the page"
        )
        return float(at) / 1e3

    async def close(self) -> None:
        await self._stack.aclose()
