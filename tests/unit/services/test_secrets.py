"""E9: the SMTP and IMAP passwords live in the OS keyring, never in a plain file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import keyring
import keyring.core
import keyring.errors
import pytest
from keyring.backend import KeyringBackend
from keyring.backends import fail, null
from keyrings.alt.file import PlaintextKeyring

from services.errors import InputError, SecretStoreUnavailable
from services.secrets import SERVICE_NAME, SecretStore


@pytest.fixture(autouse=True)
def global_keyring(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Every test starts from keyring's own choice in a private data folder, and puts the
    process-wide backend back afterwards."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.delenv("PYTHON_KEYRING_BACKEND", raising=False)
    before = keyring.get_keyring()
    yield
    keyring.set_keyring(before)


@pytest.fixture
def file_keyring(tmp_path: Path) -> PlaintextKeyring:
    backend = PlaintextKeyring()
    backend.file_path = str(tmp_path / "keyring.cfg")
    return backend


class LockedKeyring(KeyringBackend):
    """A keyring whose owner declined to unlock it (cannot be produced for real here)."""

    priority = -10  # never picked by keyring's own detection in later tests

    def get_password(self, service: str, username: str) -> str | None:
        raise keyring.errors.KeyringLocked("the collection is locked")

    def set_password(self, service: str, username: str, password: str) -> None:
        raise keyring.errors.KeyringLocked("the collection is locked")


def test_e9_password_round_trip(file_keyring: PlaintextKeyring) -> None:
    store = SecretStore(backend=file_keyring)
    assert store.get(name="smtp") is None

    store.set(name="smtp", value="hunter2")
    store.set(name="imap", value="other")

    assert store.get(name="smtp") == "hunter2"
    assert file_keyring.get_password(SERVICE_NAME, "smtp") == "hunter2"
    store.delete(name="smtp")
    assert store.get(name="smtp") is None
    assert store.get(name="imap") == "other"
    store.delete(name="smtp")  # forgetting twice is fine


def test_e9_backend_chosen_by_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyrings.alt.file.PlaintextKeyring")
    keyring.core.init_backend()

    SecretStore().set(name="smtp", value="s3cret")

    assert SecretStore().get(name="smtp") == "s3cret"
    assert (tmp_path / "data").exists()  # XDG_DATA_HOME, not the real home


@pytest.mark.parametrize("backend", [fail.Keyring(), null.Keyring()])
def test_e9_no_keyring_is_a_clear_error(backend: KeyringBackend) -> None:
    keyring.set_keyring(backend)
    store = SecretStore()

    with pytest.raises(SecretStoreUnavailable) as caught:
        store.set(name="smtp", value="hunter2")
    message = str(caught.value)
    assert "gnome-keyring" in message
    assert "PYTHON_KEYRING_BACKEND" in message
    with pytest.raises(SecretStoreUnavailable):
        store.get(name="smtp")
    with pytest.raises(SecretStoreUnavailable):
        SecretStore(backend=backend).delete(name="smtp")


def test_e9_no_silent_plain_text_fallback(tmp_path: Path) -> None:
    """keyring picks keyrings.alt's plain file on its own when there is no Secret Service."""
    keyring.set_keyring(PlaintextKeyring())

    with pytest.raises(SecretStoreUnavailable, match="plain"):
        SecretStore().set(name="smtp", value="hunter2")

    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert written == []


def test_e9_locked_keyring_says_so() -> None:
    store = SecretStore(backend=LockedKeyring())

    with pytest.raises(SecretStoreUnavailable, match="locked"):
        store.get(name="smtp")
    with pytest.raises(SecretStoreUnavailable, match="locked"):
        store.set(name="smtp", value="x")


@pytest.mark.parametrize("name", ["", "smtp\n", "sm tp", "smtp\u2028"])
def test_e9_secret_names_are_plain(file_keyring: PlaintextKeyring, name: str) -> None:
    with pytest.raises(InputError):
        SecretStore(backend=file_keyring).set(name=name, value="x")
