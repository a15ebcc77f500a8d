"""The desktop's team side under test: a file keyring of each test's own, chosen on purpose
(services.secrets refuses a plain-text keyring it was not given)."""

from __future__ import annotations

from pathlib import Path

import pytest
from keyrings.alt.file import PlaintextKeyring

from services.secrets import SecretStore


@pytest.fixture
def secrets(tmp_path: Path) -> SecretStore:
    backend = PlaintextKeyring()
    backend.file_path = str(tmp_path / "keyring.cfg")
    return SecretStore(backend=backend)
