"""Every error the service raises, in one hierarchy.

Transient errors also subclass ConnectionError or TimeoutError, so callers can retry on the
built-in categories without knowing ours.
"""

from __future__ import annotations

__all__ = [
    "DeskbellError",
    "InputError",
    "NotFoundError",
    "PermissionDeniedError",
    "StoreCorruptError",
]


class DeskbellError(Exception):
    """Base of every error Deskbell raises on purpose; its message is meant for a person."""


class InputError(DeskbellError, ValueError):
    """Bad input from a person or a script: refused, nothing changed."""


class NotFoundError(InputError, LookupError):
    """An item, person, conversation or message that does not exist."""


class PermissionDeniedError(DeskbellError, PermissionError):
    """The acting person may not do this (a customer posting internally, a non-admin)."""


class StoreCorruptError(DeskbellError):
    """The database file could not be opened; it was moved aside."""
