"""Incoming mail through the started Service vs the email parser + raw sqlite3 doing the same
look-ups and rows (issue 9).

The database holds 500 items, each with a customer, two agents following it and a message.
Then the same sequence of mails goes through both halves, one mail a transaction, in
interleaved rounds (service, raw, raw, service, ...) so both meet the same machine load. Of
every five mails: two replies by a known customer to its item's reply address (threaded:
a message and a delivery to each agent), two from new customers (a person, an item with its
two conversations, a follower, a message), one out-of-office (logged, ignored):

- service: `Service.receive_mail(raw)` on a Service *started* as in the app (change feed,
  scheduler, outbox running), CPU of the whole process (every thread: the parse runs in a
  worker thread, the unit of work in the database's);
- raw: in the calling thread (its CPU is that thread's), Python's email parser
  (`policy.default`, the body's text) and plain sqlite3 doing what intake must: BEGIN
  IMMEDIATE, the sender's recent mail (the hold), the sender, the reply token checked
  (`find_token`) and its conversation with the item's other one and their followers, the
  enabled automations (read once, then from a cache), the new customer's system email
  setting, the log row, person, item number, item, conversations, follower, message,
  deliveries, the conversation's last message, change rows with their positions, COMMIT.

IMAP is left out of both: fetching costs the same whoever parses (bench_imap's business was
issue 5's). Printed: the median CPU and wall time per mail of each half, their ratio (raw /
service: 1.0 means the service costs what the work needs), and the load average each round.

    .venv/bin/python bench/bench_incoming.py [--quick] [--rounds 10] [--per-round 500]
                                             [--profile]
"""

from __future__ import annotations

import asyncio
import cProfile
import email
import email.policy
import json
import os
import pstats
import re
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import getaddresses, parseaddr
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import interleaved_rounds, load_average, parser

from services.api import ConversationKind, PersonKind, Service
from services.domain.tokens import find_token, make_token
from services.store.db import DB_FILENAME

OUR = "support@deskbell.test"
AGENTS = ("ann@example.com", "bob@example.com")
ITEMS = 500
_TABLES = (
    "emails",
    "persons",
    "items",
    "conversations",
    "followers",
    "messages",
    "deliveries",
    "changes",
)


def _stamp(moment: datetime) -> str:
    """A time as the service stores it: naive UTC text."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ")


def make_mail(n: int, customers: list[tuple[str, int, int]], key: bytes) -> bytes:
    """Mail `n` of the sequence: 0 an out-of-office, 1-2 a customer's reply, 3-4 new."""
    msg = EmailMessage()
    kind = n % 5
    if kind in (1, 2):
        address, customer_id, conversation_id = customers[(n // 5 * 2 + kind) % len(customers)]
        token = make_token(key=key, conversation_id=conversation_id, recipient_id=customer_id)
        msg["From"] = f"Customer <{address}>"
        msg["To"] = f"support+{token}@deskbell.test"
        msg["Subject"] = "Re: Printer"
        body = f"It works again {n}, thanks.\n\nOn Monday, Ann wrote:\n> try it again\n"
    else:
        msg["From"] = f"New Customer {n} <new{n}@example.org>"
        msg["To"] = OUR
        msg["Subject"] = f"Printer {n} does not print"
        body = f"Hello,\n\nprinter {n} is broken again.\n"
        if kind == 0:
            msg["Auto-Submitted"] = "auto-replied"
            body = "I am out of the office.\n"
    msg["Message-ID"] = f"<bench{n}@example.org>"
    msg.set_content(body)
    return msg.as_bytes()


_QUOTE = re.compile(r"^On .* wrote:\s*$", re.MULTILINE)


class RawIntake:
    """Intake the way the service must do it, with the email parser and plain sqlite3."""

    RECENT = (
        "SELECT created_at FROM emails WHERE from_addr = ? AND direction = 'in' "
        "AND created_at >= ? ORDER BY created_at DESC, id DESC LIMIT 200"
    )
    SENDER = "SELECT id, kind FROM persons WHERE email = ?"
    THREAD = (
        "SELECT c.id, c.kind, c.item_id, items.number, p.id, p.kind, p.notify_email, p.delay_s "
        "FROM conversations AS named JOIN conversations AS c "
        "ON c.id = named.id OR c.item_id = named.item_id "
        "LEFT JOIN items ON items.id = c.item_id "
        "LEFT JOIN followers ON followers.item_id = c.item_id "
        "LEFT JOIN persons AS p ON p.id = followers.person_id WHERE named.id = ?"
    )
    AUTOMATIONS = (
        "SELECT id, conditions, actions FROM automations "
        "WHERE trigger = ? AND enabled = 1 AND critical = 0 ORDER BY position, id"
    )
    SYSTEM_EMAIL = "SELECT enabled FROM system_emails WHERE name = 'new_customer'"
    LOG = (
        "INSERT INTO emails (direction, kind, status, uid, message_id, from_addr, to_addrs, "
        "subject, body_text, raw, created_at, action, reason, conversation_id, item_number, "
        "attempts) VALUES ('in', 'incoming', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0) "
        "RETURNING id"
    )
    PERSON = (
        "INSERT INTO persons (email, name, kind, is_admin, created_at, notify_in_app, "
        "notify_email, notify_sound, dnd_weekly) VALUES (?, ?, 'customer', 0, ?, 1, 1, 1, '[]') "
        "RETURNING id"
    )
    TAKE = "UPDATE counters SET value = value + ? WHERE name = ? RETURNING value"
    ITEM = (
        "INSERT INTO items (number, title, status, requester_id, created_at, updated_at) "
        "VALUES (?, ?, 'open', ?, ?, ?) RETURNING id"
    )
    CONVERSATION = (
        "INSERT INTO conversations (kind, item_id, created_at, last_message_at) "
        "VALUES (?, ?, ?, ?) RETURNING id"
    )
    FOLLOWER = "INSERT INTO followers (item_id, person_id) VALUES (?, ?)"
    MESSAGE = (
        "INSERT INTO messages (conversation_id, author_id, text, created_at, source, email_id) "
        "VALUES (?, ?, ?, ?, 'email', ?) RETURNING id"
    )
    DELIVERY = (
        "INSERT INTO deliveries (message_id, recipient_id, conversation_id, created_at, due_at, "
        "state) VALUES (?, ?, ?, ?, ?, 'pending')"
    )
    TOUCH = "UPDATE conversations SET last_message_at = ?, last_message_id = ? WHERE id = ?"
    CHANGE = (
        "INSERT INTO changes (position, at, kind, conversation_id, person_id) "
        "VALUES (?, ?, ?, ?, ?)"
    )

    def __init__(self, conn: sqlite3.Connection, key: bytes, default_delay_s: int) -> None:
        self.conn = conn
        self.key = key
        self.default_delay_s = default_delay_s
        self.automations: dict[str, list[Any]] = {}

    def _rules(self, cur: sqlite3.Cursor, trigger: str) -> list[Any]:
        if trigger not in self.automations:
            self.automations[trigger] = cur.execute(self.AUTOMATIONS, (trigger,)).fetchall()
        return self.automations[trigger]

    def receive(self, raw: bytes) -> None:
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        part = msg.get_body(preferencelist=("plain", "html"))
        text = part.get_content() if part is not None else ""
        reply = _QUOTE.split(text, 1)[0].strip()
        sender = parseaddr(str(msg["From"]))[1].lower()
        to = [a for _n, a in getaddresses([str(v) for v in msg.get_all("To", [])])]
        subject = str(msg["Subject"] or "")
        auto = str(msg["Auto-Submitted"] or "no").lower() != "no"
        now = datetime.now(UTC)
        at = _stamp(now)
        log = (str(msg["Message-ID"]), sender, json.dumps(to), subject, text, raw, at)
        cur = self.conn.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            if auto:
                self._log(cur, log, "ignored", "ignored", "auto-submitted mail", None, None)
                self._changes(cur, at, [("email", None, None)])
            else:
                cur.execute(self.RECENT, (sender, _stamp(now - timedelta(minutes=25)))).fetchall()
                person = cur.execute(self.SENDER, (sender,)).fetchone()
                token = find_token(" ".join(to), key=self.key)
                if person is not None and token is not None:
                    self._reply(cur, log, person, token, reply, now)
                else:
                    self._new_item(cur, log, sender, msg, subject, text, now)
            cur.execute("COMMIT")
        except BaseException:
            cur.execute("ROLLBACK")
            raise

    def _log(self, cur: sqlite3.Cursor, log: tuple[Any, ...], status: str, *rest: Any) -> int:
        message_id, sender, to, subject, text, raw, at = log
        values = (status, uuid.uuid4().hex, message_id, sender, to, subject, text, raw, at)
        (email_id,) = cur.execute(self.LOG, (*values, *rest)).fetchone()
        return int(email_id)

    def _post(
        self,
        cur: sqlite3.Cursor,
        conversation_id: int,
        author_id: int,
        text: str,
        email_id: int,
        people: list[Any],
        now: datetime,
    ) -> None:
        at = _stamp(now)
        (message_id,) = cur.execute(
            self.MESSAGE, (conversation_id, author_id, text, at, email_id)
        ).fetchone()
        rows = []
        for person_id, _kind, notify_email, delay_s in people:
            if person_id == author_id:
                continue
            delay = self.default_delay_s if delay_s is None else delay_s
            due = _stamp(now + timedelta(seconds=delay)) if notify_email and delay else None
            rows.append((message_id, person_id, conversation_id, at, due))
        cur.executemany(self.DELIVERY, rows)
        cur.execute(self.TOUCH, (at, message_id, conversation_id))
        self._rules(cur, "message_posted")

    def _changes(
        self, cur: sqlite3.Cursor, at: str, changes: list[tuple[str, int | None, int | None]]
    ) -> None:
        (last,) = cur.execute(self.TAKE, (len(changes), "changes")).fetchone()
        first = last - len(changes) + 1
        cur.executemany(self.CHANGE, [(first + n, at, *c) for n, c in enumerate(changes)])

    def _reply(
        self,
        cur: sqlite3.Cursor,
        log: tuple[Any, ...],
        person: tuple[int, str],
        token: tuple[int, int],
        text: str,
        now: datetime,
    ) -> None:
        rows = cur.execute(self.THREAD, token[:1]).fetchall()
        external = next(r for r in rows if r[1] == "external")
        people = list({r[4]: r[4:] for r in rows if r[4] is not None}.values())
        conversation_id, number = external[0], external[3]
        email_id = self._log(
            cur, log, "received", f"threaded into #{number}", "token in address",
            conversation_id, number,
        )  # fmt: skip
        self._post(cur, conversation_id, person[0], text, email_id, people, now)
        self._changes(cur, _stamp(now), [("email", None, None), ("message", conversation_id, None)])

    def _new_item(
        self,
        cur: sqlite3.Cursor,
        log: tuple[Any, ...],
        sender: str,
        msg: email.message.EmailMessage,
        subject: str,
        text: str,
        now: datetime,
    ) -> None:
        at = _stamp(now)
        name = parseaddr(str(msg["From"]))[0] or sender.split("@")[0]
        (person_id,) = cur.execute(self.PERSON, (sender, name, at)).fetchone()
        cur.execute(self.SYSTEM_EMAIL).fetchone()
        self._rules(cur, "person_created")
        (number,) = cur.execute(self.TAKE, (1, "items")).fetchone()
        (item_id,) = cur.execute(self.ITEM, (number, subject, person_id, at, at)).fetchone()
        (internal,) = cur.execute(self.CONVERSATION, ("internal", item_id, at, at)).fetchone()
        (external,) = cur.execute(self.CONVERSATION, ("external", item_id, at, None)).fetchone()
        cur.execute(self.FOLLOWER, (item_id, person_id))
        self._rules(cur, "item_created")
        email_id = self._log(cur, log, "received", f"created #{number}", None, external, number)
        self._post(
            cur, external, person_id, text, email_id, [(person_id, "customer", 1, None)], now
        )
        self._changes(
            cur,
            at,
            [
                ("person", None, person_id),
                ("item", internal, None),
                ("email", None, None),
                ("message", external, None),
            ],
        )


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=10000")
    return conn


async def _prepare(folder: Path, items: int) -> tuple[list[tuple[str, int, int]], bytes, int]:
    """Agents, customers with an item each; (customer address, id, external conversation)."""
    service = await Service.open(data_dir=folder)
    customers = []
    try:
        await service.set_config("smtp.from", OUR)
        for address in AGENTS:
            await service.add_person(email=address, name=address.split("@")[0])
        for n in range(items):
            address = f"customer{n}@example.org"
            person = await service.add_person(
                email=address, name=f"Customer {n}", kind=PersonKind.CUSTOMER
            )
            item = await service.create_item(
                title=f"Printer {n}", followers=[*AGENTS, address], requester=address
            )
            await service.post(
                author=AGENTS[0],
                text="Try it again?",
                item_number=item.number,
                kind=ConversationKind.EXTERNAL,
            )
            customers.append((address, person.id, item.external_conversation_id))
        key = service.token_key
        delay = int(service.config("unseen_delay_s"))
    finally:
        await service.close()
    # The agents get no emails: the started scheduler would otherwise queue some in one half.
    conn = _connect(folder / DB_FILENAME)
    conn.execute("UPDATE persons SET notify_email = 0 WHERE kind = 'user'")
    conn.execute("UPDATE deliveries SET due_at = NULL")
    conn.close()
    return customers, key, delay


def _same_rows(folder: Path) -> None:
    """Both halves wrote the same rows (the baseline is not cheaper by doing less)."""
    counts = []
    for half in ("svc", "raw"):
        conn = sqlite3.connect(folder / half / DB_FILENAME)
        counts.append({t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in _TABLES})
        conn.close()
    if counts[0] != counts[1]:
        raise SystemExit(f"the halves wrote different rows: service {counts[0]}, raw {counts[1]}")


def _parsers(mails: list[bytes]) -> tuple[float, float]:
    """CPU a mail of the baseline's parse and of the service's (for reading the figures)."""
    from services.incoming.parse import parse_mail

    def email_parser(raw: bytes) -> None:
        part = email.message_from_bytes(raw, policy=email.policy.default).get_body()
        _text = part.get_content() if part is not None else ""

    found = []
    for parse in (email_parser, parse_mail):
        c0 = time.thread_time()
        for raw in mails:
            parse(raw)
        found.append((time.thread_time() - c0) / len(mails) * 1e6)
    return found[0], found[1]


async def _run(
    args: Any, folder: Path, customers: list[tuple[str, int, int]], key: bytes, delay: int
) -> None:
    rounds, per_round = (2, 100) if args.quick else (args.rounds, args.per_round)
    total = 50 + rounds * per_round
    mails = [make_mail(n, customers, key) for n in range(total)]
    service = await Service.open(data_dir=folder / "svc")
    await service.start()  # as in the app: change feed, scheduler, outbox
    raw = RawIntake(_connect(folder / "raw" / DB_FILENAME), key, delay)
    prof = cProfile.Profile() if args.profile else None
    next_mail = {"service": iter(mails), "raw": iter(mails)}

    async def service_round(n: int) -> tuple[float, float]:
        batch = [next(next_mail["service"]) for _ in range(n)]
        c0, w0 = time.process_time(), time.perf_counter()
        if prof:
            prof.enable()
        for mail in batch:
            result = await service.receive_mail(mail)
            if result.ignored and "auto-submitted" not in (result.reason or ""):
                raise SystemExit(f"the service ignored a mail it should take: {result}")
        if prof:
            prof.disable()
        return time.process_time() - c0, time.perf_counter() - w0

    def raw_round(n: int) -> tuple[float, float]:
        batch = [next(next_mail["raw"]) for _ in range(n)]
        c0, w0 = time.thread_time(), time.perf_counter()
        for mail in batch:
            raw.receive(mail)
        return time.thread_time() - c0, time.perf_counter() - w0

    try:
        cpu, wall = await interleaved_rounds(
            service_round, raw_round, rounds=rounds, per_round=per_round, unit="mail"
        )
    finally:
        await service.close()
        raw.conn.close()
    if prof:
        pstats.Stats(prof).sort_stats("cumulative").print_stats(25)
    _same_rows(folder)
    s_cpu, r_cpu = statistics.median(cpu["service"]), statistics.median(cpu["raw"])
    s_wall, r_wall = statistics.median(wall["service"]), statistics.median(wall["raw"])
    print(
        f"== incoming: started Service.receive_mail vs email parser + raw sqlite3, "
        f"{rounds} rounds of {per_round}"
    )
    for name, c, w in (("service", s_cpu, s_wall), ("raw", r_cpu, r_wall)):
        print(f"   {name}: {c:.0f} µs CPU, {w:.0f} µs wall a mail ({1e6 / w:,.0f}/s)")
    print(f"   ratio CPU: {r_cpu / s_cpu:.3f} (aim >= 0.4); ratio wall: {r_wall / s_wall:.3f}")
    parsers = _parsers(mails[:per_round])
    print(
        f"   of which parsing alone: email parser {parsers[0]:.0f} µs, "
        f"the service's parse_mail {parsers[1]:.0f} µs CPU a mail"
    )
    print(f"   load average {load_average()} (cores: {os.cpu_count()})")
    sys.stdout.flush()


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--per-round", type=int, default=500)
    p.add_argument("--profile", action="store_true", help="cProfile the service's mails")
    args = p.parse_args()
    items = 50 if args.quick else ITEMS
    with tempfile.TemporaryDirectory(prefix="deskbell-bench-incoming-") as tmp:
        folder = Path(tmp)
        base = folder / "base"
        base.mkdir()
        t0 = time.perf_counter()
        customers, key, delay = asyncio.run(_prepare(base, items))
        print(f"   {items} items with a customer each built in {time.perf_counter() - t0:.1f} s")
        shutil.copytree(base, folder / "svc")
        shutil.copytree(base, folder / "raw")
        asyncio.run(_run(args, folder, customers, key, delay))


if __name__ == "__main__":
    main()
