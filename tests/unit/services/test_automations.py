"""Automations, stored templates and system emails through the real Service on SQLite (M1-M5)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import update

from services.api import ConversationKind, PersonKind, Service, TemplateError
from services.clock import ManualClock
from services.domain.model import EmailStatus
from services.errors import InputError, NotFoundError, PermissionDeniedError
from services.store.models import EmailTemplate
from tests.support.world import World, open_service, seed


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
    return await seed(svc, delay_s=60)


async def _messages(svc: Service, number: int = 1) -> list[tuple[ConversationKind, str, str]]:
    return [(k, m.source, m.text) for k, m in await svc.item_messages(number)]


# --- M1: the critical automation ------------------------------------------------------------


async def test_m1_critical_automation_stands_first_and_cannot_be_disabled_or_deleted(
    svc: Service,
) -> None:
    first, *_ = await svc.automations.list()
    assert first.critical
    assert first.enabled
    assert first.position == 0
    with pytest.raises(PermissionDeniedError, match="cannot be disabled"):
        await svc.automations.disable(first.id)
    with pytest.raises(PermissionDeniedError, match="cannot be deleted"):
        await svc.automations.delete(first.id)
    again = await svc.automations.get(first.id)
    assert again.enabled
    assert again.critical


async def test_m1_e5_critical_text_is_the_notification_emails_intro(
    svc: Service, world: World, clock: ManualClock
) -> None:
    critical = (await svc.automations.list())[0]
    await svc.automations.set_text(critical.id, "Fresh news in {{ conversation.subject }}!")
    await svc.post(
        author="ann@example.com", text="look", item_number=1, kind=ConversationKind.INTERNAL
    )
    clock.advance(61)
    await svc.run_scheduler_once()
    [email] = [e for e in await svc.emails() if e.kind == "notification"]
    detail = await svc.email_detail(email.id)
    assert "Fresh news in [#1] Printer on fire!" in detail.body


async def test_m1_critical_text_with_unknown_variable_is_refused_with_the_line(
    svc: Service,
) -> None:
    critical = (await svc.automations.list())[0]
    with pytest.raises(TemplateError, match="line 1: unknown variable 'secret'"):
        await svc.automations.set_text(critical.id, "Hi {{ secret }}")
    assert (await svc.automations.get(critical.id)).text == critical.text


# --- M2: triggers, conditions and actions ---------------------------------------------------


async def test_m2_shipped_example_item_closed_tells_the_followers(
    svc: Service, world: World
) -> None:
    await svc.close_item(number=1, acting="ann@example.com")
    [(kind, source, text)] = await _messages(svc)
    assert kind is ConversationKind.INTERNAL
    assert source == "automation"
    assert text == "[#1] Printer on fire was closed by Ann Agent."
    # R1 with no author: every user follower gets it (the customer never: internal, R2).
    rows = await svc.item_messages(1)
    assert set(rows[0][1].status.waiting) == {"Ann Agent", "Bob Agent"}


async def test_m2_item_created_trigger_inserts_into_the_external_conversation(
    svc: Service, world: World
) -> None:
    await svc.automations.create(
        name="greet",
        trigger="item_created",
        actions=[{"kind": "message", "conversation": "external"}],
        text="We got {{ item.ref }} {{ item.title }}.",
    )
    info = await svc.create_item(title="Scanner jam", followers=["carl@customer.org"])
    assert await _messages(svc, info.number) == [
        (ConversationKind.EXTERNAL, "automation", f"We got [#{info.number}] Scanner jam.")
    ]


async def test_m2_status_changed_trigger_with_a_status_condition(
    svc: Service, world: World
) -> None:
    await svc.automations.create(
        name="pending note",
        trigger="item_status_changed",
        conditions={"item_status": "pending"},
        actions=[{"kind": "message", "conversation": "internal"}],
        text="{{ event.old_status }} -> {{ event.new_status }}",
    )
    await svc.set_item_status(number=1, status="in-progress")
    assert [t for _, _, t in await _messages(svc)] == []
    await svc.set_item_status(number=1, status="pending")
    assert [t for _, _, t in await _messages(svc)] == ["in-progress -> pending"]


async def test_m2_message_posted_trigger_with_author_and_conversation_conditions(
    svc: Service, world: World
) -> None:
    await svc.automations.create(
        name="ack customers",
        trigger="message_posted",
        conditions={"conversation_kind": "external", "author_kind": "customer"},
        actions=[{"kind": "message", "conversation": "external"}],
        text="Thanks {{ message.author }}, we read it.",
    )
    await svc.post(
        author="ann@example.com", text="hi", item_number=1, kind=ConversationKind.EXTERNAL
    )
    await svc.post(
        author="carl@customer.org", text="help", item_number=1, kind=ConversationKind.EXTERNAL
    )
    texts = [t for _, s, t in await _messages(svc) if s == "automation"]
    assert texts == ["Thanks Carl Customer, we read it."]


async def test_m2_email_actions_reach_followers_requester_and_assignee(
    svc: Service, world: World
) -> None:
    await svc.templates.save(
        name="closed-note",
        subject="{{ item.ref }} closed",
        body_text="Hello {{ recipient.name }}: {{ item.title }} is {{ item.status }}.",
        body_html="<p>Hello {{ recipient.name }}</p>",
    )
    for to in ("followers", "requester", "assignee"):
        await svc.automations.create(
            name=f"mail {to}",
            trigger="item_closed",
            actions=[{"kind": "email", "to": to, "template": "closed-note"}],
        )
    item = await svc.create_item(
        title="Desk", followers=["bob@example.com"], requester="carl@customer.org"
    )
    await svc.assign_item(number=item.number, email="bob@example.com")
    await svc.close_item(number=item.number, acting="ann@example.com")
    sent = [e for e in await svc.emails() if e.kind == "template"]
    recipients = sorted(e.to_addrs[0] for e in sent)
    # followers: Bob and Carl (Ann closed it and does not follow); requester Carl; assignee Bob
    assert recipients == sorted(
        ["bob@example.com", "carl@customer.org", "carl@customer.org", "bob@example.com"]
    )
    assert all(
        e.status == EmailStatus.QUEUED and e.subject == f"[#{item.number}] closed" for e in sent
    )
    detail = await svc.email_detail(sent[0].id)
    assert ("Auto-Submitted", "auto-generated") in detail.headers
    assert "is closed." in detail.body


async def test_m2_person_created_trigger_emails_the_new_person(svc: Service) -> None:
    await svc.templates.save(
        name="hello", subject="Hi", body_text="Hello {{ recipient.name }}", kind="automation"
    )
    await svc.automations.create(
        name="hello customers",
        trigger="person_created",
        conditions={"person_kind": "customer"},
        actions=[{"kind": "email", "to": "person", "template": "hello"}],
    )
    await svc.add_person(email="u@example.com", name="U")
    await svc.add_person(email="c@example.org", name="C", kind=PersonKind.CUSTOMER)
    assert [e.to_addrs for e in await svc.emails()] == [("c@example.org",)]


async def test_m2_bad_automations_are_refused(svc: Service) -> None:
    with pytest.raises(InputError, match="unknown trigger"):
        await svc.automations.create(name="x", trigger="item_burnt", actions=[{"kind": "message"}])
    with pytest.raises(InputError, match="internal' or 'external"):
        await svc.automations.create(
            name="x", trigger="item_closed", actions=[{"kind": "message", "conversation": "x"}]
        )
    with pytest.raises(NotFoundError, match="no template"):
        await svc.automations.create(
            name="x",
            trigger="item_closed",
            actions=[{"kind": "email", "to": "followers", "template": "nope"}],
        )
    with pytest.raises(InputError, match="only applies"):
        await svc.automations.create(
            name="x",
            trigger="item_closed",
            conditions={"author_kind": "user"},
            actions=[{"kind": "message", "conversation": "internal"}],
            text="t",
        )
    assert len(await svc.automations.list()) == 3


async def test_m2_disabled_and_deleted_automations_do_not_fire(svc: Service, world: World) -> None:
    example = (await svc.automations.list())[1]
    await svc.automations.disable(example.id)
    await svc.close_item(number=1)
    assert await _messages(svc) == []
    await svc.automations.enable(example.id)
    await svc.set_item_status(number=1, status="open")
    await svc.automations.delete(example.id)
    await svc.close_item(number=1)
    assert await _messages(svc) == []


# --- M3: loops ---------------------------------------------------------------------------------


async def test_m3_an_automation_never_triggers_on_its_own_output(
    svc: Service, world: World
) -> None:
    await svc.automations.create(
        name="echo",
        trigger="message_posted",
        actions=[{"kind": "message", "conversation": "internal"}],
        text="echo",
    )
    await svc.automations.create(
        name="echo on close",
        trigger="item_closed",
        actions=[{"kind": "message", "conversation": "internal"}],
        text="closed",
    )
    await svc.post(
        author="ann@example.com", text="hi", item_number=1, kind=ConversationKind.INTERNAL
    )
    await svc.close_item(number=1)
    sources = [(s, t) for _, s, t in await _messages(svc)]
    # One echo for Ann's message; none for the inserted ones (the example and "closed").
    assert sources.count(("automation", "echo")) == 1
    assert ("automation", "closed") in sources


async def test_m3_automated_events_fire_nothing(svc: Service, world: World) -> None:
    from services.automations import AutomationEvent, Trigger, fire, load_rules

    item = await svc.item(1)
    rules = await svc.db.read(load_rules)
    assert rules[Trigger.ITEM_CLOSED]  # the shipped example would fire for a person's close
    result = await svc.db.write(
        fire,
        AutomationEvent(trigger=Trigger.ITEM_CLOSED, item_id=item.id, automated=True),
        rules=rules,
        now=svc.clock.now(),
        identity=svc.mail_identity(),
        default_delay_s=60,
    )
    assert result.automations == ()
    assert await _messages(svc) == []


# --- R2 -----------------------------------------------------------------------------------------


async def test_r2_internal_text_never_reaches_a_customer_through_a_template(
    svc: Service, world: World
) -> None:
    await svc.templates.save(name="relay", subject="news", body_text="Said: [{{ message.text }}]")
    await svc.automations.create(
        name="relay",
        trigger="message_posted",
        actions=[{"kind": "email", "to": "followers", "template": "relay"}],
    )
    await svc.post(
        author="ann@example.com", text="secret plan", item_number=1, kind=ConversationKind.INTERNAL
    )
    bodies = {e.to_addrs[0]: (await svc.email_detail(e.id)).body for e in await svc.emails()}
    assert "secret plan" in bodies["bob@example.com"]
    assert "secret plan" not in bodies["carl@customer.org"]
    assert "Said: []" in bodies["carl@customer.org"]


# --- M4: templates and the sandbox --------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ("Hi\n{{ ''.__class__ }}", "line 2"),
        ("{{ recipient.name }}\n\n{{ nobody }}", "line 3: unknown variable 'nobody'"),
        ("ok\n{% for x in item %}", "line 2"),
        ("{{ item.title | nosuchfilter }}", "line 1"),
    ],
)
async def test_m4_bad_templates_are_refused_at_save_with_the_line(
    svc: Service, body: str, match: str
) -> None:
    with pytest.raises(TemplateError, match=match):
        await svc.templates.save(name="bad", subject="s", body_text=body)
    with pytest.raises(NotFoundError):
        await svc.templates.get("bad")


async def test_m4_huge_loop_does_not_hang_and_sends_nothing_but_logs_why(
    svc: Service, world: World
) -> None:
    loop = "{% for i in range(10**9) %}x{% endfor %}"
    with pytest.raises(TemplateError, match="line 1"):  # refused at save, with its line
        await svc.templates.save(name="loop", subject="s", body_text=loop)
    # Stored all the same (before the check existed, or by hand): it fails to render alone.
    await svc.templates.save(name="loop", subject="s", body_text="fine")
    await svc.db.write(
        lambda tx: (
            tx.conn.execute(
                update(EmailTemplate).where(EmailTemplate.name == "loop").values(body_text=loop)
            ).rowcount
        )
    )
    with pytest.raises(TemplateError):
        await svc.templates.preview("loop")
    await svc.automations.create(
        name="loop",
        trigger="item_closed",
        actions=[{"kind": "email", "to": "followers", "template": "loop"}],
    )
    await svc.close_item(number=1)
    emails = await svc.emails()
    assert emails
    assert all(e.status == EmailStatus.FAILED for e in emails)
    assert all("template did not render" in (e.reason or "") for e in emails)
    assert [await svc.email_raw(e.id) for e in emails] == [None] * len(emails)


async def test_m4_preview_test_send_and_delete(svc: Service) -> None:
    await svc.templates.save(
        name="mine", subject="About {{ item.ref }}", body_text="{{ item.title }}"
    )
    preview = await svc.templates.preview("mine")
    assert preview.subject == "About [#12]"
    assert preview.text == "Printer on fire"
    unsaved = await svc.templates.preview("mine", body_text="Changed {{ actor.name }}")
    assert unsaved.text == "Changed Ann Agent"
    email_id = await svc.templates.test_send("mine", to="t@example.com")
    [entry] = await svc.emails()
    assert entry.id == email_id
    assert entry.kind == "test"
    assert entry.subject == "[test] About [#12]"
    await svc.templates.delete("mine")
    with pytest.raises(PermissionDeniedError, match="built-in"):
        await svc.templates.delete("welcome")
    assert {t.name for t in await svc.templates.list()} == {
        "new_message",
        "item_closed",
        "welcome",
        "password_reset",
        "new_customer",
    }


async def test_m4_html_preview_escapes_variables(svc: Service) -> None:
    await svc.templates.save(
        name="esc", subject="s", body_text="t", body_html="<b>{{ message.text }}</b>"
    )
    html = (await svc.templates.preview("esc", body_html="<b>{{ '<i>' }}</b>")).html
    assert html == "<b>&lt;i&gt;</b>"


# --- M5: system emails --------------------------------------------------------------------------


async def test_m5_password_reset_is_always_on_and_needs_the_code(svc: Service) -> None:
    with pytest.raises(PermissionDeniedError, match="always on"):
        await svc.system_emails.disable("password_reset")
    with pytest.raises(TemplateError, match="must show the code"):
        await svc.templates.save(name="password_reset", body_text="Hello {{ person.name }}")
    with pytest.raises(TemplateError, match="unknown variable 'code'"):
        await svc.templates.save(name="new_customer", body_text="{{ code }}")


async def test_m5_reset_code_is_emailed_works_once_and_expires(
    svc: Service, world: World, clock: ManualClock
) -> None:
    request = await svc.system_emails.reset_password("bob@example.com")
    body = (await svc.email_detail(request.email_id)).body
    code = next(w for w in body.split() if w.isdigit() and len(w) == 8)
    assert not await svc.system_emails.check_reset_code(email="bob@example.com", code="00000000")
    await svc.system_emails.reset_password("bob@example.com")
    assert not await svc.system_emails.check_reset_code(email="bob@example.com", code=code)
    request = await svc.system_emails.reset_password("bob@example.com")
    body = (await svc.email_detail(request.email_id)).body
    code = next(w for w in body.split() if w.isdigit() and len(w) == 8)
    assert await svc.system_emails.check_reset_code(email="bob@example.com", code=code)
    assert not await svc.system_emails.check_reset_code(email="bob@example.com", code=code)
    request = await svc.system_emails.reset_password("bob@example.com")
    body = (await svc.email_detail(request.email_id)).body
    code = next(w for w in body.split() if w.isdigit() and len(w) == 8)
    clock.advance(31 * 60)
    assert not await svc.system_emails.check_reset_code(email="bob@example.com", code=code)
    with pytest.raises(InputError, match="customer"):
        await svc.system_emails.reset_password("carl@customer.org")


async def test_m5_welcome_and_new_customer_follow_their_switches(svc: Service) -> None:
    await svc.add_person(email="a@example.com", name="A")
    assert await svc.emails() == []
    await svc.system_emails.enable("welcome")
    await svc.system_emails.enable("new-customer")
    await svc.add_person(email="b@example.com", name="B")
    await svc.add_person(email="c@example.org", name="C", kind=PersonKind.CUSTOMER)
    subjects = sorted(e.subject for e in await svc.emails())
    assert subjects == ["We have your message, C", "Welcome to Deskbell"]
    await svc.system_emails.disable("welcome")
    await svc.add_person(email="d@example.com", name="D")
    assert len(await svc.emails()) == 2


# --- M6: the log and its purge ------------------------------------------------------------------


async def test_m6_purge_removes_old_entries_but_never_pending_ones(
    svc: Service, world: World, clock: ManualClock
) -> None:
    await svc.templates.save(name="p", subject="s", body_text="x")
    old_pending = await svc.templates.test_send("p", to="a@example.com")
    sent_id = await svc.templates.test_send("p", to="b@example.com")
    from services.store.models import Email

    await svc.db.write(
        lambda tx: (
            tx.conn.execute(
                update(Email).where(Email.id == sent_id).values(status=EmailStatus.SENT.value)
            ).rowcount
        )
    )
    clock.advance(timedelta(hours=73).total_seconds())
    recent = await svc.templates.test_send("p", to="c@example.com")
    assert await svc.purge_log() == 1
    ids = {e.id for e in await svc.emails()}
    assert ids == {old_pending, recent}
    # The purged email's bytes go with it (email_bodies, ON DELETE CASCADE); the others stay.
    from sqlalchemy import select

    from services.store.models import EmailBody

    kept = await svc.db.read(lambda tx: set(tx.conn.execute(select(EmailBody.email_id)).scalars()))
    assert kept == {old_pending, recent}
    assert await svc.email_raw(old_pending) and await svc.email_raw(recent)


async def test_m6_log_is_newest_first_filtered_and_searchable(
    svc: Service, world: World, clock: ManualClock
) -> None:
    await svc.templates.save(name="p", subject="about {{ item.ref }}", body_text="x")
    for to in ("a@example.com", "b@example.com", "c@example.com"):
        await svc.templates.test_send("p", to=to)
        clock.advance(1)
    assert [e.to_addrs[0] for e in await svc.emails()] == [
        "c@example.com",
        "b@example.com",
        "a@example.com",
    ]
    assert [e.to_addrs[0] for e in await svc.emails(search="B@EX")] == ["b@example.com"]
    assert await svc.emails(status="sent") == []
    assert len(await svc.emails(status="queued", direction="out")) == 3
    assert await svc.emails(direction="in") == []
