"""`deskbell mail receive|bounces|clear-bounces`, `deskbell imap password|test`.

Incoming mail from the command line (I1, I7): one raw email on stdin is processed exactly as
if the IMAP reader had fetched it, and the outcome is printed as one line. The addresses that
bounced (E7) are listed, and an administrator clears one so that it is emailed again.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from app.cli_input import acting_option, address, read_stdin_line
from services.errors import InputError

if TYPE_CHECKING:
    from services.facade import Facade

__all__ = ["COMMANDS", "add_parsers"]

Handler = Callable[["Facade", argparse.Namespace], Awaitable[None]]
log = logging.getLogger(__name__)


def add_parsers(sub: Any) -> None:
    """Add `mail` and `imap` to `deskbell`'s subcommands."""
    mail = sub.add_parser("mail", help="incoming mail").add_subparsers(dest="action", required=True)
    mail.add_parser(
        "receive", help="process one raw email from stdin as if fetched; print what it did"
    )
    mail.add_parser(
        "bounces", help="addresses whose emails bounced; blocked ones get no email"
    ).add_argument("--json", action="store_true")
    clear = mail.add_parser(
        "clear-bounces", help="forget an address's bounces so it is emailed again (admins)"
    )
    clear.add_argument("email", type=address)
    acting_option(clear, "acting", required_locally=True, metavar="ADMIN_EMAIL")
    imap = sub.add_parser("imap", help="the IMAP mailbox").add_subparsers(
        dest="action", required=True
    )
    imap.add_parser("password", help="read the password from stdin into the OS keyring")
    imap.add_parser("test", help="connect, log in and open the folder; print a summary")


async def _mail(service: Facade, args: argparse.Namespace) -> None:
    if args.action == "bounces":
        await _bounces(service, as_json=args.json)
    elif args.action == "clear-bounces":
        await service.clear_bounces(address=args.email, acting=args.acting)
        print(f"{args.email} will be emailed again")
    else:
        from services.incoming.listener import MAX_MAIL_BYTES

        raw = sys.stdin.buffer.read(MAX_MAIL_BYTES + 1)
        if len(raw) > MAX_MAIL_BYTES:
            # The same limit as the SMTP listener's: nothing that large is a help-desk mail.
            raise InputError(
                f"the mail is larger than {MAX_MAIL_BYTES:,} bytes; nothing was logged"
            )
        print(await service.receive_mail(raw))


async def _bounces(service: Facade, *, as_json: bool) -> None:
    found = await service.bounced_addresses()
    if as_json:
        print(
            json.dumps(
                [
                    {
                        "address": b.address,
                        "hard_bounces": b.hard_bounces,
                        "soft_bounces": b.soft_bounces,
                        "last_status": b.last_status,
                        "last_reason": b.last_reason,
                        "last_at": b.last_at.isoformat(),
                        "blocked_at": b.blocked_at.isoformat() if b.blocked_at else None,
                    }
                    for b in found
                ],
                indent=2,
                ensure_ascii=False,
            )
        )
        return
    for b in found:
        state = "blocked" if b.blocked_at else "emailed"
        print(
            f"{b.address:<30} {state:<8} hard {b.hard_bounces}, soft {b.soft_bounces}; "
            f"last {b.last_at:%Y-%m-%d %H:%M} UTC: {b.last_reason}"
        )


async def _imap(service: Facade, args: argparse.Namespace) -> None:
    if args.action == "password":
        await service.store_imap_password(read_stdin_line())
        print("the IMAP password is in the OS keyring")
    else:
        print(await service.test_imap())


COMMANDS: dict[str, Handler] = {"mail": _mail, "imap": _imap}
