"""E4, E5, M4: email bodies from sandboxed templates; text never becomes HTML."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from jinja2.exceptions import SecurityError, UndefinedError

from services.domain.email_plan import MessageView, NotificationEmail, plan_notification_email
from services.domain.model import ConversationKind, Person, PersonKind
from services.errors import InputError
from services.templates import (
    HTML_TEMPLATE,
    NOTIFICATION_VARIABLES,
    TEXT_TEMPLATE,
    TemplateError,
    TemplateRenderer,
    notification_variables,
    validate_template,
)

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
CUSTOMER = Person(id=7, email="cat@customer.example.com", name="Cat & Co", kind=PersonKind.CUSTOMER)
ALLOWED = set(NOTIFICATION_VARIABLES)


def msg(i: int, minute: int, text: str) -> MessageView:
    return MessageView(
        id=i,
        author_name="Ann <Agent>",
        author_email="ann@desk.example.com",
        created_at=T0 + timedelta(minutes=minute),
        text=text,
    )


def email(
    *,
    new: list[MessageView] | None = None,
    earlier: list[MessageView] | None = None,
    item_number: int | None = 42,
) -> NotificationEmail:
    return plan_notification_email(
        recipient=CUSTOMER,
        conversation_kind=ConversationKind.EXTERNAL,
        item_number=item_number,
        item_title="Printer <b>on fire</b>",
        new_messages=new or [msg(10, 10, "It is <script>alert(1)</script> smoking\nsecond line")],
        earlier_messages=earlier or [],
        token="c1r7-abcdefghijklmnop",
        email_uid="e1",
        domain="deskbell.example.com",
        from_name="Acme Support",
        from_addr="support@acme.example.com",
        previous_message_ids=[],
    )


def test_e4_default_bodies_show_item_messages_and_footer() -> None:
    text, html = TemplateRenderer().render_notification(
        email(earlier=[msg(1, 1, "an earlier question")])
    )
    for body in (text, html):
        assert "#42" in body
        assert "Reply to this email to answer in Deskbell" in body
        assert "an earlier question" in body
    assert "[#42] Printer <b>on fire</b>" in text
    assert "It is <script>alert(1)</script> smoking" in text
    assert "2026-01-05 09:10 UTC" in text
    assert "Earlier in this conversation" in text


def test_e4_html_escapes_every_text_from_people() -> None:
    _, html = TemplateRenderer().render_notification(email())
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<b>on fire</b>" not in html
    assert "Printer &lt;b&gt;on fire&lt;/b&gt;" in html
    assert "Ann &lt;Agent&gt;" in html
    assert "Cat &amp; Co" in html
    assert html.lstrip().startswith("<!DOCTYPE html>")


def test_e4_times_shown_in_the_given_zone() -> None:
    text, _ = TemplateRenderer().render_notification(email(), tz=ZoneInfo("Europe/Paris"))
    assert "2026-01-05 10:10 CET" in text


def test_e4_one_and_many_messages_and_no_item() -> None:
    one, _ = TemplateRenderer().render_notification(email())
    assert "a new message" in one
    many, _ = TemplateRenderer().render_notification(
        email(new=[msg(10, 10, "first"), msg(11, 11, "second")])
    )
    assert "2 new messages" in many
    assert many.index("first") < many.index("second")


def test_r2_template_variables_hold_only_the_plan() -> None:
    variables = notification_variables(email(earlier=[msg(1, 1, "earlier")]))
    assert set(variables) == NOTIFICATION_VARIABLES
    context = variables["context"]
    assert isinstance(context, tuple)
    assert [m.text for m in context] == ["earlier"]


def test_m4_overrides_are_used() -> None:
    renderer = TemplateRenderer(
        overrides={
            TEXT_TEMPLATE: (
                "{{ item.ref }} {% for m in messages %}{{ m.author }}: {{ m.text }}{% endfor %}"
            ),
            HTML_TEMPLATE: "<p>{{ messages[0].text }}</p>",
        }
    )
    text, html = renderer.render_notification(email(new=[msg(1, 1, "a<b")]))
    assert text == "[#42] Ann <Agent>: a<b"
    assert html == "<p>a&lt;b</p>"


def test_m4_sandbox_refuses_class_escape() -> None:
    with pytest.raises(TemplateError, match="line 2") as caught:
        validate_template("hello\n{{ ''.__class__ }}", allowed=ALLOWED)
    assert caught.value.lineno == 2
    with pytest.raises(TemplateError) as caught:
        TemplateRenderer(overrides={TEXT_TEMPLATE: "{{ ''.__class__.__mro__ }}"})
    assert isinstance(caught.value.__cause__, SecurityError)


def test_m4_sandbox_blocks_item_lookup_escape_at_render() -> None:
    renderer = TemplateRenderer(overrides={TEXT_TEMPLATE: "x\n{{ item['__class__'] }}"})
    with pytest.raises(TemplateError, match="line 2") as caught:
        renderer.render_notification(email())
    assert isinstance(caught.value.__cause__, SecurityError)


def test_m4_unknown_variable_refused_with_line() -> None:
    with pytest.raises(TemplateError, match=r"line 3: unknown variable 'secret'") as caught:
        validate_template("a\n{{ item.title }}\n{{ secret }}", allowed=ALLOWED)
    assert caught.value.lineno == 3
    assert isinstance(caught.value, InputError)


def test_m4_syntax_error_refused_with_line() -> None:
    with pytest.raises(TemplateError, match="line 2") as caught:
        validate_template("ok\n{% for m in messages %}\n", allowed=ALLOWED)
    assert caught.value.lineno is not None


def test_m4_unknown_filter_and_safe_refused() -> None:
    with pytest.raises(TemplateError, match="nope"):
        validate_template("{{ item.title | nope }}", allowed=ALLOWED)
    with pytest.raises(TemplateError, match="safe"):
        validate_template("{{ messages[0].text | safe }}", allowed=ALLOWED)
    with pytest.raises(TemplateError, match="autoescaping"):
        validate_template(
            "{% autoescape false %}{{ item.title }}{% endautoescape %}", allowed=ALLOWED
        )


def test_m4_valid_template_passes() -> None:
    validate_template(
        "{% for m in messages %}{{ m.author }}{% endfor %}{{ item.title }}", allowed=ALLOWED
    )
    validate_template("{% set x = item.title %}{{ x }}", allowed=ALLOWED)


def test_m4_unknown_attribute_fails_at_render_with_line() -> None:
    renderer = TemplateRenderer(overrides={TEXT_TEMPLATE: "a\nb\n{{ item.nope }}"})
    with pytest.raises(TemplateError, match="line 3") as caught:
        renderer.render_notification(email())
    assert isinstance(caught.value.__cause__, UndefinedError)


def test_m4_unknown_template_name_refused() -> None:
    with pytest.raises(TemplateError, match="no such template"):
        TemplateRenderer(overrides={"other.j2": "x"})


def test_m4_loops_are_bounded() -> None:
    nested = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"
    renderer = TemplateRenderer(overrides={TEXT_TEMPLATE: nested})
    with pytest.raises(TemplateError, match="too long"):
        renderer.render_notification(email())


def test_m4_output_is_capped() -> None:
    loop = "{% for i in range(50000) %}{{ messages[0].text }}{% endfor %}"
    renderer = TemplateRenderer(overrides={TEXT_TEMPLATE: loop}, max_output_chars=10_000)
    with pytest.raises(TemplateError, match="larger than"):
        renderer.render_notification(email())


def test_m4_huge_repetition_and_power_refused() -> None:
    for source in ("{{ 'x' * 100000000 }}", "{{ 10 ** 100000000 }}"):
        renderer = TemplateRenderer(overrides={TEXT_TEMPLATE: source})
        with pytest.raises(TemplateError) as caught:
            renderer.render_notification(email())
        assert isinstance(caught.value.__cause__, SecurityError)


def test_m4_template_cannot_mutate_its_variables() -> None:
    renderer = TemplateRenderer(overrides={TEXT_TEMPLATE: "{{ messages.append(1) }}"})
    with pytest.raises(TemplateError):
        renderer.render_notification(email())
