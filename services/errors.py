"""Every error the service raises, in one hierarchy.

Transient errors also subclass ConnectionError or TimeoutError, so callers can retry on the
built-in categories without knowing ours.
"""

from __future__ import annotations

from datetime import datetime

__all__ = [
    "AuthenticationError",
    "DeskbellError",
    "InputError",
    "MailServerError",
    "MailServerUnreachableError",
    "MailboxError",
    "MailboxUnreachableError",
    "NotFoundError",
    "PermissionDeniedError",
    "SecretStoreUnavailable",
    "ServerError",
    "ServerUnreachableError",
    "StoreBusyError",
    "StoreConflictError",
    "StoreCorruptError",
    "StoreError",
    "StoreFullError",
    "StoreReadOnlyError",
    "StoreUnavailableError",
    "StoreUnreachableError",
    "TooManyAttemptsError",
    "UntrustedCertificateError",
    "quoted",
]


def quoted(value: str, *, limit: int = 60) -> str:
    """How a message shows what a person typed: quoted, escaped to one line, cut to `limit`
    characters (an error must stay one readable line, whatever was typed)."""
    return repr(value if len(value) <= limit else value[:limit] + "…")


class DeskbellError(Exception):
    """Base of every error Deskbell raises on purpose; its message is meant for a person."""


class InputError(DeskbellError, ValueError):
    """Bad input from a person or a script: refused, nothing changed."""


class NotFoundError(InputError, LookupError):
    """An item, person, conversation or message that does not exist."""


class PermissionDeniedError(DeskbellError, PermissionError):
    """The acting person may not do this (a customer posting internally, a non-admin)."""


class StoreError(DeskbellError):
    """The database could not do what was asked, and nothing was changed. The message says
    why in one line and what to do; the same call works again once the cause is gone."""


class StoreBusyError(StoreError, TimeoutError):
    """Another program or writer held the database locked too long (never damage)."""


class StoreFullError(StoreError):
    """The disk holding the database is full."""


class StoreReadOnlyError(StoreError):
    """The database, or the folder it lives in, cannot be written."""


class StoreCorruptError(StoreError):
    """The database is damaged (a failed integrity check, a malformed page)."""


class StoreUnavailableError(StoreError):
    """The database cannot be opened or read: a missing folder, a disk I/O error."""


class StoreUnreachableError(StoreError, ConnectionError):
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


class ServerError(DeskbellError):
    """The team server (T6) answered in a way no Deskbell server does, or its TLS certificate is
    not trusted; the message says what came back and what to check."""


class ServerUnreachableError(ServerError, ConnectionError):
    """The team server did not answer: refused, timed out, hung up, or a proxy in front of it
    says it is down. Nothing was done on the server's side that the client knows of; try
    again."""


class UntrustedCertificateError(ServerError):
    """The team server's TLS certificate is not trusted here, or is not the one this machine
    was told to trust (pinned); `fingerprint` is the SHA-256 of the certificate it showed
    (`AB:CD:...`, None when it could not be read), for a person to compare and trust."""

    def __init__(self, message: str, *, fingerprint: str | None = None) -> None:
        super().__init__(message)
        self.fingerprint = fingerprint


class AuthenticationError(DeskbellError):
    """Who asks could not be told (T4): a wrong email or password, a wrong or spent reset code,
    a session token that is unknown or ended. Sign in again."""


class TooManyAttemptsError(AuthenticationError):
    """Too many failed sign-ins for this account or address (T4); `retry_at` says when the
    next attempt is taken."""

    def __init__(self, message: str, *, retry_at: datetime) -> None:
        super().__init__(message)
        self.retry_at = retry_at
