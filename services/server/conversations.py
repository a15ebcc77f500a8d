"""Conversations over HTTP: what the desktop's window reads and writes, and all a customer's
chat may call (R2, T4). Every read is the caller's own view: the service filters what a
customer may see (their own external conversations; nothing internal, not even a count), and
a conversation they may not see answers as a missing one would."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from services.server.auth import Access
from services.server.codec import Bounds
from services.server.endpoints import MAX_ID, Call, ClientId, Endpoints, Id, Offset, Page
from services.views import (
    Changes,
    ConversationInfo,
    ConversationRow,
    Inbox,
    MessageRow,
    PostResult,
    UnseenCounts,
)

__all__ = ["MAX_SEEN_IDS", "routes"]

api = Endpoints()
routes = api.routes

MAX_SEEN_IDS = 5000  # one call marks at most this many messages seen


@dataclass(frozen=True, slots=True)
class MessageForm:
    text: str
    client_id: ClientId | None = None  # T5: sent again, the post is made once


@dataclass(frozen=True, slots=True)
class SeenForm:
    message_ids: Annotated[tuple[Id, ...], Bounds(0, MAX_SEEN_IDS)]


@api("GET", "/conversations", summary="The caller's open conversations", access=Access.CUSTOMER)
async def open_conversations(
    call: Call,
    inbox: Literal["internal", "external"] = "internal",
    limit: Page = 200,
    offset: Offset = 0,
    ids: list[Id] | None = None,
) -> list[ConversationRow]:
    """Most recent activity first; `ids` (repeated) reads just those rows."""
    return await call.service.open_conversations(
        person_id=call.who.person_id,
        inbox=Inbox.EXTERNAL if inbox == "external" else Inbox.INTERNAL,
        limit=limit,
        offset=offset,
        conversation_ids=ids or None,
    )


@api(
    "GET",
    "/conversations/search",
    summary="The caller's conversations by item number or title words",
    access=Access.CUSTOMER,
)
async def find_conversations(call: Call, text: str, limit: Page = 20) -> list[ConversationRow]:
    return await call.service.find_conversations(
        person_id=call.who.person_id, text=text, limit=limit
    )


@api("GET", "/conversations/{conversation_id}", summary="One conversation", access=Access.CUSTOMER)
async def conversation(call: Call, conversation_id: Id) -> ConversationInfo:
    return await call.service.conversation(conversation_id, viewer_id=call.who.person_id)


@api(
    "GET",
    "/conversations/{conversation_id}/messages",
    summary="A page of a conversation's messages, oldest first",
    access=Access.CUSTOMER,
)
async def messages(
    call: Call,
    conversation_id: Id,
    before: Annotated[int, Bounds(1, MAX_ID)] | None = None,
    limit: Page = 200,
) -> list[MessageRow]:
    """`before`: the messages older than that message id (the previous page)."""
    return await call.service.messages(
        conversation_id=conversation_id,
        viewer_id=call.who.person_id,
        before_id=before,
        limit=limit,
    )


@api(
    "POST",
    "/conversations/{conversation_id}/messages",
    summary="Post in a conversation as the caller",
    access=Access.CUSTOMER,
    status=201,
)
async def post(call: Call, conversation_id: Id, body: MessageForm) -> PostResult:
    return await call.service.post(
        author=call.who.email,
        text=body.text,
        conversation_id=conversation_id,
        client_id=body.client_id,
    )


@api("POST", "/seen", summary="The caller has seen these messages", access=Access.CUSTOMER)
async def mark_seen(call: Call, body: SeenForm) -> Changes:
    return await call.service.mark_seen(person_id=call.who.person_id, message_ids=body.message_ids)


@api("GET", "/unseen-counts", summary="The caller's unseen counts", access=Access.CUSTOMER)
async def unseen_counts(call: Call) -> UnseenCounts:
    return await call.service.unseen_counts(person_id=call.who.person_id)


@api("DELETE", "/messages/{message_id}", summary="Delete a message (the service says who may)")
async def delete_message(call: Call, message_id: Id) -> Changes:
    return await call.service.delete_message(message_id=message_id, acting=call.who.email)
