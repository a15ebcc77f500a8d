"""No requirement codes (R1, M5, E7…) in what people read: every string literal of the app
that is not a docstring — messages, labels, errors, log lines — is free of them. Codes belong
in comments, docstrings and tests (issue 8, item 11)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CODE = re.compile(r"\b[RNSEMIDTC][0-9]{1,2}\b")


def _docstrings(tree: ast.Module) -> set[int]:
    kinds = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
    return {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, kinds)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }


def test_no_spec_codes_in_user_facing_strings() -> None:
    found = []
    for folder in ("app", "ui", "services"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            docs = _docstrings(tree)
            found += [
                f"{path.relative_to(ROOT)}:{node.lineno}: {node.value[:80]!r}"
                for node in ast.walk(tree)
                if isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and id(node) not in docs
                and CODE.search(node.value)
            ]
    assert found == []
