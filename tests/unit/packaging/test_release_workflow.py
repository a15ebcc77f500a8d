"""The release workflow (issue 13): it cannot run here, so it is linted (actionlint) and read:
a matrix of Linux, Windows and macOS arm64 and Intel; every leg smoke-tests its frozen app with
the same script; each platform's installer step; every secret it uses is documented."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
WORKFLOW = ROOT / ".github" / "workflows" / "release.yml"


def _workflow() -> dict[str, Any]:
    # PyYAML reads the key `on` as True (YAML 1.1); nothing here needs it.
    loaded = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def _actionlint() -> str | None:
    found = shutil.which("actionlint") or Path(sys.executable).with_name("actionlint")
    return str(found) if Path(found).is_file() else None


@pytest.mark.skipif(_actionlint() is None, reason="actionlint is not installed (dev extras)")
def test_actionlint_finds_nothing() -> None:
    # -shellcheck= : the same verdict with or without shellcheck on this machine.
    done = subprocess.run(
        [str(_actionlint()), "-shellcheck=", "-pyflakes=", str(WORKFLOW)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_matrix_covers_linux_windows_and_both_macs() -> None:
    legs = _workflow()["jobs"]["build"]["strategy"]["matrix"]["include"]
    runners = {leg["runner"]: leg["os"] for leg in legs}
    assert runners["ubuntu-22.04"] == "linux"  # the glibc floor (2.35) is the build's glibc
    assert any(os == "windows" for os in runners.values())
    assert runners["macos-15"] == "macos"  # arm64
    assert runners["macos-15-intel"] == "macos"  # x86_64


def _steps() -> list[dict[str, Any]]:
    steps = _workflow()["jobs"]["build"]["steps"]
    assert isinstance(steps, list)
    return steps


def _runs(needle: str) -> list[dict[str, Any]]:
    return [s for s in _steps() if needle in str(s.get("run", ""))]


def test_every_leg_smoke_tests_its_frozen_app_with_the_same_script() -> None:
    frozen = [s for s in _runs("packaging/smoke_test.py") if "if" not in s]
    assert frozen, "a smoke test that runs on every leg"
    assert "--demo" in frozen[0]["run"] and "--screenshot" in frozen[0]["run"]
    assert (ROOT / "packaging" / "smoke_test.py").is_file()
    # ...and the installed or signed result on each platform.
    conditions = {s.get("if") for s in _runs("packaging/smoke_test.py")}
    assert {"matrix.os == 'linux'", "matrix.os == 'windows'", "matrix.os == 'macos'"} <= conditions


def test_each_platform_builds_its_installer() -> None:
    assert _runs("packaging/linux/build.py deb appimage tarball")
    inno = _runs("packaging\\windows\\deskbell.iss")
    assert inno and "/DSign" in inno[0]["run"]
    assert _runs("packaging/macos/build.sh app")
    assert _runs("packaging/macos/build.sh icns")
    build_sh = (ROOT / "packaging" / "macos" / "build.sh").read_text(encoding="utf-8")
    for needle in ("--options runtime", "notarytool submit", "stapler staple", "hdiutil create"):
        assert needle in build_sh


def test_every_secret_the_workflow_uses_is_documented() -> None:
    text = WORKFLOW.read_text(encoding="utf-8")
    used = set(re.findall(r"secrets\.([A-Z0-9_]+)", text)) | set(
        re.findall(r"vars\.([A-Z0-9_]+)", text)
    )
    assert used >= {"WINDOWS_CERTIFICATE_PFX", "MACOS_CERTIFICATE_P12", "DESKBELL_UPDATE_KEY"}
    docs = (ROOT / "docs" / "release.md").read_text(encoding="utf-8")
    missing = sorted(name for name in used if f"`{name}`" not in docs)
    assert not missing, f"not in docs/release.md: {missing}"
