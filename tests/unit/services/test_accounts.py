"""Accounts and sign-in through the real Service, on SQLite and PostgreSQL (T4, M5).

Passwords are argon2id hashes; a session token is shown once and only its SHA-256 is kept;
failed sign-ins are throttled per account and per client address, driven by the injected
clock (no sleeping); an agent cannot do what only an administrator may.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import argon2
import pytest
from sqlalchemy import select, update

from services import accounts
from services.api import (
    LOCAL_OPERATOR,
    AuthenticationError,
    InputError,
    NotFoundError,
    PermissionDeniedError,
    Service,
    SignedIn,
    TooManyAttemptsError,
)
from services.clock import ManualClock
from services.domain.throttle import BACKOFF_CAP, WINDOW
from services.store.database import Tx
from services.store.models import DeviceSession, Person, SignInThrottle
from tests.support.world import World, open_service, seed

ANN, BOB, CARL = "ann@example.com", "bob@example.com", "carl@customer.org"
PW = "correct horse battery"
HERE = "192.0.2.10"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def svc(database_url: str, clock: ManualClock) -> AsyncIterator[Service]:
    service = await open_service(database_url, clock=clock)
    yield service
    await service.close()


@pytest.fixture
async def world(svc: Service) -> World:
    """Ann (the first user: an administrator) and Bob (an agent) with passwords; Carl a customer."""
    w = await seed(svc)
    for email in (ANN, BOB):
        await svc.set_password(acting=LOCAL_OPERATOR, email=email, password=PW)
    return w


async def _sign_in(svc: Service, email: str, password: str = PW, address: str = HERE) -> Any:
    return await svc.sign_in(email=email, password=password, device="laptop", address=address)


def _rows(tx: Tx, stmt: Any) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in tx.conn.execute(stmt)]


# --- passwords ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("password", "says"),
    [
        ("short1234", "too short"),
        ("bob@example.com", "email"),
        ("BOB@Example.com", "email"),
        ("bob", "too short"),
        ("bobbobbobbob\n", "line breaks or control characters"),
        ("nul\x00in the middle", "control characters"),
        ("a lone \ud800 surrogate", "control characters"),
        ("x" * 100_000, "too long"),
        (" " * 12, "only spaces"),
    ],
)
async def test_t4_password_policy_refuses_with_a_clear_input_error(
    svc: Service, world: World, password: str, says: str
) -> None:
    with pytest.raises(InputError, match=says):
        await svc.set_password(acting=LOCAL_OPERATOR, email=BOB, password=password)
    await _sign_in(svc, BOB)  # the old password still works: nothing changed


async def test_t4_only_users_have_passwords(svc: Service, world: World) -> None:
    with pytest.raises(InputError, match="customer"):
        await svc.set_password(acting=LOCAL_OPERATOR, email=CARL, password=PW)
    with pytest.raises(NotFoundError):
        await svc.set_password(acting=LOCAL_OPERATOR, email="nobody@example.com", password=PW)


async def test_t4_only_hashes_are_stored(svc: Service, world: World) -> None:
    """The password is an argon2id hash; the token only a SHA-256; neither appears in clear."""
    new = await _sign_in(svc, BOB)
    [(stored,)] = await svc.db.read(_rows, select(Person.password_hash).where(Person.email == BOB))
    assert stored.startswith("$argon2id$") and PW not in stored
    assert argon2.PasswordHasher().verify(stored, PW)
    [(token_hash,)] = await svc.db.read(_rows, select(DeviceSession.token_hash))
    assert token_hash == hashlib.sha256(new.token.encode()).hexdigest()
    dump = repr(await svc.db.read(_rows, select(DeviceSession))) + repr(
        await svc.db.read(_rows, select(Person))
    )
    assert new.token not in dump and PW not in dump


async def test_t4_a_hash_made_with_old_parameters_is_replaced_at_sign_in(
    svc: Service, world: World
) -> None:
    weak = argon2.PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1).hash(PW)
    await svc.db.write(
        lambda tx: tx.conn.execute(
            update(Person).where(Person.email == BOB).values(password_hash=weak)
        )
    )
    await _sign_in(svc, BOB)
    [(stored,)] = await svc.db.read(_rows, select(Person.password_hash).where(Person.email == BOB))
    assert stored != weak
    assert not accounts.hasher().check_needs_rehash(stored)
    await _sign_in(svc, BOB)


# --- signing in --------------------------------------------------------------------------


async def test_t4_sign_in_gives_a_session_that_authenticates(svc: Service, world: World) -> None:
    new = await _sign_in(svc, " Bob@Example.com ")
    assert new.who.email == BOB and not new.who.is_admin
    who = await svc.authenticate(new.token)
    assert who == new.who
    admin = await svc.authenticate((await _sign_in(svc, ANN)).token)
    assert admin.is_admin and admin.name == "Ann Agent"


async def test_t4_wrong_password_and_unknown_email_give_the_same_error_after_the_same_work(
    svc: Service, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each attempt runs one argon2 check with the same parameters: for an unknown address,
    a customer, a user without a password and a wrong password alike."""
    await svc.add_person(email="dan@example.com", name="Dan")  # no password yet
    checked: list[bytes] = []
    real = argon2._password_hasher.verify_secret

    def spy(hash: bytes, secret: bytes, type: argon2.Type) -> bool:
        checked.append(hash.split(b"$")[3])  # "m=65536,t=3,p=4"
        return real(hash, secret, type)

    monkeypatch.setattr(argon2._password_hasher, "verify_secret", spy)
    messages = set()
    for email, password in (
        (BOB, "wrong password!"),
        ("nobody@example.com", PW),
        (CARL, PW),
        ("dan@example.com", PW),
        ("not an address", PW),
        (BOB, "x" * 5000),
    ):
        with pytest.raises(AuthenticationError) as refused:
            await _sign_in(svc, email, password)
        assert not isinstance(refused.value, TooManyAttemptsError)
        messages.add(str(refused.value))
    assert messages == {"wrong email or password"}
    assert len(checked) == 6 and len(set(checked)) == 1, checked


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("device", "lap\ntop", "line break"),
        ("device", "", "empty"),
        ("device", "d" * 5000, "too long"),
        ("address", "not-an-ip", "not an IP address"),
        ("address", "1.2.3.4\r\n", "not an IP address"),
        ("address", "fe80::1%" + "e" * 100, "too long"),
    ],
)
async def test_t4_sign_in_refuses_a_bad_device_name_or_address(
    svc: Service, world: World, field: str, value: str, says: str
) -> None:
    args = {"email": BOB, "password": PW, "device": "laptop", "address": HERE, field: value}
    with pytest.raises(InputError, match=says):
        await svc.sign_in(**args)


def _forged(token: str) -> list[str]:
    return [
        secrets.token_urlsafe(32),  # well formed, never issued
        token[:-1],  # truncated
        token[:-1] + ("A" if token[-1] != "A" else "B"),  # one character changed
        token + "A",
        token + "\n",
        token[:20] + "\x00" + token[21:],
        "x" * 100_000,
        "",
        "é" * 43,
    ]


async def test_t4_a_forged_truncated_or_ended_token_is_refused(svc: Service, world: World) -> None:
    new = await _sign_in(svc, BOB)
    for bad in _forged(new.token):
        with pytest.raises(AuthenticationError, match="not signed in"):
            await svc.authenticate(bad)
    await svc.authenticate(new.token)
    await svc.sign_out(new.who)
    with pytest.raises(AuthenticationError, match="not signed in"):
        await svc.authenticate(new.token)


async def test_t4_last_use_is_written_at_most_once_a_minute(
    svc: Service, world: World, clock: ManualClock
) -> None:
    new = await _sign_in(svc, BOB)
    start = clock.now()

    async def last_used() -> Any:
        [s] = await svc.sessions(acting=new.who, email=BOB)
        return s.last_used_at

    clock.advance(30)
    await svc.authenticate(new.token)
    assert await last_used() == start
    clock.advance(31)
    await svc.authenticate(new.token)
    assert await last_used() == clock.now()
    clock.advance(59)
    await svc.authenticate(new.token)
    assert await last_used() == clock.now() - timedelta(seconds=59)


# --- throttling (injected clock) ---------------------------------------------------------


async def test_t4_failed_sign_ins_are_throttled_per_account_with_backoff(
    svc: Service, world: World, clock: ManualClock
) -> None:
    for _ in range(5):  # a person mistyping: free
        with pytest.raises(AuthenticationError, match="wrong email or password"):
            await _sign_in(svc, BOB, "wrong password!")
    with pytest.raises(TooManyAttemptsError) as refused:
        await _sign_in(svc, BOB)  # even the right password waits
    assert refused.value.retry_at == clock.now() + timedelta(seconds=30)
    assert "try again after 09:00:30 UTC (in 30 seconds)" in str(refused.value)
    # Another address does not help: the account is throttled wherever the guesses come from.
    with pytest.raises(TooManyAttemptsError):
        await _sign_in(svc, BOB, address="198.51.100.7")
    # Ann is not affected.
    await _sign_in(svc, ANN)
    clock.advance(30)
    with pytest.raises(AuthenticationError, match="wrong"):
        await _sign_in(svc, BOB, "wrong password!")
    with pytest.raises(TooManyAttemptsError) as refused:
        await _sign_in(svc, BOB)
    assert refused.value.retry_at == clock.now() + timedelta(seconds=60)  # doubled
    waits = []
    for _ in range(8):
        clock.advance((refused.value.retry_at - clock.now()).total_seconds())
        with pytest.raises(AuthenticationError):
            await _sign_in(svc, BOB, "wrong password!")
        with pytest.raises(TooManyAttemptsError) as refused:
            await _sign_in(svc, BOB)
        waits.append(refused.value.retry_at - clock.now())
    assert waits[-1] == BACKOFF_CAP and waits == sorted(waits)
    clock.advance(BACKOFF_CAP.total_seconds())
    await _sign_in(svc, BOB)  # waiting it out works, and a success forgets the failures
    for _ in range(5):
        with pytest.raises(AuthenticationError, match="wrong email or password"):
            await _sign_in(svc, BOB, "wrong password!")


async def test_t4_parallel_guesses_cannot_slip_past_the_throttle(
    svc: Service, world: World
) -> None:
    """Twelve guesses at once (PostgreSQL runs them on parallel connections): each is counted
    before its password is checked, so exactly the five free ones are checked."""
    results = await asyncio.gather(
        *(_sign_in(svc, BOB, f"guess number {i}", address=f"198.51.100.{i}") for i in range(12)),
        return_exceptions=True,
    )
    kinds = sorted(type(r).__name__ for r in results)
    assert kinds == ["AuthenticationError"] * 5 + ["TooManyAttemptsError"] * 7, results


async def test_t4_failures_are_forgotten_after_a_quiet_window(
    svc: Service, world: World, clock: ManualClock
) -> None:
    for _ in range(5):
        with pytest.raises(AuthenticationError):
            await _sign_in(svc, "ghost@example.com", PW)
    with pytest.raises(TooManyAttemptsError):
        await _sign_in(svc, "ghost@example.com", PW)
    clock.advance(WINDOW.total_seconds())
    with pytest.raises(AuthenticationError, match="wrong email or password"):
        await _sign_in(svc, "ghost@example.com", PW)
    # An unknown address is counted like a known one, and stale rows are purged.
    rows = await svc.db.read(_rows, select(SignInThrottle.scope, SignInThrottle.failures))
    assert sorted(rows) == [("account", 1), ("address", 1)]


async def test_t4_failed_sign_ins_are_throttled_per_client_address(
    svc: Service, world: World, clock: ManualClock
) -> None:
    """Guesses spread over many accounts from one address (an IPv6 client by its /64)."""
    for i in range(20):
        with pytest.raises(AuthenticationError, match="wrong email or password"):
            await _sign_in(svc, f"guess{i}@example.com", PW, address=f"2001:db8:1:2::{i + 1:x}")
    with pytest.raises(TooManyAttemptsError):
        await _sign_in(svc, BOB, address="2001:db8:1:2:ffff::1")
    await _sign_in(svc, BOB, address="2001:db8:1:3::1")  # another network
    await _sign_in(svc, ANN, address=HERE)
    clock.advance(30)
    await _sign_in(svc, BOB, address="2001:db8:1:2::99")


async def test_t4_successful_sign_ins_from_one_address_are_not_counted_against_it(
    svc: Service, world: World
) -> None:
    """An office signing everyone in from one address never trips the address limit."""
    for _ in range(21):
        await _sign_in(svc, BOB)


# --- sessions ----------------------------------------------------------------------------


async def test_t4_a_user_sees_and_ends_their_sessions(svc: Service, world: World) -> None:
    laptop = await _sign_in(svc, BOB)
    phone = await svc.sign_in(email=BOB, password=PW, device="phone", address="203.0.113.5")
    listed = await svc.sessions(acting=phone.who, email=BOB)
    assert [(s.id, s.device, s.address) for s in listed] == [
        (laptop.who.session_id, "laptop", HERE),
        (phone.who.session_id, "phone", "203.0.113.5"),
    ]
    ended = await svc.end_session(acting=phone.who, session_id=laptop.who.session_id)
    assert ended.ended_at is not None
    with pytest.raises(AuthenticationError):
        await svc.authenticate(laptop.token)
    assert await svc.authenticate(phone.token) == phone.who
    assert [s.device for s in await svc.sessions(acting=phone.who, email=BOB)] == ["phone"]
    with pytest.raises(NotFoundError):
        await svc.end_session(acting=phone.who, session_id=10_000)


async def test_t4_an_agent_cannot_do_admin_actions(svc: Service, world: World) -> None:
    bob_session = await _sign_in(svc, BOB)
    bob, bob_token = bob_session.who, bob_session.token
    ann = await _sign_in(svc, ANN)
    with pytest.raises(PermissionDeniedError, match="administrator"):
        await svc.add_user(acting=bob, email="eve@example.com", name="Eve", admin=True)
    with pytest.raises(PermissionDeniedError, match="administrator"):
        await svc.set_password(acting=bob, email=ANN, password="bob owns you now")
    with pytest.raises(PermissionDeniedError, match="administrator"):
        await svc.set_password(acting=bob, email=BOB, password="my own new password")
    with pytest.raises(PermissionDeniedError, match="administrator"):
        await svc.sessions(acting=bob, email=ANN)
    with pytest.raises(PermissionDeniedError, match="administrator"):
        await svc.end_session(acting=bob, session_id=ann.who.session_id)
    assert await svc.authenticate(ann.token) == ann.who
    with pytest.raises(NotFoundError):
        await svc.person("eve@example.com")
    # A session claiming more than the database says is not believed.
    forged = SignedIn(
        session_id=bob.session_id, person_id=bob.person_id, email=BOB, name="B", is_admin=True
    )
    with pytest.raises(PermissionDeniedError):
        await svc.end_session(acting=forged, session_id=ann.who.session_id)
    # A caller whose session ended (or never was) is no one, even an administrator.
    await svc.sign_out(ann.who)
    for gone in (ann.who, SignedIn(10_000, ann.who.person_id, ANN, "Ann", True)):
        with pytest.raises(AuthenticationError):
            await svc.add_user(acting=gone, email="eve@example.com", name="Eve")
        with pytest.raises(AuthenticationError):
            await svc.end_session(acting=gone, session_id=bob.session_id)
    assert await svc.authenticate(bob_token) == bob


async def test_t4_an_administrator_sees_and_ends_anyones_sessions(
    svc: Service, world: World
) -> None:
    bob = await _sign_in(svc, BOB)
    ann = (await _sign_in(svc, ANN)).who
    [seen] = await svc.sessions(acting=ann, email=BOB)
    assert seen.id == bob.who.session_id
    await svc.end_session(acting=ann, session_id=seen.id)
    with pytest.raises(AuthenticationError):
        await svc.authenticate(bob.token)
    assert await svc.sessions(acting=LOCAL_OPERATOR, email=BOB) == []


async def test_t4_an_admin_adds_a_user_and_the_welcome_invites_them(
    svc: Service, world: World
) -> None:
    ann = (await _sign_in(svc, ANN)).who
    quiet = await svc.add_user(acting=ann, email="dan@example.com", name="Dan")
    assert not quiet.invited and not quiet.person.is_admin
    await svc.system_emails.enable("welcome")
    new = await svc.add_user(acting=ann, email="eve@example.com", name="Eve", admin=True)
    assert new.invited and new.person.is_admin
    assert [e.to_addrs for e in await svc.emails()] == [("eve@example.com",)]
    with pytest.raises(AuthenticationError):
        await _sign_in(svc, "eve@example.com", "")  # no password until one is set


# --- new passwords end other sessions ----------------------------------------------------


async def test_t4_setting_a_password_ends_the_persons_sessions(svc: Service, world: World) -> None:
    bob = await _sign_in(svc, BOB)
    ann = await _sign_in(svc, ANN)
    done = await svc.set_password(acting=ann.who, email=BOB, password="a brand new secret")
    assert done.ended_sessions == 1
    with pytest.raises(AuthenticationError):
        await svc.authenticate(bob.token)
    with pytest.raises(AuthenticationError, match="wrong email or password"):
        await _sign_in(svc, BOB)
    await _sign_in(svc, BOB, "a brand new secret")
    # An administrator setting their own keeps the session they asked from.
    other = await _sign_in(svc, ANN)
    done = await svc.set_password(acting=ann.who, email=ANN, password="ann's new secret")
    assert done.ended_sessions == 1
    await svc.authenticate(ann.token)
    with pytest.raises(AuthenticationError):
        await svc.authenticate(other.token)


async def test_t4_changing_ones_password_needs_the_current_one(svc: Service, world: World) -> None:
    laptop = await _sign_in(svc, BOB)
    phone = await _sign_in(svc, BOB)
    with pytest.raises(AuthenticationError, match="current password is wrong"):
        await svc.change_password(
            who=laptop.who, current="not it at all", new="a brand new secret", address=HERE
        )
    with pytest.raises(InputError, match="email"):
        await svc.change_password(who=laptop.who, current=PW, new=BOB, address=HERE)
    done = await svc.change_password(
        who=laptop.who, current=PW, new="a brand new secret", address=HERE
    )
    assert done.ended_sessions == 1
    await svc.authenticate(laptop.token)
    with pytest.raises(AuthenticationError):
        await svc.authenticate(phone.token)
    await _sign_in(svc, BOB, "a brand new secret")


async def _reset_code(svc: Service, email: str) -> str:
    request = await svc.system_emails.reset_password(email)
    body = (await svc.email_detail(request.email_id)).body
    return next(w for w in body.split() if w.isdigit() and len(w) == 8)


async def test_t4_m5_the_reset_code_sets_a_new_password_and_ends_every_session(
    svc: Service, world: World, clock: ManualClock
) -> None:
    bob = await _sign_in(svc, BOB)
    code = await _reset_code(svc, BOB)
    wrong = "00000000" if code != "00000000" else "11111111"
    for bad in (wrong, "", "12\n34", "x" * 100_000, "1234\ud800"):
        with pytest.raises(AuthenticationError, match="code is wrong or has expired"):
            await svc.reset_password(email=BOB, code=bad, password="new secret!!", address=HERE)
    with pytest.raises(InputError, match="too short"):  # refused before the code is used
        await svc.reset_password(email=BOB, code=code, password="short", address=HERE)
    clock.advance(30)  # five wrong codes: the next attempt waits (the throttle test below)
    done = await svc.reset_password(email=BOB, code=code, password="new secret!!", address=HERE)
    assert done.ended_sessions == 1
    with pytest.raises(AuthenticationError):
        await svc.authenticate(bob.token)
    with pytest.raises(AuthenticationError, match="wrong email or password"):
        await _sign_in(svc, BOB)
    await _sign_in(svc, BOB, "new secret!!")
    with pytest.raises(AuthenticationError, match="code is wrong"):  # it worked once
        await svc.reset_password(email=BOB, code=code, password="another secret", address=HERE)
    with pytest.raises(AuthenticationError, match="code is wrong"):  # an unknown address
        await svc.reset_password(
            email="nobody@example.com", code=code, password="another secret", address=HERE
        )


async def test_t4_m5_reset_codes_cannot_be_guessed_past_the_throttle(
    svc: Service, world: World, clock: ManualClock
) -> None:
    code = await _reset_code(svc, BOB)
    wrong = "00000000" if code != "00000000" else "11111111"
    for i in range(5):
        with pytest.raises(AuthenticationError, match="code is wrong"):
            await svc.reset_password(
                email=BOB, code=wrong, password="new secret!!", address=f"198.51.100.{i}"
            )
    with pytest.raises(TooManyAttemptsError):
        await svc.reset_password(email=BOB, code=code, password="new secret!!", address=HERE)
    clock.advance(30)
    await svc.reset_password(email=BOB, code=code, password="new secret!!", address=HERE)


async def test_t4_m5_the_welcome_code_lets_a_new_user_choose_a_password(
    svc: Service, world: World, clock: ManualClock
) -> None:
    await svc.system_emails.enable("welcome")
    await svc.add_user(acting=LOCAL_OPERATOR, email="dan@example.com", name="Dan")
    await svc.add_user(acting=LOCAL_OPERATOR, email="eve@example.com", name="Eve")
    codes = {}
    for entry in await svc.emails():
        body = (await svc.email_detail(entry.id)).body
        assert "within 7 days" in body
        codes[entry.to_addrs[0]] = next(w for w in body.split() if w.isdigit() and len(w) == 8)
    await svc.reset_password(
        email="dan@example.com", code=codes["dan@example.com"], password=PW, address=HERE
    )
    await _sign_in(svc, "dan@example.com")
    clock.advance(7 * 24 * 3600)  # a week later the invitation has lapsed
    with pytest.raises(AuthenticationError, match="code is wrong or has expired"):
        await svc.reset_password(
            email="eve@example.com", code=codes["eve@example.com"], password=PW, address=HERE
        )


async def test_t4_a_customer_chat_session_is_opened_by_an_administrator_and_says_customer(
    svc: Service, world: World
) -> None:
    new = await svc.open_customer_session(
        acting=LOCAL_OPERATOR, email=CARL, device="chat", address=HERE
    )
    who = await svc.authenticate(new.token)
    assert (who.email, who.customer, who.is_admin) == (CARL, True, False)
    bob = (await svc.sign_in(email=BOB, password=PW, device="d", address=HERE)).who
    assert bob.customer is False
    with pytest.raises(PermissionDeniedError):
        await svc.open_customer_session(acting=bob, email=CARL, device="chat", address=HERE)
    with pytest.raises(InputError, match="not a customer"):
        await svc.open_customer_session(acting=LOCAL_OPERATOR, email=BOB, device="c", address=HERE)
    await svc.sign_out(who)
    with pytest.raises(AuthenticationError):
        await svc.authenticate(new.token)


# --- the hourly upkeep ---------------------------------------------------------------------


async def test_t4_the_hourly_upkeep_deletes_sessions_ended_long_ago_and_spent_throttles(
    svc: Service, world: World, clock: ManualClock
) -> None:
    """Injected clock: a session ended more than a month ago is deleted by the service's own
    upkeep, a live or recently ended one is kept; failures past their window are forgotten."""
    old = (await _sign_in(svc, ANN)).who.session_id
    await svc.end_session(acting=LOCAL_OPERATOR, session_id=old)
    with pytest.raises(AuthenticationError):
        await _sign_in(svc, BOB, password="wrong password", address="192.0.2.99")
    clock.advance((accounts.ENDED_SESSIONS_KEPT - timedelta(days=1)).total_seconds())
    recent = (await _sign_in(svc, ANN)).who.session_id
    await svc.end_session(acting=LOCAL_OPERATOR, session_id=recent)
    live = (await _sign_in(svc, BOB)).who.session_id
    clock.advance(timedelta(days=2).total_seconds())  # `old` ended past the keep; `recent` not
    assert timedelta(days=2) > WINDOW  # so every throttle row is spent too
    throttles = select(SignInThrottle.scope, SignInThrottle.key)
    assert await svc.db.read(_rows, throttles)

    await svc.start()  # the upkeep's first pass runs at once, then hourly

    sessions = select(DeviceSession.id).order_by(DeviceSession.id)
    async with asyncio.timeout(60):
        while await svc.db.read(_rows, sessions) != [(recent,), (live,)]:  # noqa: ASYNC110
            await asyncio.sleep(0.05)  # (the upkeep task's write, seen in the database)
    assert await svc.db.read(_rows, throttles) == []
