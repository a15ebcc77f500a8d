"""The customer chat's pages and writes (C1, C3, S5): `/chat`, one conversation, the link
from an email, posting, seen marks, signing out, and the page's live stream.

Every read goes through the service as the customer (`viewer_id`/`person_id`), which shows a
customer only their own external conversations (R2): a conversation they may not see is
answered exactly as a missing one. Every write needs the session's CSRF token.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import logging
import secrets
from datetime import datetime, timedelta
from typing import Any, Final
from urllib.parse import urlsplit

from aiohttp import web

from services.chat import PRESENCE_BEAT
from services.domain.model import PersonKind
from services.errors import (
    AuthenticationError,
    DeskbellError,
    InputError,
    NotFoundError,
    PermissionDeniedError,
    TooManyAttemptsError,
)
from services.events import kept_window
from services.server.chat.assets import asset, assets, render, theme_css
from services.server.chat.limits import RateLimit
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
from services.server.errors import error_response, status_of
from services.server.events import HEARTBEAT_S, MAX_POSITION, run_stream
from services.server.keys import SERVICE
from services.views import Inbox, MessageRow

__all__ = ["LIMITS", "Limits", "chat_middleware", "routes", "setup"]

log = logging.getLogger(__name__)

routes = web.RouteTableDef()

MAX_TEXT_CHARS: Final = 20_000  # a chat message; longer text is better sent by email
MAX_SEEN_IDS: Final = 500
PAGE_MESSAGES: Final = 200


class Limits:
    """C3: this server's rate limits (each application its own)."""

    def __init__(self) -> None:
        # A person types a few messages a minute; a script posting faster is stopped.
        self.posts = RateLimit(count=20, window=timedelta(minutes=1), what="messages at once")
        # Codes asked for from one client address (each address has its own limit too).
        self.codes = RateLimit(count=10, window=timedelta(hours=1), what="codes asked for")


LIMITS: Final = web.AppKey("chat_limits", Limits)


def setup(app: web.Application) -> None:
    app[LIMITS] = Limits()


# --- rendering ---------------------------------------------------------------------------------


def _see_other(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location, "Cache-Control": "no-store"})


def _html(text: str, *, status: int = 200) -> web.Response:
    response = web.Response(text=text, status=status, content_type="text/html", charset="utf-8")
    response.headers["Cache-Control"] = "no-store"
    return response


def _settings(request: web.Request) -> dict[str, Any]:
    config = request.app[SERVICE].config
    logo = config("chat.logo_url")
    if logo.startswith("data:"):  # uploaded: served on its own, cached, not in every page
        logo = f"/chat/logo?v={hashlib.sha256(logo.encode()).hexdigest()[:12]}"
    return {"title": config("chat.title"), "colour": config("chat.colour"), "logo_url": logo}


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


def _enabled(request: web.Request) -> bool:
    return request.app[SERVICE].config("chat.enabled") == "true"


def _notice(
    request: web.Request, heading: str, text: str, *, status: int, start_link: bool = False
) -> web.Response:
    return _html(
        render(
            "notice.html.j2",
            heading=heading,
            text=text,
            start_link=start_link,
            **_settings(request),
        ),
        status=status,
    )


def _closed(request: web.Request) -> web.Response:
    return _notice(
        request,
        "The chat is closed",
        "The chat is not open at the moment. You can still answer any of our emails: "
        "your reply reaches us.",
        status=503,
    )


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
    return _html(
        render(
            "chat.html.j2",
            me=me,
            csrf=session.csrf,
            conversations=rows,
            current=shown,
            messages=messages,
            position=position,
            max_text=MAX_TEXT_CHARS,
            **_settings(request),
        )
    )


# --- pages ---------------------------------------------------------------------------------------


@routes.get("/chat")
async def index(request: web.Request) -> web.StreamResponse:
    if not _enabled(request):
        return _closed(request)
    session = await current(request)
    if session is None:
        return _notice(
            request,
            "Open your conversation",
            "Use the link in the latest email from us to open your conversation here.",
            status=200,
            start_link=True,
        )
    return await _page(request, session, None)


def _path_id(request: web.Request) -> int:
    text = request.match_info["conversation_id"]
    if not text.isascii() or not text.isdigit() or len(text) > 10 or not 1 <= int(text) <= MAX_ID:
        raise NotFoundError("no such conversation")
    return int(text)


@routes.get(r"/chat/c/{conversation_id}")
async def conversation(request: web.Request) -> web.StreamResponse:
    if not _enabled(request):
        return _closed(request)
    session = await current(request)
    if session is None:
        return _notice(
            request,
            "Open your conversation",
            "Use the link in the latest email from us to open your conversation here.",
            status=401,
        )
    try:
        return await _page(request, session, _path_id(request))
    except NotFoundError:
        return _notice(
            request,
            "No such conversation",
            "This conversation does not exist or is not yours.",
            status=404,
        )


@routes.get("/chat/enter")
async def enter(request: web.Request) -> web.StreamResponse:
    """C1: the link from an email: a session cookie, then the conversation's clean URL."""
    if not _enabled(request):
        return _closed(request)
    token = request.query.get("t", "")
    try:
        entered = await request.app[SERVICE].chat.enter(
            token[:200], address=client_address(request)
        )
    except AuthenticationError as exc:
        return _notice(request, "This link cannot be used", str(exc).capitalize() + ".", status=403)
    response = _see_other(f"/chat/c/{entered.conversation_id}")
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
    if not _enabled(request):
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
        return _see_other(f"/chat/c/{conversation_id}#m-{result.message_id}")
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
    response = _see_other("/chat")
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
        return _see_other(f"/chat/c/{conversation_id}")
    return web.json_response({"conversation_id": conversation_id}, status=201)


# --- the widget and its emailed code (C1) -------------------------------------------------------

_START_COOKIE: Final = "__Host-deskbell-start"
_START_CONTEXT: Final = b"deskbell/chat-start/v1:"


def _start_csrf(request: web.Request, nonce: str) -> str:
    key = request.app[SERVICE].token_key
    return hmac.new(key, _START_CONTEXT + nonce.encode(), hashlib.sha256).hexdigest()


def _start_page(
    request: web.Request, *, step: str, status: int = 200, error: str = "", **fields: str
) -> web.Response:
    """The widget's page. Before a session there is no session token to bind a CSRF token
    to: a random cookie is (double submit, signed), so another site cannot post the form."""
    nonce = request.cookies.get(_START_COOKIE, "")
    fresh = not (16 <= len(nonce) <= 64 and nonce.isascii() and nonce.isalnum())
    if fresh:
        nonce = secrets.token_hex(16)
    response = _html(
        render(
            "start.html.j2",
            step=step,
            error=error,
            csrf=_start_csrf(request, nonce),
            name=fields.get("name", ""),
            email=fields.get("email", ""),
            **_settings(request),
        ),
        status=status,
    )
    if fresh:
        response.set_cookie(
            _START_COOKIE, nonce, path="/", secure=True, httponly=True, samesite="Strict"
        )
    return response


async def _start_form(request: web.Request) -> dict[str, str]:
    if not _enabled(request):
        raise PermissionDeniedError("the chat is closed")
    form = await request.post()
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    nonce = request.cookies.get(_START_COOKIE, "")
    given = fields.get(CSRF_FIELD, "")
    if not nonce or not hmac.compare_digest(given.encode(), _start_csrf(request, nonce).encode()):
        raise PermissionDeniedError("the page's security token is missing or wrong: reload it")
    return fields


@routes.get("/chat/widget.js")
async def widget(request: web.Request) -> web.StreamResponse:
    """The script a help desk puts on its own site (docs/chat.md)."""
    found = assets()["widget.js"]
    if request.headers.get("If-None-Match") == found.etag:
        return web.Response(status=304, headers={"ETag": found.etag})
    response = web.Response(body=found.body, content_type=found.content_type, charset="utf-8")
    response.headers["Cache-Control"] = "public, max-age=3600"
    response.headers["ETag"] = found.etag
    response.headers["Cross-Origin-Resource-Policy"] = "cross-origin"  # other sites load it
    return response


@routes.get("/chat/start")
async def start(request: web.Request) -> web.StreamResponse:
    if not _enabled(request):
        return _closed(request)
    if await current(request) is not None:
        return _see_other("/chat")
    return _start_page(request, step="details")


@routes.post("/chat/start/code")
async def start_code(request: web.Request) -> web.StreamResponse:
    """Name and address in; a code out by email. Nothing of any conversation is shown."""
    fields = await _start_form(request)
    name, email = fields.get("name", "")[:200], fields.get("email", "")[:320]
    service = request.app[SERVICE]
    try:
        request.app[LIMITS].codes.take(client_address(request), service.clock.now())
        await service.chat.send_code(name=name, email=email)
    except InputError as exc:
        return _start_page(
            request, step="details", status=400, error=str(exc), name=name, email=email
        )
    except TooManyAttemptsError as exc:
        page = _start_page(
            request, step="details", status=429, error=str(exc), name=name, email=email
        )
        wait = (exc.retry_at - service.clock.now()).total_seconds()
        page.headers["Retry-After"] = str(max(1, round(wait)))
        return page
    except PermissionDeniedError as exc:
        return _start_page(
            request, step="details", status=403, error=str(exc), name=name, email=email
        )
    return _start_page(request, step="code", email=email.strip().lower())


@routes.post("/chat/start/confirm")
async def start_confirm(request: web.Request) -> web.StreamResponse:
    fields = await _start_form(request)
    email = fields.get("email", "")[:320]
    try:
        session = await request.app[SERVICE].chat.confirm_code(
            email=email, code=fields.get("code", "")[:20], address=client_address(request)
        )
    except (AuthenticationError, InputError) as exc:
        return _start_page(request, step="code", status=403, error=str(exc), email=email)
    response = _see_other("/chat")
    set_cookie(response, session.token)
    response.del_cookie(_START_COOKIE, path="/", secure=True, httponly=True, samesite="Strict")
    return response


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
    if not _enabled(request):
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


# --- answers for the chat's paths -----------------------------------------------------------

_CSP: Final = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' https: data:",
        "connect-src 'self'",
        "form-action 'self'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    )
)
_SECURITY_HEADERS: Final = {
    "Content-Security-Policy": _CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}


@web.middleware
async def chat_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    """C3 on every `/chat` answer: the security headers, compression, and errors as the
    chat's own JSON (writes) with Retry-After on a 429."""
    if not request.path.startswith("/chat"):
        return await handler(request)  # type: ignore[no-any-return]
    try:
        response: web.StreamResponse = await handler(request)
    except web.HTTPException as exc:
        if exc.status >= 400:
            response = error_response(exc.status, type(exc).__name__, exc.reason)
        else:
            response = exc
    except DeskbellError as exc:
        response = error_response(status_of(exc), type(exc).__name__, str(exc))
        retry_at = getattr(exc, "retry_at", None)
        if isinstance(retry_at, datetime):
            wait = (retry_at - request.app[SERVICE].clock.now()).total_seconds()
            response.headers["Retry-After"] = str(max(1, round(wait)))
    if response.prepared:
        return response  # a WebSocket: its handshake is sent already
    response.headers.update(_SECURITY_HEADERS)
    if isinstance(response, web.Response) and response.body is not None:
        response.enable_compression()
    return response
