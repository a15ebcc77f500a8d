"""A real headless Chromium for the chat's browser tests, screenshots and page benchmarks.

Debian's `chromium` driven by Selenium through Debian's `chromedriver` (both in
packaging/debian-packages.txt). The driver's path is given explicitly, so Selenium Manager never
runs and nothing is downloaded; each browser gets a private, throwaway profile and no background
networking. Selenium blocks, so every call runs in the browser's own thread and the tests'
event loop (which may be serving the page) keeps running: `await browser.open(url)`.

Screens and colour schemes are emulated through the DevTools protocol
(`Emulation.setDeviceMetricsOverride`, `Emulation.setEmulatedMedia`), so one browser shows the
page as a phone or a desktop, light or dark, without restarting.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

__all__ = [
    "CHROMEDRIVER",
    "CHROMIUM",
    "DESKTOP",
    "PHONE",
    "SCREENS",
    "Browser",
    "BrowserTimeout",
    "Screen",
    "chromium",
    "chromium_missing",
]

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")

ColorScheme = Literal["light", "dark"]
T = TypeVar("T")


@dataclass(frozen=True)
class Screen:
    """A window the page is shown in: CSS pixels, device pixel ratio, touch or not."""

    name: str
    width: int
    height: int
    scale: float
    mobile: bool


PHONE = Screen("phone", 390, 844, 3.0, mobile=True)
DESKTOP = Screen("desktop", 1280, 800, 1.0, mobile=False)
SCREENS = (PHONE, DESKTOP)


class BrowserTimeout(AssertionError):
    """A condition in the page did not hold within its deadline."""


def chromium_missing() -> str | None:
    """Why Chromium cannot run here (a sentence naming the packages), or None when it can."""
    absent = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]
    if not absent:
        return None
    return (
        f"{' and '.join(absent)} not installed: the chat's browser tests need Debian's "
        "chromium and chromium-driver (`make system-packages` installs them)"
    )


def _options(profile: Path, *, network_log: bool) -> Any:
    from selenium.webdriver.chrome.options import Options

    options = Options()
    options.binary_location = str(CHROMIUM)
    arguments = [
        "--headless=new",
        f"--user-data-dir={profile}",
        "--no-first-run",
        "--no-default-browser-check",
        # Nothing leaves the machine: no updates, sync, translation or field trials.
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-default-apps",
        "--disable-features=Translate,MediaRouter,OptimizationHints",
        # A shared, slow machine: a page in a background tab keeps its timers (the hidden-tab
        # test wants the page's own clock to run while it is hidden, as on a real desktop).
        "--disable-renderer-backgrounding",
        "--disable-background-timer-throttling",
        "--window-size=1280,800",
        "--hide-scrollbars",  # screenshots show the page, not a scrollbar track
        # Shared memory in /tmp: a small /dev/shm (containers, CI) crashes tabs otherwise, and
        # Debian's launcher's own check for it does not always work.
        "--disable-dev-shm-usage",
    ]
    if os.geteuid() == 0:
        # Chromium refuses to start its sandbox as root (CI and these machines run as root).
        arguments.append("--no-sandbox")
    for argument in arguments:
        options.add_argument(argument)
    if network_log:
        options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    return options


class Browser:
    """One headless Chromium tab set, driven from a single worker thread."""

    def __init__(self, driver: Any, executor: ThreadPoolExecutor) -> None:
        self.driver = driver
        self._executor = executor
        self._tabs: list[str] = [driver.current_window_handle]

    async def run(self, call: Callable[..., T], *args: Any) -> T:
        """Run a blocking Selenium call in the browser's thread."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, call, *args)

    async def open(self, url: str) -> None:
        await self.run(self.driver.get, url)

    async def script(self, source: str, *args: Any) -> Any:
        """Run JavaScript in the page (`return ...` gives a value back)."""
        return await self.run(self.driver.execute_script, source, *args)

    async def cdp(self, command: str, params: dict[str, Any] | None = None) -> Any:
        """One DevTools protocol command on the current tab."""
        return await self.run(self.driver.execute_cdp_cmd, command, params or {})

    async def show_as(self, screen: Screen, scheme: ColorScheme = "light") -> None:
        """Show the current tab as `screen` in the `scheme` colour scheme."""
        await self.cdp(
            "Emulation.setDeviceMetricsOverride",
            {
                "width": screen.width,
                "height": screen.height,
                "deviceScaleFactor": screen.scale,
                "mobile": screen.mobile,
            },
        )
        await self.cdp("Emulation.setTouchEmulationEnabled", {"enabled": screen.mobile})
        await self.cdp(
            "Emulation.setEmulatedMedia",
            {"features": [{"name": "prefers-color-scheme", "value": scheme}]},
        )

    async def settle(self) -> None:
        """Wait two animation frames: the page laid out and painted after a change."""
        await self.run(
            self.driver.execute_async_script,
            "const done = arguments[arguments.length - 1];"
            "requestAnimationFrame(() => requestAnimationFrame(() => done(true)));",
        )

    async def wait_until(
        self, condition: str, *args: Any, within: float = 60.0, what: str = ""
    ) -> Any:
        """Poll a JavaScript expression until it is truthy; its value. Generous by default: the
        machine is shared and may be ten times slower than usual."""
        source = f"return ({condition});"

        def poll() -> Any:
            from selenium.common.exceptions import TimeoutException
            from selenium.webdriver.support.wait import WebDriverWait

            try:
                return WebDriverWait(self.driver, within, poll_frequency=0.05).until(
                    lambda driver: driver.execute_script(source, *args)
                )
            except TimeoutException:
                raise BrowserTimeout(f"not true within {within:g} s: {what or condition}") from None

        return await self.run(poll)

    async def interact(self) -> None:
        """Synthetic user input the page receives as real events: a pointer move over the page
        and a key press (the S1/S5 rule wants recent input)."""

        def act() -> None:
            from selenium.webdriver.common.action_chains import ActionChains
            from selenium.webdriver.common.by import By
            from selenium.webdriver.common.keys import Keys

            body = self.driver.find_element(By.TAG_NAME, "body")
            ActionChains(self.driver).move_to_element_with_offset(body, 1, 1).move_by_offset(
                3, 3
            ).send_keys(Keys.SHIFT).perform()

        await self.run(act)

    async def type_into(self, css: str, text: str) -> None:
        """Click the element `css` selects and type `text` as key presses."""

        def type_keys() -> None:
            from selenium.webdriver.common.by import By

            element = self.driver.find_element(By.CSS_SELECTOR, css)
            element.click()
            element.send_keys(text)

        await self.run(type_keys)

    async def press(self, *keys: str) -> None:
        """Key presses to whatever has the focus (`selenium.webdriver.common.keys.Keys`)."""

        def send() -> None:
            from selenium.webdriver.common.action_chains import ActionChains

            ActionChains(self.driver).send_keys(*keys).perform()

        await self.run(send)

    async def click(self, css: str) -> None:
        from selenium.webdriver.common.by import By

        await self.run(lambda: self.driver.find_element(By.CSS_SELECTOR, css).click())

    async def follow_new_tab(self) -> None:
        """Switch to the tab the page just opened (a link with `target="_blank"`)."""

        def follow() -> None:
            from selenium.webdriver.support.wait import WebDriverWait

            WebDriverWait(self.driver, 60).until(
                lambda driver: len(driver.window_handles) > len(self._tabs)
            )
            new = next(h for h in self.driver.window_handles if h not in self._tabs)
            self.driver.switch_to.window(new)
            self._tabs.append(new)

        await self.run(follow)

    async def cover(self) -> None:
        """Open another tab over the page: the page becomes hidden and loses focus."""

        def new_tab() -> None:
            self.driver.switch_to.new_window("tab")
            self._tabs.append(self.driver.current_window_handle)

        await self.run(new_tab)

    async def uncover(self) -> None:
        """Close the tab opened by `cover` and bring the page back to the front."""

        def close_tab() -> None:
            self.driver.close()
            self._tabs.pop()
            self.driver.switch_to.window(self._tabs[-1])

        await self.run(close_tab)

    async def screenshot(self, path: Path) -> None:
        """The visible part of the current tab as a PNG, at the emulated device pixel ratio."""

        def save() -> None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(self.driver.get_screenshot_as_png())

        await self.run(save)

    async def network_log(self) -> list[dict[str, Any]]:
        """DevTools `Network.*` events since the last call (needs `network_log=True`)."""
        entries = await self.run(self.driver.get_log, "performance")
        events = (json.loads(entry["message"])["message"] for entry in entries)
        return [event for event in events if event["method"].startswith("Network.")]


@asynccontextmanager
async def chromium(*, network_log: bool = False) -> AsyncIterator[Browser]:
    """A headless Chromium with a private profile, quit and its profile removed on exit."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    reason = chromium_missing()
    if reason is not None:
        raise RuntimeError(reason)
    profile = Path(tempfile.mkdtemp(prefix="deskbell-chromium-"))
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="chromium")
    loop = asyncio.get_running_loop()
    try:
        service = Service(executable_path=str(CHROMEDRIVER))
        options = _options(profile, network_log=network_log)
        driver = await loop.run_in_executor(
            executor, lambda: webdriver.Chrome(service=service, options=options)
        )
        try:
            yield Browser(driver, executor)
        finally:
            await loop.run_in_executor(executor, driver.quit)
    finally:
        executor.shutdown(wait=True)
        shutil.rmtree(profile, ignore_errors=True)
