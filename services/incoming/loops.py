"""Mail loops and floods (I6): which incoming mail must trigger nothing, and the sender hold.

Pure policy: no I/O, no clock. `loop_reason` reads a parsed mail; `SenderHold` keeps a small
in-memory window whose state is plain tuples (`snapshot()` / `restore()`), so the caller can
persist it or rebuild it by replaying the log. The outgoing caps live in `services.mail.caps`.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from services.incoming.parse import ParsedMail, normalize_address

__all__ = [
    "HoldState",
    "SenderHold",
    "loop_reason",
]

_BULK_PRECEDENCE = frozenset({"bulk", "junk", "list", "auto_reply", "auto-reply"})
_AUTOREPLY_HEADERS = ("x-autoreply", "x-autorespond", "x-autoresponder")
_SYSTEM_SENDERS = frozenset({"mailer-daemon", "postmaster"})
_REPORT_TYPES = frozenset(
    {
        "multipart/report",
        "message/delivery-status",
        "message/global-delivery-status",
        "message/disposition-notification",
    }
)
_SYSTEM_NAME = re.compile(r"\b(mailer-daemon|postmaster)\b", re.IGNORECASE)


def _domain_matches(domain: str, own_domains: Collection[str]) -> bool:
    domain = domain.lower().rstrip(".")
    return any(
        domain == own.lower().rstrip(".") or domain.endswith("." + own.lower().rstrip("."))
        for own in own_domains
        if own
    )


def _system_sender(mail: ParsedMail) -> str | None:
    if mail.from_addr:
        local = mail.from_addr.split("@", 1)[0]
        return local if local in _SYSTEM_SENDERS else None
    # A bare "MAILER-DAEMON" without a domain does not pass address validation.
    found = _SYSTEM_NAME.search(mail.header("From") or "")
    return found.group(1).lower() if found else None


def loop_reason(
    mail: ParsedMail,
    *,
    own_addresses: Collection[str],
    own_domains: Collection[str],
    loop_tag: str = "deskbell",
) -> str | None:
    """Why this mail must be logged as ignored and trigger nothing (I6), or None."""
    auto_submitted = (mail.header("Auto-Submitted") or "").split(";")[0].strip().lower()
    if auto_submitted and auto_submitted != "no":
        return f"auto-submitted mail (Auto-Submitted: {auto_submitted})"
    precedence = (mail.header("Precedence") or "").strip().lower()
    if precedence in _BULK_PRECEDENCE:
        return f"bulk mail (Precedence: {precedence})"
    names = {name.lower() for name, _value in mail.headers}
    for header in _AUTOREPLY_HEADERS:
        if header in names:
            return f"auto-reply ({_header_name(mail, header)} header)"
    list_headers = sorted(name for name, _value in mail.headers if name.lower().startswith("list-"))
    if list_headers:
        return f"mailing list mail ({list_headers[0]} header)"
    if any(value.replace(" ", "") == "<>" for value in mail.header_values("Return-Path")):
        return "bounce (empty Return-Path)"
    system = _system_sender(mail)
    if system is not None:
        return f"mail from the mail system ({system})"
    report = next((ct for ct in mail.content_types if ct in _REPORT_TYPES), None)
    if report is not None:
        return f"delivery report ({report})"
    tag = loop_tag.lower()
    if tag and any(tag in value.lower() for value in mail.header_values("X-Loop")):
        return f"our own mail came back (X-Loop: {loop_tag})"
    if mail.message_id and "@" in mail.message_id:
        domain = mail.message_id.rsplit("@", 1)[1]
        if _domain_matches(domain, own_domains):
            return f"our own mail came back (Message-ID domain {domain.lower()})"
    own = {a for a in (normalize_address(x) for x in own_addresses) if a}
    if mail.from_addr and mail.from_addr in own:
        return f"sent from our own address ({mail.from_addr})"
    return None


def _header_name(mail: ParsedMail, lowered: str) -> str:
    return next((name for name, _value in mail.headers if name.lower() == lowered), lowered)


# A sender's state: (sender, times of recent mails, held until or None).
HoldState = tuple[tuple[str, tuple[datetime, ...], datetime | None], ...]


@dataclass
class SenderHold:
    """I6: more than `max_mails` from one sender within `window` holds them for `hold_for`."""

    max_mails: int = 15
    window: timedelta = timedelta(minutes=10)
    hold_for: timedelta = timedelta(minutes=15)
    _seen: dict[str, deque[datetime]] = field(default_factory=dict, repr=False)
    _held_until: dict[str, datetime] = field(default_factory=dict, repr=False)

    @property
    def reason(self) -> str:
        minutes = int(self.window.total_seconds() // 60)
        return f"sender held: more than {self.max_mails} mails in {minutes} minutes"

    def record(self, sender: str, now: datetime) -> str | None:
        """Count one mail from `sender` at `now`; the reason if it must be held, else None."""
        key = sender.strip().lower()
        until = self._held_until.get(key)
        if until is not None:
            if now < until:
                return self.reason
            del self._held_until[key]
        times = self._seen.setdefault(key, deque())
        times.append(now)
        while times and times[0] <= now - self.window:
            times.popleft()
        if len(times) > self.max_mails:
            # The flood starts a fresh count once the hold is over.
            self._held_until[key] = now + self.hold_for
            del self._seen[key]
            return self.reason
        return None

    def held_until(self, sender: str) -> datetime | None:
        return self._held_until.get(sender.strip().lower())

    def prune(self, now: datetime) -> None:
        """Forget windows and holds that are over (keeps memory bounded)."""
        for key in [k for k, until in self._held_until.items() if until <= now]:
            del self._held_until[key]
        for key, times in list(self._seen.items()):
            while times and times[0] <= now - self.window:
                times.popleft()
            if not times:
                del self._seen[key]

    def snapshot(self) -> HoldState:
        keys = sorted(set(self._seen) | set(self._held_until))
        return tuple(
            (key, tuple(self._seen.get(key, ())), self._held_until.get(key)) for key in keys
        )

    def restore(self, state: Iterable[tuple[str, Iterable[datetime], datetime | None]]) -> None:
        self._seen.clear()
        self._held_until.clear()
        for sender, times, until in state:
            key = sender.strip().lower()
            ordered = sorted(times)
            if ordered:
                self._seen[key] = deque(ordered)
            if until is not None:
                self._held_until[key] = until
