"""Processing N incoming emails from a real Dovecot mailbox, against a bare baseline (issue 5).

Deskbell: the reader the service runs (`service.incoming.reader_for`: batched FETCH, each
batch's mails and the DB cursor committed in one transaction) and the same routing as
`receive_mail` (parse, loop rules, sender hold, tracking, a new item or a log row) on SQLite.
Baseline, same run, same mailbox: imaplib fetching every message and Python's email parser.

    .venv/bin/python bench/bench_incoming.py [N]      (default 10000)
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import imaplib
import sys
import tempfile
import time
from email.message import EmailMessage
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from services.api import Service  # noqa: E402
from services.incoming.imap import ImapSettings  # noqa: E402
from tests.support.dovecot import DovecotServer  # noqa: E402


def make_mail(n: int) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"Customer {n} <customer{n}@example.org>"
    msg["To"] = "support@deskbell.test"
    msg["Subject"] = f"Printer {n} does not print"
    msg["Message-ID"] = f"<bench{n}@example.org>"
    if n % 5 == 0:
        msg["Auto-Submitted"] = "auto-replied"  # one in five is an out-of-office (I6)
    msg.set_content(f"Hello,\n\nprinter {n} is broken again.\n\nOn Monday, X wrote:\n> old\n")
    return msg.as_bytes()


def fill(server: DovecotServer, count: int) -> None:
    conn = imaplib.IMAP4("127.0.0.1", server.port)
    conn.login(server.user, server.password)
    for n in range(count):
        conn.append("INBOX", None, None, make_mail(n))
    conn.logout()


def baseline(server: DovecotServer) -> int:
    conn = imaplib.IMAP4("127.0.0.1", server.port)
    conn.login(server.user, server.password)
    conn.select("INBOX", readonly=True)
    _typ, data = conn.uid("SEARCH", "ALL")
    parsed = 0
    for uid in data[0].split():
        _typ, fetched = conn.uid("FETCH", uid, "(BODY.PEEK[])")
        raw = fetched[0][1] if fetched and isinstance(fetched[0], tuple) else b""
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        body = msg.get_body(preferencelist=("plain", "html"))
        _text = body.get_content() if body is not None else ""
        parsed += 1
    conn.logout()
    return parsed


async def deskbell(server: DovecotServer, data_dir: Path) -> int:
    svc = await Service.open(data_dir=data_dir)
    try:
        await svc.set_config("smtp.from", "support@deskbell.test")
        settings = ImapSettings(
            host="127.0.0.1",
            port=server.port,
            security="none",
            username=server.user,
            password=server.password,
        )
        reader = svc.incoming.reader_for(settings)
        handled = await reader.poll_once()
        await reader.close()
        return handled
    finally:
        await svc.close()


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    with DovecotServer(tls=False) as server:
        started = time.perf_counter()
        fill(server, count)
        print(f"filled the mailbox with {count} emails in {time.perf_counter() - started:.1f} s")

        started = time.perf_counter()
        base_n = baseline(server)
        base_s = time.perf_counter() - started

        with tempfile.TemporaryDirectory(prefix="deskbell-bench-") as tmp:
            started = time.perf_counter()
            ours_n = asyncio.run(deskbell(server, Path(tmp)))
            ours_s = time.perf_counter() - started

    print(
        f"baseline (imaplib + email parser): {base_n} in {base_s:.2f} s = {base_n / base_s:,.0f}/s"
    )
    print(
        f"deskbell (reader + receive_mail):  {ours_n} in {ours_s:.2f} s = {ours_n / ours_s:,.0f}/s"
    )
    print(f"ratio deskbell/baseline time: {ours_s / base_s:.1f}x")


if __name__ == "__main__":
    main()
