"""Keeping a team replica in step with its server (T5, S4): one WebSocket in, ordered HTTP
calls out.

- **In**: an empty replica (or one the server says is too far behind: "resync") loads the
  snapshot (`GET /sync/snapshot`); then the event stream from the replica's cursor
  (`server_client.events`), each batch applied in one unit of work that also moves the cursor
  (services/team/replica.py). Idle, that is one connection and nothing else: no polling.
- **Out**: the pusher sends the queued writes (services/team/queue.py) one at a time, in order,
  each with its client id: a write sent again after a lost answer is applied once. A network
  failure waits (backoff with jitter) and retries the same write; a write the server refuses
  is dropped with a log line and its local effect undone.
- Connection lost: OFFLINE, then reconnect after a growing, jittered delay, or at once on
  `reconnect_now()` (the machine woke, the network changed). A refused token: SIGNED_OUT.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable, Mapping
from typing import Any, Final

from services.api import Service
from services.clock import Clock
from services.errors import (
    AuthenticationError,
    DeskbellError,
    InputError,
    NotFoundError,
    PermissionDeniedError,
    ServerUnreachableError,
    StoreError,
)
from services.server_client import ServerClient, decode, events, path
from services.team import queue
from services.team.replica import apply_events, cursor, load_snapshot, set_own_settings
from services.team.snapshot import Snapshot
from services.team.state import ConnectionState
from services.team.writes import ReplicaWrites, undo
from services.views import ItemInfo, PersonInfo

__all__ = ["TeamSync"]

log = logging.getLogger(__name__)

BACKOFF_FIRST_S: Final = 0.5
BACKOFF_MAX_S: Final = 60.0
BATCH_MAX: Final = 500  # events applied in one unit of work
# The server's refusals of a write (its 4xx answers): retrying would be refused again.
REFUSED: Final = (InputError, NotFoundError, PermissionDeniedError)
_READY, _RESYNC = "ready", "resync"


class _Backoff:
    """1/2 to 1 times a delay that doubles up to BACKOFF_MAX_S ("equal jitter"), so desktops
    that lost the server together do not come back together."""

    def __init__(self) -> None:
        self._delay = BACKOFF_FIRST_S

    def reset(self) -> None:
        self._delay = BACKOFF_FIRST_S

    def next(self) -> float:
        delay = self._delay * random.uniform(0.5, 1.0)
        self._delay = min(self._delay * 2, BACKOFF_MAX_S)
        return delay


async def _wait(event: asyncio.Event, timeout_s: float | None) -> None:
    """Until `event` is set or `timeout_s` passed; clears it."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), timeout_s)
    event.clear()


class TeamSync:
    """The replica `service`'s link to the server behind `client` (signed in as `person_id`).

    Built by `open_replica`; from then on the service's own writes queue for the server.
    `start()` connects in the background (the service works offline meanwhile)."""

    def __init__(
        self, service: Service, client: ServerClient, *, person_id: int, clock: Clock
    ) -> None:
        self._service = service
        self._client = client
        self._person_id = person_id
        self._clock = clock
        self._state = ConnectionState.CONNECTING
        self._listeners: list[Callable[[ConnectionState], None]] = []
        self._push = asyncio.Event()  # a write was queued, or the server is back
        self._reconnect = asyncio.Event()
        self._changed = asyncio.Event()  # the cursor moved, or the queue emptied
        self._inbox: asyncio.Queue[Mapping[str, Any]] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._cursor: int | None = None
        self._resnapshot = False
        service.team = ReplicaWrites(
            service, person_id=person_id, queued=self._push.set, create_item=self.create_item
        )

    # --- the connection's state ----------------------------------------------------------

    @property
    def state(self) -> ConnectionState:
        return self._state

    def subscribe_state(self, cb: Callable[[ConnectionState], None]) -> Callable[[], None]:
        """`cb(state)` at each change of state; returns a function that stops it."""
        self._listeners.append(cb)

        def unsubscribe() -> None:
            with contextlib.suppress(ValueError):
                self._listeners.remove(cb)

        return unsubscribe

    def _set_state(self, state: ConnectionState) -> None:
        if state is self._state:
            return
        self._state = state
        for cb in list(self._listeners):
            try:
                cb(state)
            except Exception:
                log.exception("a connection state listener failed")

    # --- life cycle ----------------------------------------------------------------------

    async def start(self) -> None:
        """Connect and push in the background; returns at once."""
        if self._tasks:
            return
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._follow(), name="deskbell-team-follow"),
            loop.create_task(self._apply(), name="deskbell-team-apply"),
            loop.create_task(self._pusher(), name="deskbell-team-push"),
        ]

    async def stop(self) -> None:
        """Stop following and pushing, and close the client's connections (a later call
        opens them again)."""
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._client.close()

    def reconnect_now(self) -> None:
        """The machine woke or the network changed: drop the connection (it may be dead
        without knowing it) and connect again now, with no wait; retry a waiting write now."""
        self._reconnect.set()
        self._push.set()

    async def pending_writes(self) -> int:
        """Writes made here the server does not have yet."""
        await self._service.opened()
        return await self._service.db.read(queue.pending)

    async def wait_current(self) -> None:
        """Until every write made here reached the server and the replica applied everything
        the server had when this was called (for tests and tools)."""
        while await self.pending_writes():
            await self._changed.wait()
            self._changed.clear()
        answer = await self._client.call("GET", path("sync", "position"))
        wanted = int(answer["position"])
        if self._cursor is not None and self._cursor >= wanted:
            return
        # The stream sends only what this user may see: a fresh "ready" says how far it is.
        self.reconnect_now()
        while self._cursor is None or self._cursor < wanted:
            await self._changed.wait()
            self._changed.clear()

    async def create_item(
        self, *, title: str, followers: list[str], requester: str | None
    ) -> ItemInfo:
        """A new item, made on the server, which numbers items: so online only, one clear
        error offline (messages, unlike items, can be written offline and wait). Returns it
        once the replica holds it."""
        if self._state is not ConnectionState.ONLINE:
            raise ServerUnreachableError(
                "new items are numbered by the team server, which cannot be reached now: "
                "try again when it is back (messages can still be written and wait)"
            )
        body = {"title": title, "followers": followers, "requester": requester}
        made: ItemInfo = decode(
            ItemInfo, await self._client.call("POST", path("items"), json_body=body)
        )
        await self.wait_current()
        return await self._service.item(made.number)

    def _moved(self) -> None:
        self._changed.set()

    # --- in: the snapshot and the event stream ---------------------------------------------

    async def _follow(self) -> None:
        await self._service.opened()
        self._cursor = await self._service.db.read(cursor)
        backoff = _Backoff()
        while True:
            token = self._client.token
            if token is None:
                self._set_state(ConnectionState.SIGNED_OUT)
                await _wait(self._reconnect, None)
                continue
            if self._state is ConnectionState.SIGNED_OUT:  # a new token: try it
                self._set_state(ConnectionState.CONNECTING)
            self._reconnect.clear()
            stream = asyncio.get_running_loop().create_task(self._stream(token, backoff))
            woken = asyncio.get_running_loop().create_task(self._reconnect.wait())
            try:
                await asyncio.wait({stream, woken}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                woken.cancel()
                stream.cancel()  # nothing if it ended
            await asyncio.wait({stream})  # its end, without raising what it raised
            await self._inbox.join()  # the cursor is where the next connection starts
            if stream.cancelled() or self._reconnect.is_set():
                backoff.reset()
                continue
            problem = stream.exception()
            if isinstance(problem, AuthenticationError):
                log.warning("the team server refused this desktop's session: %s", problem)
                self._set_state(ConnectionState.SIGNED_OUT)
                await _wait(self._reconnect, None)
                continue
            if problem is not None and not isinstance(problem, (ConnectionError, DeskbellError)):
                log.error("following the team server failed", exc_info=problem)
            elif problem is not None:
                log.info("the team server is unreachable: %s", problem)
            if problem is None:
                continue  # "resync": reload and connect again at once
            self._set_state(ConnectionState.OFFLINE)
            await _wait(self._reconnect, backoff.next())

    async def _stream(self, token: str, backoff: _Backoff) -> None:
        """One connection: the snapshot if needed, then events until it ends."""
        if self._cursor is None or self._resnapshot:
            await self._bootstrap()
        async for event in events(
            self._client.base_url,
            token,
            after=self._cursor,
            cafile=self._client.cafile,
            pin_sha256=self._client.pin_sha256,  # a self-signed server the person trusted
        ):
            kind = event.get("type")
            if kind == _RESYNC:
                # Too far behind for the events the server keeps: reload, then go on.
                log.info(
                    "the team server asks for a fresh copy (position %s)", event.get("position")
                )
                self._resnapshot = True
                return
            if kind == _READY:
                backoff.reset()
            await self._inbox.put(event)

    async def _bootstrap(self) -> None:
        snap: Snapshot = decode(Snapshot, await self._client.call("GET", path("sync", "snapshot")))
        if snap.person_id != self._person_id:
            raise AuthenticationError("this session belongs to another person: sign in again")
        await self._service.db.write(load_snapshot, snap, now=self._clock.now())
        self._cursor = snap.position
        self._resnapshot = False
        self._moved()

    async def _apply(self) -> None:
        """Apply what the stream brought, in batches (a catch-up applies many at once)."""
        await self._service.opened()
        while True:
            batch = [await self._inbox.get()]
            while not self._inbox.empty() and len(batch) < BATCH_MAX:
                batch.append(self._inbox.get_nowait())
            try:
                await self._apply_batch(batch)
            except Exception:
                log.exception("applying the team server's events failed; reloading")
                self._resnapshot = True
                self._reconnect.set()
            finally:
                for _ in batch:
                    self._inbox.task_done()

    async def _apply_batch(self, batch: list[Mapping[str, Any]]) -> None:
        events_ = [e for e in batch if e.get("type") != _READY]
        ready = [e for e in batch if e.get("type") == _READY]
        if events_:
            applied = await self._service.db.write(
                apply_events, events_, person_id=self._person_id, now=self._clock.now()
            )
            if applied.me_changed:
                await self._refresh_settings()
            last = events_[-1].get("position")
            if isinstance(last, int):
                self._cursor = max(self._cursor or 0, last)
        if ready:
            position = int(ready[-1]["position"])
            if self._cursor is None or position > self._cursor:
                await self._service.db.write(
                    apply_events, ready, person_id=self._person_id, now=self._clock.now()
                )
                self._cursor = position
            self._set_state(ConnectionState.ONLINE)
            self._push.set()  # what waited for the server goes now
        self._moved()

    async def _refresh_settings(self) -> None:
        """The person's own row changed on the server (another desktop of theirs, say): its
        notification settings, which events do not carry, are read once."""
        me = await self._service.person_by_id(self._person_id)
        try:
            found: PersonInfo = decode(
                PersonInfo, await self._client.call("GET", path("people", me.email))
            )
        except (ConnectionError, DeskbellError) as exc:
            log.info("could not read this person's settings from the server: %s", exc)
            return
        await self._service.db.write(
            set_own_settings,
            person_id=self._person_id,
            settings=found.settings,
            now=self._clock.now(),
        )

    # --- out: the queued writes ------------------------------------------------------------

    async def _pusher(self) -> None:
        await self._service.opened()
        backoff = _Backoff()
        while True:
            try:
                await self._push_next(backoff)
            except StoreError as exc:  # the replica's own file (busy, full): try again later
                log.warning("the team writes' queue could not be read or updated: %s", exc)
                await _wait(self._push, backoff.next())

    async def _push_next(self, backoff: _Backoff) -> None:
        """Send the oldest queued write, or wait until there is one to send."""
        self._push.clear()
        write = await self._service.db.read(queue.next_write)
        if write is None:
            self._moved()
            await _wait(self._push, None)
            return
        if self._state is ConnectionState.SIGNED_OUT:
            await _wait(self._push, None)
            return
        try:
            await self._send(write)
        except AuthenticationError as exc:
            log.warning("the team server refused this desktop's session: %s", exc)
            self._set_state(ConnectionState.SIGNED_OUT)
            return
        except REFUSED as exc:
            log.warning("the team server refused a %s; it is undone here: %s", write.kind, exc)
            await self._service.db.write(undo, write, now=self._clock.now())
            if write.kind != queue.POST:
                self._resnapshot = True  # the server's copy puts the replica right
                self._reconnect.set()
            return
        except (ConnectionError, DeskbellError, OSError) as exc:
            log.info("a %s waits for the team server: %s", write.kind, exc)
            await _wait(self._push, backoff.next())
            return
        backoff.reset()
        await self._service.db.write(queue.done, write.id)

    async def _send(self, write: queue.QueuedWrite) -> None:
        data, call = write.payload, self._client.call
        if write.kind == queue.POST:
            await call(
                "POST",
                path("conversations", data["conversation_id"], "messages"),
                json_body={"text": data["text"], "client_id": write.client_id},
            )
        elif write.kind == queue.SEEN:
            await call("POST", path("seen"), json_body={"message_ids": data["message_ids"]})
        elif write.kind == queue.FOLLOW:
            method = "PUT" if data["on"] else "DELETE"
            await call(method, path("items", data["number"], "followers", data["email"]))
        elif write.kind == queue.SETTINGS:
            await call(
                "PUT", path("people", data["email"], "notifications"), json_body=data["settings"]
            )
        else:
            raise InputError(f"a queued write of an unknown kind: {write.kind}")
