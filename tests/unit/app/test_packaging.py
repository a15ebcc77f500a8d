"""The packaging files point at things that exist (D1: launcher, icons, bundled data)."""

from __future__ import annotations

import configparser
import re
from pathlib import Path

from resources import APP_ID

ROOT = Path(__file__).resolve().parents[3]
PACKAGING = ROOT / "packaging"


def test_d1_desktop_entry_has_what_launchers_need() -> None:
    entry = configparser.ConfigParser(interpolation=None)
    entry.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    entry.read(PACKAGING / "linux" / f"{APP_ID}.desktop", encoding="utf-8")
    main = entry["Desktop Entry"]
    assert main["Type"] == "Application"
    assert main["Icon"] == "deskbell"
    assert main["StartupWMClass"] == "Deskbell"  # Qt's X11 class: the application name
    assert main["TryExec"] == main["Exec"].split()[0]
    assert main["X-GNOME-UsesNotifications"] == "true"
    assert main["Terminal"] == "false"
    assert main["Categories"].endswith(";")
    assert entry["Desktop Action demo"]["Exec"].endswith("--demo")
    assert (ROOT / "resources" / "icons" / "deskbell.svg").is_file()


def test_spec_bundles_resources_and_migrations() -> None:
    spec = (PACKAGING / "deskbell.spec").read_text(encoding="utf-8")
    folders = re.findall(r'\(str\(ROOT / "([^)]*)"\), "', spec)
    assert len(folders) >= 2
    for folder in folders:
        parts = [p.strip().strip('"') for p in folder.split("/")]
        path = ROOT.joinpath(*[p for p in parts if p])
        assert path.exists(), path
    assert '"services" / "store" / "migrations"' in spec
    assert (ROOT / "services" / "store" / "migrations" / "env.py").is_file()
    assert (PACKAGING / "deskbell_main.py").is_file()
