"""`codec.from_plain` reads back what `codec.plain` wrote (T6): the client decodes the server's
JSON into the same frozen dataclasses the service returns, nested types, times with their
offset, enums, int-keyed mappings and all; an answer of another shape is one DeskbellError
that says where."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from services.accounts import NewUser, SignedIn
from services.automations import AutomationInfo
from services.domain.model import ConversationKind, NotificationSettings, PersonKind
from services.errors import ServerError
from services.server.codec import from_plain, plain
from services.server_client import decode
from services.template_store import TemplateInfo
from services.views import (
    Changes,
    EmailedEntry,
    MessageRow,
    MessageStatus,
    PersonInfo,
    SeenEntry,
    UnseenCounts,
)

AT = datetime(2026, 3, 4, 5, 6, 7, 890, tzinfo=UTC)
ANN = PersonInfo(
    id=1,
    email="ann@example.com",
    name="Ann",
    kind=PersonKind.USER,
    is_admin=True,
    settings=NotificationSettings(
        delay_s=None, dnd_until=AT, dnd_weekly=((0, 60, 120), (4, 0, 30))
    ),
)
SAMPLES: list[object] = [
    SignedIn(session_id=3, person_id=1, email=ANN.email, name="Ann", is_admin=True),
    NewUser(person=ANN, invited=False),
    Changes(conversations=frozenset({7, 2}), counts=True),
    UnseenCounts(total=3, internal=1, external=2, by_conversation={7: 1, 12: 2}),
    MessageRow(
        id=9,
        conversation_id=7,
        author=None,
        text="Hello\nthere",
        created_at=AT.astimezone(timezone(timedelta(hours=-5))),
        source="email",
        status=MessageStatus(
            sent_at=AT,
            seen=(SeenEntry(name="Ann", email=ANN.email, at=AT),),
            emailed=(
                EmailedEntry(name="Bob", email="b@x.org", status="sent", at=None, detail=None),
            ),
            waiting=("Carl",),
        ),
    ),
    AutomationInfo(
        id=1,
        position=0,
        name="Closed",
        trigger="item_closed",
        conditions={"status": "closed"},
        actions=({"type": "insert_message"},),
        text="Closed.",
        enabled=True,
        critical=False,
        updated_at=AT,
    ),
    TemplateInfo(
        name="welcome",
        kind="system",
        description="d",
        subject="s",
        body_text="t",
        body_html="",
        builtin=True,
        updated_at=AT,
        used_by=("a",),
        variables=(("recipient.name", "their name"),),
    ),
]


@pytest.mark.parametrize("value", SAMPLES, ids=lambda v: type(v).__name__)
def test_t6_what_plain_writes_from_plain_reads_back(value: object) -> None:
    over_the_wire = json.loads(json.dumps(plain(value)))
    assert from_plain(type(value), over_the_wire) == value


def test_t6_lists_tuples_and_enums_read_back() -> None:
    rows = [(ConversationKind.INTERNAL, 1), (ConversationKind.EXTERNAL, 2)]
    wire = json.loads(json.dumps(plain(rows)))
    assert from_plain(list[tuple[ConversationKind, int]], wire) == rows
    assert from_plain(dict[str, str], {"a": "b"}) == {"a": "b"}
    assert from_plain(PersonInfo | None, None) is None


@pytest.mark.parametrize(
    ("tp", "value", "where"),
    [
        (SignedIn, {"session_id": 1}, "SignedIn has no"),
        (SignedIn, [1, 2], "SignedIn"),
        (PersonInfo, {**plain(ANN), "kind": "robot"}, "the answer.kind"),
        (Changes, {"conversations": "7"}, "the answer.conversations"),
        (MessageRow, {**plain(SAMPLES[4]), "created_at": "yesterday"}, "the answer.created_at"),
        (int, True, "int"),
        (list[int], {"a": 1}, "list"),
    ],
)
def test_t6_an_answer_of_another_shape_is_one_error_that_says_where(
    tp: type, value: object, where: str
) -> None:
    with pytest.raises(ServerError, match=where):
        decode(tp, value)
