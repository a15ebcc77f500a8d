"""The update check (issue 13): a signed announcement is accepted, a tampered one refused, the
version compared; fetched from a real HTTP server on loopback; malformed or oversized
documents give one clear error."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import socket
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from services import updates
from services.updates import (
    Announcement,
    UpdateCheckError,
    UpdateServerUnreachableError,
    check_due,
    check_for_update,
    is_newer,
    read_announcement,
)
from tests.support.announcements import KEY, PUBLIC, AnnouncementServer, serve, signed

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "packaging"))
import sign_announcement

SHA = "ab" * 32
GOOD = {"version": "0.2.0", "url": "https://deskbell.app/download/0.2.0", "sha256": SHA}


def test_a_correctly_signed_announcement_is_accepted() -> None:
    assert read_announcement(signed(GOOD), public_key=PUBLIC) == Announcement(
        version="0.2.0", url="https://deskbell.app/download/0.2.0", sha256=SHA
    )


def test_the_signing_tool_makes_what_the_app_accepts(tmp_path: Path) -> None:
    document = sign_announcement.sign(KEY, version="1.0.3", url=GOOD["url"], sha256=SHA.upper())
    assert read_announcement(document.encode(), public_key=PUBLIC).sha256 == SHA
    installer = tmp_path / "Deskbell-setup.exe"
    installer.write_bytes(b"not really an installer")
    expected = hashlib.sha256(b"not really an installer").hexdigest()
    assert sign_announcement.sha256_of(installer) == expected


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("version", "9.9.9"),
        ("url", "https://evil.example/deskbell"),
        ("sha256", "cd" * 32),
    ],
)
def test_a_tampered_field_is_refused(field: str, value: str) -> None:
    document = json.loads(signed(GOOD))
    payload = json.loads(document["payload"])
    payload[field] = value
    document["payload"] = json.dumps(payload)
    with pytest.raises(UpdateCheckError, match="not signed with Deskbell's key"):
        read_announcement(json.dumps(document).encode(), public_key=PUBLIC)


def test_a_tampered_or_foreign_signature_is_refused() -> None:
    document = json.loads(signed(GOOD))
    raw = bytearray(base64.b64decode(document["signature"]))
    raw[10] ^= 0x20
    document["signature"] = base64.b64encode(bytes(raw)).decode()
    with pytest.raises(UpdateCheckError, match="not signed with Deskbell's key"):
        read_announcement(json.dumps(document).encode(), public_key=PUBLIC)
    other = Ed25519PrivateKey.generate()
    with pytest.raises(UpdateCheckError, match="not signed with Deskbell's key"):
        read_announcement(signed(GOOD, key=other), public_key=PUBLIC)
    # The key the app ships is not the test key: the test key's signature means nothing there.
    with pytest.raises(UpdateCheckError, match="not signed with Deskbell's key"):
        read_announcement(signed(GOOD))


@pytest.mark.parametrize(
    ("document", "error"),
    [
        (b"", "not a signed Deskbell announcement"),
        (b"<html>404</html>", "not a signed Deskbell announcement"),
        (b"[1, 2]", "not a signed Deskbell announcement"),
        (json.dumps(GOOD).encode(), "not a signed Deskbell announcement"),
        (b'{"payload": "{}", "signature": "!!not base64!!"}', "not a signed Deskbell"),
        (b'{"payload": 5, "signature": "AAAA"}', "not a signed Deskbell announcement"),
        (signed({"version": "0.2.0", "url": GOOD["url"]}), 'lacks "version", "url" or "sha256"'),
        (signed({**GOOD, "version": "0.2.0-beta"}), "no valid version"),
        (signed({**GOOD, "version": 2}), "no valid version"),
        (signed({**GOOD, "url": "http://deskbell.app/x"}), "not https"),
        (signed({**GOOD, "url": "javascript:alert(1)"}), "not https"),
        (signed({**GOOD, "sha256": "abc"}), "not 64 hex digits"),
        (b"{" + b" " * (updates.MAX_BYTES + 1) + b"}", "larger than 64 KB"),
    ],
)
def test_a_malformed_document_gives_one_clear_error(document: bytes, error: str) -> None:
    with pytest.raises(UpdateCheckError, match=error):
        read_announcement(document, public_key=PUBLIC)


@pytest.mark.parametrize(
    ("candidate", "current", "newer"),
    [
        ("0.2.0", "0.1.0", True),
        ("0.1.10", "0.1.9", True),  # numbers, not strings
        ("1.0", "0.9.9", True),
        ("0.1.0", "0.1.0", False),
        ("0.1", "0.1.0", False),  # equal
        ("0.0.9", "0.1.0", False),
    ],
)
def test_newer_older_equal(candidate: str, current: str, newer: bool) -> None:
    assert is_newer(candidate, current) is newer


def test_a_daily_check_is_due_after_a_day_or_a_clock_jump_back() -> None:
    now = datetime(2026, 12, 1, 12, tzinfo=UTC)
    assert check_due(None, now)
    assert not check_due(now - timedelta(hours=23), now)
    assert check_due(now - timedelta(days=1), now)
    assert check_due(now + timedelta(hours=2), now)


# --- over the network: a real HTTP server on loopback ------------------------------------------


@pytest.fixture
def server() -> Iterator[AnnouncementServer]:
    with serve() as s:
        yield s


async def test_check_fetches_and_verifies_from_a_real_server(server: AnnouncementServer) -> None:
    server.routes["/latest.json"] = (200, signed(GOOD))
    check = await check_for_update(
        url=server.url("/latest.json"), current="0.1.0", public_key=PUBLIC
    )
    assert check.newer
    assert check.announcement.version == "0.2.0"
    assert server.requests == ["Deskbell/0.1.0"]
    same = await check_for_update(
        url=server.url("/latest.json"), current="0.2.0", public_key=PUBLIC
    )
    assert not same.newer


async def test_a_tampered_document_from_the_server_is_refused(server: AnnouncementServer) -> None:
    document = json.loads(signed(GOOD))
    document["payload"] = document["payload"].replace("0.2.0", "0.3.0")
    server.routes["/latest.json"] = (200, json.dumps(document).encode())
    with pytest.raises(UpdateCheckError, match="not signed"):
        await check_for_update(url=server.url("/latest.json"), current="0.1.0", public_key=PUBLIC)


async def test_server_errors_and_oversized_answers_are_one_clear_error(
    server: AnnouncementServer,
) -> None:
    with pytest.raises(UpdateCheckError, match="answered 404"):
        await check_for_update(url=server.url("/missing.json"), current="0.1.0", public_key=PUBLIC)
    server.routes["/huge.json"] = (200, b" " * (updates.MAX_BYTES * 4))
    with pytest.raises(UpdateCheckError, match="larger than 64 KB"):
        await check_for_update(url=server.url("/huge.json"), current="0.1.0", public_key=PUBLIC)


async def test_an_unreachable_server_is_a_connection_error() -> None:
    with contextlib.closing(socket.socket()) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nobody listens there
    with pytest.raises(UpdateServerUnreachableError) as caught:
        await check_for_update(url=f"http://127.0.0.1:{port}/x.json", current="0.1.0")
    assert isinstance(caught.value, ConnectionError)


async def test_only_https_leaves_this_machine() -> None:
    with pytest.raises(UpdateCheckError, match="must be https"):
        await check_for_update(url="http://deskbell.app/latest.json", current="0.1.0")
    with pytest.raises(UpdateCheckError, match="must be https"):
        await check_for_update(url="file:///etc/passwd", current="0.1.0")
