"""A process that listens to the change feed through `services.api` and writes down each event.

    python -m tests.support.feed_listener (--data-dir DIR | --database-url URL) --out FILE

It opens and starts the service as the app does, subscribes with `Service.subscribe`, prints
"ready", and appends one JSON line per event heard to FILE (`position`, `kind`, `conversation_id`,
`person_id`), flushed at once, until its standard input closes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TextIO

os.environ.setdefault("PYTHON_KEYRING_BACKEND", "keyrings.alt.file.PlaintextKeyring")

from services.api import ChangeEvent, Service

__all__ = ["heard", "main", "recorder"]


def heard(path: Path) -> list[dict[str, object]]:
    """The events written so far to `path` by a listener."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.endswith("}")]


def recorder(out: TextIO) -> Callable[[Sequence[ChangeEvent]], None]:
    """A `Service.subscribe` listener that writes each event as a JSON line to `out`."""

    def on_events(events: Sequence[ChangeEvent]) -> None:
        for e in events:
            row = {
                "position": e.position,
                "kind": str(e.kind),
                "conversation_id": e.conversation_id,
                "person_id": e.person_id,
            }
            out.write(json.dumps(row) + "\n")
        out.flush()

    return on_events


async def _run(args: argparse.Namespace) -> None:
    service = await (
        Service.open(data_dir=args.data_dir)
        if args.data_dir
        else Service.open(url=args.database_url)
    )
    with args.out.open("a") as out:
        try:
            service.subscribe(recorder(out))
            await service.start()
            print("ready", flush=True)
            await asyncio.to_thread(sys.stdin.read)
        finally:
            await service.close()


def main() -> None:
    p = argparse.ArgumentParser(prog="feed_listener")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--data-dir", type=Path)
    where.add_argument("--database-url")
    p.add_argument("--out", type=Path, required=True)
    asyncio.run(_run(p.parse_args()))


if __name__ == "__main__":
    main()
