"""`deskbell serve`: the team server (T1) with `--listen`, the SMTP listener for incoming mail
with `--smtp-listen`, and the service's background work (scheduler, outbox, IMAP reader)."""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from services.api import Service

__all__ = ["add_serve_arguments", "serve"]


def listen_address(value: str) -> str:
    """`HOST:PORT`, checked when the command line is read: nothing starts on a bad one."""
    from services.errors import InputError
    from services.incoming.listener import parse_listen_address

    try:
        parse_listen_address(value)
    except InputError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return value


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--listen",
        type=listen_address,
        metavar="HOST:PORT",
        help="serve the team's HTTP API here (for example 127.0.0.1:8080; port 0 picks one)",
    )
    parser.add_argument(
        "--smtp-listen",
        type=listen_address,
        metavar="HOST:PORT",
        help="also accept incoming mail over SMTP here (for example 127.0.0.1:2525)",
    )


@contextlib.asynccontextmanager
async def _http_api(service: Service, listen: str | None) -> AsyncIterator[None]:
    if not listen:
        yield
        return
    from aiohttp import web

    from services.incoming.listener import parse_listen_address
    from services.server.app import build_app

    host, port = parse_listen_address(listen)
    runner = web.AppRunner(build_app(service), access_log=None, handle_signals=False)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        for address in runner.addresses:
            bound_host, bound_port = address[0], address[1]
            print(f"deskbell: serving the API on http://{bound_host}:{bound_port}", flush=True)
        yield
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def _smtp_listener(service: Service, listen: str | None) -> AsyncIterator[None]:
    if not listen:
        yield
        return
    from services.incoming.listener import SmtpListener, parse_listen_address

    host, port = parse_listen_address(listen)
    listener = SmtpListener(host=host, port=port, receive=service.receive_mail)
    await listener.start()
    print(f"deskbell: accepting mail on {listener.host}:{listener.port}", flush=True)
    try:
        yield
    finally:
        await listener.stop()


async def serve(service: Service, args: argparse.Namespace) -> None:
    """`deskbell serve`: runs until SIGINT or SIGTERM."""
    from app.serve import serve_forever

    async with _smtp_listener(service, args.smtp_listen), _http_api(service, args.listen):
        await serve_forever(service)
