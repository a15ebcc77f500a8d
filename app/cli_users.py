"""Users' accounts on the command line (T4, M8): add a user, set a password, see and end
sessions.

`deskbell user add|password|sessions|end-session`, added to the `user` group of
`app.cli_admin`. The command line holds the database itself, so it acts as the local
operator: what an administrator may do through the server. A refusal raises an error of
`services.errors`, which `app.cli` prints as one line, exiting 1.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from datetime import datetime
from typing import TYPE_CHECKING, Any

from app.cli_input import address, number, read_stdin_line
from services.errors import InputError

if TYPE_CHECKING:
    from services.facade import Facade

__all__ = ["ACTIONS", "add_parsers", "user_action"]

ACTIONS = frozenset({"add", "password", "sessions", "end-session"})


def add_parsers(user: Any) -> None:
    """Add `add`, `password`, `sessions` and `end-session` to `deskbell user`."""
    add = user.add_parser(
        "add", help="add a user; the welcome email (if on) invites them to set a password"
    )
    add.add_argument("email", type=address)
    add.add_argument("--name", required=True)
    add.add_argument("--admin", action="store_true", help="an administrator, not an agent")
    user.add_parser(
        "password",
        help="set a user's password (asked twice, or one line from standard input); "
        "their sessions end",
    ).add_argument("email", type=address)
    sessions = user.add_parser("sessions", help="a user's signed-in devices")
    sessions.add_argument("email", type=address)
    sessions.add_argument("--json", action="store_true")
    user.add_parser("end-session", help="end a session: its device is signed out").add_argument(
        "id", type=number
    )


def _new_password() -> str:
    if not sys.stdin.isatty():
        return read_stdin_line("the password")
    try:
        first = getpass.getpass("New password: ")
        again = getpass.getpass("Once more: ")
    except EOFError:
        raise InputError("no password typed; nothing changed") from None
    if first != again:
        raise InputError("the two passwords differ; nothing changed")
    return first


def _time(value: datetime | None) -> str:
    return f"{value:%Y-%m-%d %H:%M} UTC" if value else "-"


async def user_action(service: Facade, args: argparse.Namespace) -> None:
    from services.api import LOCAL_OPERATOR

    if args.action == "add":
        new = await service.add_user(
            acting=LOCAL_OPERATOR, email=args.email, name=args.name, admin=args.admin
        )
        role = "administrator" if new.person.is_admin else "agent"
        then = (
            "the welcome email invites them to set a password"
            if new.invited
            else f"the welcome email is off: set a password with 'deskbell user password "
            f"{new.person.email}' or send a reset code with 'deskbell user reset-password "
            f"{new.person.email}'"
        )
        print(f"{new.person.email} added as {role} (id {new.person.id}); {then}")
    elif args.action == "password":
        await service.person(args.email)  # an unknown address is refused before the prompt
        done = await service.set_password(
            acting=LOCAL_OPERATOR, email=args.email, password=_new_password()
        )
        print(f"password set for {args.email}; {done.ended_sessions} session(s) ended")
    elif args.action == "sessions":
        rows = await service.sessions(acting=LOCAL_OPERATOR, email=args.email)
        if args.json:
            doc = [
                {
                    "id": s.id,
                    "device": s.device,
                    "address": s.address,
                    "created_at": s.created_at.isoformat(),
                    "last_used_at": s.last_used_at.isoformat(),
                }
                for s in rows
            ]
            print(json.dumps(doc, indent=2, ensure_ascii=False))
            return
        for s in rows:
            print(
                f"{s.id}\t{s.device}\t{s.address}\tsigned in {_time(s.created_at)}"
                f"\tlast used {_time(s.last_used_at)}"
            )
    else:
        ended = await service.end_session(acting=LOCAL_OPERATOR, session_id=args.id)
        print(f"session {ended.id} of {ended.email} ({ended.device}) ended")
