"""A team desktop without its window, in a process of its own, driven over stdin (issue 11):
the same replica (`open_replica`), sync (`TeamSync`) and service calls the desktop makes, with
the counts the bubble would show written to a JSON state file whenever the replica changes.

    python -m tests.support.team_replica_process URL TOKEN PERSON_ID DATA_DIR STATE_FILE

The state file (written whole, then renamed into place) holds `total`, `internal`,
`external`, `by_conversation`, `changes` (how many change batches it has seen) and `at` (the
epoch time the counts last changed: bench/bench_team.py times the bubble by it). Commands,
one JSON object a line on stdin, each answered by one JSON line on stdout:

- `{"do": "post", "conversation": ID, "text": "..."}` → `{"posted": MESSAGE_ID}` (provisional);
- `{"do": "seen", "message_ids": [...]}` → `{"seen": N}`;
- `{"do": "seen_all"}` → `{"seen": N}`: every message the person has unseen;
- `{"do": "current"}` → `{"current": COUNTS}` once the queue is sent and everything the server
  had is applied.

"ready" is the first line, once the replica is current.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from services.api import Service, UnseenCounts, open_replica
from services.server_client import ServerClient

__all__ = ["counts_doc", "main"]


def counts_doc(counts: UnseenCounts) -> dict[str, Any]:
    """The counts as JSON (conversation ids as text keys, as JSON has them)."""
    doc = asdict(counts)
    doc["by_conversation"] = {str(k): v for k, v in counts.by_conversation.items()}
    return doc


class _StateFile:
    """Rewrites the state file after every change batch (coalesced: one read per wake)."""

    def __init__(self, service: Service, person_id: int, target: Path) -> None:
        self.service, self.person_id, self.target = service, person_id, target
        self.changed = asyncio.Event()
        self.batches = 0
        self.last: dict[str, Any] = {}
        self.changed_at = time.time()

    def on_batch(self, _batch: object) -> None:
        self.batches += 1
        self.changed.set()

    async def write(self) -> dict[str, Any]:
        doc = counts_doc(await self.service.unseen_counts(person_id=self.person_id))
        if doc != self.last:
            self.last, self.changed_at = dict(doc), time.time()
        doc["changes"] = self.batches
        doc["at"] = self.changed_at
        part = self.target.with_suffix(".part")
        part.write_text(json.dumps(doc))
        os.replace(part, self.target)
        return doc

    async def run(self) -> None:
        while True:
            await self.changed.wait()
            self.changed.clear()
            await self.write()


async def _unseen(service: Service, person_id: int) -> list[int]:
    counts = await service.unseen_counts(person_id=person_id)
    ids: list[int] = []
    for conversation_id in counts.by_conversation:
        rows = await service.messages(conversation_id=conversation_id, viewer_id=person_id)
        ids.extend(row.id for row in rows if row.unseen_by_viewer)
    return ids


async def _answer(
    command: dict[str, Any], service: Service, person_id: int, email: str
) -> dict[str, Any]:
    match command["do"]:
        case "post":
            posted = await service.post(
                author=email, text=command["text"], conversation_id=command["conversation"]
            )
            return {"posted": posted.message_id}
        case "seen":
            await service.mark_seen(person_id=person_id, message_ids=command["message_ids"])
            return {"seen": len(command["message_ids"])}
        case "seen_all":
            ids = await _unseen(service, person_id)
            await service.mark_seen(person_id=person_id, message_ids=ids)
            return {"seen": len(ids)}
        case other:
            return {"error": f"unknown command {other!r}"}


async def run(url: str, token: str, person_id: int, data_dir: Path, state_file: Path) -> None:
    client = ServerClient(url, token)
    service, sync = await open_replica(data_dir=data_dir, client=client, person_id=person_id)
    await service.start(mail=False)
    state = _StateFile(service, person_id, state_file)
    service.subscribe(state.on_batch)
    writer = asyncio.create_task(state.run())
    await sync.start()
    await sync.wait_current()
    await state.write()
    email = (await service.person_by_id(person_id)).email
    print("ready", flush=True)
    loop = asyncio.get_running_loop()
    try:
        while line := await loop.run_in_executor(None, sys.stdin.readline):
            command = json.loads(line)
            if command["do"] == "current":
                await sync.wait_current()
                answer: dict[str, Any] = {"current": await state.write()}
            else:
                answer = await _answer(command, service, person_id, email)
            print(json.dumps(answer), flush=True)
    finally:
        writer.cancel()
        await sync.stop()
        await service.close()
        await client.close()


def main() -> None:
    url, token, person, data_dir, state_file = sys.argv[1:6]
    asyncio.run(run(url, token, int(person), Path(data_dir), Path(state_file)))


if __name__ == "__main__":
    main()
