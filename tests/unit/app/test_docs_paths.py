"""The commands the docs and scripts give point at what `make` creates (issue 8, item 21):
the venv is the repository's `.venv`, and every benchmark has its section with a command."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def _makefile_venv() -> str:
    found = re.search(r"^VENV\s*\?=\s*(\S+)", (ROOT / "Makefile").read_text(), re.M)
    assert found is not None
    return found.group(1)


def test_benchmark_commands_use_the_venv_make_creates_and_exist() -> None:
    python = f"{_makefile_venv()}/bin/python"
    doc = (ROOT / "docs" / "benchmarks.md").read_text()
    commands = re.findall(r"\*\*Command\.\*\* `([^`]+)`", doc)
    scripts = {path.name for path in (ROOT / "bench").glob("bench_*.py")}
    assert {re.search(r"bench/(bench_\w+\.py)", c).group(1) for c in commands} == scripts  # type: ignore[union-attr]
    for command in commands:
        interpreter = next(word for word in command.split() if word.endswith("python"))
        assert interpreter == python, command
    for script in (ROOT / "bench").glob("bench_*.py"):
        usage = re.findall(r"^\s+(?:\S+=\S+ )?(\S*python)\s+bench/", script.read_text(), re.M)
        assert usage == [python], (script.name, usage)


def test_xvfb_runner_defaults_to_the_venv_make_creates() -> None:
    script = (ROOT / "tests" / "xvfb" / "run.sh").read_text()
    defaults = re.findall(r"\[\[ -x (\S+) ", script)
    assert defaults == [f"{_makefile_venv()}/bin/python"]
