"""A team replica's own writes (T5): applied to the replica at once and, in the same
transaction, queued for the server in order (`team_writes`), each with an id of its own (a
uuid4) so that a write sent twice is applied once.

`Service` hands its post, mark-seen, follow and notification-settings calls here when it runs
as a replica (`Service.team`); the pusher (services/team/sync.py) sends the queue. A write the
server refuses is dropped and its local effect undone (`undo`).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, func, insert, select, update

from services import conversations, items, people
from services.domain.model import ConversationKind, NotificationSettings
from services.errors import PermissionDeniedError
from services.server.codec import plain
from services.store import queries
from services.store.changes import record_change
from services.store.database import Tx
from services.store.models import Conversation, Message, TeamWrite
from services.team.queue import FOLLOW, POST, SEEN, SETTINGS, QueuedWrite, done
from services.team.replica import PROVISIONAL_BASE, touch
from services.views import ChangeKind, Changes, ItemInfo, PersonInfo, PostResult

if TYPE_CHECKING:
    from services.api import Service

__all__ = ["ReplicaWrites", "undo"]


def _queue(tx: Tx, kind: str, payload: dict[str, Any], *, now: datetime, client_id: str) -> None:
    tx.conn.execute(
        insert(TeamWrite).values(client_id=client_id, kind=kind, payload=payload, created_at=now)
    )


def undo(tx: Tx, write: QueuedWrite, *, now: datetime) -> None:
    """The server refused `write`: it leaves the queue; a post's provisional message goes.
    (Other refused writes are put right by the snapshot the caller reloads next.)"""
    done(tx, write.id)
    if write.kind != POST:
        return
    found = tx.conn.execute(
        select(Message.id, Message.conversation_id).where(Message.client_id == write.client_id)
    ).first()
    if found is None or found[0] < PROVISIONAL_BASE:
        return
    message_id, conversation_id = found
    tx.conn.execute(delete(Message).where(Message.id == message_id))
    touch(tx, conversation_id)
    record_change(
        tx, kind=ChangeKind.MESSAGE, at=now, conversation_id=conversation_id, subject_id=message_id
    )


# --- the writes, applied locally ---------------------------------------------------------------


def _post(
    tx: Tx,
    *,
    person_id: int,
    author: str,
    text: str,
    conversation_id: int | None,
    item_number: int | None,
    kind: ConversationKind | None,
    now: datetime,
    client_id: str,
) -> PostResult:
    target = conversations.find_target(
        tx,
        author=author,
        default_delay_s=0,
        conversation_id=conversation_id,
        item_number=item_number,
        kind=kind,
    )
    if target.author.id != person_id:
        raise PermissionDeniedError("in a team, this desktop posts as its signed-in user only")
    body = conversations.clean_message_text(text)
    top = tx.conn.execute(select(func.max(Message.id))).scalar_one()
    message_id = max(PROVISIONAL_BASE, (top or 0) + 1)
    cid = target.conversation.id
    tx.conn.execute(
        insert(Message).values(
            id=message_id,
            conversation_id=cid,
            author_id=person_id,
            text=body,
            created_at=now,
            client_id=client_id,
        )
    )
    tx.conn.execute(
        update(Conversation)
        .where(Conversation.id == cid)
        .values(last_message_at=now, last_message_id=message_id)
    )
    record_change(tx, kind=ChangeKind.MESSAGE, at=now, conversation_id=cid, subject_id=message_id)
    _queue(tx, POST, {"conversation_id": cid, "text": body}, now=now, client_id=client_id)
    return PostResult(
        message_id=message_id,
        conversation_id=cid,
        recipients=(),  # the server decides them; its copy of the message brings them
        changes=Changes(conversations=frozenset({cid}), counts=True),
    )


def _seen(
    tx: Tx, *, person_id: int, message_ids: Sequence[int], now: datetime, client_id: str
) -> set[int]:
    convs = conversations.mark_seen(tx, person_id=person_id, message_ids=message_ids, at=now)
    sent = [m for m in message_ids if m < PROVISIONAL_BASE]
    if convs and sent:
        _queue(tx, SEEN, {"message_ids": sent}, now=now, client_id=client_id)
    return convs


def _follow(tx: Tx, *, number: int, email: str, on: bool, now: datetime, client_id: str) -> None:
    item_id = queries.item_id_by_number(tx, number)
    person = queries.person_by_email(tx, email, default_delay_s=0)
    if on:
        items.follow(tx, item_id=item_id, person_id=person.id, now=now)
    else:
        items.unfollow(tx, item_id=item_id, person_id=person.id, now=now)
    _queue(
        tx,
        FOLLOW,
        {"number": number, "email": person.email, "on": on},
        now=now,
        client_id=client_id,
    )


def _settings(
    tx: Tx,
    *,
    person_id: int,
    settings: NotificationSettings,
    now: datetime,
    default_delay_s: int,
    client_id: str,
) -> PersonInfo:
    person = people.set_notification_settings(
        tx,
        person_id=person_id,
        settings=settings,
        acting_id=None,
        now=now,
        default_delay_s=default_delay_s,
    )
    _queue(
        tx,
        SETTINGS,
        {"email": person.email, "settings": plain(settings)},
        now=now,
        client_id=client_id,
    )
    return person


class ReplicaWrites:
    """The writes of a replica's user, for `Service.team`. `queued()` is called after each
    write that queued something (the pusher wakes); `create_item` makes an item on the server
    (the authority for item numbers), online only."""

    def __init__(
        self,
        service: Service,
        *,
        person_id: int,
        queued: Callable[[], None],
        create_item: Callable[..., Awaitable[ItemInfo]],
    ) -> None:
        self._service = service
        self._person_id = person_id
        self._queued = queued
        self.create_item = create_item

    def _own(self, person_id: int, acting_id: int | None = None) -> None:
        if person_id != self._person_id or acting_id not in (None, self._person_id):
            raise PermissionDeniedError(
                "in a team, this desktop changes its signed-in user's own things only; "
                "administrators change others' on the server"
            )

    async def post(
        self,
        *,
        author: str,
        text: str,
        conversation_id: int | None,
        item_number: int | None,
        kind: ConversationKind | None,
    ) -> PostResult:
        result = await self._service.db.write(
            _post,
            person_id=self._person_id,
            author=author,
            text=text,
            conversation_id=conversation_id,
            item_number=item_number,
            kind=kind,
            now=self._service.clock.now(),
            client_id=str(uuid.uuid4()),
        )
        self._queued()
        return result

    async def mark_seen(self, *, person_id: int, message_ids: Sequence[int]) -> Changes:
        self._own(person_id)
        convs = await self._service.db.write(
            _seen,
            person_id=person_id,
            message_ids=list(message_ids),
            now=self._service.clock.now(),
            client_id=str(uuid.uuid4()),
        )
        if convs:
            self._queued()
        return Changes(conversations=frozenset(convs), counts=bool(convs))

    async def follow(self, *, number: int, email: str, on: bool) -> Changes:
        await self._service.db.write(
            _follow,
            number=number,
            email=email,
            on=on,
            now=self._service.clock.now(),
            client_id=str(uuid.uuid4()),
        )
        self._queued()
        return Changes(items=True)

    async def set_notification_settings(
        self, *, person_id: int, settings: NotificationSettings, acting_id: int | None
    ) -> PersonInfo:
        self._own(person_id, acting_id)
        person = await self._service.db.write(
            _settings,
            person_id=person_id,
            settings=settings,
            now=self._service.clock.now(),
            default_delay_s=int(self._service.config("unseen_delay_s")),
            client_id=str(uuid.uuid4()),
        )
        self._queued()
        return person
