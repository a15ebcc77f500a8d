"""The demo workspace (D9): seeded once, a real mail catcher, bots that write."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from app.demo import DemoWorkspace, prepare_demo, run_bots
from services.api import ConversationKind, PersonKind
from services.clock import ManualClock
from services.domain.model import EmailStatus


@pytest.fixture
async def demo(tmp_path: Path) -> AsyncIterator[tuple[DemoWorkspace, ManualClock]]:
    clock = ManualClock()
    workspace = await prepare_demo(data_dir=tmp_path / "demo", clock=clock)
    try:
        yield workspace, clock
    finally:
        await workspace.service.close()
        await workspace.close()


async def test_d9_demo_is_seeded_with_team_customers_items_and_history(
    demo: tuple[DemoWorkspace, ManualClock],
) -> None:
    workspace, clock = demo
    service = workspace.service
    me = await service.person(workspace.me)
    assert me.name == "Alex Morgan"
    assert me.is_admin
    users = await service.people(kind=PersonKind.USER)
    customers = await service.people(kind=PersonKind.CUSTOMER)
    assert len(users) == 4
    assert len(customers) == 4
    items = await service.items()
    assert len(items) >= 8
    assert all(len(i.followers) >= 2 for i in items)
    internal = await service.open_conversations(person_id=me.id, inbox=[ConversationKind.INTERNAL])
    external = await service.open_conversations(person_id=me.id, inbox=[ConversationKind.EXTERNAL])
    assert len(internal) >= 4
    assert len(external) >= 4
    # History spread over past days, most of it already seen; a few waiting for Alex.
    oldest = min(r.last_at for r in external if r.last_at is not None)
    assert (clock.now() - oldest.replace(tzinfo=clock.now().tzinfo)).days >= 1
    counts = await service.unseen_counts(person_id=me.id)
    assert 0 < counts.total <= 3
    rows = await service.messages(conversation_id=external[-1].id, viewer_id=me.id)
    assert any(r.status.seen for r in rows)


async def test_d9_demo_seeds_only_once(tmp_path: Path) -> None:
    clock = ManualClock()
    first = await prepare_demo(data_dir=tmp_path, clock=clock)
    n_items = len(await first.service.items())
    await first.service.close()
    await first.close()
    second = await prepare_demo(data_dir=tmp_path, clock=clock)
    try:
        assert len(await second.service.items()) == n_items
        assert len(await second.service.people()) == 8
        assert second.service.config("smtp.port") == str(second.smtp_port)
    finally:
        await second.service.close()
        await second.close()


async def test_d9_e1_unseen_message_is_caught_by_the_demo_mailbox(
    demo: tuple[DemoWorkspace, ManualClock],
) -> None:
    """A customer writes; Alex does not look for 60 s; the email lands in the local catcher."""
    workspace, clock = demo
    service = workspace.service
    assert service.config("smtp.security") == "none"
    assert service.config("unseen_delay_s") == "60"
    item = (await service.items())[0]
    assert item.requester is not None
    await service.post(
        author=item.requester.email,
        text="Is the new invoice ready?",
        item_number=item.number,
        kind=ConversationKind.EXTERNAL,
    )
    clock.advance(59)
    await service.run_scheduler_once()
    await service.outbox.flush()

    def about_item() -> list[str]:
        return [
            str(m["Subject"])
            for m in workspace.mailbox.caught()
            if workspace.me in str(m["To"]) and f"[#{item.number}]" in str(m["Subject"])
        ]

    assert about_item() == []  # E1: never earlier than the delay
    clock.advance(2)
    await service.run_scheduler_once()
    await service.outbox.flush()
    assert about_item() == [f"[#{item.number}] {item.title}"]
    log = await service.emails(direction="out")
    mine = [e for e in log if workspace.me in e.to_addrs and e.item_number == item.number]
    assert mine
    assert mine[0].status == EmailStatus.SENT
    assert "demo mailbox" in (mine[0].reply or "")


async def test_d9_bots_write_within_the_interval(
    demo: tuple[DemoWorkspace, ManualClock],
) -> None:
    """With tiny intervals, a customer (external) and a teammate (internal) both write."""
    workspace, _ = demo
    service = workspace.service
    me = await service.person(workspace.me)
    before = (await service.unseen_counts(person_id=me.id)).total
    stop = asyncio.Event()
    # ManualClock's monotonic time stands still: the bots' deadlines use it, so move it.
    task = asyncio.create_task(
        run_bots(
            workspace,
            stop,
            first_after_s=0,
            every_s=(0, 0),
            read_every_s=0.01,
            rng=random.Random(1),
        )
    )
    try:
        for _ in range(6000):  # up to a minute on a slow machine; usually a few steps
            counts = await service.unseen_counts(person_id=me.id)
            if counts.external > 0 and counts.total >= before + 3:
                break
            await asyncio.sleep(0.01)
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=60)
    counts = await service.unseen_counts(person_id=me.id)
    assert counts.total >= before + 3
    internal = await service.open_conversations(
        person_id=me.id, inbox=[ConversationKind.INTERNAL, ConversationKind.DIRECT]
    )
    external = await service.open_conversations(person_id=me.id, inbox=[ConversationKind.EXTERNAL])
    authors_ext = {r.last_author for r in external if r.unseen}
    authors_int = {r.last_author for r in internal if r.unseen}
    assert authors_ext & {"Tom Baker", "Sofia Rossi", "Ken Watanabe", "Emma Clarke"}
    assert authors_int & {"Priya Shah", "Jonas Berg", "Maria Lopez"}


async def test_d9_teammates_read_what_you_write(demo: tuple[DemoWorkspace, ManualClock]) -> None:
    """S2 in the demo: a message from you shows "seen" by a teammate without any click."""
    workspace, _ = demo
    service = workspace.service
    item = (await service.items())[0]
    posted = await service.post(
        author=workspace.me,
        text="Priya, can you look at this?",
        item_number=item.number,
        kind=ConversationKind.INTERNAL,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(
        run_bots(workspace, stop, first_after_s=3600, read_every_s=0.01, rng=random.Random(2))
    )
    me = await service.person(workspace.me)
    try:
        for _ in range(6000):  # up to a minute on a slow machine; usually a few steps
            rows = await service.messages(
                conversation_id=posted.conversation_id,
                viewer_id=me.id,
                message_ids=[posted.message_id],
            )
            if rows[0].status.seen:
                break
            await asyncio.sleep(0.01)
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=60)
    assert rows[0].status.seen
    assert rows[0].status.seen[0].name == "Priya Shah"


async def test_d9_bots_say_things_that_fit_their_item(
    demo: tuple[DemoWorkspace, ManualClock],
) -> None:
    """A customer chasing a VAT invoice does not ask about a shipment: each item's bots speak
    from that item's own lines (issue 8 item 20)."""
    from app.demo import _bot_turn, follow_ups

    workspace, _ = demo
    service = workspace.service
    rng = random.Random(5)
    for item in await service.items():  # the seeded history is read: what is new is the bots'
        await service.mark_item_seen(number=item.number, email=workspace.me)
    for turn in range(24):
        await _bot_turn(workspace, "customer" if turn % 2 else "teammate", rng)
    me = await service.person(workspace.me)
    checked = 0
    for item in await service.items():
        customer_lines, team_lines = follow_ups(item.title)
        for kind, lines in (
            (ConversationKind.EXTERNAL, customer_lines),
            (ConversationKind.INTERNAL, team_lines),
        ):
            conv = (
                item.external_conversation_id
                if kind is ConversationKind.EXTERNAL
                else (item.internal_conversation_id)
            )
            rows = await service.messages(conversation_id=conv, viewer_id=me.id)
            for row in rows:
                if row.unseen_by_viewer:  # written by the bots just now
                    assert row.text in lines, (item.title, row.text)
                    checked += 1
    assert checked >= 10
