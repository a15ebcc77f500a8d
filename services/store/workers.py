"""Threads that each own one database connection, and the one hop from the event loop to them.

A unit of work is handed to a thread as one job and its result comes back as one
`call_soon_threadsafe`: one hop per transaction, whatever the number of statements. Jobs wait
in one FIFO queue per pool; each thread opens its connection at its first job and keeps it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Connection

__all__ = ["ConnectionSlot", "WorkerPool"]

log = logging.getLogger(__name__)

T = TypeVar("T")


class ConnectionSlot:
    """The connection of one worker thread: opened on first use, replaced after it died."""

    __slots__ = ("_conn", "_connect", "_on_close", "_on_open")

    def __init__(
        self,
        connect: Callable[[], Connection],
        on_open: Callable[[Connection], None],
        on_close: Callable[[Connection], None],
    ) -> None:
        self._connect = connect
        self._on_open = on_open
        self._on_close = on_close
        self._conn: Connection | None = None

    def get(self) -> Connection:
        if self._conn is None:
            conn = self._connect()
            self._on_open(conn)
            self._conn = conn
        return self._conn

    @property
    def current(self) -> Connection | None:
        """The open connection, or None (never opens one)."""
        return self._conn

    def driver(self) -> Any:
        """The driver's own connection (sqlite3 or psycopg) under `get()`."""
        return self.get().connection.driver_connection

    def discard(self) -> None:
        """Drop a dead (or suspect) connection; the next `get()` opens a new one."""
        conn, self._conn = self._conn, None
        if conn is not None:
            self._on_close(conn)
            with contextlib.suppress(Exception):
                conn.invalidate()
            with contextlib.suppress(Exception):
                conn.close()

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            self._on_close(conn)
            with contextlib.suppress(Exception):
                conn.close()


@dataclass(slots=True)
class _Job(Generic[T]):
    fn: Callable[[ConnectionSlot], T]
    future: asyncio.Future[T]
    loop: asyncio.AbstractEventLoop


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.cancelled():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


class WorkerPool:
    """`size` daemon threads sharing one FIFO job queue, each with its own `ConnectionSlot`.

    With `size=1` jobs run strictly in submission order (SQLite's writer).
    """

    def __init__(
        self,
        name: str,
        size: int,
        *,
        connect: Callable[[], Connection],
        on_open: Callable[[Connection], None],
        on_close: Callable[[Connection], None],
    ) -> None:
        if size < 1:
            raise ValueError("a worker pool needs at least one thread")
        self._queue: queue.SimpleQueue[_Job[Any] | None] = queue.SimpleQueue()
        self._threads = [
            threading.Thread(
                target=self._serve,
                args=(ConnectionSlot(connect, on_open, on_close),),
                name=f"deskbell-db-{name}-{i}",
                daemon=True,
            )
            for i in range(size)
        ]
        for thread in self._threads:
            thread.start()

    def submit(self, fn: Callable[[ConnectionSlot], T]) -> asyncio.Future[T]:
        """Queue `fn(slot)` for a thread of this pool; await the returned future for its result.

        Cancelling the future before a thread takes the job skips it; once running, the job
        finishes (or rolls back) and its result is dropped.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put(_Job(fn, future, loop))
        return future

    def _serve(self, slot: ConnectionSlot) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                break
            if job.future.cancelled():
                continue
            result: Any = None
            error: BaseException | None = None
            try:
                result = job.fn(slot)
            except BaseException as exc:
                error = exc
            try:
                job.loop.call_soon_threadsafe(_settle, job.future, result, error)
            except RuntimeError:  # the loop is closed: nobody waits any more
                log.debug("result of a database job dropped: its event loop is closed")
            del job, result, error
        slot.close()

    async def close(self) -> None:
        """Let queued jobs finish, then close every connection and end the threads."""
        for _ in self._threads:
            self._queue.put(None)
        await asyncio.to_thread(self._join)

    def _join(self) -> None:
        for thread in self._threads:
            thread.join()
