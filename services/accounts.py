"""Accounts and sign-in (T4): passwords, device sessions, throttling, who asks.

Users (agents and administrators) have a password, hashed with argon2id; customers do not
(they will sign in to the customer chat another way). Signing in with an email, a password,
a device name and the client's address gives a session token, shown once: only its SHA-256 is
kept, so a stolen database holds no usable token. A session lasts until it is ended: by
signing out, by its owner, by an administrator, or by a new password (which ends the person's
other sessions).

Failed attempts (a wrong password, a wrong reset code) are counted per account and per client
address (`services.domain.throttle`); each attempt is counted before the password is checked,
in the transaction that checks the count, so parallel guesses cannot slip past it, and a
success gives the count back. A wrong password and an unknown address give the same error
after the same work (an argon2 check against a dummy hash).

Argon2 runs in a worker thread between two units of work, never inside one: a 0.1 s hash held
in SQLite's one writer thread would stall every other write.

Admin operations take the caller: a `SignedIn` (from `authenticate`) or `LOCAL_OPERATOR`, the
command line on the machine that holds the database (which could change any row anyway).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import ipaddress
import re
import secrets
import unicodedata
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import Enum
from typing import TYPE_CHECKING, Final, cast

from sqlalchemy import Table, bindparam, delete, insert, select, update

from services import operations
from services.clock import Clock
from services.conversations import MAX_NAME_CHARS, clean_line
from services.domain.headers import normalize_address
from services.domain.model import PersonKind
from services.domain.throttle import WINDOW, Failures, Scope, after_failure, client_key, retry_at
from services.errors import (
    AuthenticationError,
    InputError,
    NotFoundError,
    PermissionDeniedError,
    TooManyAttemptsError,
)
from services.store import queries
from services.store.changes import record_change
from services.store.database import Database, Tx
from services.store.models import DeviceSession, Person, SignInThrottle
from services.store.prepared import Prepared
from services.system_emails import WELCOME, is_enabled, use_reset_code
from services.views import ChangeKind, PersonInfo

if TYPE_CHECKING:
    from argon2 import PasswordHasher

__all__ = [
    "ENDED_SESSIONS_KEPT",
    "LOCAL_OPERATOR",
    "MAX_PASSWORD_CHARS",
    "MIN_PASSWORD_CHARS",
    "TOUCH_EVERY",
    "Accounts",
    "Caller",
    "NewSession",
    "NewUser",
    "Operator",
    "PasswordSet",
    "SessionInfo",
    "SignedIn",
    "add_user",
    "check_password",
    "hasher",
    "purge_sessions",
]

MIN_PASSWORD_CHARS: Final = 10
MAX_PASSWORD_CHARS: Final = 1000
ENDED_SESSIONS_KEPT: Final = timedelta(days=30)
TOUCH_EVERY: Final = timedelta(minutes=1)  # a session's last use is written at most this often
_TOKEN: Final = re.compile(r"[A-Za-z0-9_-]{43}")  # secrets.token_urlsafe(32)
_CODE: Final = re.compile(r"[0-9]{1,32}")
_WRONG: Final = "wrong email or password"
_WRONG_CODE: Final = "the reset code is wrong or has expired"
_ENDED: Final = "not signed in: the session has ended or the token is not valid; sign in again"


class Operator(Enum):
    LOCAL = "local"


LOCAL_OPERATOR: Final = Operator.LOCAL


@dataclass(frozen=True, slots=True)
class SignedIn:
    """Who asks, as `authenticate` found them: a live session of a user, or of a customer in
    the customer chat (`customer`: such a session reaches only that customer's external
    conversations, R2)."""

    session_id: int
    person_id: int
    email: str
    name: str
    is_admin: bool
    customer: bool = False


Caller = SignedIn | Operator


@dataclass(frozen=True, slots=True)
class NewSession:
    token: str  # shown once: only its hash is stored
    who: SignedIn


@dataclass(frozen=True, slots=True)
class SessionInfo:
    id: int
    person_id: int
    email: str
    device: str
    address: str
    created_at: datetime
    last_used_at: datetime
    ended_at: datetime | None


@dataclass(frozen=True, slots=True)
class PasswordSet:
    person_id: int
    ended_sessions: int  # the person's other sessions, ended by the new password


@dataclass(frozen=True, slots=True)
class NewUser:
    person: PersonInfo
    invited: bool  # the welcome email, which invites them to set a password, was queued


# --- passwords -------------------------------------------------------------------------------


def check_password(password: str, *, email: str | None) -> str:
    """The password as it will be hashed (NFKC, so the same typed text always matches), or
    InputError saying what is wrong with it. `email`: the account's (None: any)."""
    for ch in password:
        if unicodedata.category(ch) in ("Cc", "Cs"):
            raise InputError(
                f"the password must not contain line breaks or control characters (U+{ord(ch):04X})"
            )
    text = unicodedata.normalize("NFKC", password)
    if len(text) < MIN_PASSWORD_CHARS:
        raise InputError(f"the password is too short: at least {MIN_PASSWORD_CHARS} characters")
    if len(text) > MAX_PASSWORD_CHARS:
        raise InputError(f"the password is too long: at most {MAX_PASSWORD_CHARS} characters")
    folded = text.strip().casefold()
    if not folded:
        raise InputError("the password is only spaces")
    if email is not None and folded in (email.casefold(), email.partition("@")[0].casefold()):
        raise InputError("the password must not be the email address")
    return text


def _candidate(password: str) -> str | None:
    """A typed password in the form it was hashed in, or None if no stored one can match."""
    try:
        return check_password(password, email=None)
    except InputError:
        return None


@functools.cache
def hasher() -> PasswordHasher:
    """The password hasher: argon2-cffi's defaults, RFC 9106's second recommended profile
    (argon2id, t=3, 64 MiB, p=4; ~160 ms of CPU here). A hash made with other parameters is
    replaced at the next sign-in. Made on first use: argon2's C library loads only for a
    sign-in or a new password, never at the desktop's start."""
    from argon2 import PasswordHasher

    return PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    return hasher().hash(secrets.token_urlsafe(16))


def _verify(stored: str | None, candidate: str | None) -> bool:
    """Whether `candidate` matches `stored`, after the same work whatever the inputs."""
    from argon2.exceptions import InvalidHashError, VerificationError

    try:
        hasher().verify(stored or _dummy_hash(), candidate or "")
    except (VerificationError, InvalidHashError):  # a mismatch is a VerificationError
        return False
    return stored is not None and candidate is not None


def _hash(password: str) -> str:
    return hasher().hash(password)


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("ascii")).hexdigest()


# --- units of work: throttling ----------------------------------------------------------------

_throttles = cast(Table, SignInThrottle.__table__)


def _insert_ignore(tx: Tx, scope: Scope, key: str, now: datetime) -> None:
    values = {"scope": scope.value, "key": key, "failures": 0, "last_failed_at": now}
    if tx.is_postgres:  # the PostgreSQL dialect loads only for PostgreSQL
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        tx.conn.execute(pg_insert(_throttles).values(values).on_conflict_do_nothing())
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        tx.conn.execute(sqlite_insert(_throttles).values(values).on_conflict_do_nothing())


def _locked_failures(tx: Tx, scope: Scope, key: str, now: datetime) -> Failures:
    """The row of (scope, key), created if missing and locked until this transaction ends."""
    _insert_ignore(tx, scope, key, now)
    count, last_at = tx.conn.execute(
        select(SignInThrottle.failures, SignInThrottle.last_failed_at)
        .where(SignInThrottle.scope == scope.value, SignInThrottle.key == key)
        .with_for_update()
    ).one()
    return Failures(count=count, last_at=last_at)


def _store_failures(tx: Tx, scope: Scope, key: str, failures: Failures) -> None:
    tx.conn.execute(
        update(SignInThrottle)
        .where(SignInThrottle.scope == scope.value, SignInThrottle.key == key)
        .values(failures=failures.count, last_failed_at=failures.last_at)
    )


@dataclass(frozen=True, slots=True)
class _Attempt:
    retry_at: datetime | None  # set: refused, nothing counted
    person_id: int | None
    email: str | None
    stored_hash: str | None


def _begin_attempt(tx: Tx, *, email: str | None, address_key: str, now: datetime) -> _Attempt:
    """Refuse the attempt if the account or the address must wait; else count it as failed
    (given back by `_give_back` on success) and return what it is checked against."""
    keys = [(Scope.ACCOUNT, email)] if email is not None else []
    keys.append((Scope.ADDRESS, address_key))
    counted = [(scope, key, _locked_failures(tx, scope, key, now)) for scope, key in keys]
    waits = [t for scope, _, f in counted if (t := retry_at(f, scope=scope, now=now))]
    if waits:
        return _Attempt(retry_at=max(waits), person_id=None, email=None, stored_hash=None)
    for scope, key, failures in counted:
        _store_failures(tx, scope, key, after_failure(failures, now=now))
    _forget_spent_failures(tx, now)
    row = (
        tx.conn.execute(
            select(Person.id, Person.email, Person.password_hash).where(
                Person.email == email, Person.kind == PersonKind.USER.value
            )
        ).first()
        if email is not None
        else None
    )
    if row is None:
        return _Attempt(retry_at=None, person_id=None, email=None, stored_hash=None)
    return _Attempt(retry_at=None, person_id=row[0], email=row[1], stored_hash=row[2])


def _forget_spent_failures(tx: Tx, now: datetime) -> None:
    """Rows quiet for a whole window count nothing: drop them, so guessed addresses do not
    pile up."""
    tx.conn.execute(delete(SignInThrottle).where(SignInThrottle.last_failed_at < now - WINDOW))


def purge_sessions(tx: Tx, *, now: datetime) -> int:
    """The hourly upkeep (T4): sessions ended more than `ENDED_SESSIONS_KEPT` ago (their
    owner has seen them end in their list of sessions) and spent throttle rows are deleted;
    the number of sessions deleted."""
    ended = tx.conn.execute(
        delete(DeviceSession).where(DeviceSession.ended_at < now - ENDED_SESSIONS_KEPT)
    ).rowcount
    _forget_spent_failures(tx, now)
    return int(ended)


def _give_back(tx: Tx, *, email: str, address_key: str) -> None:
    """A success: the account's failures are forgotten, the address's attempt given back."""
    tx.conn.execute(
        delete(SignInThrottle).where(
            SignInThrottle.scope == Scope.ACCOUNT.value, SignInThrottle.key == email
        )
    )
    tx.conn.execute(
        update(SignInThrottle)
        .where(
            SignInThrottle.scope == Scope.ADDRESS.value,
            SignInThrottle.key == address_key,
            SignInThrottle.failures > 0,
        )
        .values(failures=SignInThrottle.failures - 1)
    )


def _refuse_if_throttled(attempt: _Attempt, now: datetime) -> None:
    if attempt.retry_at is None:
        return
    wait = max(1, int((attempt.retry_at - now).total_seconds() + 0.999))
    raise TooManyAttemptsError(
        f"too many failed attempts: try again after {attempt.retry_at:%H:%M:%S} UTC"
        f" (in {wait} seconds)",
        retry_at=attempt.retry_at,
    )


# --- units of work: sessions and passwords ---------------------------------------------------

_SESSION_COLUMNS = (
    DeviceSession.id,
    DeviceSession.person_id,
    Person.email,
    DeviceSession.device,
    DeviceSession.address,
    DeviceSession.created_at,
    DeviceSession.last_used_at,
    DeviceSession.ended_at,
)
_BY_TOKEN = Prepared[tuple[int, int, str, str, bool, str, datetime, datetime | None]](
    select(
        DeviceSession.id,
        Person.id,
        Person.email,
        Person.name,
        Person.is_admin,
        Person.kind,
        DeviceSession.last_used_at,
        DeviceSession.ended_at,
    )
    .join(Person, Person.id == DeviceSession.person_id)
    .where(DeviceSession.token_hash == bindparam("b_hash"))
)
_TOUCH = Prepared(
    update(DeviceSession)
    .where(DeviceSession.id == bindparam("b_id"), DeviceSession.ended_at.is_(None))
    .values(last_used_at=bindparam("b_now"))
)


def _end_sessions(tx: Tx, *, person_id: int, keep: int | None, now: datetime) -> int:
    stmt = update(DeviceSession).where(
        DeviceSession.person_id == person_id, DeviceSession.ended_at.is_(None)
    )
    if keep is not None:
        stmt = stmt.where(DeviceSession.id != keep)
    ended: int = tx.conn.execute(stmt.values(ended_at=now)).rowcount
    if ended:
        _ended(tx, person_id=person_id, session_id=None, now=now)
    return ended


def _ended(tx: Tx, *, person_id: int, session_id: int | None, now: datetime) -> None:
    """Tell every process (their event streams) that sessions of `person_id` ended: one, or
    (None) any but those still live."""
    record_change(tx, kind=ChangeKind.SESSION, at=now, person_id=person_id, subject_id=session_id)


def _set_hash(tx: Tx, *, person_id: int, new_hash: str, expected: str | None = None) -> bool:
    """Store a new hash; with `expected`, only if the stored one is still that (a password
    changed meanwhile wins)."""
    stmt = update(Person).where(Person.id == person_id)
    if expected is not None:
        stmt = stmt.where(Person.password_hash == expected)
    return tx.conn.execute(stmt.values(password_hash=new_hash)).rowcount == 1


def _new_session(
    tx: Tx, *, person_id: int, token_hash: str, device: str, address: str, now: datetime
) -> int:
    ((session_id,),) = tx.conn.execute(
        insert(DeviceSession)
        .values(
            person_id=person_id,
            token_hash=token_hash,
            device=device,
            address=address,
            created_at=now,
            last_used_at=now,
        )
        .returning(DeviceSession.id)
    )
    return int(session_id)


def _signed_in(
    tx: Tx,
    *,
    attempt: _Attempt,
    address_key: str,
    token_hash: str,
    device: str,
    address: str,
    rehashed: str | None,
    now: datetime,
) -> SignedIn | None:
    assert attempt.person_id is not None and attempt.email is not None
    person = tx.conn.execute(
        select(Person.name, Person.is_admin, Person.password_hash).where(
            Person.id == attempt.person_id
        )
    ).one()
    if person.password_hash != attempt.stored_hash:
        return None  # the password changed while this one was checked
    if rehashed is not None:
        _set_hash(tx, person_id=attempt.person_id, new_hash=rehashed)
    _give_back(tx, email=attempt.email, address_key=address_key)
    session_id = _new_session(
        tx,
        person_id=attempt.person_id,
        token_hash=token_hash,
        device=device,
        address=address,
        now=now,
    )
    return SignedIn(
        session_id=session_id,
        person_id=attempt.person_id,
        email=attempt.email,
        name=person.name,
        is_admin=person.is_admin,
    )


def _password_changed(
    tx: Tx,
    *,
    attempt: _Attempt,
    address_key: str,
    new_hash: str,
    keep: int | None,
    now: datetime,
) -> PasswordSet | None:
    assert attempt.person_id is not None and attempt.email is not None
    if not _set_hash(
        tx, person_id=attempt.person_id, new_hash=new_hash, expected=attempt.stored_hash
    ):
        return None
    _give_back(tx, email=attempt.email, address_key=address_key)
    ended = _end_sessions(tx, person_id=attempt.person_id, keep=keep, now=now)
    return PasswordSet(person_id=attempt.person_id, ended_sessions=ended)


def _reset_with_code(
    tx: Tx, *, attempt: _Attempt, address_key: str, code: str, new_hash: str, now: datetime
) -> PasswordSet | None:
    good = use_reset_code(tx, person_id=attempt.person_id, code=code, now=now)
    if not good or attempt.person_id is None or attempt.email is None:
        return None
    _set_hash(tx, person_id=attempt.person_id, new_hash=new_hash)
    _give_back(tx, email=attempt.email, address_key=address_key)
    ended = _end_sessions(tx, person_id=attempt.person_id, keep=None, now=now)
    return PasswordSet(person_id=attempt.person_id, ended_sessions=ended)


def _is_admin(tx: Tx, acting: Caller) -> bool:
    """Whether the caller administers the workspace, as the database says now; a caller
    whose session has ended meanwhile is no one."""
    if isinstance(acting, Operator):
        return True
    admin = tx.conn.execute(
        select(Person.is_admin)
        .join(DeviceSession, DeviceSession.person_id == Person.id)
        .where(
            DeviceSession.id == acting.session_id,
            Person.id == acting.person_id,
            DeviceSession.ended_at.is_(None),
        )
    ).first()
    if admin is None:
        raise AuthenticationError(_ENDED)
    return bool(admin[0])


def _require_admin(tx: Tx, acting: Caller, what: str) -> None:
    if not _is_admin(tx, acting):
        raise PermissionDeniedError(f"only an administrator may {what}")


def _require_self_or_admin(tx: Tx, acting: Caller, person_id: int, what: str) -> None:
    admin = _is_admin(tx, acting)
    if not admin and not (isinstance(acting, SignedIn) and acting.person_id == person_id):
        raise PermissionDeniedError(f"only an administrator may {what}")


def _user_id(tx: Tx, email: str) -> int:
    person = queries.person_by_email(tx, normalize_address(email), default_delay_s=0)
    if person.kind is not PersonKind.USER:
        raise InputError(f"{person.email} is a customer: only users have a password")
    return person.id


def _set_password(
    tx: Tx, *, acting: Caller, email: str, new_hash: str, now: datetime
) -> PasswordSet:
    _require_admin(tx, acting, "set a password this way (change your own with the current one)")
    person_id = _user_id(tx, email)
    _set_hash(tx, person_id=person_id, new_hash=new_hash)
    keep = acting.session_id if isinstance(acting, SignedIn) else None
    ended = _end_sessions(tx, person_id=person_id, keep=keep, now=now)
    return PasswordSet(person_id=person_id, ended_sessions=ended)


def _session_rows(
    tx: Tx, *, person_id: int | None = None, session_id: int | None = None
) -> list[SessionInfo]:
    stmt = select(*_SESSION_COLUMNS).join(Person, Person.id == DeviceSession.person_id)
    if person_id is not None:
        stmt = stmt.where(DeviceSession.person_id == person_id, DeviceSession.ended_at.is_(None))
    if session_id is not None:
        stmt = stmt.where(DeviceSession.id == session_id)
    return [SessionInfo(*row) for row in tx.conn.execute(stmt.order_by(DeviceSession.id))]


def _sessions(tx: Tx, *, acting: Caller, email: str) -> list[SessionInfo]:
    person = queries.person_by_email(tx, normalize_address(email), default_delay_s=0)
    _require_self_or_admin(tx, acting, person.id, "see another person's sessions")
    return _session_rows(tx, person_id=person.id)


def _end_session(tx: Tx, *, acting: Caller, session_id: int, now: datetime) -> SessionInfo:
    found = _session_rows(tx, session_id=session_id)
    if not found:
        raise NotFoundError(f"no session {session_id}")
    session = found[0]
    _require_self_or_admin(tx, acting, session.person_id, "end another person's session")
    if session.ended_at is not None:
        return session
    tx.conn.execute(
        update(DeviceSession).where(DeviceSession.id == session_id).values(ended_at=now)
    )
    _ended(tx, person_id=session.person_id, session_id=session_id, now=now)
    return replace(session, ended_at=now)


def add_user(
    tx: Tx, ctx: operations.Context, *, acting: Caller, email: str, name: str, admin: bool
) -> NewUser:
    """An administrator adds a user (an agent, or an administrator with `admin`); the
    welcome email, if it is on, invites them to set a password. The first user of a
    workspace administers it either way."""
    _require_admin(tx, acting, "add users")
    person = operations.add_person(
        tx, ctx, email=email, name=name, kind=PersonKind.USER, is_admin=True if admin else None
    )
    return NewUser(person=person, invited=is_enabled(tx, WELCOME))


# --- the service's face ----------------------------------------------------------------------


def _customer_session(
    tx: Tx,
    *,
    acting: Caller,
    email: str,
    token_hash: str,
    device: str,
    address: str,
    now: datetime,
) -> SignedIn:
    _require_admin(tx, acting, "open a customer's chat session")
    person = tx.conn.execute(
        select(Person.id, Person.name, Person.kind).where(Person.email == email)
    ).first()
    if person is None:
        raise NotFoundError(f"no customer {email}")
    if person.kind != PersonKind.CUSTOMER.value:
        raise InputError(f"{email} is not a customer: users sign in with their password")
    session_id = _new_session(
        tx, person_id=person.id, token_hash=token_hash, device=device, address=address, now=now
    )
    return SignedIn(
        session_id=session_id,
        person_id=person.id,
        email=email,
        name=person.name,
        is_admin=False,
        customer=True,
    )


class Accounts:
    """`service.accounts`: sign in, who asks, sessions, passwords (T4). Time comes from the
    service's clock; argon2 runs in a worker thread, between units of work."""

    def __init__(self, db: Database, *, clock: Clock) -> None:
        self._db = db
        self._clock = clock

    async def _attempt(self, email: str | None, address: str) -> tuple[_Attempt, str]:
        address_key = client_key(address)
        now = self._clock.now()
        attempt = await self._db.write(
            _begin_attempt, email=email, address_key=address_key, now=now
        )
        _refuse_if_throttled(attempt, now)
        return attempt, address_key

    async def sign_in(self, *, email: str, password: str, device: str, address: str) -> NewSession:
        """A new device session for a user whose password matches; its token is shown once."""
        device_name = clean_line(device, field="device name", limit=MAX_NAME_CHARS)
        client = _ip(address)
        try:
            account: str | None = normalize_address(email)
        except InputError:
            account = None  # not an address: no account to count against, the same answer
        attempt, address_key = await self._attempt(account, client)
        candidate = _candidate(password)
        if not await asyncio.to_thread(_verify, attempt.stored_hash, candidate):
            raise AuthenticationError(_WRONG)
        assert attempt.stored_hash is not None and candidate is not None
        rehashed = (
            await asyncio.to_thread(_hash, candidate)
            if hasher().check_needs_rehash(attempt.stored_hash)
            else None
        )
        token = secrets.token_urlsafe(32)
        who = await self._db.write(
            _signed_in,
            attempt=attempt,
            address_key=address_key,
            token_hash=_token_hash(token),
            device=device_name,
            address=client,
            rehashed=rehashed,
            now=self._clock.now(),
        )
        if who is None:
            raise AuthenticationError(_WRONG)
        return NewSession(token=token, who=who)

    async def open_customer_session(
        self, *, acting: Caller, email: str, device: str, address: str
    ) -> NewSession:
        """A session for a customer in the customer chat, opened by the server once the
        customer has proved who they are (an emailed link or code); only an administrator or
        the server itself may. Revocable like any other; its token is shown once."""
        token = secrets.token_urlsafe(32)
        who = await self._db.write(
            _customer_session,
            acting=acting,
            email=normalize_address(email),
            token_hash=_token_hash(token),
            device=clean_line(device, field="device name", limit=MAX_NAME_CHARS),
            address=_ip(address),
            now=self._clock.now(),
        )
        return NewSession(token=token, who=who)

    async def authenticate(self, token: str) -> SignedIn:
        """Who holds `token`: a live session's user; AuthenticationError otherwise."""
        if not _TOKEN.fullmatch(token):
            raise AuthenticationError(_ENDED)
        found = await self._db.read(_by_token, _token_hash(token))
        if found is None:
            raise AuthenticationError(_ENDED)
        who, last_used_at = found
        now = self._clock.now()
        if not timedelta(0) <= now - last_used_at < TOUCH_EVERY:
            await self._db.write(_touch, who.session_id, now)
        return who

    async def sign_out(self, who: SignedIn) -> None:
        """End the caller's own session: its token stops working at once."""
        await self._db.write(
            _end_session, acting=who, session_id=who.session_id, now=self._clock.now()
        )

    async def sessions(self, *, acting: Caller, email: str) -> list[SessionInfo]:
        """A person's live sessions, oldest first: one's own, or anyone's for an administrator."""
        return await self._db.read(_sessions, acting=acting, email=email)

    async def end_session(self, *, acting: Caller, session_id: int) -> SessionInfo:
        """End one session: one's own, or anyone's for an administrator."""
        return await self._db.write(
            _end_session, acting=acting, session_id=session_id, now=self._clock.now()
        )

    async def set_password(self, *, acting: Caller, email: str, password: str) -> PasswordSet:
        """An administrator (or the local operator) sets a user's password; the user's
        sessions end, except the one asking if it is theirs."""
        address = normalize_address(email)
        text = check_password(password, email=address)
        new_hash = await asyncio.to_thread(_hash, text)
        return await self._db.write(
            _set_password, acting=acting, email=address, new_hash=new_hash, now=self._clock.now()
        )

    async def change_password(
        self, *, who: SignedIn, current: str, new: str, address: str
    ) -> PasswordSet:
        """A signed-in user changes their own password, proving the current one (a guess
        counts as a failed sign-in); their other sessions end."""
        text = check_password(new, email=who.email)
        attempt, address_key = await self._attempt(who.email, _ip(address))
        if not await asyncio.to_thread(_verify, attempt.stored_hash, _candidate(current)):
            raise AuthenticationError("the current password is wrong")
        new_hash = await asyncio.to_thread(_hash, text)
        done = await self._db.write(
            _password_changed,
            attempt=attempt,
            address_key=address_key,
            new_hash=new_hash,
            keep=who.session_id,
            now=self._clock.now(),
        )
        if done is None:
            raise AuthenticationError("the password was changed meanwhile; sign in again")
        return done

    async def reset_password(
        self, *, email: str, code: str, password: str, address: str
    ) -> PasswordSet:
        """The emailed reset code (M5) sets a new password and ends every session of the
        person. A wrong code counts as a failed sign-in; it and an unknown address give the
        same error."""
        client = _ip(address)
        try:
            account = normalize_address(email)
        except InputError:
            raise AuthenticationError(_WRONG_CODE) from None
        text = check_password(password, email=account)
        attempt, address_key = await self._attempt(account, client)
        typed = code.strip()
        new_hash = await asyncio.to_thread(_hash, text)
        done = await self._db.write(
            _reset_with_code,
            attempt=attempt,
            address_key=address_key,
            code=typed if _CODE.fullmatch(typed) else "",
            new_hash=new_hash,
            now=self._clock.now(),
        )
        if done is None:
            raise AuthenticationError(_WRONG_CODE)
        return done


def _ip(address: str) -> str:
    """The client's address as stored with its session (refused if it is not one)."""
    if len(address) > 64:  # the longest IPv6 text is 45 characters, before a zone
        raise InputError("the client address is too long")
    client_key(address)
    return str(ipaddress.ip_address(address))


def _by_token(tx: Tx, token_hash: str) -> tuple[SignedIn, datetime] | None:
    rows = tx.run(_BY_TOKEN, {"b_hash": token_hash})
    if not rows or rows[0][7] is not None:
        return None
    session_id, person_id, email, name, is_admin, kind, last_used_at, _ = rows[0]
    who = SignedIn(
        session_id=session_id,
        person_id=person_id,
        email=email,
        name=name,
        is_admin=is_admin,
        customer=kind == PersonKind.CUSTOMER.value,
    )
    return who, last_used_at


def _touch(tx: Tx, session_id: int, now: datetime) -> None:
    tx.run(_TOUCH, {"b_id": session_id, "b_now": now})
