"""D1: optional start at login, per platform (Windows and macOS through their own writers)."""

from __future__ import annotations

import plistlib
import shlex
from pathlib import Path

import pytest

from app import autostart
from app.autostart import LinuxAutostart, MacAutostart, WindowsAutostart
from resources import APP_ID


def test_d1_linux_autostart_writes_an_xdg_desktop_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.setattr(autostart.sys, "platform", "linux")
    assert not autostart.is_enabled()
    autostart.enable("/opt/Desk Bell/deskbell", args=["--data-dir", "/home/a/100% data"])
    path = tmp_path / "autostart" / f"{APP_ID}.desktop"
    assert path.is_file()
    assert autostart.is_enabled()
    entries = dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    assert entries["Type"] == "Application"
    assert entries["Icon"] == "deskbell"
    # The Exec line parses back to the same arguments (quotes kept, % doubled per the spec).
    argv = shlex.split(entries["Exec"].replace("%%", "%"))
    assert argv == ["/opt/Desk Bell/deskbell", "--data-dir", "/home/a/100% data"]
    autostart.disable()
    assert not path.exists()
    assert not autostart.is_enabled()
    autostart.disable()  # twice is fine


def test_d1_linux_autostart_switched_off_in_session_settings(tmp_path: Path) -> None:
    starter = LinuxAutostart(config_home=tmp_path)
    starter.enable(["deskbell"])
    assert starter.is_enabled()
    text = starter.path.read_text().replace(
        "X-GNOME-Autostart-enabled=true", "X-GNOME-Autostart-enabled=false"
    )
    starter.path.write_text(text)
    assert not starter.is_enabled()


class FakeRunKey:
    """Stands in for HKCU\\...\\Run, which cannot exist here."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    def get(self, name: str) -> str | None:
        return self.values.get(name)

    def set(self, name: str, value: str) -> None:
        self.values[name] = value

    def delete(self, name: str) -> None:
        self.values.pop(name, None)


def test_d1_windows_autostart_uses_the_run_key() -> None:
    key = FakeRunKey()
    starter = WindowsAutostart(key=key)
    assert not starter.is_enabled()
    starter.enable([r"C:\Program Files\Deskbell\Deskbell.exe", "--demo"])
    assert key.values == {"Deskbell": r'"C:\Program Files\Deskbell\Deskbell.exe" --demo'}
    assert starter.is_enabled()
    starter.disable()
    assert key.values == {}
    assert not starter.is_enabled()


def test_d1_macos_autostart_writes_a_launch_agent(tmp_path: Path) -> None:
    starter = MacAutostart(agents_dir=tmp_path / "LaunchAgents")
    assert not starter.is_enabled()
    starter.enable(["/Applications/Deskbell.app/Contents/MacOS/Deskbell"])
    with starter.path.open("rb") as f:
        plist = plistlib.load(f)
    assert plist["Label"] == APP_ID
    assert plist["RunAtLoad"] is True
    assert plist["ProgramArguments"] == ["/Applications/Deskbell.app/Contents/MacOS/Deskbell"]
    assert starter.is_enabled()
    starter.disable()
    assert not starter.is_enabled()


def test_d1_platform_choice() -> None:
    assert isinstance(autostart.for_platform("linux"), LinuxAutostart)
    assert isinstance(autostart.for_platform("darwin"), MacAutostart)
    assert autostart.current_command()
