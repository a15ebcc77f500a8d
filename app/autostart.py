"""Optional start at login (D1), one small class per platform.

- Linux (and other XDG desktops): `$XDG_CONFIG_HOME/autostart/<APP_ID>.desktop`, with
  `TryExec` so an uninstalled app leaves no broken login item.
- Windows: a value named "Deskbell" under HKCU\\Software\\Microsoft\\Windows\\CurrentVersion\\Run.
- macOS: a LaunchAgent `~/Library/LaunchAgents/<APP_ID>.plist` with RunAtLoad, read by
  launchd at the next login.

The module functions `enable()`, `disable()` and `is_enabled()` pick the class for this
platform. Each class takes what it writes to (a folder, a registry key) as an argument, so
tests run every platform's logic here with a tmp folder or a fake key.
"""

from __future__ import annotations

import os
import plistlib
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from resources import APP_ID

__all__ = [
    "APP_NAME",
    "Autostart",
    "LinuxAutostart",
    "MacAutostart",
    "RunKey",
    "WindowsAutostart",
    "WinregRunKey",
    "current_command",
    "disable",
    "enable",
    "for_platform",
    "is_enabled",
]

APP_NAME = "Deskbell"
MAC_LABEL = APP_ID
# What versions before the application id wrote; replaced or removed with the new entry.
_OLD_LINUX_ENTRY = "deskbell.desktop"
_OLD_MAC_AGENT = "app.deskbell.plist"
RUN_KEY_PATH = r"Software\Microsoft\Windows\CurrentVersion\Run"


class Autostart(Protocol):
    def enable(self, command: Sequence[str]) -> None: ...

    def disable(self) -> None: ...

    def is_enabled(self) -> bool: ...


def current_command() -> list[str]:
    """How to start this Deskbell again: the bundle, the installed script, or the module."""
    if getattr(sys, "frozen", False):  # PyInstaller: the executable is the app
        # Inside an AppImage the executable lives in a mount that goes away on exit; the
        # AppImage runtime says where the image itself is.
        return [os.environ.get("APPIMAGE") or sys.executable]
    for script in ("deskbell-gui", "deskbell"):
        found = shutil.which(script)
        if found:
            return [found]
    return [sys.executable, "-m", "app.cli"]


# --- Linux / XDG ------------------------------------------------------------------------------


def _desktop_quote(arg: str) -> str:
    """One Exec argument, quoted as the Desktop Entry spec asks (and % doubled)."""
    arg = arg.replace("%", "%%")
    if arg and not any(c in arg for c in " \t\n\"'\\><~|&;$*?#()`="):
        return arg
    escaped = "".join("\\" + c if c in '"`$\\' else c for c in arg)
    return f'"{escaped}"'


class LinuxAutostart:
    def __init__(self, *, config_home: Path | None = None) -> None:
        base = config_home or Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
        self.path = base / "autostart" / f"{APP_ID}.desktop"
        self._old = base / "autostart" / _OLD_LINUX_ENTRY

    def enable(self, command: Sequence[str]) -> None:
        exec_line = " ".join(_desktop_quote(a) for a in command)
        # TryExec: a session skips the entry once the program is gone (uninstalled).
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(
            "[Desktop Entry]\n"
            "Type=Application\n"
            f"Name={APP_NAME}\n"
            "Comment=Help-desk messenger\n"
            f"TryExec={_desktop_quote(command[0])}\n"
            f"Exec={exec_line}\n"
            "Icon=deskbell\n"
            "Terminal=false\n"
            "X-GNOME-Autostart-enabled=true\n",
            encoding="utf-8",
        )
        tmp.replace(self.path)
        self._old.unlink(missing_ok=True)

    def disable(self) -> None:
        self.path.unlink(missing_ok=True)
        self._old.unlink(missing_ok=True)

    def is_enabled(self) -> bool:
        path = self.path if self.path.is_file() else self._old
        if not path.is_file():
            return False
        # A person may have switched it off in their session settings instead of deleting it.
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        return not any(
            line.strip().lower() in ("hidden=true", "x-gnome-autostart-enabled=false")
            for line in lines
        )


# --- Windows -----------------------------------------------------------------------------------


class RunKey(Protocol):
    """The HKCU Run key: named string values."""

    def get(self, name: str) -> str | None: ...

    def set(self, name: str, value: str) -> None: ...

    def delete(self, name: str) -> None: ...


class WinregRunKey:
    """The real key, through the standard library's winreg (Windows only)."""

    def __init__(self) -> None:
        import winreg  # Windows only: imported here so this module loads everywhere

        self._winreg = winreg

    def get(self, name: str) -> str | None:
        reg = self._winreg
        try:
            with reg.OpenKey(reg.HKEY_CURRENT_USER, RUN_KEY_PATH) as key:
                value, _ = reg.QueryValueEx(key, name)
        except FileNotFoundError:
            return None
        return str(value)

    def set(self, name: str, value: str) -> None:
        reg = self._winreg
        with reg.CreateKey(reg.HKEY_CURRENT_USER, RUN_KEY_PATH) as key:
            reg.SetValueEx(key, name, 0, reg.REG_SZ, value)

    def delete(self, name: str) -> None:
        reg = self._winreg
        try:
            with reg.OpenKey(
                reg.HKEY_CURRENT_USER,
                RUN_KEY_PATH,
                0,
                reg.KEY_SET_VALUE,
            ) as key:
                reg.DeleteValue(key, name)
        except FileNotFoundError:
            return


class WindowsAutostart:
    def __init__(self, *, key: RunKey | None = None) -> None:
        self.key = key if key is not None else WinregRunKey()

    def enable(self, command: Sequence[str]) -> None:
        self.key.set(APP_NAME, subprocess.list2cmdline(list(command)))

    def disable(self) -> None:
        self.key.delete(APP_NAME)

    def is_enabled(self) -> bool:
        return bool(self.key.get(APP_NAME))


# --- macOS -------------------------------------------------------------------------------------


class MacAutostart:
    def __init__(self, *, agents_dir: Path | None = None) -> None:
        folder = agents_dir or Path.home() / "Library" / "LaunchAgents"
        self.path = folder / f"{MAC_LABEL}.plist"
        self._old = folder / _OLD_MAC_AGENT

    def enable(self, command: Sequence[str]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        plist = {
            "Label": MAC_LABEL,
            "ProgramArguments": list(command),
            "RunAtLoad": True,
            "ProcessType": "Interactive",
        }
        tmp = self.path.with_suffix(".tmp")
        with tmp.open("wb") as f:
            plistlib.dump(plist, f)
        tmp.replace(self.path)
        self._old.unlink(missing_ok=True)

    def disable(self) -> None:
        self.path.unlink(missing_ok=True)
        self._old.unlink(missing_ok=True)

    def is_enabled(self) -> bool:
        try:
            with self.path.open("rb") as f:
                plist = plistlib.load(f)
        except (OSError, plistlib.InvalidFileException):
            return False
        return bool(plist.get("RunAtLoad")) and not plist.get("Disabled", False)


# --- this platform -----------------------------------------------------------------------------


def for_platform(platform: str | None = None) -> Autostart:
    name = platform or sys.platform
    if name == "win32":
        return WindowsAutostart()
    if name == "darwin":
        return MacAutostart()
    return LinuxAutostart()


def enable(path: str | Path | None = None, *, args: Sequence[str] = ()) -> None:
    """Start Deskbell at login: `path` (default: this program) with `args`."""
    command = [str(path)] if path is not None else current_command()
    for_platform().enable([*command, *args])


def disable() -> None:
    for_platform().disable()


def is_enabled() -> bool:
    return for_platform().is_enabled()
