"""The chat's settings for the Messaging Center (C1): on/off, title, colour, logo, the
server's public address, and the widget snippet to paste into the help desk's site. The
values are ordinary workspace settings (`chat.*`, `server.public_url`): this reads and
writes them together, and takes an uploaded logo."""

from __future__ import annotations

import base64
from dataclasses import dataclass

from services.config import MAX_LOGO_BYTES, image_type, parse_value
from services.domain.chat_widget import widget_snippet
from services.errors import InputError
from services.server.auth import Access
from services.server.endpoints import Call, Endpoints
from services.views import Changes

__all__ = ["ChatSettings", "ChatSettingsForm", "routes"]

api = Endpoints()
routes = api.routes


@dataclass(frozen=True, slots=True)
class ChatSettings:
    enabled: bool
    title: str
    colour: str
    logo_url: str  # an https:// address, or "/chat/logo" for an uploaded image; "" for none
    public_url: str
    widget_snippet: str  # "" until the public address is set


@dataclass(frozen=True, slots=True)
class ChatSettingsForm:
    """Only the fields given change."""

    enabled: bool | None = None
    title: str | None = None
    colour: str | None = None
    logo_url: str | None = None
    public_url: str | None = None


def _read(call: Call) -> ChatSettings:
    config = call.service.config
    public = config("server.public_url")
    logo = config("chat.logo_url")
    return ChatSettings(
        enabled=config("chat.enabled") == "true",
        title=config("chat.title"),
        colour=config("chat.colour"),
        logo_url="/chat/logo" if logo.startswith("data:") else logo,
        public_url=public,
        widget_snippet=widget_snippet(public),
    )


@api("GET", "/chat/settings", summary="The customer chat's settings and widget snippet")
async def chat_settings(call: Call) -> ChatSettings:
    return _read(call)


@api("PUT", "/chat/settings", summary="Change the customer chat's settings", access=Access.ADMIN)
async def set_chat_settings(call: Call, body: ChatSettingsForm) -> ChatSettings:
    """Each value is checked as `PUT /settings/{key}` checks it; a bad one changes nothing."""
    changes = {
        "chat.enabled": None if body.enabled is None else str(body.enabled).lower(),
        "chat.title": body.title,
        "chat.colour": body.colour,
        "chat.logo_url": body.logo_url,
        "server.public_url": body.public_url,
    }
    given = {k: v for k, v in changes.items() if v is not None}
    for key, value in given.items():
        parse_value(key, value)  # all checked before any is stored
    for key, value in given.items():
        await call.service.set_config(key, value)
    return _read(call)


@api(
    "PUT",
    "/chat/logo",
    summary="Upload the chat page's logo (PNG, JPEG, GIF or WebP, at most 48 KB)",
    access=Access.ADMIN,
    body_media="application/octet-stream",
)
async def upload_logo(call: Call, body: bytes) -> Changes:
    media = image_type(body)
    if media is None:
        raise InputError("the logo must be a PNG, JPEG, GIF or WebP image")
    if len(body) > MAX_LOGO_BYTES:
        raise InputError(f"the logo is larger than {MAX_LOGO_BYTES // 1024} KB")
    encoded = base64.b64encode(body).decode("ascii")
    return await call.service.set_config("chat.logo_url", f"data:{media};base64,{encoded}")
