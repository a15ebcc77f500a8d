"""Typed keys of what the server's aiohttp application holds."""

from __future__ import annotations

from typing import Final

from aiohttp import web

from services.api import Service

__all__ = ["SERVICE"]

SERVICE: Final = web.AppKey("service", Service)
