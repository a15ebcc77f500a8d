"""The customer chat's pages and writes (C1, C3, S5): `/chat`, one conversation, the link
from an email, posting, starting a conversation, seen marks, signing out, the page's files
and its live stream (the widget's flow: widget.py; how answers look: answers.py).

Every read goes through the service as the customer (`viewer_id`/`person_id`), which shows a
customer only their own external conversations (R2): a conversation they may not see is
answered exactly as a missing one. Every write needs the session's CSRF token.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import logging
from datetime import datetime
from typing import Any, Final
from urllib.parse import urlsplit

from aiohttp import web

from services.chat import PRESENCE_BEAT
from services.domain.chat_links import read_chat_link
from services.domain.model import PersonKind
from services.errors import (
    AuthenticationError,
    DeskbellError,
    InputError,
    NotFoundError,
    PermissionDeniedError,
)
from services.events import kept_window
from services.server.chat.answers import (
    chat_enabled,
    closed_page,
    html_page,
    notice,
    page_settings,
    see_other,
)
from services.server.chat.assets import asset, render, theme_css
from services.server.chat.limits import LIMITS
from services.server.chat.session import (
    CSRF_FIELD,
    CSRF_HEADER,
    ChatSession,
    check_csrf,
    clear_cookie,
    current,
    set_cookie,
)
from services.server.endpoints import MAX_ID, client_address, read_json
from services.server.events import HEARTBEAT_S, MAX_POSITION, run_stream
from services.server.keys import SERVICE
from services.views import Inbox, MessageRow

__all__ = ["routes"]

log = logging.getLogger(__name__)

routes = web.RouteTableDef()

MAX_TEXT_CHARS: Final = 20_000  # a chat message; longer text is better sent by email
MAX_SEEN_IDS: Final = 500
PAGE_MESSAGES: Final = 200


# --- rendering ---------------------------------------------------------------------------------


@routes.get("/chat/logo")
async def logo(request: web.Request) -> web.StreamResponse:
    """The uploaded logo (a stored `data:` URL, checked to be a raster image when set)."""
    stored = request.app[SERVICE].config("chat.logo_url")
    if not stored.startswith("data:"):
        raise web.HTTPNotFound()
    media, _, encoded = stored[5:].partition(";base64,")
    body = base64.b64decode(encoded)
    etag = f'"{hashlib.sha256(stored.encode()).hexdigest()[:12]}"'
    response = web.Response(body=body, content_type=media)
    response.headers["ETag"] = etag
    # Versioned by the page's ?v=: a new logo is a new address.
    response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
    return response


def _when(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M UTC")


def _message(m: MessageRow, customer_id: int) -> dict[str, Any]:
    author = m.author
    return {
        "id": m.id,
        "author": author.name if author is not None else "Deskbell",
        "author_kind": "customer"
        if author is not None and author.kind is PersonKind.CUSTOMER
        else "user",
        "own": author is not None and author.id == customer_id,
        "text": m.text,
        "at": m.created_at.isoformat(),
        "when": _when(m.created_at),
        "seen": not m.unseen_by_viewer,
    }


async def _page(
    request: web.Request, session: ChatSession, conversation_id: int | None
) -> web.Response:
    service = request.app[SERVICE]
    me = session.who
    _oldest, position = await service.db.read(kept_window)  # before the reads: no gap
    rows = await service.open_conversations(
        person_id=me.person_id, inbox=Inbox.EXTERNAL, limit=200, offset=0
    )
    shown: dict[str, Any] | None = None
    messages: list[dict[str, Any]] = []
    if conversation_id is not None:
        info = await service.conversation(conversation_id, viewer_id=me.person_id)
        found = await service.messages(
            conversation_id=conversation_id,
            viewer_id=me.person_id,
            before_id=None,
            limit=PAGE_MESSAGES,
        )
        messages = [_message(m, me.person_id) for m in found]
        shown = {
            "id": info.id,
            "title": info.title or (f"#{info.item_number}" if info.item_number else "Conversation"),
            "answering": [p.name for p in info.members if p.kind is PersonKind.USER],
        }
    return html_page(
        render(
            "chat.html.j2",
            me=me,
            csrf=session.csrf,
            conversations=rows,
            current=shown,
            messages=messages,
            position=position,
            max_text=MAX_TEXT_CHARS,
            **page_settings(request),
        )
    )


# --- pages ---------------------------------------------------------------------------------------


@routes.get("/chat")
async def index(request: web.Request) -> web.StreamResponse:
    if not chat_enabled(request):
        return closed_page(request)
    session = await current(request)
    if session is None:
        return _how_to_get_in(request, status=200)
    return await _page(request, session, None)


def _how_to_get_in(request: web.Request, *, status: int) -> web.Response:
    return notice(
        request,
        "Open your conversation",
        "Use the link in the latest email from us to open your conversation here.",
        status=status,
        start_link=True,
    )


def _path_id(request: web.Request) -> int:
    text = request.match_info["conversation_id"]
    if not text.isascii() or not text.isdigit() or len(text) > 10 or not 1 <= int(text) <= MAX_ID:
        raise NotFoundError("no such conversation")
    return int(text)


@routes.get(r"/chat/c/{conversation_id}")
async def conversation(request: web.Request) -> web.StreamResponse:
    if not chat_enabled(request):
        return closed_page(request)
    session = await current(request)
    if session is None:
        return _how_to_get_in(request, status=401)
    try:
        return await _page(request, session, _path_id(request))
    except NotFoundError:
        return notice(
            request,
            "No such conversation",
            "This conversation does not exist or is not yours.",
            status=404,
        )


@routes.get("/chat/enter")
async def enter(request: web.Request) -> web.StreamResponse:
    """C1: the link from an email: a session cookie, then the conversation's clean URL."""
    if not chat_enabled(request):
        return closed_page(request)
    token = request.query.get("t", "")[:200]
    service = request.app[SERVICE]
    # The same browser opening its link again (a second tab, the back button) is already in:
    # the link is genuine and in time, and names the customer of this browser's session.
    link = read_chat_link(token, key=service.token_key, now=service.clock.now())
    session = await current(request)
    if link is not None and session is not None and session.who.person_id == link.person_id:
        return see_other(f"/chat/c/{link.conversation_id}")
    try:
        entered = await service.chat.enter(token, address=client_address(request))
    except AuthenticationError as exc:
        return notice(request, "This link cannot be used", str(exc).capitalize() + ".", status=403)
    response = see_other(f"/chat/c/{entered.conversation_id}")
    set_cookie(response, entered.session.token)
    return response


@routes.get("/chat/theme/{colour}.css")
async def theme(request: web.Request) -> web.StreamResponse:
    colour = "#" + request.match_info["colour"]
    if len(colour) != 7 or any(c not in "0123456789abcdef" for c in colour[1:]):
        raise web.HTTPNotFound()
    return _static(theme_css(colour), "text/css", etag=f'"{colour[1:]}"')


@routes.get("/chat/static/{name}")
async def static(request: web.Request) -> web.StreamResponse:
    found = asset(request.match_info["name"])
    if found is None:
        raise web.HTTPNotFound()
    return _static(found.body, found.content_type, etag=found.etag)


def _static(body: bytes, content_type: str, *, etag: str) -> web.Response:
    response = web.Response(body=body, content_type=content_type, charset="utf-8")
    response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
    response.headers["ETag"] = etag
    return response


# --- writes ----------------------------------------------------------------------------------


async def _writer(request: web.Request) -> tuple[ChatSession, dict[str, Any], bool]:
    """The session of a write, its fields (a form or JSON) and whether it is a form; refused
    without a session or without its CSRF token (C3)."""
    if not chat_enabled(request):
        raise PermissionDeniedError("the chat is closed")
    session = await current(request)
    if session is None:
        raise AuthenticationError("open the chat from the link in your email first")
    is_form = request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data")
    fields: dict[str, Any] = dict(await request.post()) if is_form else await read_json(request)
    given = request.headers.get(CSRF_HEADER) or (fields.get(CSRF_FIELD) if is_form else None)
    check_csrf(session, given if isinstance(given, str) else None)
    return session, fields, is_form


def _text_of(fields: dict[str, Any]) -> str:
    text = fields.get("text")
    if not isinstance(text, str) or not text.strip():
        raise InputError("write a message first")
    if len(text) > MAX_TEXT_CHARS:
        raise InputError(f"a message is at most {MAX_TEXT_CHARS} characters")
    return text


@routes.post(r"/chat/c/{conversation_id}/messages")
async def post(request: web.Request) -> web.StreamResponse:
    session, fields, is_form = await _writer(request)
    conversation_id = _path_id(request)
    text = _text_of(fields)
    service = request.app[SERVICE]
    request.app[LIMITS].posts.take(str(session.who.session_id), service.clock.now())
    # The service checks the customer may write here (their own external conversation).
    await service.conversation(conversation_id, viewer_id=session.who.person_id)
    result = await service.post(
        author=session.who.email, text=text, conversation_id=conversation_id
    )
    if is_form:
        return see_other(f"/chat/c/{conversation_id}#m-{result.message_id}")
    return web.json_response(
        {"message_id": result.message_id, "conversation_id": conversation_id}, status=201
    )


@routes.post("/chat/seen")
async def seen(request: web.Request) -> web.StreamResponse:
    """S5: the page showed these messages to the customer (its script decided when)."""
    session, fields, _is_form = await _writer(request)
    ids = fields.get("message_ids")
    if (
        not isinstance(ids, list)
        or len(ids) > MAX_SEEN_IDS
        or not all(type(i) is int and 1 <= i <= MAX_ID for i in ids)
    ):
        raise InputError(f"message_ids must be a list of at most {MAX_SEEN_IDS} message ids")
    await request.app[SERVICE].mark_seen(person_id=session.who.person_id, message_ids=ids)
    return web.Response(status=204)


@routes.post("/chat/sign-out")
async def sign_out(request: web.Request) -> web.StreamResponse:
    session, _fields, _is_form = await _writer(request)
    await request.app[SERVICE].sign_out(session.who)
    response = see_other("/chat")
    clear_cookie(response)
    return response


@routes.post("/chat/new")
async def new_conversation(request: web.Request) -> web.StreamResponse:
    """C1: a customer who came in from the widget writes their first message."""
    session, fields, is_form = await _writer(request)
    text = _text_of(fields)
    service = request.app[SERVICE]
    request.app[LIMITS].posts.take(str(session.who.session_id), service.clock.now())
    conversation_id = await service.chat.start_conversation(session.who, text)
    if is_form:
        return see_other(f"/chat/c/{conversation_id}")
    return web.json_response({"conversation_id": conversation_id}, status=201)


# --- the live stream ------------------------------------------------------------------------


def _same_origin(request: web.Request) -> bool:
    """C3: the WebSocket is opened by this server's own page (a cookie goes along with any
    site's WebSocket, so the Origin is what tells them apart)."""
    origin = request.headers.get("Origin", "")
    if not origin:
        return False
    host = urlsplit(origin).netloc.lower()
    public = request.app[SERVICE].config("server.public_url")
    allowed = {request.host.lower()}
    if public:
        allowed.add(urlsplit(public).netloc.lower())
    return host in allowed


@routes.get("/chat/live")
async def live(request: web.Request) -> web.StreamResponse:
    """The page's events over a WebSocket, as `/api/v1/events` sends them to a customer."""
    if not chat_enabled(request):
        raise PermissionDeniedError("the chat is closed")
    session = await current(request)
    if session is None:
        raise AuthenticationError("open the chat from the link in your email first")
    if not _same_origin(request):
        raise PermissionDeniedError("the live stream is only for this server's own pages")
    after_text = request.query.get("after")
    after: int | None = None
    if after_text is not None:
        if not after_text.isascii() or not after_text.isdigit() or len(after_text) > 19:
            raise InputError("after must be a position")
        after = min(int(after_text), MAX_POSITION)
    ws = web.WebSocketResponse(heartbeat=HEARTBEAT_S, max_msg_size=4 * 1024)
    if not ws.can_prepare(request).ok:
        raise InputError("this address is a WebSocket: connect with an Upgrade request")
    await ws.prepare(request)
    chat = request.app[SERVICE].chat
    presence = await chat.join(session.who)

    async def beat() -> None:
        while True:
            await asyncio.sleep(PRESENCE_BEAT.total_seconds())
            try:
                await chat.beat(presence)
            except DeskbellError as exc:
                log.warning("could not refresh a chat page's presence: %s", exc)

    beating = asyncio.get_running_loop().create_task(beat())
    try:
        return await run_stream(request, ws, session.who, session.token, after)
    finally:
        beating.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await beating
        with contextlib.suppress(DeskbellError):
            await chat.leave(presence)
