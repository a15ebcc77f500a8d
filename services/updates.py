"""Is there a newer Deskbell? Opt-in, off by default; never downloads or runs anything.

The maintainers publish a small signed announcement at a URL (the desktop's settings hold it):

    {"payload": "<JSON text>", "signature": "<base64 Ed25519 signature of the payload's bytes>"}

where the payload is `{"version": "0.2.0", "url": "https://...", "sha256": "<64 hex digits>"}`:
the newest version, the page to download it from (what the app opens in the browser), and
the SHA-256 of its installer (shown, so a person can compare). The signature covers the
payload's exact bytes, so no canonical JSON is needed and any change to any field breaks it.
`packaging/sign_announcement.py` makes one; docs/release.md says how.

A document that is too large, not JSON, unsigned, signed by another key, or missing a field
gives one `UpdateCheckError` with a sentence a person can act on; a server that cannot be
reached gives `UpdateServerUnreachableError` (also a ConnectionError).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from services.ed25519 import verify
from services.errors import DeskbellError

__all__ = [
    "CHECK_INTERVAL",
    "DEFAULT_URL",
    "MAX_BYTES",
    "PUBLIC_KEY",
    "Announcement",
    "UpdateCheck",
    "UpdateCheckError",
    "UpdateServerUnreachableError",
    "check_due",
    "check_for_update",
    "fetch_announcement",
    "is_newer",
    "parse_version",
    "read_announcement",
]

# The maintainers' Ed25519 public key (32 bytes, hex). `packaging/sign_announcement.py keygen`
# makes a key pair and prints this line for a new key; the private half never enters the repo.
PUBLIC_KEY = bytes.fromhex("0a4ac7dfcd380e4b4704625cb9aefc51d978a1c62576e1d5ddfeac780b41274b")
DEFAULT_URL = "https://deskbell.app/updates/latest.json"
MAX_BYTES = 64 * 1024  # an announcement is a few hundred bytes
CHECK_INTERVAL = timedelta(days=1)
TIMEOUT_S = 15.0

_VERSION = re.compile(r"\d{1,6}(\.\d{1,6}){0,3}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_LOOPBACK = ("127.0.0.1", "localhost", "::1")


class UpdateCheckError(DeskbellError):
    """The announcement could not be read or was refused; nothing was opened."""


class UpdateServerUnreachableError(UpdateCheckError, ConnectionError):
    """The update server did not answer (offline, DNS, TLS, timeout): try again later."""


@dataclass(frozen=True)
class Announcement:
    version: str
    url: str  # the download page, https
    sha256: str  # of the installer, lower-case hex


@dataclass(frozen=True)
class UpdateCheck:
    current: str
    announcement: Announcement

    @property
    def newer(self) -> bool:
        return is_newer(self.announcement.version, self.current)


def parse_version(text: str) -> tuple[int, ...]:
    """ "1.2.10" → (1, 2, 10, 0): release versions only, compared number by number."""
    if not isinstance(text, str) or not _VERSION.fullmatch(text):
        raise UpdateCheckError(f"the update announcement has no valid version ({text!r:.40})")
    parts = tuple(int(p) for p in text.split("."))
    return parts + (0,) * (4 - len(parts))


def is_newer(candidate: str, current: str) -> bool:
    return parse_version(candidate) > parse_version(current)


def check_due(last: datetime | None, now: datetime) -> bool:
    """Whether a daily check is due: never checked, a day has passed, or the clock went back."""
    return last is None or now - last >= CHECK_INTERVAL or last > now


def read_announcement(document: bytes, *, public_key: bytes = PUBLIC_KEY) -> Announcement:
    """The announcement in `document`, if it is well formed and signed by `public_key`."""
    if len(document) > MAX_BYTES:
        raise UpdateCheckError(
            f"the update announcement is larger than {MAX_BYTES // 1024} KB: refused"
        )
    try:
        envelope = json.loads(document)
        payload, signature = envelope["payload"], envelope["signature"]
        if not isinstance(payload, str) or not isinstance(signature, str):
            raise TypeError
        raw_signature = base64.b64decode(signature, validate=True)
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise UpdateCheckError(
            "the update announcement is not a signed Deskbell announcement "
            '(expected JSON with "payload" and "signature")'
        ) from None
    if not verify(public_key, payload.encode("utf-8"), raw_signature):
        raise UpdateCheckError("the update announcement is not signed with Deskbell's key: ignored")
    try:
        fields = json.loads(payload)
        version, url, sha256 = fields["version"], fields["url"], fields["sha256"]
    except (ValueError, KeyError, TypeError):
        raise UpdateCheckError(
            'the update announcement lacks "version", "url" or "sha256"'
        ) from None
    parse_version(version)
    if not isinstance(url, str) or urlsplit(url).scheme != "https" or not urlsplit(url).netloc:
        raise UpdateCheckError("the update announcement's download address is not https")
    if not isinstance(sha256, str) or not _SHA256.fullmatch(sha256):
        raise UpdateCheckError("the update announcement's sha256 is not 64 hex digits")
    return Announcement(version=version, url=url, sha256=sha256)


async def fetch_announcement(
    url: str, *, timeout_s: float = TIMEOUT_S, user_agent: str = "Deskbell"
) -> bytes:
    """The document at `url` (https; plain http only on this machine), at most MAX_BYTES."""
    # Loaded here, not at start: urllib.request brings http.client and ssl (30 ms).
    import urllib.error
    import urllib.request

    parts = urlsplit(url)
    if not (parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in _LOOPBACK)):
        raise UpdateCheckError(f"the update address must be https: {url!r:.80}")
    request = urllib.request.Request(
        url, headers={"User-Agent": user_agent, "Accept": "application/json"}
    )

    def get() -> bytes:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return bytes(response.read(MAX_BYTES + 1))

    try:
        document = await asyncio.to_thread(get)
    except urllib.error.HTTPError as exc:
        raise UpdateCheckError(
            f"the update server answered {exc.code} {exc.reason} for {url}"
        ) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise UpdateServerUnreachableError(
            f"cannot reach the update server {parts.hostname}: {reason}"
        ) from None
    if len(document) > MAX_BYTES:
        raise UpdateCheckError(
            f"the update announcement is larger than {MAX_BYTES // 1024} KB: refused"
        )
    return document


async def check_for_update(
    *, url: str, current: str, public_key: bytes = PUBLIC_KEY, timeout_s: float = TIMEOUT_S
) -> UpdateCheck:
    """Fetch and verify the announcement; `.newer` says whether it beats `current`."""
    document = await fetch_announcement(url, timeout_s=timeout_s, user_agent=f"Deskbell/{current}")
    return UpdateCheck(
        current=current, announcement=read_announcement(document, public_key=public_key)
    )
