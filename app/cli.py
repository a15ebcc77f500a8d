"""`deskbell`: the command line, the public interface for scripts (M8), and the app's entry."""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from app import cli_admin, cli_mail, cli_remote, cli_serve, paths
from app.cli_input import (
    ACTING_DEST,
    ACTING_REQUIRED_IN,
    Parser,
    acting_option,
    address,
    check_text_arguments,
    number,
    one_line,
    read_stdin_line,
    read_stdin_text,
)
from services.config import KEYS
from services.errors import AuthenticationError, DeskbellError, InputError, quoted

if TYPE_CHECKING:
    from services.facade import Facade
    from services.remote import RemoteService

# services.api (SQLAlchemy, the mail stack) is imported when a command runs, not at start-up:
# the desktop app shows its first window before paying for it.

__all__ = ["main"]

log = logging.getLogger("deskbell")


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


# Arguments that name files: any bytes are a valid file name, so they skip the UTF-8 check.
PATH_ARGUMENTS = frozenset({"data_dir", "file"})


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("deskbell")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


def _build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="deskbell",
        description="A desktop messenger for help-desk agents. Without a command: the app.",
    )
    parser.add_argument("--version", action="version", version=f"deskbell {_version()}")
    parser.add_argument(
        "--data-dir", help="the data folder (default: DESKBELL_DATA_DIR or the OS's)"
    )
    parser.add_argument("--database-url", help="a shared PostgreSQL database (team mode)")
    parser.add_argument(
        "--server",
        metavar="URL",
        help="run the command on this team server (default: the one 'deskbell login' saved)",
    )
    parser.add_argument("--demo", action="store_true", help="open the demo workspace")
    parser.add_argument(
        "--demo-team",
        action="store_true",
        help="team mode on this computer: a demo team server with two bot agents, signed in",
    )
    parser.add_argument(
        "--as", dest="as_email", type=address, metavar="EMAIL", help="sign in as this local user"
    )
    # For tests and start-up measurements only: show the window with its data, then exit 0.
    parser.add_argument("--quit-after-shown", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    cli_serve.add_serve_arguments(
        sub.add_parser("serve", help="run the team server and the service headless until stopped")
    )

    person = sub.add_parser("person", help="people").add_subparsers(dest="action", required=True)
    p_add = person.add_parser("add", help="add a user (or a customer)")
    p_add.add_argument("email", type=address)
    p_add.add_argument("--name", required=True)
    p_add.add_argument("--customer", action="store_true")
    p_add.add_argument("--admin", action="store_true", default=None)
    person.add_parser("list", help="everyone, with their kind").add_argument(
        "--json", action="store_true"
    )

    item = sub.add_parser("item", help="items").add_subparsers(dest="action", required=True)
    i_add = item.add_parser("add", help="create an item; prints its number")
    i_add.add_argument("title")
    i_add.add_argument("--follower", action="append", default=[], type=address, metavar="EMAIL")
    i_add.add_argument("--requester", type=address, metavar="EMAIL")
    for name in ("follow", "unfollow"):
        f = item.add_parser(name, help=f"{name} an item")
        f.add_argument("number", type=number)
        f.add_argument("email", type=address)
    i_show = item.add_parser("show", help="the item, its followers and messages")
    i_show.add_argument("number", type=number)
    i_show.add_argument("--json", action="store_true")
    cli_admin.add_item_parsers(item)

    post = sub.add_parser("post", help="post a message; prints its id")
    post.add_argument("number", type=number)
    acting_option(post, "author", required_locally=True)
    which = post.add_mutually_exclusive_group(required=True)
    which.add_argument("--internal", action="store_true")
    which.add_argument("--external", action="store_true")
    post.add_argument("text", help="the text, or - to read it from standard input")

    seen = sub.add_parser("seen", help="mark what EMAIL may see in item N as seen")
    seen.add_argument("number", type=number)
    acting_option(seen, "email", required_locally=True)

    config = sub.add_parser("config", help="settings").add_subparsers(dest="action", required=True)
    c_set = config.add_parser(
        "set",
        help="change a setting (see config set --help for the keys)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="keys:\n"
        + "\n".join(f"  {k.name:<18} {k.help}; {k.accepts}" for k in KEYS.values()),
    )
    c_set.add_argument("key")
    c_set.add_argument("value")
    config.add_parser("get").add_argument("key")
    config.add_parser("list")

    smtp = sub.add_parser("smtp", help="the SMTP server").add_subparsers(
        dest="action", required=True
    )
    smtp.add_parser("password", help="read the password from stdin into the OS keyring")
    smtp.add_parser("test", help="connect and log in; print the server's answer")

    emails = sub.add_parser("emails", help="the 72-hour log of emails, newest first")
    emails.add_argument("--json", action="store_true")
    emails.add_argument("--status", help="queued, sending, sent, retrying, failed, ...")
    emails.add_argument("--direction", choices=("in", "out"))
    emails.add_argument("--search")
    cli_admin.add_parsers(sub)
    cli_mail.add_parsers(sub)
    cli_remote.add_parsers(sub)
    rescue = sub.add_parser(
        "rescue",
        help="get back what can still be read from a damaged database that was moved aside",
    )
    rescue.add_argument("file", help="the file it was moved to (deskbell.db.corrupt-...)")
    return parser


Handler = Callable[["Facade", argparse.Namespace], Awaitable[None]]


async def _person(service: Facade, args: argparse.Namespace) -> None:
    from services.api import PersonKind

    if args.action == "add":
        info = await service.add_person(
            email=args.email,
            name=args.name,
            kind=PersonKind.CUSTOMER if args.customer else PersonKind.USER,
            is_admin=args.admin,
        )
        print(info.id)
    else:
        people = await service.people()
        if args.json:
            print(
                json.dumps(
                    [
                        {"email": p.email, "name": p.name, "kind": p.kind, "admin": p.is_admin}
                        for p in people
                    ],
                    indent=2,
                )
            )
        for p in [] if args.json else people:
            print(f"{p.email}\t{p.name}\t{p.kind}{'  (admin)' if p.is_admin else ''}")


async def _item(service: Facade, args: argparse.Namespace) -> None:
    if args.action == "add":
        info = await service.create_item(
            title=args.title, followers=args.follower, requester=args.requester
        )
        print(info.number)
    elif args.action == "follow":
        await service.follow(number=args.number, email=args.email)
    elif args.action == "unfollow":
        await service.unfollow(number=args.number, email=args.email)
    elif args.action in cli_admin.ITEM_ACTIONS:
        await cli_admin.item_action(service, args)
    else:
        await _item_show(service, args)


async def _item_show(service: Facade, args: argparse.Namespace) -> None:
    info = await service.item(args.number)
    messages = await service.item_messages(args.number)
    if args.json:
        doc: dict[str, Any] = {
            "number": info.number,
            "title": info.title,
            "status": info.status,
            "followers": [f.email for f in info.followers],
            "requester": info.requester.email if info.requester else None,
            "assignee": info.assignee.email if info.assignee else None,
            "messages": [
                {
                    "id": m.id,
                    "conversation": kind.value,
                    "author": m.author.email if m.author else None,
                    "text": m.text,
                    "created_at": _iso(m.created_at),
                    "seen_by": [s.email for s in m.status.seen],
                    "emailed_to": [e.email for e in m.status.emailed if e.status == "sent"],
                    "emails": [
                        {"to": e.email, "status": e.status, "at": _iso(e.at), "detail": e.detail}
                        for e in m.status.emailed
                    ],
                }
                for kind, m in messages
            ],
        }
        print(json.dumps(doc, indent=2, ensure_ascii=False))
        return
    print(f"#{info.number} {info.title} [{info.status}]")
    print("followers: " + ", ".join(f"{f.name} <{f.email}>" for f in info.followers))
    for kind, m in messages:
        who = m.author.name if m.author else "Deskbell"
        print(f"\n[{kind.value}] {m.created_at:%Y-%m-%d %H:%M} {who} (message {m.id})")
        print("  " + m.text.replace("\n", "\n  "))
        if m.status.seen:
            print("  seen by: " + ", ".join(f"{s.name} {s.at:%H:%M:%S}" for s in m.status.seen))
        for e in m.status.emailed:
            print(f"  email to {e.email}: {e.status}" + (f" ({e.detail})" if e.detail else ""))


async def _post(service: Facade, args: argparse.Namespace) -> None:
    from services.api import ConversationKind

    text = read_stdin_text() if args.text == "-" else args.text
    result = await service.post(
        author=args.author,
        text=text,
        item_number=args.number,
        kind=ConversationKind.INTERNAL if args.internal else ConversationKind.EXTERNAL,
    )
    print(result.message_id)


async def _seen(service: Facade, args: argparse.Namespace) -> None:
    await service.mark_item_seen(number=args.number, email=args.email)


async def _config(service: Facade, args: argparse.Namespace) -> None:
    if args.action == "set":
        await service.set_config(args.key, args.value)
    elif args.action == "get":
        values = await service.settings()
        if args.key not in values:
            raise InputError(f"unknown setting {quoted(args.key)}")
        print(values[args.key])
    else:
        for key, value in (await service.settings()).items():
            print(f"{key} = {value}")


async def _smtp(service: Facade, args: argparse.Namespace) -> None:
    if args.action == "password":
        await service.store_smtp_password(read_stdin_line())
        print("the SMTP password is in the OS keyring")
    else:
        print(await service.test_smtp())


async def _emails(service: Facade, args: argparse.Namespace) -> None:
    entries = await service.emails(status=args.status, direction=args.direction, search=args.search)
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "id": e.id,
                        "direction": e.direction,
                        "kind": e.kind,
                        "status": e.status,
                        "from": e.from_addr,
                        "to": list(e.to_addrs),
                        "subject": e.subject,
                        "message_id": e.message_id,
                        "reason": e.reason,
                        "reply": e.reply,
                        "action": e.action,
                        "item": e.item_number,
                        "attempts": e.attempts,
                        "next_attempt_at": _iso(e.next_attempt_at),
                        "created_at": _iso(e.created_at),
                        "sent_at": _iso(e.sent_at),
                    }
                    for e in entries
                ],
                indent=2,
                ensure_ascii=False,
            )
        )
        return
    for e in entries:
        arrow = "->" if e.direction == "out" else "<-"
        extra = e.reason or e.action or e.reply or ""
        print(
            f"{e.created_at:%Y-%m-%d %H:%M:%S} {arrow} {e.status:<10} {', '.join(e.to_addrs):<30} "
            f"{e.subject}" + (f"  [{extra}]" if extra else "")
        )


def _rescue(args: argparse.Namespace) -> None:
    """`deskbell rescue FILE`: before any database is opened, since it replaces it."""
    from pathlib import Path

    from services.clock import utcnow
    from services.store.rescue import rescue_database

    report = rescue_database(Path(args.file).absolute(), now=utcnow())
    damaged = (
        f"; unreadable parts in {', '.join(report.damaged_tables)}" if report.damaged_tables else ""
    )
    print(f"rescued {report.rows} rows of {report.tables} tables into {report.database}{damaged}")
    if report.replaced is not None:
        print(f"the database it replaced is kept at {report.replaced}")


COMMANDS: dict[str, Handler] = {
    **cli_admin.COMMANDS,
    **cli_mail.COMMANDS,
    "person": _person,
    "item": _item,
    "post": _post,
    "seen": _seen,
    "config": _config,
    "smtp": _smtp,
    "emails": _emails,
    "events": cli_remote.follow_events,
}
# Commands that run on this machine whatever server the command line is signed in to.
LOCAL_ONLY = frozenset({"serve", "rescue", "login", "logout"})


async def _run_command(args: argparse.Namespace) -> None:
    from services.api import Service

    def open_service() -> Awaitable[Service]:
        return Service.open(
            data_dir=paths.data_dir(args.data_dir), url=paths.database_url(args.database_url)
        )

    if args.command == "login":
        await cli_remote.login(args)
        return
    if args.command == "logout":
        await cli_remote.logout(args)
        return
    remote = cli_remote.open_remote(args)
    if remote is None and args.command in cli_remote.SERVER_ONLY:
        raise cli_remote.needs_server(args)
    if remote is None:
        _require_acting_locally(args)
    service: Facade = remote or await open_service()
    try:
        if service.notice:
            print(f"deskbell: {service.notice}", file=sys.stderr)
        if remote is not None:
            await _run_remote(remote, args)
        else:
            await COMMANDS[args.command](service, args)
    finally:
        await service.close()


async def _run_remote(remote: RemoteService, args: argparse.Namespace) -> None:
    """A command on the server: the signed-in user acts (an --as left out means them)."""
    dest = getattr(args, ACTING_DEST, None)
    try:
        if dest is not None and getattr(args, dest) is None:
            setattr(args, dest, (await remote.who()).email)
        await COMMANDS[args.command](remote, args)
    except AuthenticationError as exc:
        if type(exc) is not AuthenticationError:
            raise  # too many attempts: the message says when to try again
        url = remote.client.base_url
        raise AuthenticationError(f"{exc} (run 'deskbell login {url}')") from None


def _require_acting_locally(args: argparse.Namespace) -> None:
    """On this machine's database the command line can act as anyone, so it must be told
    whom (on a server the signed-in user acts): the same refusal as a missing argument."""
    dest = getattr(args, ACTING_DEST, None)
    prog = getattr(args, ACTING_REQUIRED_IN, None)
    if dest is not None and prog is not None and getattr(args, dest) is None:
        raise InputError(f"the following arguments are required: --as; see {prog} --help")


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = _build_parser().parse_args(argv)
    except SystemExit as done:  # --help, --version, or a usage error (its one line printed)
        return done.code if isinstance(done.code, int) else 1
    try:
        check_text_arguments(args, paths=PATH_ARGUMENTS)
    except DeskbellError as exc:
        print(f"deskbell: error: {exc}", file=sys.stderr)
        return 1
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if args.command is None:
        # Start-up makes objects that live as long as the app and almost no garbage: no
        # collections (a tenth of its CPU) until the window shows (app.desktop, issue 9).
        gc.disable()
        from app.desktop import run_desktop

        return run_desktop(args)
    try:
        if args.command == "rescue":
            _rescue(args)
        elif args.command == "serve":
            return cli_serve.run(args)
        else:
            asyncio.run(_run_command(args))
    except DeskbellError as exc:
        print(f"deskbell: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a bug: still one line, and the traceback with --verbose
        if args.verbose:
            raise
        print(
            f"deskbell: error: internal error ({type(exc).__name__}: {one_line(str(exc))[:200]}); "
            "run again with --verbose for the details",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
