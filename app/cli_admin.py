"""The Messaging Center on the command line (M8): automations, templates, system emails, item
status and assignment, password resets and other people's notification settings.

Registered by `app.cli`: `add_parsers(sub)` adds the command groups, `add_item_parsers(item)`
adds `item close|status|assign`, and `COMMANDS` maps each group to its handler. A refusal
raises an error of `services.errors`, which `app.cli` prints as one line, exiting 1.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from services.api import AutomationInfo, NotificationSettings, TemplateInfo
    from services.facade import Facade
from app import cli_users
from app.cli_input import acting_option, address, number, read_stdin_text
from services.domain.model import ITEM_STATUSES
from services.errors import InputError, quoted

__all__ = ["COMMANDS", "ITEM_ACTIONS", "add_item_parsers", "add_parsers", "item_action"]

Handler = Callable[["Facade", argparse.Namespace], Awaitable[None]]
ITEM_ACTIONS = frozenset({"close", "status", "assign"})
_DELAYS = {"60": 60, "120": 120, "300": 300, "900": 900, "3600": 3600, "never": None}
_ON_OFF = ("on", "off")


def add_parsers(sub: Any) -> None:
    """Add `automation`, `template`, `system-email` and `user` to `deskbell`'s subcommands."""
    auto = sub.add_parser("automation", help="workflow automations")
    a = auto.add_subparsers(dest="action", required=True)
    a.add_parser("list", help="every automation, the critical one first").add_argument(
        "--json", action="store_true"
    )
    for name, text in (
        ("show", "one automation"),
        ("enable", "switch it on"),
        ("disable", "switch it off (not the critical one)"),
        ("delete", "delete it (not the critical one)"),
    ):
        a.add_parser(name, help=text).add_argument("id", type=number)
    st = a.add_parser("set-text", help="the message it inserts, or the notification intro")
    st.add_argument("id", type=number)
    st.add_argument("text", help="the text, or - to read it from standard input")

    tpl = sub.add_parser("template", help="email templates")
    t = tpl.add_subparsers(dest="action", required=True)
    t.add_parser("list", help="every template and what sends it").add_argument(
        "--json", action="store_true"
    )
    t.add_parser("show", help="a template's sources and variables").add_argument("name")
    t_set = t.add_parser("set", help="create or replace a template from a file")
    t_set.add_argument("name")
    t_set.add_argument(
        "--file",
        required=True,
        metavar="F",
        help="a file with 'Subject: ...', a blank line, the plain text, and optionally a line "
        "'--- html ---' followed by the HTML",
    )
    t_set.add_argument("--kind", choices=("automation", "system"), default="automation")
    t.add_parser("preview", help="render with sample data").add_argument("name")
    t_test = t.add_parser("test", help="send it with sample data to an address")
    t_test.add_argument("name")
    t_test.add_argument("--to", required=True, type=address, metavar="EMAIL")
    t_del = t.add_parser("delete", help="delete a template you made")
    t_del.add_argument("name")

    sysm = sub.add_parser("system-email", help="system emails (welcome, password reset)")
    s = sysm.add_subparsers(dest="action", required=True)
    s.add_parser("list", help="the system emails and whether each is on")
    s.add_parser("enable").add_argument("name")
    s.add_parser("disable", help="(the password reset is always on)").add_argument("name")

    user = sub.add_parser("user", help="users: accounts, passwords, sessions, notifications")
    u = user.add_subparsers(dest="action", required=True)
    cli_users.add_parsers(u)
    u.add_parser("reset-password", help="email a one-time reset code").add_argument(
        "email", type=address
    )
    us = u.add_parser("settings", help="show or change someone's notification settings")
    us.add_argument("email", type=address)
    us.add_argument("--email", dest="email_on", choices=_ON_OFF, help="notification emails")
    us.add_argument("--sound", choices=_ON_OFF)
    us.add_argument("--in-app", dest="in_app", choices=_ON_OFF)
    us.add_argument("--delay", choices=tuple(_DELAYS), help="seconds before an email, or never")
    acting_option(us, "acting", metavar="ADMIN_EMAIL", help="who makes the change")


def add_item_parsers(item: Any) -> None:
    """`item close N`, `item status N STATUS`, `item assign N EMAIL` (M2 triggers)."""
    close = item.add_parser("close", help="close item N (runs the 'item closed' automations)")
    close.add_argument("number", type=number)
    acting_option(close, "acting")
    status = item.add_parser("status", help="set item N's status")
    status.add_argument("number", type=number)
    status.add_argument("status", help=", ".join(ITEM_STATUSES))
    acting_option(status, "acting")
    assign = item.add_parser("assign", help="assign item N to a user")
    assign.add_argument("number", type=number)
    assign.add_argument("email", type=address)


async def item_action(service: Facade, args: argparse.Namespace) -> None:
    if args.action == "close":
        info = await service.close_item(number=args.number, acting=args.acting)
    elif args.action == "status":
        info = await service.set_item_status(
            number=args.number, status=args.status, acting=args.acting
        )
    else:
        info = await service.assign_item(number=args.number, email=args.email)
    who = f", assigned to {info.assignee.email}" if info.assignee else ""
    print(f"#{info.number} {info.status}{who}")


def _automation_doc(a: AutomationInfo) -> dict[str, Any]:
    return {
        "id": a.id,
        "position": a.position,
        "name": a.name,
        "trigger": a.trigger,
        "conditions": dict(a.conditions),
        "actions": [dict(x) for x in a.actions],
        "text": a.text,
        "enabled": a.enabled,
        "critical": a.critical,
        "summary": a.summary,
    }


async def _automation(service: Facade, args: argparse.Namespace) -> None:
    autos = service.automations
    if args.action == "list":
        rows = await autos.list()
        if args.json:
            print(json.dumps([_automation_doc(a) for a in rows], indent=2, ensure_ascii=False))
            return
        for a in rows:
            flags = ("on " if a.enabled else "off") + (" critical" if a.critical else "")
            print(f"{a.id}\t{flags}\t{a.name}\t{a.summary}")
        return
    if args.action == "show":
        print(json.dumps(_automation_doc(await autos.get(args.id)), indent=2, ensure_ascii=False))
    elif args.action == "enable":
        print(f"automation {(await autos.enable(args.id)).id} is on")
    elif args.action == "disable":
        print(f"automation {(await autos.disable(args.id)).id} is off")
    elif args.action == "delete":
        await autos.delete(args.id)
        print(f"automation {args.id} deleted")
    else:
        text = read_stdin_text() if args.text == "-" else args.text
        print((await autos.set_text(args.id, text)).text)


def _read_template_file(path: str) -> tuple[str, str, str]:
    """'Subject: ...', a blank line, the text body, then optionally '--- html ---' and HTML."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {quoted(path)}: {exc.strerror}") from exc
    try:
        content = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{quoted(path)} is not UTF-8 text (byte {exc.start + 1} is {data[exc.start]:#04x})"
        ) from None
    subject = ""
    first, _, rest = content.partition("\n")
    if first.lower().startswith("subject:"):
        subject = first.partition(":")[2].strip()
        content = rest[1:] if rest.startswith("\n") else rest
    text, marker, html = content.partition("\n--- html ---\n")
    return subject, text if marker or text else content, html if marker else ""


def _template_doc(t: TemplateInfo) -> dict[str, Any]:
    return {
        "name": t.name,
        "kind": t.kind,
        "builtin": t.builtin,
        "description": t.description,
        "used_by": list(t.used_by),
    }


async def _template(service: Facade, args: argparse.Namespace) -> None:
    store = service.templates
    if args.action == "list":
        rows = await store.list()
        if args.json:
            print(json.dumps([_template_doc(t) for t in rows], indent=2, ensure_ascii=False))
            return
        for t in rows:
            used = ", ".join(t.used_by) or "-"
            built = "built-in" if t.builtin else "custom"
            print(f"{t.name}\t{t.kind}\t{built}\tsent by: {used}")
    elif args.action == "show":
        t = await store.get(args.name)
        print(f"# {t.name} ({t.kind}{', built-in' if t.builtin else ''}): {t.description}")
        print("# variables: " + "; ".join(f"{k}: {v}" for k, v in t.variables))
        if t.subject:
            print(f"Subject: {t.subject}\n")
        print(t.body_text, end="" if t.body_text.endswith("\n") else "\n")
        if t.body_html:
            print("--- html ---")
            print(t.body_html, end="" if t.body_html.endswith("\n") else "\n")
    elif args.action == "set":
        subject, text, html = _read_template_file(args.file)
        saved = await store.save(
            name=args.name,
            subject=subject or None,
            body_text=text,
            body_html=html or None,
            kind=args.kind,
        )
        print(f"template {saved.name} saved")
    elif args.action == "preview":
        r = await store.preview(args.name)
        print(f"Subject: {r.subject}\n\n{r.text}", end="" if r.text.endswith("\n") else "\n")
    elif args.action == "test":
        email_id = await store.test_send(args.name, to=args.to)
        print(f"queued test email {email_id} to {args.to}")
    else:
        await store.delete(args.name)
        print(f"template {args.name} deleted")


async def _system_email(service: Facade, args: argparse.Namespace) -> None:
    emails = service.system_emails
    if args.action == "list":
        for e in await emails.list():
            state = "always on" if e.always_on else ("on" if e.enabled else "off")
            print(f"{e.name}\t{state}\t{e.description}")
    elif args.action == "enable":
        print(f"{(await emails.enable(args.name)).name} is on")
    else:
        print(f"{(await emails.disable(args.name)).name} is off")


async def _user(service: Facade, args: argparse.Namespace) -> None:
    if args.action in cli_users.ACTIONS:
        await cli_users.user_action(service, args)
        return
    if args.action == "reset-password":
        request = await service.system_emails.reset_password(args.email)
        if request is None:  # a server does not say whether the account exists
            print(f"a reset code is emailed to {args.email} if it has an account")
            return
        print(
            f"reset code emailed (log entry {request.email_id});"
            f" valid until {request.expires_at:%H:%M} UTC"
        )
        return
    person = await service.person(args.email)
    current = person.settings
    wanted: NotificationSettings = current
    if args.email_on is not None:
        wanted = replace(wanted, email=args.email_on == "on")
    if args.sound is not None:
        wanted = replace(wanted, sound=args.sound == "on")
    if args.in_app is not None:
        wanted = replace(wanted, in_app=args.in_app == "on")
    if args.delay is not None:
        delay = _DELAYS[args.delay]
        # "never" (E1's last choice) is stored as notification emails off.
        wanted = replace(wanted, email=False) if delay is None else replace(wanted, delay_s=delay)
    if wanted != current:
        if not args.acting:
            raise InputError("say who makes the change: --as ADMIN_EMAIL (or your own address)")
        actor = await service.person(args.acting)
        person = await service.set_notification_settings(
            person_id=person.id, settings=wanted, acting_id=actor.id
        )
    s = person.settings
    delay_text = "never" if s.delay_s is None else f"{s.delay_s}s"
    print(
        f"{person.email}: email {'on' if s.email else 'off'}, sound {'on' if s.sound else 'off'}, "
        f"in-app {'on' if s.in_app else 'off'}, delay {delay_text}"
    )


COMMANDS: dict[str, Handler] = {
    "automation": _automation,
    "template": _template,
    "system-email": _system_email,
    "user": _user,
}
