"""System emails (M5): welcome to a new user, a password reset code, a note to a new customer.

Each has a template of the same name (`services.template_store`). Welcome and the new
customer note start switched off, so people added in bulk, by the demo, or before mail is set
up get nothing unexpected; an administrator switches them on. The password reset is always on: the
service refuses to switch it off, and its template cannot be saved without `{{ code }}`.

A reset code is eight random digits, sent once; only a salted hash is kept, with its expiry,
and it works once (T4).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import select

from services.clock import Clock
from services.domain.headers import normalize_address
from services.domain.model import PersonKind
from services.errors import InputError, NotFoundError, PermissionDeniedError, quoted
from services.mail.compose import queue_template_email
from services.mail.identity import MailIdentity
from services.store import queries
from services.store.changes import record_change
from services.store.database import Database, Tx
from services.store.models import Email, EmailTemplate, PasswordReset, SystemEmail
from services.template_catalog import BUILTIN_TEMPLATES, PASSWORD_RESET, obj
from services.views import ChangeKind, PersonInfo

__all__ = [
    "ALWAYS_ON",
    "DEFAULTS",
    "INVITE_CODE_TTL",
    "RESET_CODE_TTL",
    "ResetRequest",
    "SystemEmailInfo",
    "SystemEmails",
    "is_enabled",
    "on_person_created",
    "seed_system_emails",
    "send_system_email",
    "use_reset_code",
]

WELCOME: Final = "welcome"
NEW_CUSTOMER: Final = "new_customer"
DEFAULTS: Final[Mapping[str, bool]] = {WELCOME: False, PASSWORD_RESET: True, NEW_CUSTOMER: False}
ALWAYS_ON: Final = frozenset({PASSWORD_RESET})
RESET_CODE_TTL: Final = timedelta(minutes=30)
INVITE_CODE_TTL: Final = timedelta(days=7)  # the welcome's code: read when the person starts
_HASH_ROUNDS: Final = 100_000


@dataclass(frozen=True, slots=True)
class SystemEmailInfo:
    name: str
    description: str
    enabled: bool
    always_on: bool


@dataclass(frozen=True, slots=True)
class ResetRequest:
    email_id: int
    expires_at: datetime


def seed_system_emails(tx: Tx) -> None:
    session = tx.session
    have = set(session.scalars(select(SystemEmail.name)))
    for name, enabled in DEFAULTS.items():
        if name not in have:
            session.add(SystemEmail(name=name, enabled=enabled))


def _hash_code(code: str, salt: bytes) -> str:
    digest = hashlib.pbkdf2_hmac("sha256", code.encode(), salt, _HASH_ROUNDS)
    return f"{salt.hex()}${digest.hex()}"


def send_system_email(
    tx: Tx,
    *,
    name: str,
    person: PersonInfo,
    now: datetime,
    identity: MailIdentity,
    extra: Mapping[str, object] | None = None,
) -> Email | None:
    """Queue system email `name` to `person` in the caller's transaction, if it is enabled."""
    if not is_enabled(tx, name) and name not in ALWAYS_ON:
        return None
    template = tx.session.get(EmailTemplate, name)
    if template is None:
        raise NotFoundError(f"no template {quoted(name)}")
    variables: dict[str, object] = {
        "person": obj(name=person.name, email=person.email),
        "workspace": obj(name=identity.from_name, address=identity.from_addr),
        **(extra or {}),
    }
    return queue_template_email(
        tx,
        template=template,
        variables=variables,
        to_addr=person.email,
        to_name=person.name,
        identity=identity,
        now=now,
        kind="system",
        recipient_id=person.id,
    )


def is_enabled(tx: Tx, name: str) -> bool:
    """Whether system email `name` is switched on."""
    row = tx.session.get(SystemEmail, name)
    return DEFAULTS.get(name, False) if row is None else row.enabled


def on_person_created(
    tx: Tx, *, person: PersonInfo, now: datetime, identity: MailIdentity
) -> Email | None:
    """Welcome a new user with a one-time code that sets their password (T4), or greet a
    new customer (each if enabled)."""
    if person.kind is not PersonKind.USER:
        return send_system_email(tx, name=NEW_CUSTOMER, person=person, now=now, identity=identity)
    if not is_enabled(tx, WELCOME):
        return None
    code = _store_code(tx, person_id=person.id, now=now, ttl=INVITE_CODE_TTL)
    extra = {"code": code, "expires_minutes": int(INVITE_CODE_TTL.total_seconds() // 60)}
    return send_system_email(
        tx, name=WELCOME, person=person, now=now, identity=identity, extra=extra
    )


def _store_code(tx: Tx, *, person_id: int, now: datetime, ttl: timedelta) -> str:
    """A new one-time code for the person (eight random digits); any earlier one stops
    working. Only a salted hash is kept."""
    code = f"{secrets.randbelow(10**8):08d}"
    hashed = _hash_code(code, secrets.token_bytes(16))
    row = tx.session.get(PasswordReset, person_id)
    if row is None:
        tx.session.add(
            PasswordReset(
                person_id=person_id, code_hash=hashed, created_at=now, expires_at=now + ttl
            )
        )
    else:
        row.code_hash, row.created_at, row.expires_at = hashed, now, now + ttl
    return code


def _list(tx: Tx) -> list[SystemEmailInfo]:
    rows = {r.name: r.enabled for r in tx.session.scalars(select(SystemEmail))}
    return [
        SystemEmailInfo(
            name=name,
            description=BUILTIN_TEMPLATES[name][1],
            enabled=rows.get(name, default) or name in ALWAYS_ON,
            always_on=name in ALWAYS_ON,
        )
        for name, default in DEFAULTS.items()
    ]


def _set_enabled(tx: Tx, key: str, *, enabled: bool, now: datetime) -> None:
    row = tx.session.get(SystemEmail, key)
    if row is None:
        tx.session.add(SystemEmail(name=key, enabled=enabled))
    else:
        row.enabled = enabled
    record_change(tx, kind=ChangeKind.SETTINGS, at=now)


def _reset_password(tx: Tx, *, email: str, now: datetime, identity: MailIdentity) -> ResetRequest:
    person = queries.person_by_email(tx, normalize_address(email), default_delay_s=0)
    if person.kind is not PersonKind.USER:
        raise InputError(f"{person.email} is a customer: only users have a password")
    expires = now + RESET_CODE_TTL
    code = _store_code(tx, person_id=person.id, now=now, ttl=RESET_CODE_TTL)
    sent = send_system_email(
        tx,
        name=PASSWORD_RESET,
        person=person,
        now=now,
        identity=identity,
        extra={"code": code, "expires_minutes": int(RESET_CODE_TTL.total_seconds() // 60)},
    )
    assert sent is not None  # always on
    return ResetRequest(email_id=sent.id, expires_at=expires)


def _check_reset_code(tx: Tx, *, email: str, code: str, now: datetime) -> bool:
    person = queries.person_by_email(tx, normalize_address(email), default_delay_s=0)
    return use_reset_code(tx, person_id=person.id, code=code, now=now)


def use_reset_code(tx: Tx, *, person_id: int | None, code: str, now: datetime) -> bool:
    """Whether `code` is the person's live reset code; a right or expired code is used up.
    For no person (an unknown address) the same work is done, so the time taken tells
    nothing."""
    row = tx.session.get(PasswordReset, person_id) if person_id is not None else None
    if row is None:
        _hash_code(code, bytes(16))
        return False
    salt_hex, _, _ = row.code_hash.partition("$")
    good = hmac.compare_digest(_hash_code(code.strip(), bytes.fromhex(salt_hex)), row.code_hash)
    if good or now >= row.expires_at:
        tx.session.delete(row)
    return good and now < row.expires_at


class SystemEmails:
    """`service.system_emails`: list, enable, disable, and the password reset (M5, M8)."""

    def __init__(self, db: Database, *, clock: Clock, identity: Callable[[], MailIdentity]) -> None:
        self._db = db
        self._clock = clock
        self._identity = identity

    async def list(self) -> list[SystemEmailInfo]:
        return await self._db.read(_list)

    async def set_enabled(self, name: str, *, enabled: bool) -> SystemEmailInfo:
        key = name.strip().lower().replace("-", "_")
        if key not in DEFAULTS:
            raise NotFoundError(f"no system email {quoted(name)}; one of: {', '.join(DEFAULTS)}")
        if key in ALWAYS_ON and not enabled:
            raise PermissionDeniedError(f"the {key} email is always on: it cannot be disabled")
        await self._db.write(_set_enabled, key, enabled=enabled, now=self._clock.now())
        return SystemEmailInfo(
            name=key,
            description=BUILTIN_TEMPLATES[key][1],
            enabled=enabled,
            always_on=key in ALWAYS_ON,
        )

    async def enable(self, name: str) -> SystemEmailInfo:
        return await self.set_enabled(name, enabled=True)

    async def disable(self, name: str) -> SystemEmailInfo:
        return await self.set_enabled(name, enabled=False)

    async def reset_password(self, email: str) -> ResetRequest:
        """Send a one-time code to `email` (a user); any earlier code stops working."""
        return await self._db.write(
            _reset_password,
            email=email,
            now=self._clock.now(),
            identity=self._identity(),
        )

    async def check_reset_code(self, *, email: str, code: str) -> bool:
        """True once for the right code within its time; the code is used up either way."""
        return await self._db.write(
            _check_reset_code, email=email, code=code, now=self._clock.now()
        )
