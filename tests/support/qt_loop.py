"""The pytest-asyncio hook that runs `async def` tests inside a qasync loop (NOTES.md): Qt
events keep flowing while a test awaits, so signals, timers and the change feed work as in the
app. Imported by the conftest of each folder whose tests drive Qt (unit/ui, xvfb)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import pytest

__all__ = ["pytest_asyncio_loop_factories"]


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], object]]:
    import qasync
    from PySide6.QtWidgets import QApplication

    def factory() -> object:
        app = QApplication.instance() or QApplication([])
        return qasync.QEventLoop(app)

    return {"qasync": factory}
