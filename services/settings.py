"""The workspace's stored settings: read, stored, and held by the service (`Config`).

What each key accepts is `services.config` (light enough for the command line's start-up).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

from sqlalchemy import select

from services.config import KEYS, usable_settings
from services.errors import InputError, quoted
from services.store.changes import record_change
from services.store.database import Tx
from services.store.models import Setting
from services.views import ChangeKind

__all__ = [
    "TOKEN_KEY_SETTING",
    "Config",
    "StoredSettings",
    "load_settings",
    "seed_token_key",
    "store_setting",
]

log = logging.getLogger(__name__)

# The key that signs reply tokens (I2) and bounce addresses (E7): made once, at first start.
TOKEN_KEY_SETTING: Final = "secret.token_key"


# --- stored settings --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoredSettings:
    """Every stored setting, as read in one transaction."""

    values: Mapping[str, str] = field(default_factory=dict)
    token_key: bytes = b""


def load_settings(tx: Tx) -> StoredSettings:
    values = {key: value for key, value in tx.session.execute(select(Setting.key, Setting.value))}
    token = values.pop(TOKEN_KEY_SETTING, "")
    return StoredSettings(values=values, token_key=bytes.fromhex(token))


def seed_token_key(tx: Tx) -> None:
    """First start: the workspace's signing key (kept once made: tokens in the wild use it)."""
    if tx.session.get(Setting, TOKEN_KEY_SETTING) is None:
        tx.session.add(Setting(key=TOKEN_KEY_SETTING, value=secrets.token_hex(32)))


def store_setting(tx: Tx, *, key: str, stored: str, now: datetime) -> None:
    """Store an already parsed value (`parse_value`)."""
    row = tx.session.get(Setting, key)
    if row is None:
        tx.session.add(Setting(key=key, value=stored))
    else:
        row.value = stored
    record_change(tx, kind=ChangeKind.SETTINGS, at=now)


class Config:
    """The workspace's settings as this process last read them (`config(key)` never waits)."""

    def __init__(self) -> None:
        self._values: dict[str, str] = {}
        self.refused: dict[str, str] = {}  # stored settings refused at load: key, why
        self.token_key = b""

    def __call__(self, key: str) -> str:
        if key not in KEYS:
            raise InputError(f"unknown setting {quoted(key)}")
        return self._values.get(key, KEYS[key].default)

    def use(self, stored: StoredSettings) -> None:
        """Take what was read; a stored value no longer acceptable falls back to its default."""
        self._values, self.refused = usable_settings(stored.values)
        self.token_key = stored.token_key
        for key, reason in self.refused.items():
            log.warning(
                "a stored setting is refused: %s; using the default, %r", reason, KEYS[key].default
            )

    def remember(self, key: str, stored: str) -> None:
        """A value this process just stored: in force at once, before the change feed says so."""
        self._values[key] = stored
        self.refused.pop(key, None)

    def known(self) -> dict[str, str]:
        return {k: self(k) for k in sorted(KEYS)}
