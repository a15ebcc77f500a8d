"""Every error the service raises, in one hierarchy.

Transient errors also subclass ConnectionError or TimeoutError, so callers can retry on the
built-in categories without knowing ours.
"""

from __future__ import annotations

__all__ = [
    "DeskbellError",
    "InputError",
    "MailServerError",
    "MailServerUnreachableError",
    "MailboxError",
    "MailboxUnreachableError",
    "NotFoundError",
    "PermissionDeniedError",
    "SecretStoreUnavailable",
    "StoreBusyError",
    "StoreConflictError",
    "StoreCorruptError",
    "StoreUnreachableError",
]


class DeskbellError(Exception):
    """Base of every error Deskbell raises on purpose; its message is meant for a person."""


class InputError(DeskbellError, ValueError):
    """Bad input from a person or a script: refused, nothing changed."""


class NotFoundError(InputError, LookupError):
    """An item, person, conversation or message that does not exist."""


class PermissionDeniedError(DeskbellError, PermissionError):
    """The acting person may not do this (a customer posting internally, a non-admin)."""


class StoreBusyError(DeskbellError, TimeoutError):
    """Another writer held the database too long; the change was not made."""


class StoreCorruptError(DeskbellError):
    """The database file could not be opened; it was moved aside."""


class StoreUnreachableError(DeskbellError, ConnectionError):
    """The database server did not answer or hung up; the change was not made. Try again."""


class StoreConflictError(InputError):
    """The change clashes with what is stored (a duplicate, a row that is gone); nothing changed."""


class MailServerError(DeskbellError):
    """The SMTP server refused us: TLS certificate, login, no AUTH. Fix the mail settings."""


class MailServerUnreachableError(MailServerError, ConnectionError):
    """The SMTP server did not answer: refused, timed out, hung up. Try again later."""


class SecretStoreUnavailable(DeskbellError):
    """No OS keyring to keep a password in (E9); the message says how to get one."""


class MailboxError(DeskbellError):
    """The IMAP server refused us (I1): login, TLS certificate, folder. Fix the mailbox settings."""


class MailboxUnreachableError(MailboxError, ConnectionError):
    """The IMAP server did not answer or hung up (I1). The reader retries with backoff."""
