"""The cost of the template limits (issue 8, item 12): a notification email rendered by
Deskbell's bounded sandbox against Jinja2's own ImmutableSandboxedEnvironment, same templates,
same variables, in the same run.

The limits make every filter take the context (so nothing is folded at compile time), charge a
step for every call, loop step and intercepted operator, and check sizes before growing a
value. Measured: the median time to render the shipped notification (plain text and HTML) of
3 new messages and 3 of context, and of a busier template (loops, filters, `~`, `*`), each
bounded / unbounded. Aim: ratio <= 2 on the shipped templates (a render is about 0.1 ms of an
email that takes about 2 ms to send).

    .venv/bin/python bench/bench_templates.py [--quick]
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import parser, report
from jinja2 import DictLoader, StrictUndefined
from jinja2.sandbox import ImmutableSandboxedEnvironment

from services.domain.email_plan import MessageView, NotificationEmail
from services.domain.model import ConversationKind
from services.template_limits import MAX_STEPS
from services.template_sandbox import environment, render_bounded
from services.templates import (
    HTML_TEMPLATE,
    MAX_OUTPUT_CHARS,
    TEXT_TEMPLATE,
    TemplateRenderer,
    notification_variables,
    render_source,
)

BUSY = (
    "{% for m in messages %}{{ loop.index }}. {{ m.author|upper }} ~ {{ m.time }}\n"
    "{{ m.text|wordwrap(60)|indent(4) }}\n{{ '-' * 40 }}\n{% endfor %}"
    "{% for m in context %}{{ m.author ~ ': ' ~ m.text|truncate(80) }}\n{% endfor %}"
    "{{ item.ref }} {{ item.title|title }} {{ messages|length }}"
)


def _email() -> NotificationEmail:
    def message(n: int) -> MessageView:
        return MessageView(
            id=n,
            author_name=f"Agent {n}",
            author_email=f"agent{n}@example.com",
            created_at=datetime(2026, 1, 5, 9, n, tzinfo=UTC),
            text=f"Message {n}: the printer on the third floor is smoking again. " * 3,
        )

    return NotificationEmail(
        subject="[#12] Printer on fire",
        message_id="<bench@example.com>",
        in_reply_to=None,
        references=(),
        from_addr="support@example.com",
        to_addr="bob@example.com",
        reply_to="support@example.com",
        headers=(),
        new_messages=tuple(message(n) for n in range(3, 6)),
        context_messages=tuple(message(n) for n in range(3)),
        item_number=12,
        item_title="Printer on fire",
        conversation_kind=ConversationKind.INTERNAL,
        recipient_name="Bob Agent",
    )


def _paired_medians_us(
    ours: Callable[[], object], theirs: Callable[[], object], n: int
) -> tuple[float, float]:
    """Both timed in turn, n times each, so a busy machine slows both alike."""
    a, b = [], []
    for _ in range(n):
        started = time.perf_counter()
        ours()
        a.append(time.perf_counter() - started)
        started = time.perf_counter()
        theirs()
        b.append(time.perf_counter() - started)
    return statistics.median(a) * 1e6, statistics.median(b) * 1e6


def main() -> None:
    args = parser(__doc__ or "").parse_args()
    n = 200 if args.quick else 5000
    email = _email()
    variables = notification_variables(email)
    bounded = TemplateRenderer()
    sources = {
        name: (Path(__file__).resolve().parents[1] / "resources" / "templates" / name).read_text()
        for name in (TEXT_TEMPLATE, HTML_TEMPLATE)
    }
    plain = ImmutableSandboxedEnvironment(
        loader=DictLoader({**sources, "busy.j2": BUSY}),
        undefined=StrictUndefined,
        autoescape=lambda name: bool(name and name.endswith(".html.j2")),
        keep_trailing_newline=True,
    )

    def unbounded_notification() -> object:
        return (
            plain.get_template(TEXT_TEMPLATE).render(**variables),
            plain.get_template(HTML_TEMPLATE).render(**variables),
        )

    assert bounded.render_notification(email) == unbounded_notification()
    ours, theirs = _paired_medians_us(
        lambda: bounded.render_notification(email), unbounded_notification, n
    )
    busy_plain = plain.get_template("busy.j2")
    assert render_source(BUSY, variables, name="busy.j2") == busy_plain.render(**variables)
    # render_source compiles each call: measure the bounded sandbox on a compiled template.
    busy_env = environment({"busy.j2": BUSY})
    busy_ours, busy_theirs = _paired_medians_us(
        lambda: render_bounded(
            busy_env, "busy.j2", variables, max_steps=MAX_STEPS, max_output=MAX_OUTPUT_CHARS
        ),
        lambda: busy_plain.render(**variables),
        n,
    )
    report(
        "bench_templates: a notification email, bounded sandbox / Jinja2's sandbox",
        ratio=ours / theirs,
        aim="<= 2",
        details={
            "renders": str(n),
            "shipped notification (text + HTML)": f"{ours:.0f} us / {theirs:.0f} us",
            "busy template (loops, filters, ~, *)": (
                f"{busy_ours:.0f} us / {busy_theirs:.0f} us = {busy_ours / busy_theirs:.2f}"
            ),
        },
    )


if __name__ == "__main__":
    main()
