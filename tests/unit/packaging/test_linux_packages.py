"""The Linux packages (issue 13, Build): every package carries Deskbell's licence and the
third-party notices with Qt's LGPL notice; the AppDir is complete (what appimagetool and the
AppImage runtime look for) and its AppRun starts the bundle; the menu entry and the metainfo
validate with no remark. Built by packaging/linux/build.py from a stand-in bundle (a script
named like the real program), so no PyInstaller run is needed; the real bundle is built,
installed and smoke-tested by packaging/ci-smoke.sh."""

from __future__ import annotations

import os
import subprocess
import tarfile
from pathlib import Path

import pytest
from linux import build

from resources import APP_ID

MANIFEST: dict[str, list] = {"modules": ["PySide6"], "binaries": []}
LICENSE_LINE = "Copyright (c) 2026 The Deskbell developers"
QT_LINE = "Qt 6 and PySide6 / Shiboken6 (Qt for Python)"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("linux")
    bundle = root / "Deskbell"
    bundle.mkdir()
    program = bundle / "deskbell"
    program.write_text('#!/bin/sh\necho "deskbell ran: $*"\n')
    program.chmod(0o755)
    out, work = root / "out", root / "work"
    out.mkdir()
    work.mkdir()
    return {
        "deb": build.build_deb(bundle, MANIFEST, out=out, work=work),
        "appdir": build.build_appdir(bundle, MANIFEST, work=work),
        "tarball": build.build_tarball(bundle, MANIFEST, out=out, work=work),
        "root": root,
    }


def _notices(kind: str, built: dict[str, Path]) -> str:
    """Every licence text a package carries, one string."""
    if kind == "deb":
        tree = built["root"] / "deb-unpacked"
        subprocess.run(["dpkg-deb", "-x", str(built["deb"]), str(tree)], check=True)
        return (tree / "usr/share/doc/deskbell/copyright").read_text()
    if kind == "appdir":
        doc = built["appdir"] / "usr/share/doc/deskbell"
        return "".join(p.read_text() for p in sorted(doc.glob("*")) if p.is_file())
    with tarfile.open(built["tarball"]) as tar:
        names = [n for n in tar.getnames() if n.endswith(("/LICENSE", "NOTICES.txt"))]
        return "".join(tar.extractfile(n).read().decode() for n in names)  # type: ignore[union-attr]


@pytest.mark.parametrize("kind", ["deb", "appdir", "tarball"])
def test_every_package_carries_the_licence_and_qt_lgpl_notice(
    kind: str, built: dict[str, Path]
) -> None:
    text = _notices(kind, built)
    assert LICENSE_LINE in text
    assert QT_LINE in text and "GNU Lesser General Public License version 3" in text


def test_the_appdir_is_complete_and_its_apprun_starts_the_bundle(built: dict[str, Path]) -> None:
    appdir = built["appdir"]
    entry = (appdir / f"{APP_ID}.desktop").read_text().splitlines()
    assert "Exec=deskbell" in entry
    assert not any(line.startswith("TryExec=") for line in entry)  # not on PATH in an image
    icon = next(line.split("=", 1)[1] for line in entry if line.startswith("Icon="))
    assert (appdir / f"{icon}.svg").is_file() or (appdir / f"{icon}.png").is_file()
    assert (appdir / ".DirIcon").is_file()
    assert (appdir / f"usr/share/metainfo/{APP_ID}.appdata.xml").is_file()
    assert (appdir / "usr/share/icons/hicolor/512x512/apps/deskbell.png").is_file()
    env = dict(os.environ, APPIMAGE="/home/a/Deskbell-x86_64.AppImage", APPDIR=str(appdir))
    ran = subprocess.run(
        [str(appdir / "AppRun"), "--version"], capture_output=True, text=True, env=env, check=True
    )
    assert ran.stdout == "deskbell ran: --version\n"


@pytest.mark.parametrize("where", ["deb", "appdir"])
def test_menu_entry_and_metainfo_validate_without_a_remark(
    where: str, built: dict[str, Path]
) -> None:
    """desktop-file-validate and appstreamcli (installed by `make system-packages`) find
    nothing to say but pedantic hints: a tag the supported systems' AppStream (Ubuntu 22.04,
    Debian 12) does not know is a remark, and software centres would ignore it."""
    usr = built["appdir"] / "usr" if where == "appdir" else built["root"] / "work/deb/usr"
    assert build.validation_remarks(usr) == []
