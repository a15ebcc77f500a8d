"""Passwords in the OS keyring (E9), never in a plain file.

Entries live under the service name "deskbell" with short names such as "smtp" and "imap".
A machine without a usable keyring gets `SecretStoreUnavailable` with a way to fix it; there
is no plain-text fallback. A plain-text backend (keyrings.alt) that keyring picked on its own is
refused too: it is allowed only when chosen on purpose, by PYTHON_KEYRING_BACKEND or by passing
it in (tests).
"""

from __future__ import annotations

import os
import unicodedata
from typing import TYPE_CHECKING

from services.errors import InputError, SecretStoreUnavailable

if TYPE_CHECKING:
    from keyring.backend import KeyringBackend
    from keyring.errors import KeyringError

# keyring (and the D-Bus and metadata packages it loads) is imported when a password is first
# needed, not at start-up (issue 9).

__all__ = ["IMAP_PASSWORD", "SERVICE_NAME", "SMTP_PASSWORD", "SecretStore"]

SERVICE_NAME = "deskbell"
SMTP_PASSWORD = "smtp"
IMAP_PASSWORD = "imap"

_ENV = "PYTHON_KEYRING_BACKEND"
_HOW_TO_FIX = (
    "Install and unlock a Secret Service keyring (for example gnome-keyring or KWallet), "
    f"or choose a keyring backend with the {_ENV} environment variable."
)


def _check_name(name: str) -> str:
    if not name or any(unicodedata.category(c).startswith(("C", "Z")) for c in name):
        raise InputError(f"Invalid secret name: {name!r}")
    return name


class SecretStore:
    """Get, set and delete Deskbell's passwords in the OS keyring."""

    def __init__(
        self, *, backend: KeyringBackend | None = None, service_name: str = SERVICE_NAME
    ) -> None:
        # Resolved on first use, so building the service never fails on a keyring-less machine.
        self._backend = backend
        self._chosen = backend is not None
        self._service = service_name

    def backend(self) -> KeyringBackend:
        """The keyring in use; raises SecretStoreUnavailable if there is none worth the name."""
        import keyring
        from keyring.backends import fail, null

        backend = self._backend if self._backend is not None else keyring.get_keyring()
        if isinstance(backend, fail.Keyring | null.Keyring):
            raise SecretStoreUnavailable(f"No keyring to keep passwords in. {_HOW_TO_FIX}")
        plaintext = type(backend).__module__.startswith("keyrings.alt")
        if plaintext and not self._chosen and not os.environ.get(_ENV):
            raise SecretStoreUnavailable(
                f"Only a plain-text keyring ({type(backend).__name__}) was found; Deskbell "
                f"will not keep passwords in a plain file. {_HOW_TO_FIX}"
            )
        self._backend = backend
        return backend

    def get(self, *, name: str) -> str | None:
        backend = self.backend()
        from keyring.errors import KeyringError

        try:
            value: str | None = backend.get_password(self._service, _check_name(name))
        except KeyringError as exc:
            raise self._unavailable(exc) from exc
        return value

    def set(self, *, name: str, value: str) -> None:
        backend = self.backend()
        from keyring.errors import KeyringError

        try:
            backend.set_password(self._service, _check_name(name), value)
        except KeyringError as exc:
            raise self._unavailable(exc) from exc

    def delete(self, *, name: str) -> None:
        """Forget a password; forgetting one that is not there is not an error."""
        backend = self.backend()
        from keyring.errors import KeyringError, PasswordDeleteError

        try:
            backend.delete_password(self._service, _check_name(name))
        except PasswordDeleteError:
            return
        except KeyringError as exc:
            raise self._unavailable(exc) from exc

    def _unavailable(self, exc: KeyringError) -> SecretStoreUnavailable:
        from keyring.errors import KeyringLocked

        if isinstance(exc, KeyringLocked):
            return SecretStoreUnavailable(
                f"The keyring is locked: unlock it and try again. ({exc})"
            )
        return SecretStoreUnavailable(f"The keyring failed: {exc}. {_HOW_TO_FIX}")
