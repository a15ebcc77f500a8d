"""The email fallback end to end inside one process: real SQLite, real aiosmtpd, a hand clock."""

from __future__ import annotations

from email.message import Message

import pytest

from services.api import ConversationKind, Service
from services.clock import ManualClock
from services.domain.model import EmailStatus
from services.errors import InputError, PermissionDeniedError
from tests.support.databases import sqlite_only
from tests.support.smtpd import SmtpServer
from tests.support.world import World, open_service, seed


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def svc(database_url: str, clock: ManualClock, smtp_server: SmtpServer) -> Service:
    service = await open_service(database_url, clock=clock)
    await service.set_config("smtp.host", "127.0.0.1")
    await service.set_config("smtp.port", str(smtp_server.port))
    await service.set_config("smtp.security", "none")
    await service.set_config("smtp.from", "support@deskbell.test")
    yield service
    await service.close()


@pytest.fixture
async def world(svc: Service) -> World:
    return await seed(svc, delay_s=60)


async def _post(svc: Service, author: str, text: str, kind: ConversationKind) -> int:
    return (await svc.post(author=author, text=text, item_number=1, kind=kind)).message_id


async def _tick(svc: Service) -> int:
    """Queue what is due and send it; returns how many notification emails were tried."""
    before = len(await svc.emails(direction="out"))
    await svc.run_scheduler_once()
    await svc.outbox.flush()
    after = await svc.emails(direction="out")
    return sum(
        1
        for e in after[: len(after) - before]
        if e.kind == "notification" and e.status != "suppressed"
    )


def _notifications(server: SmtpServer) -> list[Message]:
    return [m for m in server.handler.messages if str(m["Subject"]).startswith("[#")]


def _to(msg: Message) -> str:
    return str(msg["To"])


async def test_e1_unseen_message_is_emailed_after_its_full_delay_and_not_before(
    svc: Service, world: World, clock: ManualClock, smtp_server: SmtpServer
) -> None:
    await _post(svc, "ann@example.com", "Bob, can you look?", ConversationKind.INTERNAL)
    clock.advance(59.9)
    assert await _tick(svc) == 0
    assert _notifications(smtp_server) == []
    clock.advance(0.1)
    assert await _tick(svc) == 1
    [msg] = _notifications(smtp_server)
    assert "bob@example.com" in _to(msg)


async def test_r2_r4_internal_message_reaches_neither_customer_nor_author(
    svc: Service, world: World, clock: ManualClock, smtp_server: SmtpServer
) -> None:
    await _post(svc, "ann@example.com", "internal note", ConversationKind.INTERNAL)
    clock.advance(3600)
    await _tick(svc)
    recipients = {_to(m) for m in _notifications(smtp_server)}
    assert all("carl@" not in r and "ann@" not in r for r in recipients)
    assert len(recipients) == 1


async def test_r3_external_message_reaches_users_and_customer(
    svc: Service, world: World, clock: ManualClock, smtp_server: SmtpServer
) -> None:
    await _post(svc, "carl@customer.org", "my printer", ConversationKind.EXTERNAL)
    clock.advance(61)
    assert await _tick(svc) == 2
    assert sorted(_to(m).split("<")[-1] for m in _notifications(smtp_server)) == [
        "ann@example.com>",
        "bob@example.com>",
    ]


async def test_s3_message_seen_before_its_delay_is_never_emailed(
    svc: Service, world: World, clock: ManualClock, smtp_server: SmtpServer
) -> None:
    mid = await _post(svc, "ann@example.com", "quick one", ConversationKind.INTERNAL)
    clock.advance(30)
    await svc.mark_seen(person_id=world.bob, message_ids=[mid])
    clock.advance(3600)
    assert await _tick(svc) == 0
    assert _notifications(smtp_server) == []


async def test_e2_one_email_per_recipient_and_conversation_then_wait_a_delay(
    svc: Service, world: World, clock: ManualClock, smtp_server: SmtpServer
) -> None:
    await _post(svc, "ann@example.com", "first", ConversationKind.INTERNAL)
    clock.advance(10)
    await _post(svc, "ann@example.com", "second", ConversationKind.INTERNAL)
    clock.advance(50)
    # 60 s after "first": only "first" is due, so it leaves alone ("second" gets its full delay).
    assert await _tick(svc) == 1
    first_mail = _notifications(smtp_server)[0]
    body = first_mail.get_body(preferencelist=("plain",))  # type: ignore[attr-defined]
    assert "first" in body.get_content() and "second" not in body.get_content().split("Earlier")[0]
    await _post(svc, "ann@example.com", "third", ConversationKind.INTERNAL)
    clock.advance(61)
    # "second" and "third" are due, and a full delay has passed since the first email.
    assert await _tick(svc) == 1
    second_mail = _notifications(smtp_server)[1]
    text = second_mail.get_body(preferencelist=("plain",)).get_content()  # type: ignore[attr-defined]
    assert "second" in text and "third" in text
    # E4: the same subject and threading on the first email.
    assert second_mail["Subject"] == first_mail["Subject"] == "[#1] Printer on fire"
    assert second_mail["In-Reply-To"] == first_mail["Message-ID"]
    assert first_mail["Message-ID"] in second_mail["References"]


async def test_e2_next_email_waits_a_full_delay_after_the_previous(
    svc: Service, world: World, clock: ManualClock, smtp_server: SmtpServer
) -> None:
    await _post(svc, "ann@example.com", "one", ConversationKind.INTERNAL)
    clock.advance(60)
    assert await _tick(svc) == 1
    clock.advance(1)
    await _post(svc, "ann@example.com", "two", ConversationKind.INTERNAL)
    clock.advance(59.5)  # "two" is not yet due
    assert await _tick(svc) == 0
    clock.advance(1)  # due, and more than a delay after the first email
    assert await _tick(svc) == 1


async def test_e4_email_headers_and_alternatives(
    svc: Service, world: World, clock: ManualClock, smtp_server: SmtpServer
) -> None:
    await _post(svc, "ann@example.com", "<b>not html</b> & more", ConversationKind.INTERNAL)
    clock.advance(60)
    await _tick(svc)
    [msg] = _notifications(smtp_server)
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg["X-Auto-Response-Suppress"] == "All"
    assert msg["Message-ID"].endswith("@deskbell.deskbell.test>")
    assert "support+" in msg["Reply-To"]
    types = {part.get_content_type() for part in msg.walk()}
    assert {"text/plain", "text/html"} <= types
    html = msg.get_body(preferencelist=("html",)).get_content()  # type: ignore[attr-defined]
    assert "<b>not html</b>" not in html and "&lt;b&gt;not html&lt;/b&gt;" in html


async def test_e3_seen_after_queueing_but_before_sending_is_left_out(
    svc: Service, world: World, clock: ManualClock, smtp_server: SmtpServer
) -> None:
    mid = await _post(svc, "ann@example.com", "x", ConversationKind.INTERNAL)
    clock.advance(60)
    await svc.run_scheduler_once()
    await svc.mark_seen(person_id=world.bob, message_ids=[mid])
    await svc.outbox.flush()
    assert _notifications(smtp_server) == []
    [entry] = await svc.emails()
    assert entry.status == EmailStatus.SUPPRESSED and entry.reason == "seen before the email"


async def test_e3_recipient_who_turned_emails_off_is_left_out_with_reason(
    svc: Service, world: World, clock: ManualClock, smtp_server: SmtpServer
) -> None:
    from dataclasses import replace

    mid = await _post(svc, "ann@example.com", "x", ConversationKind.INTERNAL)
    bob = await svc.person_by_id(world.bob)
    await svc.set_notification_settings(
        person_id=world.bob, settings=replace(bob.settings, email=False)
    )
    clock.advance(120)
    assert await _tick(svc) == 0
    rows = await svc.messages(conversation_id=1, viewer_id=world.ann)
    [row] = [r for r in rows if r.id == mid]
    assert [(e.email, e.status, e.detail) for e in row.status.emailed] == [
        ("bob@example.com", "suppressed", "emails turned off")
    ]


async def test_e6_smtp_down_then_up_each_email_arrives_exactly_once(
    database_url: str, clock: ManualClock
) -> None:
    from tests.support.smtpd import free_port

    port = free_port()
    svc = await open_service(database_url, clock=clock)
    try:
        await svc.set_config("smtp.host", "127.0.0.1")
        await svc.set_config("smtp.port", str(port))
        await svc.set_config("smtp.security", "none")
        await seed(svc)
        for n in range(3):
            await _post(svc, "ann@example.com", f"message {n}", ConversationKind.INTERNAL)
            await _post(svc, "carl@customer.org", f"customer {n}", ConversationKind.EXTERNAL)
        clock.advance(60)
        await _tick(svc)
        log = await svc.emails()
        assert log and all(e.status == EmailStatus.RETRYING for e in log)
        assert all(e.next_attempt_at is not None for e in log)
        with SmtpServer(port=port) as server:
            clock.advance(30)
            assert await svc.outbox.flush() == 0  # the retry is not due yet (1 minute)
            clock.advance(31)
            await svc.outbox.flush()
            clock.advance(3600)
            await _tick(svc)
            ids = [m["Message-ID"] for m in _notifications(server)]
        assert len(ids) == len(set(ids)) == len(log)
        assert {e.status for e in await svc.emails()} == {EmailStatus.SENT}
    finally:
        await svc.close()


@pytest.mark.parametrize(
    ("reply", "status"),
    [
        ("421 4.3.2 shutting down", EmailStatus.RETRYING),
        ("451 4.3.0 try later", EmailStatus.RETRYING),
        ("552 5.2.2 mailbox full", EmailStatus.RETRYING),
        ("550 5.1.1 no such user", EmailStatus.FAILED),
    ],
)
async def test_e6_server_replies_decide_retry_or_failure(
    svc: Service,
    world: World,
    clock: ManualClock,
    smtp_server: SmtpServer,
    reply: str,
    status: EmailStatus,
) -> None:
    smtp_server.handler.data_reply = reply
    await _post(svc, "ann@example.com", "x", ConversationKind.INTERNAL)
    clock.advance(60)
    await _tick(svc)
    [entry] = await svc.emails()
    assert entry.status == status
    assert entry.reply is not None and reply.split(" ", 1)[1].split(" ", 1)[1] in entry.reply


async def test_e6_each_recipient_has_its_own_outcome(
    svc: Service, world: World, clock: ManualClock, smtp_server: SmtpServer
) -> None:
    smtp_server.handler.rcpt_replies["bob@example.com"] = "550 5.1.1 no such user"
    await _post(svc, "carl@customer.org", "help", ConversationKind.EXTERNAL)
    clock.advance(60)
    await _tick(svc)
    by_to = {e.to_addrs[0]: e.status for e in await svc.emails()}
    assert by_to == {"ann@example.com": EmailStatus.SENT, "bob@example.com": EmailStatus.FAILED}


@sqlite_only
async def test_e7_interrupted_send_is_resent_with_the_same_message_id(
    database_url: str, clock: ManualClock, smtp_server: SmtpServer
) -> None:
    """E7: a claim is resent with the same Message-ID once it runs out.

    The lease follows the injected clock, which is the database's clock on SQLite only (on
    PostgreSQL it is the server's: test_outbox_claims proves that one)."""
    svc = await open_service(database_url, clock=clock)
    await svc.set_config("smtp.host", "127.0.0.1")
    await svc.set_config("smtp.port", str(smtp_server.port))
    await svc.set_config("smtp.security", "none")
    await svc.set_config("outbox.lease_s", "30")
    await seed(svc)
    await _post(svc, "ann@example.com", "x", ConversationKind.INTERNAL)
    clock.advance(60)
    await svc.run_scheduler_once()
    claimed = await svc.outbox.claim()  # claimed, then the process "dies" before sending
    assert len(claimed) == 1
    await svc.close()
    again = await open_service(database_url, clock=clock)
    try:
        assert await again.outbox.flush() == 0  # the claim still holds
        clock.advance(31)
        assert await again.outbox.flush() == 1
        [msg] = _notifications(smtp_server)
        assert msg["Message-ID"] == claimed[0].message_id
        clock.advance(3600)
        assert await again.outbox.flush() == 0  # accepted once, never again
    finally:
        await again.close()


async def test_e8_what_fell_due_during_a_clock_jump_goes_out_at_once(
    svc: Service, world: World, clock: ManualClock, smtp_server: SmtpServer
) -> None:
    await _post(svc, "ann@example.com", "x", ConversationKind.INTERNAL)
    clock.jump(7200)  # the laptop slept for two hours
    assert await _tick(svc) == 1


async def test_e11_line_breaks_never_reach_a_header(svc: Service) -> None:
    # Encoded-word lookalikes are kept and encoded when sent: test_incoming_routing.py.
    with pytest.raises(InputError):
        await svc.add_person(email="eve@example.com", name="Eve\r\nBcc: victim@example.com")
    with pytest.raises(InputError):
        await svc.add_person(email="eve@example.com\r\nRCPT TO:<x@y.z>", name="Eve")
    with pytest.raises(InputError):
        await svc.create_item(title="Hi\nBcc: victim@example.com")
    assert await svc.people() == []


async def test_r2_customer_cannot_post_internally(svc: Service, world: World) -> None:
    with pytest.raises(PermissionDeniedError):
        await _post(svc, "carl@customer.org", "sneaky", ConversationKind.INTERNAL)


async def test_e7_a_retry_goes_only_to_the_recipients_not_yet_accepted(
    svc: Service, clock: ManualClock, smtp_server: SmtpServer
) -> None:
    """An outbox row with several recipients (a template to a list, say): one accepted, one
    told to retry; the retry never reaches the first again."""
    smtp_server.handler.rcpt_replies["bob@example.com"] = "451 4.7.1 greylisted"
    email_id = await _queue_raw(svc, to=["ann@example.com", "bob@example.com"])
    await svc.outbox.flush()
    assert smtp_server.handler.envelopes[-1].rcpt_tos == ["ann@example.com"]
    [entry] = [e for e in await svc.emails() if e.id == email_id]
    assert entry.status == EmailStatus.RETRYING and entry.to_addrs == ("bob@example.com",)
    smtp_server.handler.rcpt_replies.clear()
    clock.advance(61)
    await svc.outbox.flush()
    assert smtp_server.handler.envelopes[-1].rcpt_tos == ["bob@example.com"]
    [entry] = [e for e in await svc.emails() if e.id == email_id]
    assert entry.status == EmailStatus.SENT


async def _queue_raw(svc: Service, *, to: list[str]) -> int:
    from email.message import EmailMessage

    from services.store.database import Tx
    from services.store.email_bodies import store_bodies
    from services.store.models import Email

    msg = EmailMessage()
    msg["From"] = "support@deskbell.test"
    msg["To"] = ", ".join(to)
    msg["Subject"] = "to several"
    msg["Message-ID"] = "<several.1@deskbell.test>"
    msg.set_content("hello")

    def queue(tx: Tx) -> int:
        row = Email(
            direction="out",
            kind="template",
            status=EmailStatus.QUEUED,
            uid="several-1",
            message_id=msg["Message-ID"],
            from_addr="support@deskbell.test",
            to_addrs=to,
            subject="to several",
            created_at=svc.clock.now(),
        )
        tx.session.add(row)
        tx.session.flush()
        store_bodies(tx, [(row.id, msg.as_bytes())])
        return row.id

    return await svc.db.write(queue)


async def test_r5_never_email_me_is_kept_and_honoured(
    svc: Service, world: World, clock: ManualClock, smtp_server: SmtpServer
) -> None:
    from dataclasses import replace

    bob = await svc.person_by_id(world.bob)
    await svc.set_notification_settings(
        person_id=world.bob, settings=replace(bob.settings, delay_s=None)
    )
    assert (await svc.person_by_id(world.bob)).settings.delay_s is None
    await _post(svc, "ann@example.com", "x", ConversationKind.INTERNAL)
    clock.advance(86_400)
    assert await _tick(svc) == 0
    assert _notifications(smtp_server) == []


async def test_i6_a_conversation_with_thirty_followers_reaches_every_one(
    svc: Service, world: World, clock: ManualClock, smtp_server: SmtpServer
) -> None:
    """I6: the cap is a loop guard per recipient, never across recipients: 30 more followers
    (32 recipients in all) each get their email, and nothing is suppressed."""
    for n in range(30):
        email = f"agent{n}@example.com"
        await svc.add_person(email=email, name=f"Agent {n}")
        await svc.follow(number=1, email=email)
    await _post(svc, "ann@example.com", "to everyone", ConversationKind.INTERNAL)
    clock.advance(60)
    await svc.run_scheduler_once()
    await svc.outbox.flush()
    log = [e for e in await svc.emails() if e.kind == "notification"]
    assert len(log) == 31  # Bob and the 30 agents (Ann wrote it, Carl is a customer)
    assert {e.status for e in log} == {EmailStatus.SENT}
    assert len({_to(m) for m in _notifications(smtp_server)}) == 31


async def test_i6_outgoing_caps_ten_per_recipient_and_conversation_in_ten_minutes(
    svc: Service, world: World, clock: ManualClock, smtp_server: SmtpServer
) -> None:
    """I6: an 11th email to one recipient about one conversation within 10 minutes is held
    (suppressed, with the reason); the other recipients of the conversation are not."""
    await svc.set_config("unseen_delay_s", "1")
    for n in range(11):
        await _post(svc, "ann@example.com", f"ping {n}", ConversationKind.INTERNAL)
        clock.advance(2)
        await svc.run_scheduler_once()
        await svc.outbox.flush()
        clock.advance(30)
    log = [e for e in await svc.emails() if e.kind == "notification"]
    to_bob = [e for e in log if e.to_addrs == ("bob@example.com",)]
    assert [e.status for e in to_bob].count(EmailStatus.SENT) == 10
    [held] = [e for e in to_bob if e.status == EmailStatus.SUPPRESSED]
    assert held.reason is not None and "loop guard" in held.reason
    # A new recipient of the same conversation is not held back by Bob's count.
    await svc.add_person(email="dana@example.com", name="Dana")
    await svc.follow(number=1, email="dana@example.com")
    await _post(svc, "ann@example.com", "welcome Dana", ConversationKind.INTERNAL)
    clock.advance(2)
    await svc.run_scheduler_once()
    await svc.outbox.flush()
    to_dana = [e for e in await svc.emails() if e.to_addrs == ("dana@example.com",)]
    assert [e.status for e in to_dana] == [EmailStatus.SENT]
    clock.advance(600)  # the window has passed: Bob is emailed again
    await _post(svc, "ann@example.com", "again", ConversationKind.INTERNAL)
    clock.advance(2)
    await svc.run_scheduler_once()
    await svc.outbox.flush()
    latest = next(e for e in await svc.emails() if e.to_addrs == ("bob@example.com",))
    assert latest.status == EmailStatus.SENT


async def test_i6_outgoing_caps_hold_for_template_emails_too(
    svc: Service, world: World, clock: ManualClock, smtp_server: SmtpServer
) -> None:
    """An automation or system email counts against the 30-per-recipient cap as well."""
    for _ in range(31):
        await svc.system_emails.reset_password("bob@example.com")
    resets = [e for e in await svc.emails() if e.to_addrs == ("bob@example.com",)]
    assert len(resets) == 31
    assert [e.status for e in resets].count(EmailStatus.SUPPRESSED) == 1


async def test_n6_emails_held_during_do_not_disturb_leave_as_one_when_it_ends(
    svc: Service, world: World, clock: ManualClock, smtp_server: SmtpServer
) -> None:
    from dataclasses import replace
    from datetime import timedelta

    bob = await svc.person_by_id(world.bob)
    await svc.set_notification_settings(
        person_id=world.bob,
        settings=replace(bob.settings, dnd_until=clock.now() + timedelta(minutes=30)),
    )
    for text in ("first", "second", "third"):
        await _post(svc, "ann@example.com", text, ConversationKind.INTERNAL)
        clock.advance(300)
    assert await _tick(svc) == 0  # all three are due, but Bob is not to be disturbed
    clock.advance(15 * 60 + 1)  # do not disturb has ended
    assert await _tick(svc) == 1
    [mail] = _notifications(smtp_server)
    body = mail.get_body(preferencelist=("plain",)).get_content()  # type: ignore[attr-defined]
    assert all(word in body for word in ("first", "second", "third"))


async def test_e3_a_deleted_message_is_never_emailed_and_stops_counting(
    svc: Service, world: World, clock: ManualClock, smtp_server: SmtpServer
) -> None:
    kept = await _post(svc, "ann@example.com", "kept", ConversationKind.INTERNAL)
    gone = await _post(svc, "ann@example.com", "gone", ConversationKind.INTERNAL)
    await svc.delete_message(message_id=gone, acting="ann@example.com")
    assert (await svc.unseen_counts(person_id=world.bob)).total == 1
    clock.advance(60)
    assert await _tick(svc) == 1
    [mail] = _notifications(smtp_server)
    body = mail.get_body(preferencelist=("plain",)).get_content()  # type: ignore[attr-defined]
    assert "kept" in body and "gone" not in body
    assert [r.id for r in await svc.messages(conversation_id=1, viewer_id=world.bob)] == [kept]
    with pytest.raises(PermissionDeniedError):
        await svc.delete_message(message_id=kept, acting="bob@example.com")
