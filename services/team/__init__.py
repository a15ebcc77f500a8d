"""Team mode on the desktop (T5, S4): the replica and its link to the server.

In a team the desktop opens its ordinary `Service` on a replica, an ordinary workspace at
`<data_dir>/team` holding the server's ids for what its user may see, so the window, the
counts and the seen tracking work unchanged; `TeamSync` keeps it in step with the server
(services/team/sync.py). The replica never sends email: start it with `start(mail=False)`.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

from services.team.state import ConnectionState

if TYPE_CHECKING:
    from services.api import Service
    from services.clock import Clock
    from services.secrets import SecretStore
    from services.server_client import ServerClient
    from services.team.sync import TeamSync

__all__ = ["ConnectionState", "open_replica", "open_replica_service"]

REPLICA_DIR = "team"


async def open_replica(
    *,
    data_dir: Path,
    client: ServerClient,
    person_id: int,
    clock: Clock | None = None,
    secrets: SecretStore | None = None,
    first_window: bool = False,
) -> tuple[Service, TeamSync]:
    """Open the replica under `data_dir/"team"` (no network) and its sync, not started:
    `TeamSync.start()` connects in the background and loads an empty replica from the
    server's snapshot. From here on the service's own writes queue for the server."""
    from services.team.sync import TeamSync

    service = await open_replica_service(
        data_dir=data_dir, clock=clock, secrets=secrets, first_window=first_window
    )
    return service, TeamSync(service, client, person_id=person_id, clock=service.clock)


async def open_replica_service(
    *,
    data_dir: Path,
    clock: Clock | None = None,
    secrets: SecretStore | None = None,
    first_window: bool = False,
) -> Service:
    """The replica's service alone, as `open_replica` opens it, for a caller that makes the
    sync later: the desktop's first window reads the replica on plain sqlite3, as a local
    workspace's does, and the server's client and the sync load behind it. Make the sync
    before the service's writes can run (`Service.when_open`)."""
    from services.api import Service
    from services.clock import SystemClock

    folder = data_dir / REPLICA_DIR
    await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
    return await Service.open(
        data_dir=folder,
        clock=clock or SystemClock(),
        secrets=secrets,
        first_window=first_window,
        check_file=not first_window,
    )
