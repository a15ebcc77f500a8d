"""The list models: pages of 200 (10,000 rows stay cheap), a move to the top (N2) as one
beginMoveRows, and older message pages on demand."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from services.api import ConversationKind, ConversationRow, MessageRow, MessageStatus
from ui.tasks import Tasks
from ui.widgets.conversation_list import PAGE_SIZE, ConversationListModel
from ui.widgets.message_view import MessageListModel

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def _row(i: int, *, at: datetime | None = None, unseen: int = 0) -> ConversationRow:
    return ConversationRow(
        id=i,
        kind=ConversationKind.INTERNAL,
        item_number=i,
        title=f"item {i}",
        last_text="hello",
        last_author="Bob",
        last_at=at or T0 - timedelta(seconds=i),
        unseen=unseen,
    )


ALL = [_row(i) for i in range(1, 10_001)]  # newest first, as the service orders them


async def _page(offset: int, limit: int) -> list[ConversationRow]:
    return ALL[offset : offset + limit]


async def test_n2_lazy_pages_of_200_for_10000_conversations() -> None:
    model = ConversationListModel(fetch_page=_page, tasks=Tasks())
    await model.reload()
    assert model.rowCount() == PAGE_SIZE
    assert model.canFetchMore(model.index(-1, 0))
    await model.load_more()
    assert model.rowCount() == 2 * PAGE_SIZE
    assert [r.id for r in model.rows[:3]] == [1, 2, 3]


async def test_n2_move_to_top_is_one_move() -> None:
    """N2: a conversation with news moves to the top in one row move: no reset, no layout
    change, and no other row repainted (its cost is that of one move, whatever the list's
    length; bench_desktop measures it, a test must not time it on a shared machine)."""
    model = ConversationListModel(fetch_page=_page, tasks=Tasks())
    await model.reload()
    while model.rowCount() < 5000:
        await model.load_more()
    moves: list[tuple[int, int]] = []
    resets: list[bool] = []
    layouts: list[bool] = []
    changed: list[tuple[int, int]] = []
    model.rowsMoved.connect(lambda _p, s, _e, _d, dest: moves.append((s, dest)))
    model.modelReset.connect(lambda: resets.append(True))
    model.layoutChanged.connect(lambda *_: layouts.append(True))
    model.dataChanged.connect(lambda top, bottom, *_: changed.append((top.row(), bottom.row())))
    model.upsert([_row(4999, at=T0 + timedelta(seconds=1), unseen=3)])
    assert moves == [(4998, 0)] and not resets and not layouts
    assert all(top == bottom == 0 for top, bottom in changed), changed
    assert model.rows[0].id == 4999 and model.rows[0].unseen == 3
    assert model.row_of(4999) == 0 and model.row_of(1) == 1


async def test_n2_new_conversation_inserted_at_top_and_counts_update() -> None:
    model = ConversationListModel(fetch_page=_page, tasks=Tasks())
    await model.reload()
    model.upsert([_row(20_000, at=T0 + timedelta(seconds=5), unseen=1)])
    assert model.rows[0].id == 20_000
    model.set_counts({20_000: 4, 1: 2})
    assert model.rows[0].unseen == 4 and model.rows[1].unseen == 2
    model.remove([20_000])
    assert model.rows[0].id == 1


def _message(i: int) -> MessageRow:
    at = T0 + timedelta(seconds=i)
    return MessageRow(
        id=i,
        conversation_id=1,
        author=None,
        text=f"message {i}",
        created_at=at,
        source="app",
        status=MessageStatus(sent_at=at),
        unseen_by_viewer=i % 2 == 0,
    )


MESSAGES = [_message(i) for i in range(1, 10_001)]


async def _messages(before_id: int | None, limit: int) -> list[MessageRow]:
    upto = len(MESSAGES) if before_id is None else before_id - 1
    return MESSAGES[max(0, upto - limit) : upto]


async def test_10000_message_conversation_opens_newest_page_then_older() -> None:
    model = MessageListModel(tasks=Tasks())
    start = time.perf_counter()
    await model.open(conversation_id=1, fetch=_messages)
    assert time.perf_counter() - start < 0.1
    assert model.rowCount() == 200 and model.rows[-1].id == 10_000
    assert model.can_fetch_older()
    assert await model.fetch_older() == 200
    assert model.rows[0].id == 9601 and model.rowCount() == 400
    model.mark_seen_locally([10_000])
    assert 10_000 not in model.unseen_ids()
