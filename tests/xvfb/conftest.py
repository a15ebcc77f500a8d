"""Tests on a real X screen with a tray host: run through tests/xvfb/run.sh."""

from __future__ import annotations

import os

import pytest

from tests.support.qt_loop import pytest_asyncio_loop_factories

__all__ = ["pytest_asyncio_loop_factories"]  # the hook, for pytest to find here


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("DESKBELL_XVFB") == "1":
        return
    skip = pytest.mark.skip(reason="needs Xvfb + a tray host: run tests/xvfb/run.sh")
    for item in items:
        if "xvfb" in item.keywords:
            item.add_marker(skip)
