"""`deskbell --demo` (D9): a ready workspace, a mail catcher, and colleagues who write.

The demo lives in its own data folder (default `<data dir>/demo`) and is seeded once, the first
time: you (Alex Morgan, an administrator), three teammates, four customers, eight items with
followers and a few days of history in internal, external and direct conversations. Old
history is seen by everyone; the last few messages wait unseen for you, so the bubble has a
count at once.

Its emails go to a local mail catcher (aiosmtpd on 127.0.0.1) that accepts everything, so they
show as *sent* in the email log without leaving the machine. `run_bots()` has a teammate and a
customer write now and then, and teammates read what you write, so within two minutes a
newcomer sees the bubble, the ping, a notification, "seen" under their own message and an email
for what they left unseen (the real 60 s rule).
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import logging
import random
import socket
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

from app.paths import data_dir as default_data_dir
from services.api import ConversationKind, PersonInfo, PersonKind, Service
from services.clock import Clock, SystemClock

__all__ = [
    "CUSTOMERS",
    "DEMO_DOMAIN",
    "ITEM_FOLLOW_UPS",
    "ME",
    "TEAMMATES",
    "DemoMailbox",
    "DemoWorkspace",
    "follow_ups",
    "prepare_demo",
    "run_bots",
]

log = logging.getLogger(__name__)

DEMO_DOMAIN = "demo.deskbell.test"
ME = ("Alex Morgan", f"alex@{DEMO_DOMAIN}")
TEAMMATES = (
    ("Priya Shah", f"priya@{DEMO_DOMAIN}"),
    ("Jonas Berg", f"jonas@{DEMO_DOMAIN}"),
    ("Maria Lopez", f"maria@{DEMO_DOMAIN}"),
)
CUSTOMERS = (
    ("Tom Baker", "tom.baker@northwind.test"),
    ("Sofia Rossi", "sofia@rossi-design.test"),
    ("Ken Watanabe", "ken.watanabe@harbor-logistics.test"),
    ("Emma Clarke", "emma.clarke@greenleaf.test"),
)
FROM_ADDR = f"support@{DEMO_DOMAIN}"

# (title, customer index or None, teammate indexes, days ago, history)
# History lines: (who, kind, text) with who = "me", "t0".."t2" or "c" (the item's customer).
_Line = tuple[str, ConversationKind, str]
_ITEMS: tuple[tuple[str, int | None, tuple[int, ...], int, tuple[_Line, ...]], ...] = (
    (
        "Invoice PDF shows the wrong VAT rate",
        0,
        (0,),
        4,
        (
            (
                "c",
                ConversationKind.EXTERNAL,
                "Hi, our March invoice lists VAT at 19% but we are billed from the Irish "
                "entity, so it should be 23%. Could you reissue it?",
            ),
            (
                "me",
                ConversationKind.EXTERNAL,
                "Hi Tom, thanks for spotting that. I'm checking with billing and will get "
                "back to you today.",
            ),
            (
                "me",
                ConversationKind.INTERNAL,
                "@Priya the tax profile on Northwind looks stale. Can you check it?",
            ),
            (
                "t0",
                ConversationKind.INTERNAL,
                "Yep, it still had the German profile. Fixed; regenerating the invoice now.",
            ),
        ),
    ),
    (
        "Can't log in after password reset",
        1,
        (1,),
        3,
        (
            (
                "c",
                ConversationKind.EXTERNAL,
                "I reset my password twice and the login page still says 'invalid "
                "credentials'. Help!",
            ),
            (
                "t1",
                ConversationKind.INTERNAL,
                "Her account is locked after 5 attempts. Unlocking it, but the reset mail "
                "should have said so.",
            ),
            (
                "me",
                ConversationKind.EXTERNAL,
                "Hi Sofia, your account was locked for safety after several tries. It's "
                "unlocked now; could you try once more?",
            ),
            ("c", ConversationKind.EXTERNAL, "That worked, thank you so much!"),
        ),
    ),
    (
        "Shipment tracking page times out",
        2,
        (1, 2),
        3,
        (
            (
                "c",
                ConversationKind.EXTERNAL,
                "The tracking page for order 44817 has been spinning for a minute and then "
                "shows a gateway timeout.",
            ),
            (
                "t2",
                ConversationKind.INTERNAL,
                "Carrier API is slow again; 30 s timeouts in the logs since 8:40.",
            ),
            (
                "t1",
                ConversationKind.INTERNAL,
                "I'll raise it with the carrier. Alex, can you let Ken know we're on it?",
            ),
            (
                "me",
                ConversationKind.EXTERNAL,
                "Hi Ken, our carrier's tracking service is slow this morning. Your parcel "
                "left the depot yesterday and is on schedule.",
            ),
        ),
    ),
    (
        "Request: export tickets to CSV",
        3,
        (0,),
        2,
        (
            (
                "c",
                ConversationKind.EXTERNAL,
                "Is there a way to export all our tickets from last quarter to a CSV file "
                "for our auditors?",
            ),
            (
                "me",
                ConversationKind.INTERNAL,
                "Do we have a CSV export yet, or should I pull this by hand?",
            ),
            (
                "t0",
                ConversationKind.INTERNAL,
                "Reports > Tickets > Export, shipped last week. Date filter works too.",
            ),
            (
                "me",
                ConversationKind.EXTERNAL,
                "Hi Emma, yes: Reports > Tickets > Export lets you pick the quarter. Let me "
                "know if the columns suit your auditors.",
            ),
        ),
    ),
    (
        "Laptop for the new hire (Maria's team)",
        None,
        (2,),
        2,
        (
            (
                "t2",
                ConversationKind.INTERNAL,
                "New colleague starts Monday. Can we get a laptop imaged by Friday?",
            ),
            (
                "me",
                ConversationKind.INTERNAL,
                "Ordered a 14-inch one; imaging Thursday afternoon.",
            ),
        ),
    ),
    (
        "Duplicate charge on card ending 4421",
        0,
        (0, 2),
        1,
        (
            (
                "c",
                ConversationKind.EXTERNAL,
                "We were charged twice for the annual plan this morning. Please refund one "
                "of them.",
            ),
            (
                "t0",
                ConversationKind.INTERNAL,
                "Confirmed: two captures 3 minutes apart. Refund issued for the second.",
            ),
            (
                "me",
                ConversationKind.EXTERNAL,
                "Hi Tom, sorry about that. The second charge has been refunded; it should "
                "show on your statement within 3-5 business days.",
            ),
        ),
    ),
    (
        "VPN drops every 10 minutes",
        None,
        (1,),
        1,
        (
            (
                "t1",
                ConversationKind.INTERNAL,
                "Three people in the Lyon office report VPN drops every ~10 min since the "
                "router update.",
            ),
            (
                "me",
                ConversationKind.INTERNAL,
                "Sounds like the DPD timeout. I'll compare the config with Berlin's.",
            ),
        ),
    ),
    (
        "Dark mode makes charts unreadable",
        1,
        (2,),
        0,
        (
            (
                "c",
                ConversationKind.EXTERNAL,
                "Love the new dark mode, but the chart labels are dark grey on black. "
                "Screenshot attached in my previous email.",
            ),
        ),
    ),
)

# The last lines of seeding, left unseen for you so the bubble counts at once.
_UNSEEN: tuple[tuple[int, str, ConversationKind, str], ...] = (
    (
        7,
        "t2",
        ConversationKind.INTERNAL,
        "Reproduced with the high-contrast theme too. Filing it for the front-end team.",
    ),
    (
        6,
        "t1",
        ConversationKind.INTERNAL,
        "Berlin's config has DPD at 30 s, Lyon's at 600. That's our culprit, I think.",
    ),
)

_DIRECT_HISTORY = (
    (0, "Lunch at 12:30? The new ramen place opened."),
    (-1, "Sure, see you at the lobby."),
    (0, "Also: I'm covering the phone queue this afternoon if you need a break."),
)

# What the bots say later, per item: (the customer's lines, the team's lines). A customer
# chasing a VAT invoice does not ask about a shipment.
ITEM_FOLLOW_UPS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "Invoice PDF shows the wrong VAT rate": (
        (
            "Any news on the corrected invoice? Our accountant closes the month on Friday.",
            "Just checking: will the new invoice keep the same invoice number?",
            "Got the reissued PDF, thanks. The VAT line says 23% now.",
        ),
        (
            "Billing confirms the Irish tax profile is live for Northwind now.",
            "The corrected invoice is regenerated; it went out from billing a minute ago.",
            "Two more customers had the stale German profile. Fixing those too.",
        ),
    ),
    "Can't log in after password reset": (
        (
            "It locked me out again after I mistyped once. Is the limit really 5 tries?",
            "Logged in fine from my laptop, but the phone app still says invalid credentials.",
            "All good on the phone too now. Thanks for the patience!",
        ),
        (
            "The reset email now says the account is locked. Shipping that wording today.",
            "Her phone app caches the old token; a sign-out and back in fixes it.",
        ),
    ),
    "Shipment tracking page times out": (
        (
            "Tracking for order 44817 still spins. Is the carrier's service back?",
            "The page loads now and shows my parcel in Utrecht. Thanks!",
            "Could you send me the carrier's own tracking number, just in case?",
        ),
        (
            "Carrier API answers in 2 s again since 10:15; timeouts are gone from the logs.",
            "I raised the tracking page's timeout to 45 s until the carrier is stable.",
        ),
    ),
    "Request: export tickets to CSV": (
        (
            "The export worked. Can it include the assignee column as well?",
            "Our auditors also ask for the closing date. Is that in the CSV?",
            "Perfect, the quarter filter is exactly what they needed.",
        ),
        (
            "The assignee column is an option under Export > Columns, off by default.",
            "Closing dates are in the export since last week's release.",
        ),
    ),
    "Laptop for the new hire (Maria's team)": (
        (),
        (
            "The laptop arrived; imaging starts after lunch.",
            "Imaged and enrolled. It needs the VPN profile before Monday.",
            "Maria asked for a second monitor too. Ordering one.",
        ),
    ),
    "Duplicate charge on card ending 4421": (
        (
            "I still see both charges on my card. How long does the refund take?",
            "The refund shows as pending now. Thank you for sorting this out.",
            "Could you email me a receipt for the refund for our books?",
        ),
        (
            "The payment provider confirms the refund; it settles in 3-5 business days.",
            "The double capture came from a retry after a timeout. Engineering has a fix.",
        ),
    ),
    "VPN drops every 10 minutes": (
        (),
        (
            "Lyon's router is back to a 30 s DPD timeout. Drops stopped since 11:00.",
            "One more report from Lyon this morning, on the guest Wi-Fi this time.",
            "Berlin and Lyon now share one VPN config template.",
        ),
    ),
    "Dark mode makes charts unreadable": (
        (
            "Same problem in the pie chart legend, by the way.",
            "Is there a way to switch the charts back to light while the fix comes?",
            "The new version fixed it, the labels are readable now. Thanks!",
        ),
        (
            "Front-end has a fix for the chart labels in review.",
            "Workaround for her: Settings > Appearance > Charts > Always light.",
        ),
    ),
}
# For an item someone created during the demo: lines that fit any item.
_ANY_ITEM = (
    (
        "Any update on this? We are still seeing the problem this morning.",
        "Thanks for the quick answer! Is there anything I should do on my side?",
        "Could you send me the reference number for this request?",
    ),
    (
        "I will take this one. Ping me if it gets stuck.",
        "Checked the logs: nothing new since this morning.",
        "Can you double-check with the customer before we close it?",
    ),
)


def follow_ups(title: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(the customer's lines, the team's lines) the bots may say later about this item."""
    customer, team = ITEM_FOLLOW_UPS.get(title, _ANY_ITEM)
    return customer or _ANY_ITEM[0], team or _ANY_ITEM[1]


_DIRECT_LINES = (
    "Got a minute? I'd like a second pair of eyes on a refund.",
    "Coffee? I'm going down now.",
    "Thanks for covering for me earlier!",
    "Did you see the note from billing about the VAT rates?",
)
_REPLIES = (
    "Thanks, on it.",
    "Makes sense, I'll do that.",
    "👍 got it.",
    "Good point, let me check and come back to you.",
)


@dataclass
class DemoMailbox:
    """The catcher's aiosmtpd handler: accepts every message and keeps it (thread-safe)."""

    messages: list[EmailMessage] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        content = envelope.original_content or envelope.content or b""
        raw = content if isinstance(content, bytes) else content.encode()
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        with self._lock:
            self.messages.append(parsed)
            number = len(self.messages)
        return f"250 2.0.0 OK: caught by the Deskbell demo mailbox as #{number}"

    def caught(self) -> list[EmailMessage]:
        with self._lock:
            return list(self.messages)


@dataclass
class DemoWorkspace:
    service: Service
    me: str  # the address to sign in as
    catcher: Controller
    mailbox: DemoMailbox
    data_dir: Path
    teammates: tuple[str, ...]
    customers: tuple[str, ...]

    @property
    def smtp_port(self) -> int:
        return int(self.catcher.port)

    async def close(self) -> None:
        """Stop the catcher. Close the service first (its owner does) so no send is cut off."""
        await asyncio.to_thread(self.catcher.stop)


class _SeedClock:
    """The service's clock, shifted into the past while the history is written.

    Only while seeding (before the service starts any background work); afterwards the shift
    is zero and this is the given clock. It keeps the service free of back-dating APIs.
    """

    def __init__(self, base: Clock) -> None:
        self.base = base
        self.shift = timedelta(0)

    def now(self) -> datetime:
        return self.base.now() - self.shift

    def monotonic(self) -> float:
        return self.base.monotonic()

    async def sleep_until(self, deadline: datetime | None, wake: asyncio.Event) -> None:
        await self.base.sleep_until(None if deadline is None else deadline + self.shift, wake)


def _free_port() -> int:
    # aiosmtpd's Controller cannot take port 0 (its self-check connects to it): NOTES.md.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def _start_catcher(mailbox: DemoMailbox) -> Controller:
    last: Exception | None = None
    for _ in range(3):  # another program may grab the free port between bind and listen
        controller = Controller(mailbox, hostname="127.0.0.1", port=_free_port())
        try:
            await asyncio.to_thread(controller.start)
        except (OSError, RuntimeError, TimeoutError) as exc:
            last = exc
            continue
        return controller
    raise OSError(f"cannot start the demo mail catcher: {last}")


async def prepare_demo(
    *, data_dir: Path | None = None, clock: Clock | None = None
) -> DemoWorkspace:
    """Open (seeding it the first time) the demo workspace; start the catcher; aim SMTP at it."""
    folder = data_dir if data_dir is not None else default_data_dir() / "demo"
    folder.mkdir(parents=True, exist_ok=True)
    seed_clock = _SeedClock(clock or SystemClock())
    service = await Service.open(data_dir=folder, clock=seed_clock)
    mailbox = DemoMailbox()
    try:
        if not await service.people():
            log.info("seeding the demo workspace in %s", folder)
            await _seed(service, seed_clock)
        catcher = await _start_catcher(mailbox)
    except BaseException:
        await service.close()
        raise
    # The catcher's port changes every run, so the SMTP settings are written every time.
    for key, value in (
        ("smtp.host", "127.0.0.1"),
        ("smtp.port", str(catcher.port)),
        ("smtp.security", "none"),
        ("smtp.username", ""),
        ("smtp.from", FROM_ADDR),
        ("smtp.from_name", "Deskbell Demo Support"),
        ("unseen_delay_s", "60"),
    ):
        await service.set_config(key, value)
    return DemoWorkspace(
        service=service,
        me=ME[1],
        catcher=catcher,
        mailbox=mailbox,
        data_dir=folder,
        teammates=tuple(a for _, a in TEAMMATES),
        customers=tuple(a for _, a in CUSTOMERS),
    )


async def _seed(service: Service, clock: _SeedClock) -> None:
    me = await service.add_person(email=ME[1], name=ME[0], is_admin=True)
    team = [await service.add_person(email=a, name=n) for n, a in TEAMMATES]
    customers = [
        await service.add_person(email=a, name=n, kind=PersonKind.CUSTOMER) for n, a in CUSTOMERS
    ]
    emails = {p.id: p.email for p in (me, *team, *customers)}
    rng = random.Random(7)  # the same history every time
    base = clock.base.now()

    async def post_then_seen(when: datetime, author: str, **where: Any) -> int:
        clock.shift = base - when
        result = await service.post(author=author, **where)
        # Everyone read it within a quarter of an hour (S2 shows who and when).
        for rid in result.recipients:
            seen_at = when + timedelta(minutes=rng.randint(1, 15))
            await service.mark_seen(person_id=rid, message_ids=[result.message_id], at=seen_at)
        return result.message_id

    numbers: list[int] = []
    for title, cust, mates, days_ago, history in _ITEMS:
        start = (base - timedelta(days=days_ago)).replace(hour=9, minute=5, second=0)
        start = min(start, base - timedelta(hours=2))
        clock.shift = base - start
        followers = [ME[1], *(team[i].email for i in mates)]
        requester = customers[cust].email if cust is not None else None
        if requester is not None:
            followers.append(requester)
        item = await service.create_item(title=title, followers=followers, requester=requester)
        numbers.append(item.number)
        when = start
        for who, kind, text in history:
            when += timedelta(minutes=rng.randint(4, 40))
            if who == "me":
                author = ME[1]
            elif who == "c":
                assert requester is not None
                author = requester
            else:
                author = team[int(who[1])].email
            await post_then_seen(when, author, text=text, item_number=item.number, kind=kind)

    direct = await service.direct_conversation(a=ME[1], b=team[0].email)
    when = (base - timedelta(days=1)).replace(hour=11, minute=40, second=0)
    for speaker, line in _DIRECT_HISTORY:
        when += timedelta(minutes=rng.randint(1, 6))
        author = team[0].email if speaker == 0 else ME[1]
        await post_then_seen(when, author, text=line, conversation_id=direct)

    # The newest lines, "now": unseen by you, with their full delay still ahead (E1).
    clock.shift = timedelta(0)
    for index, who, kind, text in _UNSEEN:
        author = team[int(who[1])].email
        result = await service.post(author=author, text=text, item_number=numbers[index], kind=kind)
        others = [r for r in result.recipients if emails.get(r) != ME[1]]
        for rid in others:
            await service.mark_seen(person_id=rid, message_ids=[result.message_id])
    clock.shift = timedelta(0)


async def _wait(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep up to `seconds`; True if `stop` was set meanwhile."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=max(seconds, 0.0))
    return stop.is_set()


async def run_bots(
    workspace: DemoWorkspace,
    stop: asyncio.Event,
    *,
    first_after_s: float = 8,
    every_s: tuple[float, float] = (25, 50),
    read_every_s: float = 4,
    rng: random.Random | None = None,
) -> None:
    """Have a teammate and a customer write now and then until `stop` is set (D9).

    The turns rotate: a customer in an item's external conversation, a teammate in its
    internal one, now and then a teammate in a direct conversation with you. Between turns,
    teammates read what is waiting for them (so you see "seen" under your messages) and
    sometimes answer you. Errors are logged, never raised: the demo must keep going.
    """
    rnd = rng or random.Random()
    service = workspace.service
    me = await service.person(workspace.me)
    mates = [await service.person(a) for a in workspace.teammates]
    replies: list[tuple[str, int]] = []  # (teammate address, conversation id) to answer
    turns = ("customer", "teammate", "customer", "direct", "teammate")
    turn = 0
    next_post = service.clock.monotonic() + first_after_s
    while not stop.is_set():
        wait = min(read_every_s, next_post - service.clock.monotonic())
        if await _wait(stop, wait):
            return
        try:
            await _teammates_read(service, mates, me.id, replies, rnd)
            if service.clock.monotonic() < next_post:
                continue
            if replies:
                author, conv = replies.pop(0)
                await service.post(author=author, text=rnd.choice(_REPLIES), conversation_id=conv)
            else:
                await _bot_turn(workspace, turns[turn % len(turns)], rnd)
                turn += 1
        except Exception:  # a demo bot must never take the app down
            log.exception("demo bot failed")
        next_post = service.clock.monotonic() + rnd.uniform(*every_s)


async def _bot_turn(workspace: DemoWorkspace, kind: str, rnd: random.Random) -> None:
    service = workspace.service
    items = await service.items()
    if kind == "customer":
        candidates = [i for i in items if i.requester is not None]
        item = rnd.choice(candidates)
        assert item.requester is not None
        await service.post(
            author=item.requester.email,
            text=rnd.choice(follow_ups(item.title)[0]),
            item_number=item.number,
            kind=ConversationKind.EXTERNAL,
        )
    elif kind == "teammate":
        item = rnd.choice(items)
        mates = [f.email for f in item.followers if f.email in workspace.teammates]
        author = rnd.choice(mates or list(workspace.teammates))
        if author not in [f.email for f in item.followers]:
            await service.follow(number=item.number, email=author)
        await service.post(
            author=author,
            text=rnd.choice(follow_ups(item.title)[1]),
            item_number=item.number,
            kind=ConversationKind.INTERNAL,
        )
    else:
        author = rnd.choice(workspace.teammates)
        conv = await service.direct_conversation(a=author, b=workspace.me)
        await service.post(author=author, text=rnd.choice(_DIRECT_LINES), conversation_id=conv)


async def _teammates_read(
    service: Service,
    mates: list[PersonInfo],
    me_id: int,
    replies: list[tuple[str, int]],
    rnd: random.Random,
) -> None:
    """Teammates at their desks: they see what waits for them, and may answer you."""
    for mate in mates:
        counts = await service.unseen_counts(person_id=mate.id)
        for conv_id in counts.by_conversation:
            rows = await service.messages(conversation_id=conv_id, viewer_id=mate.id, limit=50)
            unseen = [r for r in rows if r.unseen_by_viewer]
            if not unseen:
                continue
            await service.mark_seen(person_id=mate.id, message_ids=[r.id for r in unseen])
            from_me = any(r.author is not None and r.author.id == me_id for r in unseen)
            info = await service.conversation(conv_id)
            if from_me and info.kind is not ConversationKind.EXTERNAL and rnd.random() < 0.5:
                replies.append((mate.email, conv_id))
