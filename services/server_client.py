"""A client of the team server (T1, T6).

`events()` follows the server's event stream (`GET /api/v1/events`, a WebSocket): it yields
each event as the server sends it, a JSON object with its "type" and "position". Keep the
last position and pass it as `after` on the next connection: the stream carries on with no gap
and no duplicate, or says "resync" when the cursor is too old.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import AsyncIterator
from typing import Any, Final

import aiohttp

from services.errors import AuthenticationError, DeskbellError, InputError

__all__ = ["SESSION_ENDED", "events"]

SESSION_ENDED: Final = 4401  # the server's close code when the session ends


def _ssl(cafile: str | None) -> ssl.SSLContext | bool:
    return ssl.create_default_context(cafile=cafile) if cafile else True


async def events(
    base_url: str,
    token: str,
    after: int | None = None,
    *,
    cafile: str | None = None,
    heartbeat_s: float = 30.0,
) -> AsyncIterator[dict[str, Any]]:
    """The server's events past position `after` (None: from now on), then live ones.

    Raises AuthenticationError when the token is refused or the session ends (close code
    4401), ConnectionError when the server cannot be reached or closes the stream otherwise
    (reconnect with the last position)."""
    url = base_url.rstrip("/") + "/api/v1/events"
    params = {} if after is None else {"after": str(after)}
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession() as session:
        try:
            ws = await session.ws_connect(
                url,
                params=params,
                headers=headers,
                heartbeat=heartbeat_s,
                ssl=_ssl(cafile),
                autoclose=False,
            )
        except aiohttp.WSServerHandshakeError as exc:
            if exc.status == 401:
                raise AuthenticationError("not signed in: sign in again") from None
            if exc.status == 400:
                raise InputError(f"the server refused the event stream: {exc.message}") from None
            raise DeskbellError(f"the server refused the event stream ({exc.status})") from None
        except aiohttp.ClientConnectionError as exc:
            raise ConnectionError(f"cannot reach the server at {base_url}: {exc}") from exc
        # The close code is read from the server's close frame itself: the server may drop
        # the connection before the reply an automatic close would write, which would turn
        # the code into 1006.
        code: int | None = None
        async with ws:
            while True:
                message = await ws.receive()
                if message.type is aiohttp.WSMsgType.TEXT:
                    event = json.loads(message.data)
                    if isinstance(event, dict):
                        yield event
                elif message.type is aiohttp.WSMsgType.CLOSE:
                    code = message.data
                    break
                else:  # an error, or closed by this side
                    break
        if code == SESSION_ENDED:
            raise AuthenticationError("the session has ended: sign in again")
        raise ConnectionResetError(f"the server closed the event stream ({code or ws.close_code})")
