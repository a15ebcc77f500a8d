"""`deskbell serve`: the team server (T1) with `--listen` (TLS directly with `--tls-cert` and
`--tls-key`, or behind a reverse proxy named by `--trusted-proxy`), the SMTP listener for
incoming mail with `--smtp-listen`, and the service's background work (scheduler, outbox,
IMAP reader). `--check` validates the configuration and exits; `--log-format json` writes
one JSON object per log line."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import sys
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from app.log_format import FORMATS
from services.errors import quoted

if TYPE_CHECKING:
    import ssl

    from services.api import Service
    from services.server.keys import Network

__all__ = ["add_serve_arguments", "run"]


def listen_address(value: str) -> str:
    """`HOST:PORT`, checked when the command line is read: nothing starts on a bad one."""
    from services.errors import InputError
    from services.incoming.listener import parse_listen_address

    try:
        parse_listen_address(value)
    except InputError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return value


def network(value: str) -> Network:
    """An address or a CIDR block (`10.0.0.0/8`, `2001:db8::/32`, `127.0.0.1`)."""
    try:
        return ipaddress.ip_network(value.strip(), strict=False)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{quoted(value)} is not an IP address or network (for example 10.0.0.0/8)"
        ) from None


def public_url(value: str) -> str:
    """The server's public address, as the `server.public_url` setting stores it."""
    from services.config import parse_value
    from services.errors import InputError

    try:
        return parse_value("server.public_url", value)
    except InputError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--listen",
        type=listen_address,
        metavar="HOST:PORT",
        help="serve the team's HTTP API here (for example 127.0.0.1:8080; port 0 picks one)",
    )
    parser.add_argument(
        "--tls-cert", type=Path, metavar="FILE", help="serve HTTPS with this PEM certificate chain"
    )
    parser.add_argument(
        "--tls-key", type=Path, metavar="FILE", help="the certificate's PEM key (no passphrase)"
    )
    parser.add_argument(
        "--trusted-proxy",
        type=network,
        action="append",
        default=[],
        metavar="CIDR",
        help="a reverse proxy in front of the server (repeatable): the client's address is "
        "read from the X-Forwarded-For it sends",
    )
    parser.add_argument(
        "--public-url",
        type=public_url,
        metavar="URL",
        help="the address customers reach this server at (https://desk.example.com): the "
        "links into the customer chat in emails start with it (stored as server.public_url)",
    )
    parser.add_argument(
        "--smtp-listen",
        type=listen_address,
        metavar="HOST:PORT",
        help="also accept incoming mail over SMTP here (for example 127.0.0.1:2525)",
    )
    parser.add_argument(
        "--log-format",
        choices=FORMATS,
        default="text",
        help="text (readable lines, the default) or json (one object per line)",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="check the configuration (database, mail servers, TLS files, listen addresses) "
        "and exit: 0 when all is well, 1 with one line per problem",
    )


def _tls_files(args: argparse.Namespace) -> tuple[Path, Path] | None:
    from services.errors import InputError

    if args.tls_cert is None and args.tls_key is None:
        return None
    if args.tls_cert is None or args.tls_key is None:
        raise InputError("give both --tls-cert and --tls-key, or neither")
    if not args.listen:
        raise InputError("--tls-cert and --tls-key need --listen")
    return args.tls_cert, args.tls_key


@contextlib.asynccontextmanager
async def _http_api(
    service: Service,
    listen: str | None,
    *,
    tls: ssl.SSLContext | None,
    trusted_proxies: Sequence[Network],
) -> AsyncIterator[None]:
    if not listen:
        yield
        return
    from aiohttp import web

    from services.incoming.listener import parse_listen_address
    from services.server.access_log import ACCESS_LOG, AccessLogger
    from services.server.app import build_app

    host, port = parse_listen_address(listen)
    runner = web.AppRunner(
        build_app(service, trusted_proxies=trusted_proxies),
        access_log=ACCESS_LOG,
        access_log_class=AccessLogger,
        handle_signals=False,
    )
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port, ssl_context=tls)
        await site.start()
        scheme = "https" if tls is not None else "http"
        for address in runner.addresses:
            bound_host, bound_port = address[0], address[1]
            print(f"deskbell: serving the API on {scheme}://{bound_host}:{bound_port}", flush=True)
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


async def _serve(args: argparse.Namespace, tls: ssl.SSLContext | None) -> None:
    """Opens the service once its database can be used, serves until SIGINT or SIGTERM."""
    from app import paths
    from app.serve import open_when_ready, serve_forever
    from services.api import Service

    service = await open_when_ready(
        lambda: Service.open(
            data_dir=paths.data_dir(args.data_dir), url=paths.database_url(args.database_url)
        )
    )
    if service is None:
        return
    try:
        if service.notice:
            print(f"deskbell: {service.notice}", file=sys.stderr)
        if args.public_url is not None:
            await service.set_config("server.public_url", args.public_url)
        async with (
            _smtp_listener(service, args.smtp_listen),
            _http_api(service, args.listen, tls=tls, trusted_proxies=args.trusted_proxy),
        ):
            await serve_forever(service)
    finally:
        await service.close()


async def _check(args: argparse.Namespace, tls_files: tuple[Path, Path] | None) -> int:
    from app import paths
    from app.serve_check import Target, check_configuration

    listen = [("the API", args.listen), ("incoming mail", args.smtp_listen)]
    target = Target(
        data_dir=paths.data_dir(args.data_dir),
        database_url=paths.database_url(args.database_url),
        listen=tuple((what, address) for what, address in listen if address),
        tls=tls_files,
    )
    findings = await check_configuration(target)
    for finding in findings:
        if finding.ok:
            print(f"ok: {finding.line}")
        else:
            print(f"deskbell: problem: {finding.line}", file=sys.stderr)
    return 0 if all(f.ok for f in findings) else 1


def run(args: argparse.Namespace) -> int:
    """`deskbell serve`: 0 once stopped; `--check`: 0 if ready, 1 with its problems.

    The TLS files load before anything starts: a bad one is one line and nothing runs."""
    from app.log_format import configure_logging

    configure_logging(args.log_format)
    tls_files = _tls_files(args)
    if args.check:
        return asyncio.run(_check(args, tls_files))
    tls = None
    if tls_files is not None:
        from services.server.tls import server_context

        tls = server_context(certfile=tls_files[0], keyfile=tls_files[1])
    asyncio.run(_serve(args, tls))
    return 0
