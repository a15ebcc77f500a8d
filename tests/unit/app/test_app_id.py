"""D1, N7: one reverse-DNS application id names the app everywhere a desktop looks for it.

The launcher finds the icon and the badge through the desktop file's name, Wayland groups
windows by the app id, notifications point at the desktop entry, Windows groups the taskbar and
routes toasts by the AppUserModelID, macOS by the bundle id. If any of these disagree, the
installed app shows a generic icon, no badge, or two taskbar buttons.
"""

from __future__ import annotations

import inspect
import plistlib
from pathlib import Path

import pytest
from PySide6.QtWidgets import QApplication

from app import autostart, desktop
from app.autostart import LinuxAutostart, MacAutostart
from resources import APP_ID
from ui.platform import freedesktop

ROOT = Path(__file__).resolve().parents[3]
PACKAGING = ROOT / "packaging"


def test_d1_app_id_is_reverse_dns() -> None:
    parts = APP_ID.split(".")
    assert len(parts) >= 3
    assert all(p and (p[0].isalpha()) and p.replace("_", "").isalnum() for p in parts)


def test_d1_desktop_file_metainfo_and_icon_carry_the_id() -> None:
    assert (PACKAGING / "linux" / f"{APP_ID}.desktop").is_file()
    metainfo = (PACKAGING / "linux" / f"{APP_ID}.metainfo.xml").read_text(encoding="utf-8")
    assert f"<id>{APP_ID}</id>" in metainfo
    assert f'<launchable type="desktop-id">{APP_ID}.desktop</launchable>' in metainfo


def test_n7_the_running_app_names_its_desktop_file(qapp: QApplication) -> None:
    """Wayland's app id and the launcher badge both come from setDesktopFileName."""
    desktop.identify_app(qapp)
    assert qapp.desktopFileName() == APP_ID


def test_d1_windows_app_user_model_id_is_set_before_any_window() -> None:
    calls: list[str] = []
    desktop.identify_app(QApplication.instance() or QApplication([]), set_windows_id=calls.append)
    assert calls == [APP_ID]


def test_d3_notifications_name_the_desktop_entry() -> None:
    default = inspect.signature(freedesktop.FreedesktopNotifier).parameters["desktop_entry"]
    assert default.default == APP_ID


def test_d1_autostart_entry_is_named_by_the_id(tmp_path: Path) -> None:
    starter = LinuxAutostart(config_home=tmp_path)
    starter.enable(["/opt/deskbell/Deskbell"])
    assert starter.path == tmp_path / "autostart" / f"{APP_ID}.desktop"
    assert f"StartupWMClass={APP_ID}" not in starter.path.read_text()  # X11 class: see below
    mac = MacAutostart(agents_dir=tmp_path / "agents")
    mac.enable(["/Applications/Deskbell.app/Contents/MacOS/Deskbell"])
    assert plistlib.loads(mac.path.read_bytes())["Label"] == APP_ID
    assert mac.path.name == f"{APP_ID}.plist"


def test_d1_autostart_replaces_the_entry_of_older_versions(tmp_path: Path) -> None:
    """An entry written before the id existed (`deskbell.desktop`) is not left behind to start
    a second copy, and switching it off removes it too."""
    old = tmp_path / "autostart" / "deskbell.desktop"
    old.parent.mkdir(parents=True)
    old.write_text("[Desktop Entry]\nType=Application\nExec=deskbell-gui\n")
    starter = LinuxAutostart(config_home=tmp_path)
    assert starter.is_enabled()
    starter.enable(["/opt/deskbell/Deskbell"])
    assert not old.exists()
    old.write_text("[Desktop Entry]\nType=Application\nExec=deskbell-gui\n")
    starter.disable()
    assert not old.exists()
    assert not starter.is_enabled()


@pytest.mark.parametrize(
    ("path", "needle"),
    [
        ("deskbell.spec", "bundle_identifier=APP_ID"),
        ("windows/deskbell.iss", f'AppUserModelID: "{APP_ID}"'),
    ],
)
def test_d1_installers_use_the_id(path: str, needle: str) -> None:
    assert needle in (PACKAGING / path).read_text(encoding="utf-8")


def test_d1_autostart_has_tryexec_so_an_uninstalled_app_leaves_no_broken_login_item(
    tmp_path: Path,
) -> None:
    starter = LinuxAutostart(config_home=tmp_path)
    starter.enable(["/opt/deskbell/Deskbell", "--data-dir", "/home/a/x"])
    lines = starter.path.read_text().splitlines()
    assert "TryExec=/opt/deskbell/Deskbell" in lines


def test_d1_autostart_inside_an_appimage_starts_the_appimage(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Inside an AppImage `sys.executable` lives in a mount that is gone after exit."""
    monkeypatch.setattr(autostart.sys, "frozen", True, raising=False)
    monkeypatch.setattr(autostart.sys, "executable", "/tmp/.mount_DeskbXY/usr/bin/Deskbell")
    monkeypatch.setenv("APPIMAGE", "/home/a/Apps/Deskbell-x86_64.AppImage")
    assert autostart.current_command() == ["/home/a/Apps/Deskbell-x86_64.AppImage"]
    monkeypatch.delenv("APPIMAGE")
    assert autostart.current_command() == ["/tmp/.mount_DeskbXY/usr/bin/Deskbell"]
