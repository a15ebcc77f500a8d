"""A writing process for the multi-process tests and benchmarks, through `services.api` only.

    python -m tests.support.api_writer (--data-dir DIR | --database-url URL) items N
    python -m tests.support.api_writer ... posts N --item NUMBER --as EMAIL [--started]

It opens the service, prints "ready", waits for one line on standard input (so every writer
of a test starts at the same moment), does its N writes one transaction each, and prints one
JSON line: what it wrote (`numbers` of the items, or `message_ids` and `conversation_ids` of
the posts), `errors` (one line per failed write: a write that fails is recorded, the others go
on), and its `wall_s` and `cpu_s` for the writes alone. `--started` runs the background work
first (change feed, scheduler, outbox), as the app does.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("PYTHON_KEYRING_BACKEND", "keyrings.alt.file.PlaintextKeyring")

from services.api import ConversationKind, Service
from tests.support.feed_listener import recorder

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="api_writer")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--data-dir", type=Path)
    where.add_argument("--database-url")
    p.add_argument("--started", action="store_true", help="start the background work first")
    p.add_argument("--heard", type=Path, help="record the change events heard (with --started)")
    sub = p.add_subparsers(dest="what", required=True)
    sub.add_parser("items").add_argument("count", type=int)
    posts = sub.add_parser("posts")
    posts.add_argument("count", type=int)
    posts.add_argument("--item", type=int, required=True)
    posts.add_argument("--as", dest="author", required=True)
    return p


async def _write(service: Service, args: argparse.Namespace, out: dict[str, Any]) -> None:
    tag = os.getpid()
    for i in range(args.count):
        try:
            if args.what == "items":
                item = await service.create_item(title=f"Race {tag}.{i}")
                out["numbers"].append(item.number)
            else:
                posted = await service.post(
                    author=args.author,
                    text=f"Post {tag}.{i}",
                    item_number=args.item,
                    kind=ConversationKind.INTERNAL,
                )
                out["message_ids"].append(posted.message_id)
                out["conversation_ids"].append(posted.conversation_id)
        except Exception as exc:  # recorded: the test says which failed
            out["errors"].append(f"{type(exc).__name__}: {exc}")


async def _run(args: argparse.Namespace) -> None:
    service = await (
        Service.open(data_dir=args.data_dir)
        if args.data_dir
        else Service.open(url=args.database_url)
    )
    out: dict[str, Any] = {"numbers": [], "message_ids": [], "conversation_ids": [], "errors": []}
    with contextlib.ExitStack() as stack:
        if args.heard is not None:
            service.subscribe(recorder(stack.enter_context(args.heard.open("a"))))
        try:
            if args.started:
                await service.start()
            print("ready", flush=True)
            await asyncio.to_thread(sys.stdin.readline)
            wall, cpu = time.perf_counter(), time.process_time()
            await _write(service, args, out)
            out["wall_s"] = time.perf_counter() - wall
            out["cpu_s"] = time.process_time() - cpu
            print(json.dumps(out), flush=True)
            if args.heard is not None:
                await asyncio.to_thread(sys.stdin.read)
        finally:
            await service.close()


def main() -> None:
    asyncio.run(_run(_parser().parse_args()))


if __name__ == "__main__":
    main()
