"""pytest fixtures for a real headless Chromium (tests/support/browser.py).

Registered in tests/conftest.py. Where Chromium is not installed the tests that take `browser`
skip with the reason; under CI (`CI` set), which installs it, its absence fails them instead.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest

from tests.support.browser import Browser, chromium, chromium_missing

__all__ = ["browser", "need_chromium"]


def need_chromium() -> None:
    """Skip the test where Chromium is not installed, saying what to install; fail it under
    CI, which installs it."""
    reason = chromium_missing()
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """A fresh headless Chromium with a private profile, shown as a desktop in light mode."""
    need_chromium()
    async with chromium() as started:
        yield started
