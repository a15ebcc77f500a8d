"""Signed update announcements for tests, and a real HTTP server on loopback that serves them."""

from __future__ import annotations

import base64
import http.server
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

__all__ = ["KEY", "PUBLIC", "AnnouncementServer", "serve", "signed"]

KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))  # a test key, never the app's
PUBLIC = KEY.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def signed(fields: dict[str, object], key: Ed25519PrivateKey = KEY) -> bytes:
    payload = json.dumps(fields)
    signature = base64.b64encode(key.sign(payload.encode())).decode()
    return json.dumps({"payload": payload, "signature": signature}).encode()


class AnnouncementServer:
    """`routes[path] = (status, body)`; `requests` records each request's User-Agent."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[int, bytes]] = {}
        self.requests: list[str] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests.append(self.headers.get("User-Agent", ""))
                status, body = server.routes.get(self.path, (404, b"not here"))
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                return  # quiet tests

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


@contextmanager
def serve() -> Iterator[AnnouncementServer]:
    server = AnnouncementServer()
    thread = threading.Thread(target=server.httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()
        thread.join(timeout=30)
