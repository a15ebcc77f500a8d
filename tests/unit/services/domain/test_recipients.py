"""R1–R4: who receives a message."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from services.domain.model import ConversationKind, Person, PersonKind
from services.domain.recipients import may_see, recipients

ANN = Person(id=1, email="ann@desk.example.com", name="Ann", kind=PersonKind.USER)
BOB = Person(id=2, email="bob@desk.example.com", name="Bob", kind=PersonKind.USER)
CAT = Person(id=3, email="cat@customer.example.com", name="Cat", kind=PersonKind.CUSTOMER)

people = st.builds(
    Person,
    id=st.integers(min_value=1, max_value=30),
    email=st.just("x@example.com"),
    name=st.text(max_size=5),
    kind=st.sampled_from(PersonKind),
)


def test_r1_followers_except_author_receive() -> None:
    got = recipients(kind=ConversationKind.EXTERNAL, author_id=ANN.id, audience=[ANN, BOB, CAT])
    assert got == [BOB, CAT]


def test_r1_automation_message_reaches_every_follower() -> None:
    got = recipients(kind=ConversationKind.EXTERNAL, author_id=None, audience=[ANN, CAT])
    assert got == [ANN, CAT]


def test_r2_customer_dropped_from_internal_and_direct() -> None:
    for kind in (ConversationKind.INTERNAL, ConversationKind.DIRECT):
        assert recipients(kind=kind, author_id=ANN.id, audience=[ANN, BOB, CAT]) == [BOB]


def test_r2_r3_may_see() -> None:
    assert may_see(ANN, ConversationKind.INTERNAL)
    assert may_see(ANN, ConversationKind.EXTERNAL)
    assert may_see(ANN, ConversationKind.DIRECT)
    assert may_see(CAT, ConversationKind.EXTERNAL)
    assert not may_see(CAT, ConversationKind.INTERNAL)
    assert not may_see(CAT, ConversationKind.DIRECT)


def test_r4_customer_author_gets_nothing_back() -> None:
    assert recipients(kind=ConversationKind.EXTERNAL, author_id=CAT.id, audience=[CAT, ANN]) == [
        ANN
    ]


def test_recipients_deduplicated_in_stable_order() -> None:
    got = recipients(kind=ConversationKind.EXTERNAL, author_id=None, audience=[CAT, ANN, CAT, ANN])
    assert got == [CAT, ANN]


@given(
    kind=st.sampled_from(ConversationKind),
    author=st.one_of(st.none(), st.integers(min_value=1, max_value=30)),
    distinct=st.lists(people, max_size=15, unique_by=lambda p: p.id),
    repeats=st.lists(st.integers(min_value=0, max_value=14), max_size=5),
)
def test_r2_r4_property_customer_never_internal_author_never_self(
    kind: ConversationKind, author: int | None, distinct: list[Person], repeats: list[int]
) -> None:
    # Followers and participants may overlap: repeat some people.
    audience = distinct + [distinct[i] for i in repeats if i < len(distinct)]
    got = recipients(kind=kind, author_id=author, audience=audience)
    ids = [p.id for p in got]
    assert len(ids) == len(set(ids))
    assert author not in ids  # R4
    if kind.users_only:
        assert all(p.is_user for p in got)  # R2
    # R1/R3: nobody eligible is left out.
    eligible = {p.id for p in audience if p.id != author and may_see(p, kind)}
    assert set(ids) == eligible
