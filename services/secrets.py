"""Passwords live in the OS keyring (E9), never in a plain file.

Without a usable keyring backend there is no silent fallback: `SecretStoreUnavailable` says how to
get one. Tests choose a file backend explicitly through PYTHON_KEYRING_BACKEND.
"""

from __future__ import annotations

import keyring
import keyring.errors
from keyring.backends import fail

from services.errors import SecretStoreUnavailable

__all__ = ["SERVICE_NAME", "SecretStore"]

SERVICE_NAME = "deskbell"

_HOW_TO_FIX = (
    "no OS keyring is available to keep the password in. Install and unlock a Secret Service "
    "(gnome-keyring or KWallet) on Linux, or choose a keyring backend with "
    "PYTHON_KEYRING_BACKEND; Deskbell never stores passwords in plain files"
)


class SecretStore:
    """Named secrets ("smtp", "imap") of this workspace in the OS keyring."""

    def __init__(self, *, service_name: str = SERVICE_NAME) -> None:
        self._service = service_name

    def _backend(self) -> keyring.backend.KeyringBackend:
        backend = keyring.get_keyring()
        if isinstance(backend, fail.Keyring):
            raise SecretStoreUnavailable(_HOW_TO_FIX)
        return backend

    def get(self, *, name: str) -> str | None:
        try:
            return self._backend().get_password(self._service, name)
        except keyring.errors.KeyringError as exc:
            raise SecretStoreUnavailable(f"{_HOW_TO_FIX} ({exc})") from exc

    def set(self, *, name: str, value: str) -> None:
        try:
            self._backend().set_password(self._service, name, value)
        except keyring.errors.KeyringError as exc:
            raise SecretStoreUnavailable(f"{_HOW_TO_FIX} ({exc})") from exc

    def delete(self, *, name: str) -> None:
        try:
            self._backend().delete_password(self._service, name)
        except keyring.errors.PasswordDeleteError:
            return
        except keyring.errors.KeyringError as exc:
            raise SecretStoreUnavailable(f"{_HOW_TO_FIX} ({exc})") from exc
