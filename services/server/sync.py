"""What a desktop's team replica reads from the server (T5): everything its user may see in
one consistent read, and where the event stream stands. The replica then follows
`GET /api/v1/events` from that position (services/team/sync.py)."""

from __future__ import annotations

from dataclasses import dataclass

from services.events import kept_window
from services.server.endpoints import Call, Endpoints
from services.team.snapshot import Snapshot, read_snapshot

__all__ = ["routes"]

api = Endpoints()
routes = api.routes


@dataclass(frozen=True, slots=True)
class SyncPosition:
    position: int


@api("GET", "/sync/snapshot", summary="Everything the caller may see, and its event position")
async def snapshot(call: Call) -> Snapshot:
    """People, items, followers, conversations, messages, deliveries with their seen times,
    the caller's own notification settings; read in one transaction at `position`."""
    delay = int(call.service.config("unseen_delay_s"))
    return await call.service.db.read(read_snapshot, call.who, default_delay_s=delay)


@api("GET", "/sync/position", summary="The event stream's newest position")
async def position(call: Call) -> SyncPosition:
    _oldest, last = await call.service.db.read(kept_window)
    return SyncPosition(position=last)
