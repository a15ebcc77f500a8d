"""The connection state the window shows quietly (T5): a short text for each, for a person."""

from __future__ import annotations

import re

from services.api import ConnectionState


def test_t5_every_connection_state_has_its_own_short_text_without_spec_codes() -> None:
    labels = [state.label for state in ConnectionState]
    assert len(set(labels)) == len(labels) == 4
    for label in labels:
        assert 0 < len(label) <= 60
        assert not re.search(r"\b[A-Z]\d+\b", label)
