"""Widgets are plain data in, signals out (STYLE.md): they take their types from
`services.api`, the one door to the service (issue 9), but never the `Service` itself. The
import contract cannot say "this name, not that one", so this test does."""

from __future__ import annotations

import ast
from pathlib import Path

WIDGETS = Path(__file__).resolve().parents[2] / "ui" / "widgets"


def _imported_service(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [
        f"{path.name}:{node.lineno}"
        for node in ast.walk(tree)
        if (
            isinstance(node, ast.ImportFrom)
            and node.module == "services.api"
            and any(alias.name == "Service" for alias in node.names)
        )
        or (isinstance(node, ast.Attribute) and node.attr == "Service")
    ]


def test_widgets_never_import_the_service() -> None:
    found = [where for path in sorted(WIDGETS.rglob("*.py")) for where in _imported_service(path)]
    assert WIDGETS.is_dir() and not found, found
