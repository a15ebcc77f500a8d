"""The one bridge from the service's change feed to typed Qt signals (STYLE.md).

The feed says *that* something changed (kind, conversation); the bridge fetches *what* changed
through `services.api` and emits dataclasses: the counts (N3), the conversations whose rows or
messages changed (N2, E10), each new message for the signed-in user (N1), and their own settings.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

from PySide6.QtCore import QObject, Signal

from services.api import (
    ChangeEvent,
    ChangeKind,
    Inbox,
    MessageRow,
    PersonInfo,
    Service,
    UnseenCounts,
)
from ui.tasks import Tasks

__all__ = ["ServiceBridge"]

log = logging.getLogger(__name__)

_ROW_KINDS = frozenset({"message", "seen", "email", "follow", "item", "automation"})


class ServiceBridge(QObject):
    """Subscribes to `service` for the user `me` and re-emits what changed as Qt signals."""

    counts_changed = Signal(UnseenCounts)
    conversations_changed = Signal(frozenset)  # conversation ids whose rows/messages changed
    message_arrived = Signal(MessageRow)  # a new message for `me`, written by someone else
    me_changed = Signal(PersonInfo)  # my settings (sound, in-app, do not disturb)
    people_changed = Signal()

    def __init__(
        self, *, service: Service, me: PersonInfo, tasks: Tasks, parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self.service = service
        self.me = me
        self.counts = UnseenCounts()
        self._tasks = tasks
        self._lock = asyncio.Lock()
        self._floor = 0  # every message id above this one is news, once
        self._announced: set[int] = set()
        self._unsubscribe: Callable[[], None] | None = None

    async def start(self) -> None:
        """Read the counts and the newest message id, then listen."""
        self._floor = await self._newest_message_id()
        self.counts = await self.service.unseen_counts(person_id=self.me.id)
        self._unsubscribe = self.service.subscribe(self._on_service_changes)
        self.counts_changed.emit(self.counts)

    def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    async def _newest_message_id(self) -> int:
        newest = 0
        for inbox in (Inbox.INTERNAL, Inbox.EXTERNAL):
            top = await self.service.open_conversations(person_id=self.me.id, inbox=inbox, limit=1)
            if top:
                last = await self.service.messages(
                    conversation_id=top[0].id, viewer_id=self.me.id, limit=1
                )
                newest = max([newest, *(m.id for m in last)])
        return newest

    def _on_service_changes(self, events: Sequence[ChangeEvent]) -> None:
        self._tasks.start(self.apply(events), name="bridge-apply")

    async def apply(self, events: Sequence[ChangeEvent]) -> None:
        """Fetch and emit what `events` changed; batches are applied one at a time, in order."""
        async with self._lock:
            kinds = {e.kind for e in events}
            touched = frozenset(
                e.conversation_id
                for e in events
                if e.conversation_id is not None and e.kind in _ROW_KINDS
            )
            if "person" in kinds or "settings" in kinds:
                if any(e.person_id in (None, self.me.id) for e in events if e.kind == "person"):
                    self.me = await self.service.person_by_id(self.me.id)
                    self.me_changed.emit(self.me)
                self.people_changed.emit()
            if touched or kinds & {
                ChangeKind.FOLLOW,
                ChangeKind.ITEM,
                ChangeKind.MESSAGE,
                ChangeKind.SEEN,
            }:
                self.counts = await self.service.unseen_counts(person_id=self.me.id)
                self.counts_changed.emit(self.counts)
            if touched:
                self.conversations_changed.emit(touched)
            for conv_id in sorted(
                {e.conversation_id for e in events if e.kind == "message" and e.conversation_id}
            ):
                await self._announce_new(conv_id)

    async def _announce_new(self, conversation_id: int) -> None:
        rows = await self.service.messages(
            conversation_id=conversation_id, viewer_id=self.me.id, limit=50
        )
        for row in rows:
            if row.id <= self._floor or row.id in self._announced:
                continue
            self._announced.add(row.id)
            if row.unseen_by_viewer and (row.author is None or row.author.id != self.me.id):
                self.message_arrived.emit(row)
        if len(self._announced) > 5000:  # only recent ids can come back; keep the set small
            self._floor = max(self._announced) - 1000
            self._announced = {i for i in self._announced if i > self._floor}
