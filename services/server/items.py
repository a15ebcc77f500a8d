"""Items over HTTP: tickets, their followers, status and assignee, and their two
conversations (users only: a customer's chat reaches its conversations, not the items). The
author, the one who acts and the one who has seen is always the caller."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from services.domain.model import ConversationKind
from services.server.endpoints import Call, ClientId, Endpoints, Id
from services.views import Changes, ItemInfo, ItemMessage, PostResult

__all__ = ["routes"]

api = Endpoints()
routes = api.routes


@dataclass(frozen=True, slots=True)
class NewItem:
    title: str
    followers: tuple[str, ...] = ()
    requester: str | None = None


@dataclass(frozen=True, slots=True)
class StatusForm:
    status: str


@dataclass(frozen=True, slots=True)
class AssigneeForm:
    email: str | None


@dataclass(frozen=True, slots=True)
class ItemPost:
    kind: Literal["internal", "external"]
    text: str
    client_id: ClientId | None = None  # T5: sent again, the post is made once


@api("GET", "/items", summary="Every item")
async def items(call: Call) -> list[ItemInfo]:
    return await call.service.items()


@api("POST", "/items", summary="Create an item", status=201)
async def create_item(call: Call, body: NewItem) -> ItemInfo:
    return await call.service.create_item(
        title=body.title, followers=body.followers, requester=body.requester
    )


@api("GET", "/items/{number}", summary="One item")
async def item(call: Call, number: Id) -> ItemInfo:
    return await call.service.item(number)


@api("GET", "/items/{number}/messages", summary="Every message of an item, both conversations")
async def item_messages(call: Call, number: Id) -> list[ItemMessage]:
    found = await call.service.item_messages(number)
    return [ItemMessage(conversation=kind, message=row) for kind, row in found]


@api("PUT", "/items/{number}/followers/{email}", summary="Add a follower")
async def follow(call: Call, number: Id, email: str) -> Changes:
    return await call.service.follow(number=number, email=email)


@api("DELETE", "/items/{number}/followers/{email}", summary="Remove a follower")
async def unfollow(call: Call, number: Id, email: str) -> Changes:
    return await call.service.unfollow(number=number, email=email)


@api("PUT", "/items/{number}/status", summary="Change an item's status")
async def set_status(call: Call, number: Id, body: StatusForm) -> ItemInfo:
    return await call.service.set_item_status(
        number=number, status=body.status, acting=call.who.email
    )


@api("POST", "/items/{number}/close", summary="Close an item")
async def close_item(call: Call, number: Id) -> ItemInfo:
    return await call.service.close_item(number=number, acting=call.who.email)


@api("PUT", "/items/{number}/assignee", summary="Assign an item to a user, or unassign it")
async def assign(call: Call, number: Id, body: AssigneeForm) -> ItemInfo:
    return await call.service.assign_item(number=number, email=body.email)


@api("POST", "/items/{number}/messages", summary="Post in an item's conversation", status=201)
async def post(call: Call, number: Id, body: ItemPost) -> PostResult:
    return await call.service.post(
        author=call.who.email,
        text=body.text,
        item_number=number,
        kind=ConversationKind(body.kind),
        client_id=body.client_id,
    )


@api("POST", "/items/{number}/seen", summary="Mark everything of an item seen")
async def seen(call: Call, number: Id) -> Changes:
    return await call.service.mark_item_seen(number=number, email=call.who.email)
