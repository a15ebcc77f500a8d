"""N1, N4, N5, N6, R5: what a new message sets off, decided without a window."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from services.api import (
    MessageRow,
    MessageStatus,
    NotificationSettings,
    PersonInfo,
    PersonKind,
)
from ui.policies.alerts import AlertPolicy

NOW = datetime(2025, 3, 4, 10, 0, tzinfo=UTC)
ME = PersonInfo(id=1, email="ann@example.com", name="Ann Agent", kind=PersonKind.USER)
BOB = PersonInfo(id=2, email="bob@example.com", name="Bob Agent", kind=PersonKind.USER)


def _message(
    author: PersonInfo | None, conv: int = 7, text: str = "The printer is on fire"
) -> MessageRow:
    return MessageRow(
        id=11,
        conversation_id=conv,
        author=author,
        text=text,
        created_at=NOW,
        source="app",
        status=MessageStatus(sent_at=NOW),
        unseen_by_viewer=True,
    )


def test_n1_someone_elses_message_pings_and_notifies() -> None:
    alert = AlertPolicy().on_message(
        _message(BOB), me=ME, conversation="#1 Printer", on_screen=False, dnd=False
    )
    assert alert is not None
    assert (alert.ping, alert.notify) == (True, True)
    assert alert.title == "Bob Agent · #1 Printer"
    assert alert.body == "The printer is on fire"


def test_n1_a_direct_conversation_is_titled_by_its_author() -> None:
    alert = AlertPolicy().on_message(
        _message(BOB), me=ME, conversation="Bob Agent", on_screen=False, dnd=False
    )
    assert alert is not None and alert.title == "Bob Agent"


def test_n4_nothing_for_my_own_words_or_what_is_on_screen() -> None:
    policy = AlertPolicy()
    assert (
        policy.on_message(_message(ME), me=ME, conversation="x", on_screen=False, dnd=False) is None
    )
    assert (
        policy.on_message(_message(BOB), me=ME, conversation="x", on_screen=True, dnd=False) is None
    )


def test_n6_do_not_disturb_silences_ping_and_notification() -> None:
    alert = AlertPolicy().on_message(
        _message(BOB), me=ME, conversation="x", on_screen=False, dnd=True
    )
    assert alert is not None
    assert (alert.ping, alert.notify) == (False, False)


def test_r5_sound_and_notifications_switch_off_on_their_own() -> None:
    quiet = replace(ME, settings=NotificationSettings(sound=False))
    alert = AlertPolicy().on_message(
        _message(BOB), me=quiet, conversation="x", on_screen=False, dnd=False
    )
    assert alert is not None and (alert.ping, alert.notify) == (False, True)
    hidden = replace(ME, settings=NotificationSettings(in_app=False))
    alert = AlertPolicy().on_message(
        _message(BOB), me=hidden, conversation="x", on_screen=False, dnd=False
    )
    assert alert is not None and (alert.ping, alert.notify) == (True, False)


def test_s4_a_notification_goes_when_its_conversation_is_seen_elsewhere() -> None:
    policy = AlertPolicy()
    policy.shown(7)
    policy.shown(8)
    assert policy.seen_elsewhere({7: 2}) == [8]
    policy.withdrawn(8)
    assert policy.showing() == [7]
