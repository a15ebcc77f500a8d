"""T1: the server's JSON reads back into the service's own dataclasses (the client's side):
`from_plain(type, plain(value)) == value` for every type an API call answers with."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.accounts import NewSession, NewUser, PasswordSet, SessionInfo, SignedIn
from services.automations import AutomationInfo
from services.domain.model import ConversationKind, NotificationSettings
from services.email_log import EmailDetail
from services.incoming.decide import IncomingResult
from services.server.codec import from_plain, plain
from services.system_emails import ResetRequest, SystemEmailInfo
from services.template_catalog import RenderedEmail
from services.template_store import TemplateInfo
from services.views import (
    BounceInfo,
    ChangeEvent,
    Changes,
    ConversationInfo,
    ConversationRow,
    EmailLogEntry,
    ItemInfo,
    MessageRow,
    PersonInfo,
    PostResult,
    UnseenCounts,
)

ANSWER_TYPES: tuple[type, ...] = (
    AutomationInfo,
    BounceInfo,
    ChangeEvent,
    Changes,
    ConversationInfo,
    ConversationRow,
    EmailDetail,
    EmailLogEntry,
    IncomingResult,
    ItemInfo,
    MessageRow,
    NewSession,
    NewUser,
    NotificationSettings,
    PasswordSet,
    PersonInfo,
    PostResult,
    RenderedEmail,
    ResetRequest,
    SessionInfo,
    SignedIn,
    SystemEmailInfo,
    TemplateInfo,
    UnseenCounts,
)


def through_json(value: Any) -> Any:
    return json.loads(json.dumps(plain(value)))


@pytest.mark.parametrize("kind", ANSWER_TYPES, ids=lambda k: k.__name__)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_t1_every_answer_type_reads_back_as_it_was_written(kind: type, data: st.DataObject) -> None:
    value = data.draw(st.from_type(kind))
    assert from_plain(kind, through_json(value)) == value
    assert from_plain(list[kind], through_json([value, value])) == [value, value]  # type: ignore[valid-type]


def test_t1_times_keep_their_offset_and_counts_their_integer_keys() -> None:
    at = datetime(2026, 12, 1, 23, 5, 7, 123456, tzinfo=UTC)
    row = ConversationRow(
        id=3,
        kind=ConversationKind.EXTERNAL,
        item_number=None,
        title="t",
        last_text="x",
        last_author="Ann",
        last_at=at.astimezone(timezone(timedelta(hours=2))),
        unseen=2,
    )
    back = from_plain(ConversationRow, through_json(row))
    assert back == row and back.last_at is not None and back.last_at.utcoffset() is not None
    counts = UnseenCounts(total=3, internal=1, external=2, by_conversation={7: 1, 12: 2})
    assert from_plain(UnseenCounts, through_json(counts)).by_conversation == {7: 1, 12: 2}


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        (PersonInfo, {"id": "1", "email": "a@b.c", "name": "A", "kind": "user"}),
        (PersonInfo, {"id": 1, "email": "a@b.c", "name": "A", "kind": "robot"}),
        (PersonInfo, {"id": 1, "email": "a@b.c", "kind": "user"}),
        (Changes, {"counts": 1}),
        (list[int], {"a": 1}),
        (int | None, "x"),
        (UnseenCounts, {"by_conversation": {"seven": 1}}),
    ],
)
def test_t1_a_value_of_the_wrong_shape_is_a_value_error_naming_where(kind: Any, value: Any) -> None:
    with pytest.raises(ValueError, match="the answer"):
        from_plain(kind, value)


def declared_types() -> list[Any]:
    """Every answer type the server's route table declares (no raw bytes, no Any, no stream
    that answers itself; request
    bodies are read with their bounds, tested through HTTP in test_server_input.py)."""
    from aiohttp import web

    from services.server.app import ROUTE_TABLES
    from services.server.endpoints import endpoint_of

    found: dict[str, Any] = {}
    for table in ROUTE_TABLES:
        for route in table:
            endpoint = endpoint_of(route.handler) if isinstance(route, web.RouteDef) else None
            kind = endpoint.answer if endpoint else None
            answers_itself = isinstance(kind, type) and issubclass(kind, web.StreamResponse)
            if kind not in (None, bytes) and "Any" not in str(kind) and not answers_itself:
                found[str(kind)] = kind
    return list(found.values())


@pytest.mark.parametrize("kind", declared_types(), ids=str)
@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_t1_every_type_a_route_declares_reads_back(kind: Any, data: st.DataObject) -> None:
    value = data.draw(st.from_type(kind))
    assert from_plain(kind, through_json(value)) == value
