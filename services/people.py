"""People, as units of work: add one, read them, change their notification settings (R5, N6, M7).

A person is always read as one typed snapshot (`PersonInfo` with its `NotificationSettings`,
services/store/queries.py). The workspace's default delay comes in as an argument: a person
whose delay is unset follows it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, func, insert, select, update

from services.conversations import MAX_NAME_CHARS, clean_line
from services.domain.headers import normalize_address
from services.domain.model import NotificationSettings, PersonKind
from services.domain.schedule import check_dnd_window
from services.errors import InputError, NotFoundError, PermissionDeniedError
from services.store import queries
from services.store.changes import record_change
from services.store.database import Tx
from services.store.models import Person
from services.store.prepared import Prepared
from services.views import ChangeKind, PersonInfo

__all__ = ["add_person", "people", "set_notification_settings"]

_EXISTS = Prepared[tuple[int]](select(Person.id).where(Person.email == bindparam("email")))
_USERS = Prepared[tuple[int]](
    select(func.count()).select_from(Person).where(Person.kind == PersonKind.USER.value)
)
_INSERT = Prepared[tuple[int]](insert(Person).returning(Person.id))


def add_person(
    tx: Tx,
    *,
    email: str,
    name: str,
    kind: PersonKind,
    now: datetime,
    default_delay_s: int,
    is_admin: bool | None = None,
) -> PersonInfo:
    address = normalize_address(email)
    clean_name = clean_line(name, field="name", limit=MAX_NAME_CHARS)
    if tx.run(_EXISTS, {"email": address}):
        raise InputError(f"{address} already exists")
    if is_admin is None:
        # The first user of a workspace administers it.
        is_admin = kind is PersonKind.USER and tx.run(_USERS)[0][0] == 0
    ((person_id,),) = tx.run(
        _INSERT,
        {
            "email": address,
            "name": clean_name,
            "kind": kind.value,
            "is_admin": is_admin,
            "created_at": now,
            "dnd_weekly": [],
        },
    )
    record_change(tx, kind=ChangeKind.PERSON, at=now, person_id=person_id)
    return queries.person_by_id(tx, person_id, default_delay_s=default_delay_s)


def people(tx: Tx, *, kind: PersonKind | None, default_delay_s: int) -> list[PersonInfo]:
    stmt = select(*queries.PERSON_COLUMNS).order_by(Person.name, Person.id)
    if kind is not None:
        stmt = stmt.where(Person.kind == kind.value)
    return [
        queries.person_info_from_row(row, default_delay_s=default_delay_s)
        for row in tx.conn.execute(stmt)
    ]


_SET_SETTINGS = Prepared(
    update(Person)
    .where(Person.id == bindparam("b_id"))
    .values(
        notify_in_app=bindparam("b_in_app"),
        notify_email=bindparam("b_email"),
        notify_sound=bindparam("b_sound"),
        delay_s=bindparam("b_delay"),
        dnd_until=bindparam("b_dnd_until"),
        dnd_weekly=bindparam("b_dnd_weekly", type_=Person.dnd_weekly.type),
    )
)


def check_settings(settings: NotificationSettings) -> list[list[int]]:
    """Refuse settings that could never work; the weekly windows as stored."""
    if settings.delay_s is not None and settings.delay_s < 1:
        raise InputError("the delay must be at least one second")
    return [list(check_dnd_window(w)) for w in settings.dnd_weekly]


def set_notification_settings(
    tx: Tx,
    *,
    person_id: int,
    settings: NotificationSettings,
    acting_id: int | None,
    now: datetime,
    default_delay_s: int,
) -> PersonInfo:
    """R5, N6, M7: for oneself, or for another by an administrator."""
    windows = check_settings(settings)
    queries.person_by_id(tx, person_id, default_delay_s=default_delay_s)  # it exists
    if acting_id is not None and acting_id != person_id:
        try:
            actor = queries.person_by_id(tx, acting_id, default_delay_s=default_delay_s)
        except NotFoundError:
            actor = None
        if actor is None or not actor.is_admin:
            raise PermissionDeniedError("only an administrator may change another's settings")
    tx.run(
        _SET_SETTINGS,
        {
            "b_id": person_id,
            "b_in_app": settings.in_app,
            "b_email": settings.email,
            "b_sound": settings.sound,
            "b_delay": queries.stored_delay(settings.delay_s),
            "b_dnd_until": settings.dnd_until,
            "b_dnd_weekly": windows,
        },
    )
    record_change(tx, kind=ChangeKind.PERSON, at=now, person_id=person_id)
    return queries.person_by_id(tx, person_id, default_delay_s=default_delay_s)
