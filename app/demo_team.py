"""`deskbell --demo-team` (D9, T5): team mode in two minutes, on this computer alone.

The demo's data folder (default `<data dir>/demo-team`) holds a team server's workspace in
`server/`, seeded once like `deskbell --demo` (you, teammates, customers, items, history), and
the desktop's replica in `team/`. Each start serves that workspace on loopback (the same
server as `deskbell serve`, run inside the app so it starts and stops with it), with its
email caught by the demo's local mailbox; gives you (Alex Morgan) and two teammates, the bot
agents, the demo's password; signs the desktop in as you; and the bots then write now and
then through the server (app.demo.run_bots), so their messages reach the desktop as any
teammate's would.

The demo keeps its token in memory rather than the OS keyring: it is a token for a server on
loopback holding made-up data behind a published password, renewed at each start, and a
newcomer's computer may have no keyring at all (the demo must still start).
"""

from __future__ import annotations

import contextlib
import logging
import socket
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Final

from app.demo import DemoWorkspace, prepare_demo

if TYPE_CHECKING:
    from aiohttp import web

    from services.secrets import SecretStore

__all__ = ["BOT_COUNT", "DEMO_PASSWORD", "DemoTeam", "demo_secrets", "start_demo_team"]

log = logging.getLogger(__name__)

DEMO_PASSWORD: Final = "deskbell demo team"  # a demo on loopback: nobody else can reach it
BOT_COUNT: Final = 2
PORT_FILE: Final = "port"  # the server's port, kept so the account's address stays the same


@dataclass
class DemoTeam:
    workspace: DemoWorkspace  # the server's side: its service, mailbox and bot teammates
    url: str
    runner: web.AppRunner
    secrets: SecretStore  # where the desktop's token is kept

    async def close(self) -> None:
        await self.runner.cleanup()
        await self.workspace.service.close()
        await self.workspace.close()


async def start_demo_team(folder: Path, *, secrets: SecretStore | None = None) -> DemoTeam:
    """Serve the demo team on loopback and sign this folder's desktop in to it (its token in
    `secrets`, by default in memory)."""
    from aiohttp import web

    from services.api import LOCAL_OPERATOR
    from services.server.app import build_app
    from services.team.account import AccountStore
    from services.team.signin import sign_in_to_team

    workspace = await prepare_demo(data_dir=folder / "server")
    secrets = secrets if secrets is not None else demo_secrets()
    runner: web.AppRunner | None = None
    try:
        workspace = replace(workspace, teammates=workspace.teammates[:BOT_COUNT])
        for address in (workspace.me, *workspace.teammates):
            await workspace.service.set_password(
                acting=LOCAL_OPERATOR, email=address, password=DEMO_PASSWORD
            )
        await workspace.service.start()  # the server sends the team's email (T3)
        runner = web.AppRunner(build_app(workspace.service), access_log=None)
        await runner.setup()
        port = await _listen(runner, folder / "server" / PORT_FILE)
        url = f"http://127.0.0.1:{port}"
        log.info("demo team server on %s", url)
        new = await sign_in_to_team(
            server_url=url,
            email=workspace.me,
            password=DEMO_PASSWORD,
            device=f"Deskbell demo on {socket.gethostname()}",
        )
        AccountStore(folder, secrets=secrets).save(new.account, new.token)
    except BaseException:
        if runner is not None:
            await runner.cleanup()
        await workspace.service.close()
        await workspace.close()
        raise
    return DemoTeam(workspace=workspace, url=url, runner=runner, secrets=secrets)


def demo_secrets() -> SecretStore:
    """The demo's token kept in memory for this run (see the module's doc)."""
    from keyring.backend import KeyringBackend

    from services.secrets import SecretStore

    class MemoryKeyring(KeyringBackend):
        priority = 0  # never chosen by keyring itself

        def __init__(self) -> None:
            super().__init__()  # type: ignore[no-untyped-call]
            self.values: dict[tuple[str, str], str] = {}

        def get_password(self, service: str, username: str) -> str | None:
            return self.values.get((service, username))

        def set_password(self, service: str, username: str, password: str) -> None:
            self.values[(service, username)] = password

        def delete_password(self, service: str, username: str) -> None:
            self.values.pop((service, username), None)

    return SecretStore(backend=MemoryKeyring())


async def _listen(runner: web.AppRunner, port_file: Path) -> int:
    """Listen on the port of last time if it is free, else on a new one (remembered)."""
    from aiohttp import web

    saved = _saved_port(port_file)
    if saved is not None:
        with contextlib.suppress(OSError):
            await web.TCPSite(runner, "127.0.0.1", saved).start()
            return saved
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = int(runner.addresses[-1][1])
    _remember_port(port_file, port)
    return port


def _saved_port(port_file: Path) -> int | None:
    try:
        return int(port_file.read_text())
    except (OSError, ValueError):
        return None


def _remember_port(port_file: Path, port: int) -> None:
    port_file.write_text(str(port))
