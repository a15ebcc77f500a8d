"""The browser the chat's tests stand on (tests/support/browser.py), proved on a trivial page
served by aiohttp on loopback: Debian's Chromium starts headless with a private profile and
never through Selenium Manager, shows a page as a phone or a desktop, light or dark, receives
synthetic input, and a tab opened over the page hides it (C2/S5's tests rely on each)."""

from __future__ import annotations

import stat
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from tests.support.browser import DESKTOP, PHONE, Browser, chromium
from tests.support.browser_fixtures import need_chromium
from tests.support.loopback import serve_on_loopback

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>probe</title>
<style>
body { background: #fff; color: #000; }
@media (prefers-color-scheme: dark) { body { background: #000; color: #fff; } }
</style></head>
<body><p id="hello">Hello</p>
<script>
window.seen = [];
for (const name of ["visibilitychange", "pointermove", "keydown"]) {
  document.addEventListener(name, () => window.seen.push(name + ":" + document.visibilityState));
}
</script></body></html>"""


@pytest.fixture
async def page_url() -> AsyncIterator[str]:
    async def page(request: web.Request) -> web.Response:
        return web.Response(text=PAGE, content_type="text/html")

    app = web.Application()
    app.router.add_get("/", page)
    async with serve_on_loopback(app) as base_url:
        yield base_url + "/"


async def test_c1_the_page_shows_as_a_phone_and_a_desktop_light_and_dark(
    browser: Browser, page_url: str
) -> None:
    """C1's screens: one browser shows the page at a phone's and a desktop's size and ratio,
    in either colour scheme, emulated through the DevTools protocol."""
    await browser.open(page_url)
    assert await browser.wait_until("document.getElementById('hello').textContent") == "Hello"
    probe = (
        "[innerWidth, devicePixelRatio, matchMedia('(prefers-color-scheme: dark)').matches,"
        " getComputedStyle(document.body).backgroundColor]"
    )
    await browser.show_as(PHONE, "dark")
    assert await browser.script(f"return {probe}") == [390, 3, True, "rgb(0, 0, 0)"]
    await browser.show_as(DESKTOP, "light")
    assert await browser.script(f"return {probe}") == [1280, 1, False, "rgb(255, 255, 255)"]


async def test_s5_input_reaches_the_page_and_a_tab_over_it_hides_it(
    browser: Browser, page_url: str
) -> None:
    """S5's two states: synthetic input arrives as real events in the visible, focused page;
    another tab over it makes it hidden and unfocused, and closing that tab shows it again."""
    await browser.open(page_url)
    await browser.interact()
    await browser.wait_until(
        "window.seen.includes('pointermove:visible') && window.seen.includes('keydown:visible')",
        what="pointer and key events in the visible page",
    )
    assert await browser.script("return document.hasFocus()") is True
    await browser.cover()
    await browser.uncover()
    await browser.wait_until(
        "document.visibilityState === 'visible'", what="the page visible again"
    )
    log = await browser.script("return window.seen")
    assert "visibilitychange:hidden" in log, log
    assert log[-1] == "visibilitychange:visible", log


async def test_chromium_starts_without_selenium_manager(
    tmp_path: Path, page_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing is downloaded at run time: the system chromedriver is named explicitly, so
    Selenium Manager (which would fetch a browser and a driver) never runs. A stand-in that
    leaves a mark when run takes its place for the test."""
    need_chromium()
    mark = tmp_path / "selenium-manager-ran"
    stand_in = tmp_path / "selenium-manager"
    stand_in.write_text(f"#!/bin/sh\ntouch {mark}\nexit 1\n")
    stand_in.chmod(stand_in.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("SE_MANAGER_PATH", str(stand_in))
    async with chromium() as browser:
        await browser.open(page_url)
        assert await browser.wait_until("document.title") == "probe"
        profile = await browser.script("return navigator.userAgent")
        assert "HeadlessChrome" in profile
    assert not mark.exists()


def test_where_chromium_is_absent_the_reason_names_the_packages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The skip (or, under CI, the failure) says what to install."""
    import tests.support.browser as support

    monkeypatch.setattr(support, "CHROMIUM", tmp_path / "chromium")
    reason = support.chromium_missing()
    assert reason is not None
    assert str(tmp_path / "chromium") in reason
    assert "chromium and chromium-driver" in reason
    assert "make system-packages" in reason
