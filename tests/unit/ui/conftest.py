"""Widget tests run on Qt's offscreen platform: no display needed.

`async def` tests run inside a qasync loop (NOTES.md): Qt events keep flowing while a test
awaits the service, so signals, timers and the change feed all work as in the app.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("QT_API", "pyside6")


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], object]]:
    import qasync
    from PySide6.QtWidgets import QApplication

    def factory() -> object:
        app = QApplication.instance() or QApplication([])
        return qasync.QEventLoop(app)

    return {"qasync": factory}
