"""A private D-Bus session bus with a real notification daemon (dunst) and a monitor on it.

`NotificationBus.calls()` reads what dbus-monitor saw: each method call to or reply from the
notification service and each of its signals, with their arguments as dbus-monitor prints them.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from jeepney import message_bus
from jeepney.io import blocking

__all__ = ["BusMessage", "NotificationBus", "notification_bus"]

_HEAD = re.compile(r"^(method call|method return|signal|error) ")
_FIELD = re.compile(r"(\w+)=([^ ;]+)")


@dataclass
class BusMessage:
    kind: str  # "method call", "method return", "signal", "error"
    fields: dict[str, str]
    args: list[str] = field(default_factory=list)  # e.g. 'uint32 7', 'string "Deskbell"'
    text: str = ""  # every argument line, nested ones too

    @property
    def member(self) -> str:
        return self.fields.get("member", "")

    def uint(self, index: int) -> int:
        kind, _, value = self.args[index].partition(" ")
        assert kind == "uint32", self.args[index]
        return int(value)


def parse_monitor(text: str) -> list[BusMessage]:
    messages: list[BusMessage] = []
    for line in text.splitlines():
        head = _HEAD.match(line)
        if head:
            messages.append(BusMessage(head.group(1), dict(_FIELD.findall(line))))
        elif messages and line.startswith("   "):
            messages[-1].text += line.strip() + "\n"
            if not line.startswith("      "):
                messages[-1].args.append(line.strip())
    return messages


@dataclass
class NotificationBus:
    address: str
    monitor_log: Path

    def env(self) -> dict[str, str]:
        return {**os.environ, "DBUS_SESSION_BUS_ADDRESS": self.address}

    def messages(self) -> list[BusMessage]:
        return parse_monitor(self.monitor_log.read_text(errors="replace"))

    def calls(self, member: str) -> list[BusMessage]:
        return [m for m in self.messages() if m.kind == "method call" and m.member == member]

    def signals(self, member: str) -> list[BusMessage]:
        return [m for m in self.messages() if m.kind == "signal" and m.member == member]

    def reply_to(self, call: BusMessage) -> BusMessage | None:
        """The daemon's answer to `call` (matched on the caller and the serial)."""
        for m in self.messages():
            if (
                m.kind in ("method return", "error")
                and m.fields.get("reply_serial") == call.fields.get("serial")
                and m.fields.get("destination") == call.fields.get("sender")
            ):
                return m
        return None

    def dunstctl(self, *args: str) -> str:
        done = subprocess.run(
            ["dunstctl", *args], env=self.env(), capture_output=True, text=True, timeout=30
        )
        assert done.returncode == 0, done.stderr
        return done.stdout


def _wait(condition: object, what: str, *, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _daemon_owns_name(address: str) -> bool:
    with blocking.open_dbus_connection(bus=address) as conn:
        proxy = blocking.Proxy(message_bus, conn, timeout=5)
        return bool(proxy.NameHasOwner("org.freedesktop.Notifications")[0])


def notification_bus(folder: Path) -> Iterator[NotificationBus]:
    """Start the bus, dunst and dbus-monitor; yield; stop them (a generator for a fixture)."""
    daemon = subprocess.Popen(
        ["dbus-daemon", "--session", "--nofork", "--print-address=1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    processes: list[subprocess.Popen[str]] = [daemon]
    try:
        assert daemon.stdout is not None
        address = daemon.stdout.readline().strip()
        assert address, "dbus-daemon printed no address"
        env = {**os.environ, "DBUS_SESSION_BUS_ADDRESS": address}
        log = folder / "dbus-monitor.txt"
        with log.open("w") as out:
            processes.append(
                subprocess.Popen(
                    [
                        "dbus-monitor",
                        "--address",
                        address,
                        "interface='org.freedesktop.Notifications'",
                        "type='method_return'",  # replies carry no interface
                        "type='error'",
                    ],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    text=True,
                )
            )
        _wait(lambda: log.stat().st_size > 0, "dbus-monitor")
        processes.append(
            subprocess.Popen(
                ["dunst"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True
            )
        )
        _wait(lambda: _daemon_owns_name(address), "dunst on the bus")
        yield NotificationBus(address=address, monitor_log=log)
    finally:
        if daemon.stdout is not None:
            daemon.stdout.close()
        for process in reversed(processes):
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
