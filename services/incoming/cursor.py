"""The IMAP reader's position kept in the database (I1): survives restarts, shared by processes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, insert, select, update

from services.clock import Clock
from services.store.database import Database, Tx
from services.store.models import ImapCursor as CursorRow
from services.store.prepared import Prepared

__all__ = ["CursorPosition", "DbImapCursor", "account_key", "save_position"]


def account_key(*, username: str, host: str, port: int) -> str:
    """One mailbox's key: a changed host or login starts a fresh position."""
    return f"{username.lower()}@{host.lower()}:{port}"[:400]


@dataclass(frozen=True, slots=True)
class CursorPosition:
    """Where one account's folder stands: saved in the transaction of the mails it follows."""

    account: str
    folder: str
    uidvalidity: int
    uid: int


_LOAD = Prepared[tuple[int, int]](
    select(CursorRow.uidvalidity, CursorRow.last_uid).where(
        CursorRow.account == bindparam("account"), CursorRow.folder == bindparam("folder")
    )
)
_UPDATE = Prepared[tuple[str]](
    update(CursorRow)
    .where(CursorRow.account == bindparam("b_account"), CursorRow.folder == bindparam("b_folder"))
    .values(
        uidvalidity=bindparam("b_uidvalidity"),
        last_uid=bindparam("b_uid"),
        updated_at=bindparam("b_at"),
    )
    .returning(CursorRow.account)
)
_INSERT = Prepared(insert(CursorRow))


def save_position(tx: Tx, position: CursorPosition, *, now: datetime) -> None:
    """Store the position in the caller's unit of work: it commits with what was read."""
    moved = tx.run(
        _UPDATE,
        {
            "b_account": position.account,
            "b_folder": position.folder,
            "b_uidvalidity": position.uidvalidity,
            "b_uid": position.uid,
            "b_at": now,
        },
    )
    if not moved:
        tx.run(
            _INSERT,
            {
                "account": position.account,
                "folder": position.folder,
                "uidvalidity": position.uidvalidity,
                "last_uid": position.uid,
                "updated_at": now,
            },
        )


def _load(tx: Tx, account: str, folder: str) -> tuple[int, int] | None:
    rows = tx.run(_LOAD, {"account": account, "folder": folder})
    return (int(rows[0][0]), int(rows[0][1])) if rows else None


class DbImapCursor:
    """An `ImapCursor` (services.incoming.imap) stored in the `imap_cursors` table."""

    def __init__(self, db: Database, *, account: str, clock: Clock) -> None:
        self._db = db
        self.account = account
        self._clock = clock

    def at(self, folder: str, uidvalidity: int, uid: int) -> CursorPosition:
        return CursorPosition(self.account, folder, uidvalidity, uid)

    async def load(self, folder: str) -> tuple[int, int] | None:
        return await self._db.read(_load, self.account, folder)

    async def save(self, folder: str, uidvalidity: int, uid: int) -> None:
        await self._db.write(
            save_position, self.at(folder, uidvalidity, uid), now=self._clock.now()
        )
