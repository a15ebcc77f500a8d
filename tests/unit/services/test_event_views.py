"""Who sees what of a change (services/event_views.py, pure): R2 for customers, direct
conversations for their members, a person's own changes, administration for administrators."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from services.domain.model import ConversationKind, PersonKind
from services.event_views import (
    ConversationFacts,
    PersonFacts,
    TypedEvent,
    admins_only,
    control,
    follow_event,
    message_event,
    session_event,
    visible,
)
from services.views import ChangeKind

AT = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
ANN = PersonFacts(id=1, name="Ann", email="ann@example.com", kind=PersonKind.USER, is_admin=True)
BOB = PersonFacts(id=2, name="Bob", email="bob@example.com", kind=PersonKind.USER)
CARL = PersonFacts(id=3, name="Carl", email="carl@customer.org", kind=PersonKind.CUSTOMER)
DORA = PersonFacts(id=4, name="Dora", email="dora@shop.net", kind=PersonKind.CUSTOMER)


@dataclass(frozen=True)
class Who:
    person_id: int
    is_admin: bool = False
    customer: bool = False


ADMIN, AGENT, CUSTOMER, OTHER = (
    Who(1, is_admin=True),
    Who(2),
    Who(3, customer=True),
    Who(4, customer=True),
)


def conversation(kind: ConversationKind, people: set[int]) -> ConversationFacts:
    return ConversationFacts(
        id=10,
        kind=kind,
        item_number=None if kind is ConversationKind.DIRECT else 7,
        people=frozenset(people),
        customers=frozenset(people & {CARL.id, DORA.id}),
    )


def posted(kind: ConversationKind, people: set[int]) -> TypedEvent:
    return message_event(
        5,
        conversation(kind, people),
        message_id=99,
        author=BOB,
        text="hello",
        created_at=AT,
        source="person",
        deleted=False,
    )


def test_r2_an_internal_message_reaches_users_only() -> None:
    event = posted(ConversationKind.INTERNAL, {1, 2, 3})
    assert visible(event, AGENT) is not None and visible(event, ADMIN) is not None
    assert visible(event, CUSTOMER) is None


def test_r2_an_external_message_reaches_its_customers_without_addresses() -> None:
    event = posted(ConversationKind.EXTERNAL, {1, 2, 3})
    shown = visible(event, CUSTOMER)
    assert shown is not None
    message = shown["message"]
    assert isinstance(message, dict)
    assert message["author"] == {"id": BOB.id, "name": "Bob"}
    assert "bob@example.com" not in str(shown)
    assert visible(event, OTHER) is None
    assert "bob@example.com" in str(visible(event, AGENT))


def test_a_direct_conversation_reaches_its_members_only() -> None:
    event = posted(ConversationKind.DIRECT, {1, 2})
    assert visible(event, AGENT) is not None
    assert visible(event, Who(5)) is None


def test_viewers_who_see_the_same_thing_share_one_payload() -> None:
    event = posted(ConversationKind.EXTERNAL, {1, 2, 3})
    assert visible(event, AGENT) is visible(event, ADMIN)


def test_r2_a_customer_hears_of_their_own_follows_and_sessions_only() -> None:
    mine = follow_event(6, person=CARL, item_number=7, external_conversation_id=11, following=True)
    theirs = follow_event(
        7, person=DORA, item_number=7, external_conversation_id=11, following=True
    )
    assert visible(mine, CUSTOMER) is not None and visible(theirs, CUSTOMER) is None
    assert "carl@customer.org" not in str(visible(mine, CUSTOMER))
    ended = session_event(8, person_id=BOB.id, session_id=3)
    assert visible(ended, AGENT) is not None and visible(ended, ADMIN) is not None
    assert visible(ended, Who(9)) is None and visible(ended, CUSTOMER) is None


def test_administration_reaches_administrators_and_settings_users_too() -> None:
    for kind in (ChangeKind.EMAIL, ChangeKind.TEMPLATE, ChangeKind.AUTOMATION):
        event = admins_only(9, kind)
        assert visible(event, ADMIN) is not None
        assert visible(event, AGENT) is None and visible(event, CUSTOMER) is None
    settings = control(10, ChangeKind.SETTINGS, users_too=True)
    assert visible(settings, AGENT) is not None and visible(settings, CUSTOMER) is None


def test_t5_r2_users_get_a_messages_recipients_and_client_id_customers_not_the_recipients() -> None:
    """T5: a replica builds its deliveries from the recipients and replaces its provisional
    copy by the client id; R2: a customer learns nothing of the other recipients."""
    event = message_event(
        5,
        conversation(ConversationKind.EXTERNAL, {1, 2, 3, 4}),
        message_id=99,
        author=BOB,
        text="hello",
        created_at=AT,
        source="person",
        deleted=False,
        client_id="b4e1c6f2-0000-4000-8000-000000000001",
        recipients=(1, 3, 4),
    )
    for_agent, for_customer = visible(event, AGENT), visible(event, CUSTOMER)
    assert for_agent is not None and for_customer is not None
    agent_message, customer_message = for_agent["message"], for_customer["message"]
    assert isinstance(agent_message, dict) and isinstance(customer_message, dict)
    assert agent_message["recipients"] == [1, 3, 4]
    assert agent_message["client_id"] == customer_message["client_id"]
    assert "recipients" not in customer_message
