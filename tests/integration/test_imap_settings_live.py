"""I1: new mailbox settings take effect in a running service, not at the next launch."""

from __future__ import annotations

import asyncio
from pathlib import Path

from services.api import Service
from tests.support.dovecot import DovecotServer


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
        for _ in range(1200):  # up to a minute on a busy machine
            if service.incoming.reader is not None:
                break
            await asyncio.sleep(0.05)
        assert service.incoming.reader is not None
        await service.set_config("imap.folder", "Elsewhere")
        reader = service.incoming.reader
        for _ in range(1200):  # up to a minute on a busy machine
            if service.incoming.reader is not reader:
                break
            await asyncio.sleep(0.05)
        assert service.incoming.reader is not reader  # restarted with the new folder
    finally:
        await service.close()
