"""People over HTTP: the team and its customers, and each person's notification settings
(R5, N6, M7: one's own, or another's by an administrator, as the service decides)."""

from __future__ import annotations

from dataclasses import dataclass

from services.domain.model import NotificationSettings, PersonKind
from services.domain.schedule import DndChoice
from services.server.endpoints import Call, Endpoints
from services.views import PersonInfo

__all__ = ["routes"]

api = Endpoints()
routes = api.routes


@dataclass(frozen=True, slots=True)
class NewPerson:
    email: str
    name: str
    kind: PersonKind = PersonKind.CUSTOMER


@dataclass(frozen=True, slots=True)
class DoNotDisturb:
    choice: DndChoice | None


@api("GET", "/people", summary="The people, users or customers or both")
async def people(call: Call, kind: PersonKind | None = None) -> list[PersonInfo]:
    return await call.service.people(kind=kind)


@api("POST", "/people", summary="Add a customer (any user) or a user (an admin)", status=201)
async def add_person(call: Call, body: NewPerson) -> PersonInfo:
    """A user is added as by `POST /users` (an administrator only, with the welcome email)."""
    if body.kind is PersonKind.USER:
        new = await call.service.add_user(acting=call.who, email=body.email, name=body.name)
        return new.person
    return await call.service.add_person(email=body.email, name=body.name, kind=body.kind)


@api("GET", "/people/{email}", summary="One person")
async def person(call: Call, email: str) -> PersonInfo:
    return await call.service.person(email)


@api("PUT", "/people/{email}/notifications", summary="Notification settings (own, or an admin)")
async def set_notifications(call: Call, email: str, body: NotificationSettings) -> PersonInfo:
    target = await call.service.person(email)
    return await call.service.set_notification_settings(
        person_id=target.id, settings=body, acting_id=call.who.person_id
    )


@api("PUT", "/people/{email}/do-not-disturb", summary="Do not disturb (own, or an admin)")
async def set_do_not_disturb(call: Call, email: str, body: DoNotDisturb) -> PersonInfo:
    """For 30 minutes, an hour, until tomorrow morning, or null to end it now."""
    target = await call.service.person(email)
    return await call.service.set_do_not_disturb(
        person_id=target.id, choice=body.choice, acting_id=call.who.person_id
    )
