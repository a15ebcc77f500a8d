"""What a customer's answer shows of other people (R2, T4): their name, address and kind, never
their notification settings, quiet hours or whether they administer the workspace. The
service's reads are shared by everyone who may see a conversation; this trims an answer on its
way to a customer session, once, for every call."""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

from services.domain.model import NotificationSettings
from services.views import PersonInfo

__all__ = ["for_customer"]

T = TypeVar("T")

_PLAIN_SETTINGS = NotificationSettings()


def for_customer(value: T, customer_id: int) -> T:
    """`value` with every person but the customer themselves reduced to what anyone may see."""
    return _trim(value, customer_id)  # type: ignore[no-any-return]


def _trim(value: Any, customer_id: int) -> Any:
    if isinstance(value, PersonInfo):
        if value.id == customer_id:
            return value
        return dataclasses.replace(value, is_admin=False, settings=_PLAIN_SETTINGS)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changed = {}
        for f in dataclasses.fields(value):
            if not f.init:
                continue
            old = getattr(value, f.name)
            new = _trim(old, customer_id)
            if new is not old:
                changed[f.name] = new
        return dataclasses.replace(value, **changed) if changed else value
    if isinstance(value, list):
        return [_trim(v, customer_id) for v in value]
    if isinstance(value, tuple):
        return tuple(_trim(v, customer_id) for v in value)
    if isinstance(value, dict):
        return {k: _trim(v, customer_id) for k, v in value.items()}
    return value
