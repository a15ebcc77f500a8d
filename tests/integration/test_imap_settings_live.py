"""I1: new mailbox settings take effect in a running service, not at the next launch."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from services.api import Service
from tests.support.dovecot import DovecotServer


async def _until(condition: Callable[[], bool]) -> None:
    # Generous: the machine may be shared and ten times slower than usual.
    async with asyncio.timeout(60):
        while not condition():  # noqa: ASYNC110 - a polled condition, not an event
            await asyncio.sleep(0.05)


async def test_i1_setting_the_imap_host_starts_the_reader_at_once(
    tmp_path: Path, dovecot: DovecotServer
) -> None:
    service = await Service.open(data_dir=tmp_path)
    try:
        await service.start()
        assert service.incoming.reader is None  # no mailbox yet
        await service.set_config("smtp.cafile", str(dovecot.cafile))
        await service.set_config("imap.port", str(dovecot.tls_port))
        await service.set_config("imap.username", dovecot.user)
        service.set_imap_password(dovecot.password)
        await service.set_config("imap.host", "127.0.0.1")
        await _until(lambda: service.incoming.reader is not None)
        await service.set_config("imap.folder", "Elsewhere")
        reader = service.incoming.reader
        await _until(lambda: service.incoming.reader is not reader)  # restarted: new folder
    finally:
        await service.close()
