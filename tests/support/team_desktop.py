"""A team desktop's service and sync in a process of its own, for tests that kill it (issue
11, D7): `python -m tests.support.team_desktop URL TOKEN PERSON_ID DATA_DIR CONVERSATION TEXT`
opens the replica, starts the sync, posts TEXT as the signed-in person into CONVERSATION,
prints "posted" once the post is in the replica (and in its queue), then waits to be killed.
With TEXT "-" it posts nothing: it prints "current" once the replica is (the idle test)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from services.api import open_replica
from services.server_client import ServerClient

__all__ = ["main"]


async def run(
    url: str, token: str, person_id: int, data_dir: Path, conversation: int, text: str
) -> None:
    client = ServerClient(url, token)
    service, sync = await open_replica(data_dir=data_dir, client=client, person_id=person_id)
    await service.start(mail=False)
    await sync.start()
    if text == "-":
        await sync.wait_current()
        print("current", flush=True)
    else:
        me = await service.person_by_id(person_id)
        await service.post(author=me.email, text=text, conversation_id=conversation)
        print("posted", flush=True)
    await asyncio.Event().wait()


def main() -> None:
    url, token, person, data_dir, conversation, text = sys.argv[1:7]
    asyncio.run(run(url, token, int(person), Path(data_dir), int(conversation), text))


if __name__ == "__main__":
    main()
