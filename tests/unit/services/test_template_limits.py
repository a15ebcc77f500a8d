"""M4: a template cannot exhaust the machine (issue 8, item 12).

Compiling costs what the source costs (Jinja2 folded `'a'|center(400000000)` into a 400 MB
constant at every start); every render ends, small, or fails with the line; a template that
breaks a limit is refused at save; one stored anyway (before these limits, or by hand) fails
to render on its own and harms nothing else. Memory is measured with tracemalloc, which is
deterministic; time is bounded by steps and by the render's own CPU time, never asserted.
"""

from __future__ import annotations

import contextlib
import sqlite3
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from jinja2.exceptions import SecurityError

from services.api import ConversationKind, Service, TemplateError
from services.clock import ManualClock
from services.errors import InputError
from services.store.db import DB_FILENAME
from services.template_limits import Budget
from services.templates import render_source, validate_template
from tests.support.world import seed

ANN = "ann@example.com"
PEAK_MB = 30  # far below any of these templates' appetite, far above a normal render

HOSTILE = {
    "folded centre": "{{ 'a'|center(400000000) }}",
    "centre method": "{{ 'a'.center(400000000) }}",
    "repetition": "{{ 'ab' * 300000000 }}",
    "list repetition": "{{ ['x' * 1000] * 100000 }}",
    "power tower": "{{ 9 ** (9 ** 9) }}",
    "nested powers": "{{ ((2 ** 999) ** 999) ** 999 }}",
    "squaring loop": (
        "{% set ns = namespace(n=3) %}{% for i in range(40) %}"
        "{% set ns.n = ns.n * ns.n %}{% endfor %}{{ ns.n }}"
    ),
    "doubling with ~": (
        "{% set ns = namespace(s='ab') %}{% for i in range(40) %}"
        "{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s|length }}"
    ),
    "doubling with +": (
        "{% set ns = namespace(s='ab') %}{% for i in range(40) %}"
        "{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s|length }}"
    ),
    "lipsum": "{{ lipsum(n=10**6) }}",
    "printf width": "{{ '%999999999d' % 1 }}",
    "format width": "{{ '{:>999999999}'.format(1) }}",
    "format width from an argument": "{{ '{:>{}}'.format(1, 10**9) }}",
    "format filter width": "{{ '%999999999s'|format('x') }}",
    "replace": "{{ ('a' * 999999)|replace('a', 'bbbbbbbb') }}",
    "join": "{{ ('a' * 1000)|list|join('x' * 1000) }}",
    "indent": "{{ ('\\n' * 1000)|indent(1000000) }}",
    "expandtabs": "{{ ('\\t' * 1000).expandtabs(1000000) }}",
    "batch fill": "{{ [1]|batch(1000000000, 'x')|list }}",
    "nested loops": (
        "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"
    ),
    "recursion": "{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}",
    "5,000-digit literal": "{{ " + "9" * 5000 + " }}",
}


@contextlib.contextmanager
def _peak_mb() -> Iterator[Callable[[], float]]:
    tracemalloc.start()
    peak: list[float] = []
    try:
        yield lambda: peak[0]
    finally:
        peak.append(tracemalloc.get_traced_memory()[1] / 1e6)
        tracemalloc.stop()


@pytest.mark.parametrize("source", HOSTILE.values(), ids=HOSTILE.keys())
def test_m4_a_hostile_template_compiles_cheaply_and_fails_to_render_with_its_line(
    source: str,
) -> None:
    def check_then_render() -> str:
        validate_template(source, allowed=set(), name="t.j2")
        return render_source(source, {}, name="t.j2")

    with _peak_mb() as peak, pytest.raises(TemplateError) as caught:
        check_then_render()
    assert peak() < PEAK_MB
    assert "t.j2 line 1" in str(caught.value) or "t.j2:" in str(caught.value)


def test_m4_compiling_folds_nothing_even_when_it_would_be_cheap() -> None:
    # Nothing runs at compile time: not even what would fit (the limits act at render time).
    with _peak_mb() as peak:
        validate_template("{{ 'a'|center(400000000) }}", allowed=set(), name="t.j2")
    assert peak() < 5


def test_m4_ordinary_templates_still_render() -> None:
    source = (
        "{{ 'x'|center(9) }}|{{ 'ab' ~ 'cd' }}|{{ 'Q'|upper }}|{{ 2 ** 10 }}|{{ '%5s' % 'a' }}|"
        "{{ '{:>4}'.format(1) }}|{{ [1, 2]|join(', ') }}|{{ 'a b'|replace(' ', '-') }}|"
        "{{ 'l1\\nl2'|indent(2) }}|{{ [1, 2, 3]|batch(2)|list|length }}|{{ lipsum(1)|length > 0 }}"
        "|{% for i in range(3) %}{{ i }}{% endfor %}|{{ 'a' * 3 }}|{{ 7 // 2 }}"
    )
    assert render_source(source, {}, name="t.j2") == (
        "    x    |abcd|Q|1024|    a|   1|1, 2|a-b|l1\n  l2|2|True|012|aaa|3"
    )


def test_m4_a_render_stops_at_its_cpu_budget() -> None:
    budget = Budget(steps=10**9, cpu_s=0.0)

    def spin() -> None:
        for _ in range(10_000):
            budget.spend()

    with pytest.raises(SecurityError, match="CPU"):
        spin()


# --- through the service -------------------------------------------------------------------


@pytest.fixture
async def svc(tmp_path: Path) -> Any:
    service = await Service.open(data_dir=tmp_path, clock=ManualClock())
    try:
        await seed(service)
        yield service
    finally:
        await service.close()


async def test_m4_saving_a_hostile_template_is_refused_with_its_line(svc: Service) -> None:
    body = "Hello {{ recipient.name }},\n{{ 'a'|center(400000000) }}\n"
    with pytest.raises(TemplateError, match="line 2") as caught:
        await svc.templates.save(name="mine", subject="Hi", body_text=body)
    assert "\n" not in str(caught.value)
    with pytest.raises(TemplateError, match="line 1"):
        await svc.templates.save(name="new_message", body_text="{{ lipsum(n=10**6) }}")
    with pytest.raises(TemplateError, match="lipsum"):
        await svc.automations.set_text(1, "{{ lipsum(n=10**6) }}")  # the notification intro
    with pytest.raises(TemplateError, match="too large"):
        await svc.automations.set_text(2, "{{ 'ab' * 300000000 }}")


async def test_m4_a_stored_hostile_template_harms_nothing_else(tmp_path: Path) -> None:
    """Stored by hand (or before the limits): every start stays cheap, the notification falls
    back to the shipped template, and the automation's email fails alone, saying why."""
    clock = ManualClock()
    service = await Service.open(data_dir=tmp_path, clock=clock)
    try:
        await seed(service)
        await service.automations.create(
            name="tell the followers",
            trigger="item_closed",
            actions=[{"kind": "email", "to": "followers", "template": "item_closed"}],
        )
    finally:
        await service.close()
    with contextlib.closing(sqlite3.connect(tmp_path / DB_FILENAME)) as conn:
        conn.execute(
            "UPDATE email_templates SET body_text = ? WHERE name IN ('new_message', 'item_closed')",
            ("{{ 'a'|center(400000000) }}",),
        )
        conn.commit()
    with _peak_mb() as peak:
        service = await Service.open(data_dir=tmp_path, clock=clock)
    assert peak() < PEAK_MB
    try:
        await service.post(author=ANN, text="hi", item_number=1, kind=ConversationKind.INTERNAL)
        clock.advance(3600)
        with _peak_mb() as peak:
            await service.run_scheduler_once()
            await service.close_item(number=1, acting=ANN)
        assert peak() < PEAK_MB
        emails = await service.emails()
        notifications = [e for e in emails if e.kind == "notification"]
        assert notifications and all(e.status == "queued" for e in notifications)
        closed = [e for e in emails if e.kind != "notification"]
        assert closed and all(e.status == "failed" for e in closed)
        assert all("too large" in (e.reason or "") for e in closed)
        assert (await service.item(1)).status == "closed"
    finally:
        await service.close()


# --- settings (item 12's second half) --------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value", "says"),
    [
        ("unseen_delay_s", "99999999999999999999", "from 1 to 604800"),
        ("outbox.lease_s", "999999999999", "from 1 to 3600"),
        ("smtp.host", "mail example.com", "a host name or IP address"),
        ("smtp.port", "\u00b2", "from 1 to 65535"),
        ("unseen_delay_s", "9" * 5000, "from 1 to 604800"),
    ],
)
async def test_m8_a_setting_out_of_range_or_shape_is_refused_saying_what_fits(
    svc: Service, key: str, value: str, says: str
) -> None:
    before = svc.config(key)
    with pytest.raises(InputError, match=says) as caught:
        await svc.set_config(key, value)
    assert "\n" not in str(caught.value) and len(str(caught.value)) < 300
    assert svc.config(key) == before


async def test_m8_stored_settings_out_of_range_fall_back_to_defaults(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = ManualClock()
    service = await Service.open(data_dir=tmp_path, clock=clock)
    try:
        await seed(service)
    finally:
        await service.close()
    with contextlib.closing(sqlite3.connect(tmp_path / DB_FILENAME)) as conn:
        conn.executemany(
            "UPDATE settings SET value = ? WHERE key = ?",
            [("99999999999999999999", "unseen_delay_s")],
        )
        conn.executemany(
            "INSERT INTO settings (key, value) VALUES (?, ?)",
            [("outbox.lease_s", "999999999999"), ("smtp.host", "mail example.com")],
        )
        conn.commit()
    service = await Service.open(data_dir=tmp_path, clock=clock)
    try:
        assert service.config("unseen_delay_s") == "60"
        assert service.config("outbox.lease_s") == "120"
        assert service.config("smtp.host") == ""
        assert sum("a stored setting is refused" in r.getMessage() for r in caplog.records) == 3
        await service.post(author=ANN, text="hi", item_number=1, kind=ConversationKind.INTERNAL)
        clock.advance(61)
        await service.run_scheduler_once()
        assert [e.kind for e in await service.emails()] == ["notification"]
    finally:
        await service.close()
