"""The IMAP reader's position kept in the database (I1): survives restarts, shared by processes."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.clock import Clock
from services.store.models import ImapCursor as CursorRow

__all__ = ["DbImapCursor", "account_key"]


def account_key(*, username: str, host: str, port: int) -> str:
    """One mailbox's key: a changed host or login starts a fresh position."""
    return f"{username.lower()}@{host.lower()}:{port}"[:400]


class DbImapCursor:
    """An `ImapCursor` (services.incoming.imap) stored in the `imap_cursors` table."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], *, account: str, clock: Clock
    ) -> None:
        self._sessions = sessions
        self._account = account
        self._clock = clock

    async def load(self, folder: str) -> tuple[int, int] | None:
        async with self._sessions() as session:
            row = await session.get(CursorRow, (self._account, folder))
            return (row.uidvalidity, row.last_uid) if row is not None else None

    async def save(self, folder: str, uidvalidity: int, uid: int) -> None:
        async with self._sessions.begin() as session:
            await self.save_in(session, folder=folder, uidvalidity=uidvalidity, uid=uid)

    async def save_in(
        self, session: AsyncSession, *, folder: str, uidvalidity: int, uid: int
    ) -> None:
        """Store the position in the caller's transaction: it commits with what was read."""
        row = await session.get(CursorRow, (self._account, folder))
        now = self._clock.now()
        if row is None:
            session.add(
                CursorRow(
                    account=self._account,
                    folder=folder,
                    uidvalidity=uidvalidity,
                    last_uid=uid,
                    updated_at=now,
                )
            )
        else:
            row.uidvalidity = uidvalidity
            row.last_uid = uid
            row.updated_at = now
