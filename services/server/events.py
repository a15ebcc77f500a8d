"""`GET /api/v1/events?after=N`: the event stream (T1, R2), a WebSocket of typed events.

After the handshake (the Bearer token, checked like any call) the server sends every change
past position N the caller may see, then `{"type": "ready", "position": P}`, then each change
as it commits, in position order: `{"type": <kind>, "position": n, ...}`. A client keeps the
last position it received and reconnects with it: it gets every change once, no gap. Without
`after` the stream starts at the newest change (the client has just read everything).

- Too old a cursor (past what the change feed keeps, services/events.py KEEP), or one this
  server never handed out: `{"type": "resync", "position": P}`; the client reloads what it
  shows and the stream carries on after P.
- A slow client: each stream queues at most QUEUE_MAX events, QUEUE_MAX_CHARS of text. When
  a client falls that far behind, its queue is dropped and it gets a resync at the newest
  position instead, then the changes after it: the server's memory stays bounded whatever
  the client does, and a client that reads nothing at all is closed by the heartbeat.
- A session that ends (signing out, an administrator ending it, a new password) closes its
  streams at once with code 4401, in every server process: the end is a change
  (ChangeKind.SESSION) that each process's feed reads, and each stream of that person checks
  its own session.

One hub per application reads each batch of changes once (services/event_reads.py), turns
each into what every kind of viewer may see (services/event_views.py) and hands each stream
its part, encoded once per distinct payload.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import replace
from typing import Annotated, Final

from aiohttp import WSCloseCode, WSMsgType, web

from services.accounts import SignedIn
from services.api import Service
from services.errors import AuthenticationError, InputError, StoreError
from services.event_reads import catch_up, describe
from services.event_views import Payload, TypedEvent, visible
from services.events import kept_window
from services.server.auth import Access, bearer_token
from services.server.codec import Bounds
from services.server.endpoints import Call, Endpoints
from services.server.keys import SERVICE
from services.views import ChangeEvent, ChangeKind

__all__ = [
    "CLOSE_SESSION_ENDED",
    "QUEUE_MAX",
    "EventHub",
    "routes",
    "run_stream",
    "setup",
]

log = logging.getLogger(__name__)

QUEUE_MAX: Final = 2_000  # events waiting for one client before it is told to resync
QUEUE_MAX_CHARS: Final = 8_000_000  # or this much text (a message may be long)
CLOSE_SESSION_ENDED: Final = 4401  # the session ended: sign in again
MAX_POSITION: Final = 2**63 - 1  # positions are BIGINT
HEARTBEAT_S: Final = 30.0  # a client that answers no ping within half of this is closed

api = Endpoints()
routes = api.routes


def encode(payload: Payload) -> str:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))


def _marker(kind: str, position: int) -> str:
    return encode({"type": kind, "position": position})


class Stream:
    """One client's stream: what waits to be sent to it, bounded, and how it ends."""

    def __init__(self, ws: web.WebSocketResponse, caller: SignedIn, token: str) -> None:
        self.ws = ws
        self.who = caller
        self.token = token
        self._queue: deque[tuple[int, str]] = deque()
        self._queued_chars = 0
        self._resync_at: int | None = None
        self._floor = -1  # live events at or below were sent while catching up
        self._ending: tuple[int, str] | None = None
        self._wake = asyncio.Event()

    def push(self, position: int, text: str) -> None:
        if position <= self._floor:
            return
        if len(self._queue) >= QUEUE_MAX or self._queued_chars + len(text) > QUEUE_MAX_CHARS:
            self.lost(position)
            return
        self._queue.append((position, text))
        self._queued_chars += len(text)
        self._wake.set()

    def lost(self, position: int) -> None:
        """Events up to `position` will not reach this client: it resyncs there."""
        if position <= self._floor:
            return  # caught up past it already
        self._queue.clear()
        self._queued_chars = 0
        self._resync_at = position
        self._wake.set()

    @property
    def ending(self) -> bool:
        return self._ending is not None

    def end(self, code: int, why: str) -> None:
        if self._ending is None:
            self._ending = (code, why)
            self._wake.set()

    def caught_up(self, position: int) -> None:
        """Catching up reached `position`: what the hub queued meanwhile up to it was sent."""
        self._floor = position
        while self._queue and self._queue[0][0] <= position:
            self._queued_chars -= len(self._queue.popleft()[1])
        if self._resync_at is not None and self._resync_at <= position:
            self._resync_at = None

    async def send_live(self) -> None:
        """Send what the hub queues until the stream ends."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._ending is None and (self._queue or self._resync_at is not None):
                if self._resync_at is not None:
                    position, self._resync_at = self._resync_at, None
                    await self.ws.send_str(_marker("resync", position))
                    continue
                _position, text = self._queue.popleft()
                self._queued_chars -= len(text)
                await self.ws.send_str(text)
            if self._ending is not None:
                code, why = self._ending
                await self.ws.close(code=code, message=why.encode())
                return


class EventHub:
    """Reads each batch of changes once and hands every open stream what it may see."""

    def __init__(self, service: Service) -> None:
        self._service = service
        self._streams: set[Stream] = set()
        self._batches: asyncio.Queue[Sequence[ChangeEvent]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._checks: set[asyncio.Task[None]] = set()
        self._unsubscribe: Callable[[], None] | None = None

    @property
    def streams(self) -> int:
        return len(self._streams)

    def start(self) -> None:
        self._unsubscribe = self._service.subscribe(self._batches.put_nowait)
        self._task = asyncio.get_running_loop().create_task(self._run(), name="deskbell-event-hub")

    async def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        for task in (self._task, *self._checks):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._task = None

    def close_all(self, code: int, why: str) -> None:
        for stream in self._streams:
            stream.end(code, why)

    def add(self, stream: Stream) -> None:
        self._streams.add(stream)

    def remove(self, stream: Stream) -> None:
        self._streams.discard(stream)

    async def _run(self) -> None:
        while True:
            batch = list(await self._batches.get())
            while not self._batches.empty():  # what arrived while the last batch was read
                batch.extend(self._batches.get_nowait())
            if not self._streams:
                continue
            try:
                described = await self._service.db.read(describe, batch)
            except Exception as exc:
                if not isinstance(exc, StoreError):
                    log.exception("describing changes for the event stream failed")
                for stream in self._streams:
                    stream.lost(batch[-1].position)
                continue
            self.fan_out(described)

    def fan_out(self, events: Sequence[TypedEvent]) -> None:
        for event in events:
            texts: dict[int, str] = {}
            for stream in self._streams:
                self.check(stream, event)
                payload = visible(event, stream.who)
                if payload is None:
                    continue
                text = texts.get(id(payload))
                if text is None:
                    text = texts[id(payload)] = encode(payload)
                stream.push(event.position, text)

    def check(self, stream: Stream, event: TypedEvent) -> None:
        """A change about the stream's own person: is its session still live, and who is it
        now (an administrator no longer, say)?"""
        if event.about != stream.who.person_id:
            return
        if event.kind is ChangeKind.SESSION and event.subject_id == stream.who.session_id:
            stream.end(CLOSE_SESSION_ENDED, "the session has ended")
        elif event.kind in (ChangeKind.SESSION, ChangeKind.PERSON):
            task = asyncio.get_running_loop().create_task(self._recheck(stream))
            self._checks.add(task)
            task.add_done_callback(self._checks.discard)

    async def _recheck(self, stream: Stream) -> None:
        try:
            now = await self._service.authenticate(stream.token)
        except AuthenticationError:
            stream.end(CLOSE_SESSION_ENDED, "the session has ended")
        except StoreError as exc:
            log.warning("could not check an event stream's session: %s", exc)
        else:
            stream.who = replace(stream.who, is_admin=now.is_admin, name=now.name)


HUB: Final = web.AppKey("events_hub", EventHub)


async def _catch_up(service: Service, hub: EventHub, stream: Stream, after: int | None) -> None:
    """Everything past `after` the caller may see, then "ready" (or "resync")."""
    oldest, last = await service.db.read(kept_window)
    ws = stream.ws
    if after is None:
        after = last
    # Positions have no gaps: a cursor is too old when the change right after it is gone.
    too_old = after < last and (oldest is None or oldest > after + 1)
    if after > last or too_old:
        await ws.send_str(_marker("resync", last))
    else:
        position = after
        while position < last:
            page = await service.db.read(catch_up, after=position, until=last)
            for event in page.events:
                hub.check(stream, event)
                payload = visible(event, stream.who)
                if payload is not None:
                    await ws.send_str(encode(payload))
            position = page.reached
    stream.caught_up(last)
    await ws.send_str(_marker("ready", last))


@api(
    "GET",
    "/events",
    summary="The event stream: a WebSocket of typed events past a position (`after`)",
    access=Access.CUSTOMER,
    status=101,
)
async def events(
    call: Call, after: Annotated[int, Bounds(0, MAX_POSITION)] | None = None
) -> web.WebSocketResponse:
    """Every change past `after` the caller may see, then `ready`, then live changes; without
    `after`, from now. `resync` when `after` is older than the changes kept."""
    request, caller = call.request, call.who
    token = bearer_token(request)
    ws = web.WebSocketResponse(heartbeat=HEARTBEAT_S, max_msg_size=64 * 1024)
    if token is None or not ws.can_prepare(request).ok:
        raise InputError("this address is a WebSocket: connect with an Upgrade request")
    await ws.prepare(request)
    return await run_stream(request, ws, caller, token, after)


async def run_stream(
    request: web.Request, ws: web.WebSocketResponse, caller: SignedIn, token: str, after: int | None
) -> web.WebSocketResponse:
    """Serve a prepared WebSocket as `caller`'s event stream until either side closes (the
    API's stream, and the customer chat page's, which signs in with its cookie)."""
    service, hub = request.app[SERVICE], request.app[HUB]
    stream = Stream(ws, caller, token)
    hub.add(stream)  # before catching up: what commits meanwhile waits in the stream's queue

    async def send() -> None:
        try:
            await _catch_up(service, hub, stream, after)
            await stream.send_live()
        except StoreError as exc:
            log.warning("an event stream stopped: %s", exc)
            await ws.close(code=WSCloseCode.TRY_AGAIN_LATER, message=b"the database is busy")
        except ConnectionError:
            pass  # the client went away mid-send
        except Exception:
            log.exception("an event stream failed")
            await ws.close(code=WSCloseCode.INTERNAL_ERROR, message=b"internal error")

    sender = asyncio.get_running_loop().create_task(send())
    try:
        async for message in ws:  # the client says nothing; this answers pings and closes
            if message.type is WSMsgType.ERROR:
                break
    finally:
        hub.remove(stream)
        # A close the server began ends its own handshake (the client's reply ends the loop
        # above first); otherwise the client left and nothing more is sent.
        if not sender.done() and not stream.ending:
            sender.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sender
    return ws


async def _hub(app: web.Application) -> AsyncIterator[None]:
    hub = app[HUB] = EventHub(app[SERVICE])
    hub.start()
    yield
    await hub.stop()


async def _going_away(app: web.Application) -> None:
    app[HUB].close_all(WSCloseCode.GOING_AWAY, "the server is stopping")


def setup(app: web.Application) -> None:
    """Give the server's application the event streams' hub (after its SERVICE is set)."""
    app.cleanup_ctx.append(_hub)
    app.on_shutdown.append(_going_away)
