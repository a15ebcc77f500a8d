"""I2: signed reply tokens; a forged or foreign token never threads."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.domain.tokens import find_token, make_token, read_token

KEY = b"a secret key of this installation"
OTHER = b"someone else's key"
ids = st.integers(min_value=0, max_value=10**12)


def test_i2_token_is_short_and_safe() -> None:
    token = make_token(key=KEY, conversation_id=12, recipient_id=7)
    assert re.fullmatch(r"c12r7-[a-z2-7]{16}", token)


@given(conversation_id=ids, recipient_id=ids)
def test_i2_property_round_trip(conversation_id: int, recipient_id: int) -> None:
    token = make_token(key=KEY, conversation_id=conversation_id, recipient_id=recipient_id)
    assert read_token(token, key=KEY) == (conversation_id, recipient_id)
    assert read_token(token.upper(), key=KEY) == (conversation_id, recipient_id)
    assert read_token(token, key=OTHER) is None


def test_i2_forged_tokens_are_refused() -> None:
    token = make_token(key=KEY, conversation_id=12, recipient_id=7)
    sig = token.split("-")[1]
    assert read_token(f"c13r7-{sig}", key=KEY) is None  # another conversation, same signature
    assert read_token(f"c12r8-{sig}", key=KEY) is None
    assert read_token(f"c012r7-{sig}", key=KEY) is None  # not canonical
    assert read_token(token[:-1] + ("a" if token[-1] != "a" else "b"), key=KEY) is None
    assert read_token(token[:-1], key=KEY) is None
    assert read_token("", key=KEY) is None
    assert read_token("garbage", key=KEY) is None


def test_i2_empty_key_is_refused() -> None:
    with pytest.raises(ValueError, match="key"):
        make_token(key=b"", conversation_id=1, recipient_id=1)


def test_i2_find_token_in_address_and_message_id() -> None:
    token = make_token(key=KEY, conversation_id=12, recipient_id=7)
    assert find_token(f"support+{token}@desk.example.com", key=KEY) == (12, 7)
    assert find_token(f"<{token}.e99@deskbell.example.com>", key=KEY) == (12, 7)
    refs = f"<x@elsewhere.org> <c1r1-aaaaaaaaaaaaaaaa.e1@d.example.com> <{token}.e5@d.example.com>"
    assert find_token(refs, key=KEY) == (12, 7)


def test_i2_find_token_ignores_foreign_and_glued() -> None:
    foreign = make_token(key=OTHER, conversation_id=12, recipient_id=7)
    assert find_token(f"support+{foreign}@desk.example.com", key=KEY) is None
    token = make_token(key=KEY, conversation_id=12, recipient_id=7)
    assert find_token(f"x{token}@desk.example.com", key=KEY) is None
    assert find_token(f"{token}a@desk.example.com", key=KEY) is None
    assert find_token("no token here", key=KEY) is None
