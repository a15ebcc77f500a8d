"""The desktop's team account (T4, T5): which server, who, and which certificate to trust.

Kept in `<data_dir>/team/account.json` beside the replica, with no secret in it: the device
session's token lives in the OS keyring (`services.secrets.SecretStore`), never in a file. A
self-signed server certificate the person chose to trust is kept as its SHA-256 fingerprint
(`pin_sha256`): that certificate, and no other, is accepted for this account.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

from services.errors import InputError, quoted
from services.secrets import SecretStore

if TYPE_CHECKING:
    # Imported when a client is made: a start that only looks for an account (a solo
    # desktop's) loads neither aiohttp nor the service's core (issue 9's first window).
    from services.server_client import ServerClient

__all__ = ["ACCOUNT_FILE", "TEAM_FOLDER", "AccountStore", "TeamAccount", "team_folder"]

TEAM_FOLDER: Final = "team"  # the replica and the account, under the data folder
ACCOUNT_FILE: Final = "account.json"


def team_folder(data_dir: Path) -> Path:
    return data_dir / TEAM_FOLDER


@dataclass(frozen=True, slots=True)
class TeamAccount:
    server_url: str  # as `normalize_server_url` keeps it
    email: str
    person_id: int  # the server's id of this person (the replica holds server ids)
    name: str
    pin_sha256: str | None = None  # "Trust this certificate": the one certificate accepted

    @property
    def token_name(self) -> str:
        """The keyring entry of this account's token: the desktop's own, apart from the
        command line's `deskbell login`, so signing out of one leaves the other signed in."""
        return f"desktop-token:{self.email}@{self.server_url}"

    def client(self, token: str | None = None, *, timeout_s: float | None = None) -> ServerClient:
        """A client of this account's server, trusting its pinned certificate if any."""
        from services.server_client import DEFAULT_TIMEOUT_S, ServerClient

        return ServerClient(
            self.server_url,
            token,
            pin_sha256=self.pin_sha256,
            timeout_s=DEFAULT_TIMEOUT_S if timeout_s is None else timeout_s,
        )


class AccountStore:
    """The saved account of one data folder and its token in the keyring."""

    def __init__(self, data_dir: Path, *, secrets: SecretStore | None = None) -> None:
        self.folder = team_folder(data_dir)
        self.path = self.folder / ACCOUNT_FILE
        self._secrets = secrets if secrets is not None else SecretStore()

    def load(self) -> TeamAccount | None:
        """The saved account, or None when this folder works on this computer only."""
        try:
            doc = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise InputError(
                f"cannot read the team account {quoted(str(self.path))} ({exc}): "
                "delete it and sign in again"
            ) from None
        try:
            pin = doc.get("pin_sha256")
            return TeamAccount(
                server_url=str(doc["server_url"]),
                email=str(doc["email"]),
                person_id=int(doc["person_id"]),
                name=str(doc["name"]),
                pin_sha256=str(pin) if pin is not None else None,
            )
        except (KeyError, TypeError, ValueError, AttributeError):
            raise InputError(
                f"{quoted(str(self.path))} is not a team account: delete it and sign in again"
            ) from None

    def token(self, account: TeamAccount) -> str | None:
        """The account's session token; None once signed out (or never kept)."""
        return self._secrets.get(name=account.token_name)

    def save(self, account: TeamAccount, token: str) -> None:
        """Keep the token in the keyring, then the account in its file. A keyring that cannot
        keep it (SecretStoreUnavailable) fails before anything is written."""
        try:
            previous = self.load()
        except InputError:
            previous = None  # an unreadable file is replaced below
        self._secrets.set(name=account.token_name, value=token)
        if previous is not None and previous.token_name != account.token_name:
            self.forget_token(previous)  # another server or person: its token is spent
        self.folder.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(self.path.name + ".new")
        temporary.write_text(json.dumps(asdict(account), indent=2) + "\n", encoding="utf-8")
        os.replace(temporary, self.path)  # a half-written file never replaces a good one

    def forget_token(self, account: TeamAccount) -> None:
        self._secrets.delete(name=account.token_name)

    def remove(self, account: TeamAccount) -> None:
        """Forget the token, the account and the replica beside it (the whole team folder):
        call it with the replica's service closed."""
        self.forget_token(account)
        shutil.rmtree(self.folder, ignore_errors=True)
