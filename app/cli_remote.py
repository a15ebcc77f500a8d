"""The command line against a team server (T6): `deskbell login URL`, `deskbell logout`, and
which server (if any) a command runs on.

`login` signs in with a password (asked without echo at a terminal, or one line of standard
input) as a device session named after this machine; the session's token goes to the OS
keyring under the server's address, the address and email to a small file in the data
folder. From then on every command runs on that server (or on the one `--server URL` names),
until `logout`, which ends the session on the server and forgets the token, and still
forgets it when the server cannot be reached. A database URL (`--database-url` or
DESKBELL_DATABASE_URL) keeps a command on that database.
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
from app.cli_input import address, read_stdin_line
from services.errors import AuthenticationError, DeskbellError, InputError, quoted

if TYPE_CHECKING:
    from services.remote import RemoteService
    from services.secrets import SecretStore

__all__ = ["LOGIN_FILE", "SavedLogin", "add_parsers", "login", "logout", "open_remote"]

LOGIN_FILE: Final = "server.json"


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

    token = store.get(name=token_name(url))
    left = None
    if token is not None:
        try:
            async with ServerClient(url, token, cafile=cafile) as client:
                await client.sign_out()
        except AuthenticationError:
            pass  # already ended there (revoked, a new password)
        except DeskbellError as exc:
            left = (
                f"the server could not be told ({exc}), so the session stays in its list "
                "until you or an administrator end it there"
            )
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
