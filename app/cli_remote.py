"""The command line against a team server (T6): `deskbell login URL`, `deskbell logout`,
which server (if any) a command runs on, and `deskbell events`, which only a server has.

`login` signs in with a password (asked without echo at a terminal, or one line of standard
input) as a device session named after this machine; the session's token goes to the OS
keyring under the server's address, the address and email to a small file in the data
folder. From then on every command runs on that server (or on the one `--server URL` names),
until `logout`, which ends the session on the server and forgets the token, and still
forgets it when the server cannot be reached. A database URL (`--database-url` or
DESKBELL_DATABASE_URL) keeps a command on that database.

`events` follows the server's event stream as the signed-in user (T1): one line per event,
written out at once, so a script or another program reads each as it comes.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import socket
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from app import paths
from app.cli_input import address, number, one_line, read_stdin_line
from services.errors import (
    AuthenticationError,
    InputError,
    ServerUnreachableError,
    quoted,
)

if TYPE_CHECKING:
    from services.facade import Facade
    from services.remote import RemoteService
    from services.secrets import SecretStore

__all__ = [
    "LOGIN_FILE",
    "SERVER_ONLY",
    "SavedLogin",
    "add_parsers",
    "follow_events",
    "login",
    "logout",
    "needs_server",
    "open_remote",
]

LOGIN_FILE: Final = "server.json"
# Commands that have nothing to do on this machine's own database.
SERVER_ONLY: Final = frozenset({"events"})


@dataclass(frozen=True, slots=True)
class SavedLogin:
    url: str
    email: str
    cafile: str | None = None


def add_parsers(sub: Any) -> None:
    """Add `login` and `logout` to `deskbell`'s subcommands."""
    login_parser = sub.add_parser(
        "login", help="sign in to a team server; commands then run there until logout"
    )
    login_parser.add_argument("url", help="the server's address, like https://desk.example.com")
    login_parser.add_argument(
        "--email", type=address, help="your account's address (asked if not given)"
    )
    login_parser.add_argument(
        "--cafile",
        metavar="F",
        help="trust the server's certificate through this certificate authority file",
    )
    sub.add_parser("logout", help="sign out of the team server; commands run locally again")
    events_parser = sub.add_parser(
        "events", help="follow the team server's changes as they happen, one line each"
    )
    events_parser.add_argument(
        "--after",
        type=_position,
        metavar="N",
        help="start with the changes after position N (default: from now on)",
    )
    events_parser.add_argument(
        "--json", action="store_true", help="each event as one JSON object per line"
    )
    events_parser.add_argument(
        "--count",
        type=number,
        metavar="K",
        help="exit after K events, the first being where the stream has caught up (ready)",
    )


def _position(value: str) -> int:
    """A position in the change feed: 0 (the beginning) or a number."""
    return 0 if value == "0" else number(value)


def token_name(url: str) -> str:
    """The keyring entry that holds the session token for the server at `url`."""
    return f"server-token:{url}"


def _login_path(args: argparse.Namespace) -> Path:
    return paths.data_dir(args.data_dir) / LOGIN_FILE


def saved_login(args: argparse.Namespace) -> SavedLogin | None:
    file = _login_path(args)
    try:
        doc = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise InputError(
            f"cannot read the saved login {quoted(str(file))} ({exc}): "
            "delete it, or run 'deskbell login URL' again"
        ) from None
    try:
        return SavedLogin(url=str(doc["url"]), email=str(doc["email"]), cafile=doc.get("cafile"))
    except (KeyError, TypeError):
        raise InputError(
            f"{quoted(str(file))} is not a saved login: delete it, "
            "or run 'deskbell login URL' again"
        ) from None


def _save_login(args: argparse.Namespace, login: SavedLogin) -> None:
    file = _login_path(args)
    temporary = file.with_name(file.name + ".new")
    temporary.write_text(json.dumps(asdict(login), indent=2) + "\n", encoding="utf-8")
    os.replace(temporary, file)  # a half-written file never replaces a good one


def _secrets() -> SecretStore:
    from services.secrets import SecretStore

    return SecretStore()


def _ask_email() -> str:
    if not sys.stdin.isatty():
        raise InputError("give --email EMAIL: standard input holds only the password")
    try:
        return input("Email: ").strip()
    except EOFError:
        raise InputError("no email typed; not signed in") from None


def _ask_password() -> str:
    if not sys.stdin.isatty():
        return read_stdin_line("the password")
    try:
        return getpass.getpass("Password: ")
    except EOFError:
        raise InputError("no password typed; not signed in") from None


def _absolute(file: str | None) -> str | None:
    """The file's absolute path: later commands may run from another folder."""
    return str(Path(file).expanduser().absolute()) if file else None


async def login(args: argparse.Namespace) -> None:
    from services.server_client import ServerClient, normalize_server_url

    url = normalize_server_url(args.url)
    cafile = _absolute(args.cafile)
    try:
        email = address(args.email or _ask_email())
    except argparse.ArgumentTypeError as exc:
        raise InputError(str(exc)) from None
    password = _ask_password()
    store = _secrets()
    store.backend()  # no keyring to keep the token: refused before a session is opened
    async with ServerClient(url, cafile=cafile) as client:
        who = await client.sign_in(email=email, password=password, device=socket.gethostname())
        token = client.token
    assert token is not None
    previous = saved_login(args)
    store.set(name=token_name(url), value=token)
    if previous is not None and previous.url != url:
        await _end_session(store, previous.url, previous.cafile)
    _save_login(args, SavedLogin(url=url, email=who.email, cafile=cafile))
    role = "an administrator" if who.is_admin else "an agent"
    print(f"signed in to {url} as {who.email} ({role}); commands now run on that server")


async def logout(args: argparse.Namespace) -> None:
    from services.server_client import normalize_server_url

    saved = saved_login(args)
    url = normalize_server_url(args.server) if args.server else saved.url if saved else None
    if url is None:
        raise InputError("not signed in to a server")
    cafile = saved.cafile if saved is not None and saved.url == url else None
    left = await _end_session(_secrets(), url, cafile)
    if saved is not None and saved.url == url:
        _login_path(args).unlink(missing_ok=True)
    print(f"signed out of {url}" + (f"; {left}" if left else ""))


async def _end_session(store: SecretStore, url: str, cafile: str | None) -> str | None:
    """End the session on the server and forget its token. The token is forgotten even when
    the server cannot be told; returns what to say then."""
    from services.server_client import ServerClient
    from services.team.signin import end_team_session

    token = store.get(name=token_name(url))
    left = None
    if token is not None:
        async with ServerClient(url, token, cafile=cafile) as client:
            left = await end_team_session(client)
    store.delete(name=token_name(url))
    return left


def open_remote(args: argparse.Namespace) -> RemoteService | None:
    """The server this command runs on, or None to run it on the local database."""
    from services.remote import RemoteService
    from services.server_client import ServerClient, normalize_server_url

    if args.server and args.database_url:
        raise InputError("give either --server or --database-url, not both")
    if args.server:
        url = normalize_server_url(args.server)
    elif paths.database_url(args.database_url) is not None:
        return None
    else:
        saved = saved_login(args)
        if saved is None:
            return None
        url = saved.url
    saved = saved_login(args)
    token = _secrets().get(name=token_name(url))
    if token is None:
        raise AuthenticationError(f"not signed in to {url}: run 'deskbell login {url}'")
    cafile = saved.cafile if saved is not None and saved.url == url else None
    return RemoteService(ServerClient(url, token, cafile=cafile))


def needs_server(args: argparse.Namespace) -> InputError:
    return InputError(
        f"'deskbell {args.command}' needs a team server: run 'deskbell login URL' first, "
        "or give --server URL"
    )


async def follow_events(service: Facade, args: argparse.Namespace) -> None:
    """`deskbell events`: print each event the signed-in user may see, until --count of them
    (or Ctrl+C). A session that ends is an AuthenticationError, said by the caller."""
    from services.remote import RemoteService
    from services.server_client import events

    if not isinstance(service, RemoteService):
        raise needs_server(args)
    client = service.client
    assert client.token is not None  # open_remote refuses a server it holds no token for
    shown = 0
    last = args.after
    try:
        async for event in events(client.base_url, client.token, args.after, cafile=client.cafile):
            # ASCII JSON: one line whatever the text holds, for any reader's idea of a line.
            print(json.dumps(event) if args.json else describe_event(event), flush=True)
            last = event.get("position", last)
            shown += 1
            if args.count is not None and shown >= args.count:
                return
    except ConnectionError as exc:
        again = f"; run 'deskbell events --after {last}' to carry on" if last is not None else ""
        raise ServerUnreachableError(f"{exc}{again}") from None


def describe_event(event: dict[str, Any]) -> str:
    """One readable line: the position, the type, and for a message what it says."""
    head = f"{event.get('position')} {one_line(str(event.get('type')))}"
    message = event.get("message")
    if isinstance(message, dict):
        author = message.get("author")
        who = author.get("name") if isinstance(author, dict) else "Deskbell"
        item = message.get("item_number")
        where = f"#{item}" if item is not None else f"conversation {message.get('conversation_id')}"
        return one_line(f"{head} {where} {who}: {message.get('text')}")
    if event.get("action") == "deleted":
        return f"{head} {event.get('message_id')} deleted"
    if event.get("item_number") is not None:
        return f"{head} #{event.get('item_number')}"
    return head
