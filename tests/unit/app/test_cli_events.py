"""`deskbell events` (T1, T6) without a server, and how it writes an event on one line. The
stream itself, from a real server, is followed in tests/e2e/test_issue10_user_story.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from app import cli
from app.cli_remote import describe_event


def test_t6_events_on_this_machine_is_one_line_saying_it_needs_a_server(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli.main(["--data-dir", str(tmp_path), "events", "--json"])
    out, err = capsys.readouterr()
    assert (code, out) == (1, "")
    assert err == (
        "deskbell: error: 'deskbell events' needs a team server: run 'deskbell login URL' "
        "first, or give --server URL\n"
    )
    assert list(tmp_path.iterdir()) == []  # no local workspace was opened for nothing


def test_t1_a_message_event_reads_as_its_item_author_and_text_on_one_line() -> None:
    event = {
        "type": "message",
        "position": 41,
        "action": "posted",
        "conversation_id": 3,
        "item_number": 7,
        "message": {
            "id": 9,
            "item_number": 7,
            "conversation_id": 3,
            "author": {"name": "Ann Agent", "email": "ann@example.com"},
            "text": "two\nlines \x1b[31mred",
        },
    }
    assert describe_event(event) == "41 message #7 Ann Agent: two\\nlines \\x1b[31mred"


def test_t1_other_events_read_as_position_type_and_what_they_are_about() -> None:
    assert describe_event({"type": "ready", "position": 12}) == "12 ready"
    assert describe_event({"type": "seen", "position": 13, "item_number": 2}) == "13 seen #2"
    deleted = {"type": "message", "position": 14, "action": "deleted", "message_id": 5}
    assert describe_event(deleted) == "14 message 5 deleted"
    mail = {
        "type": "message",
        "position": 15,
        "message": {"conversation_id": 3, "author": None, "text": "hi"},
    }
    assert describe_event(mail) == "15 message conversation 3 Deskbell: hi"
