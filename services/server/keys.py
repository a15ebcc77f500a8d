"""Typed keys of what the server's aiohttp application holds."""

from __future__ import annotations

from ipaddress import IPv4Network, IPv6Network
from typing import Final

from aiohttp import web

from services.api import Service

__all__ = ["SERVICE", "TRUSTED_PROXIES", "Network"]

Network = IPv4Network | IPv6Network

SERVICE: Final = web.AppKey("service", Service)
# The reverse proxies whose X-Forwarded-For is believed (`deskbell serve --trusted-proxy`).
TRUSTED_PROXIES: Final = web.AppKey("trusted_proxies", tuple[Network, ...])
