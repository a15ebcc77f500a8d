"""Issue 9: reading "the messages before this one" in a small conversation costs what that
conversation holds, not what the whole history holds, whatever the statistics say.

After ANALYZE over one long conversation, both planners found the primary key cheaper for
`conversation_id = ? AND id < ? ORDER BY id DESC LIMIT n` and walked every newer message of
every conversation: the window's first page and the scheduler's context messages grew with
history (bench_scheduler_history: a pass with 20 emails cost 7x more over 300,000 messages).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import text

from services.api import ConversationKind, Service
from services.fallback import _earlier
from services.inbox_reads import _PAGE
from services.store.database import Tx
from services.window_reads import _NO_LIMIT
from tests.support.world import open_service, seed

HISTORY_DOUBLINGS = 13
INDEX = "ix_messages_conversation_id_id"


@pytest.fixture
async def svc(database_url: str) -> AsyncIterator[Service]:
    service = await open_service(database_url)
    try:
        yield service
    finally:
        await service.close()


def _long_history(tx: Tx, conversation_id: int) -> None:
    """One conversation with thousands of messages, and fresh statistics."""
    for _ in range(HISTORY_DOUBLINGS):
        tx.conn.execute(
            text(
                "INSERT INTO messages (conversation_id, author_id, text, created_at, source) "
                "SELECT conversation_id, author_id, text, created_at, source FROM messages "
                "WHERE conversation_id = :c"
            ),
            {"c": conversation_id},
        )
    tx.conn.exec_driver_sql("ANALYZE")


def _explain(tx: Tx, sql: str, params: Any) -> str:
    explain = "EXPLAIN " if tx.is_postgres else "EXPLAIN QUERY PLAN "
    rows = tx.conn.exec_driver_sql(
        explain + sql, tuple(params) if isinstance(params, list) else params
    )
    return "\n".join(" ".join(map(str, row)) for row in rows)


def _plans(tx: Tx, conversation_id: int, newest: int) -> dict[str, str]:
    page_params = {"conversation_id": conversation_id, "before_id": _NO_LIMIT, "limit": 50}
    sql, params = _PAGE.plan(tx.dialect, page_params).bind(page_params)
    earlier = _earlier(conversation_id, newest).compile(
        dialect=tx.dialect, compile_kwargs={"literal_binds": True}
    )
    return {
        "the window's page": _explain(tx, sql, params),
        "the email's context": _explain(tx, str(earlier), ()),
    }


async def test_e4_messages_before_are_read_from_the_conversation_index(svc: Service) -> None:
    """Issue 9, E4, S2: after ANALYZE over one long conversation, the page of a small one and
    an email's context messages are read through the (conversation_id, id) index."""
    world = await seed(svc)
    big = await svc.post(
        author="ann@example.com", text="old", item_number=world.item, kind=ConversationKind.INTERNAL
    )
    await svc.db.write(_long_history, big.conversation_id)
    other = await svc.create_item(title="Quiet one", followers=["bob@example.com"])
    small = await svc.post(
        author="ann@example.com",
        text="new",
        item_number=other.number,
        kind=ConversationKind.INTERNAL,
    )
    # On the connection that ran ANALYZE: SQLite's others load statistics with the schema.
    plans = await svc.db.write(_plans, small.conversation_id, small.message_id)
    for what, plan in plans.items():
        assert INDEX in plan, f"{what}:\n{plan}"
        assert "PRIMARY KEY" not in plan and "messages_pkey" not in plan, f"{what}:\n{plan}"
