"""Hostile input on every command and argument of `deskbell` (issue 8, "Prove it"; M8, E11).

The cases are generated: the parser is walked for every command, each argument gets the
classes of input that must be refused for its kind (bytes that are not UTF-8 and lone
surrogates, 60,000 characters, numbers past 64 bits or written `1e3`, `0x10`, `²` or with
5,000 digits, quoted addresses with CR/LF, bogus statuses, settings out of range or shape),
and commands that read standard input get bytes that are not UTF-8. Each must print exactly
one line on stderr, exit 1, print nothing on stdout, and leave the database as it was.

A command added without a valid baseline below fails `test_every_command_has_a_baseline`;
each baseline is checked to succeed, so a hostile case fails for its own value only.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import re
import shutil
import sqlite3
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from app import cli
from services.config import KEYS

ANN = "ann@example.com"
BOB = "bob@example.com"
CARL = "carl@customer.org"
SPEC_CODE = re.compile(r"\b[RNSEMIDTC][0-9]{1,2}\b")

Baseline = dict[str, "str | bool | list[str]"]

# A valid invocation of every command, argument by argument (dest: value; True for a flag).
BASELINES: dict[tuple[str, ...], Baseline] = {
    ("person", "add"): {"email": "dan@example.com", "name": "Dan", "customer": True},
    ("person", "list"): {"json": True},
    ("item", "add"): {"title": "New one", "follower": [ANN], "requester": CARL},
    ("item", "follow"): {"number": "1", "email": BOB},
    ("item", "unfollow"): {"number": "1", "email": BOB},
    ("item", "show"): {"number": "1", "json": True},
    ("item", "close"): {"number": "1", "acting": ANN},
    ("item", "status"): {"number": "1", "status": "pending", "acting": ANN},
    ("item", "assign"): {"number": "1", "email": ANN},
    ("post",): {"number": "1", "author": ANN, "internal": True, "text": "hello"},
    ("seen",): {"number": "1", "email": BOB},
    ("config", "set"): {"key": "smtp.port", "value": "2525"},
    ("config", "get"): {"key": "smtp.port"},
    ("config", "list"): {},
    ("smtp", "password"): {},
    ("smtp", "test"): {},
    ("emails",): {"json": True, "status": "sent", "direction": "out", "search": "printer"},
    ("automation", "list"): {"json": True},
    ("automation", "show"): {"id": "1"},
    ("automation", "enable"): {"id": "3"},
    ("automation", "disable"): {"id": "2"},
    ("automation", "delete"): {"id": "3"},
    ("automation", "set-text"): {"id": "2", "text": "Closed."},
    ("template", "list"): {"json": True},
    ("template", "show"): {"name": "welcome"},
    ("template", "set"): {"name": "mine", "file": "TEMPLATE_FILE", "kind": "automation"},
    ("template", "preview"): {"name": "welcome"},
    ("template", "test"): {"name": "welcome", "to": BOB},
    ("template", "delete"): {"name": "custom"},
    ("system-email", "list"): {},
    ("system-email", "enable"): {"name": "welcome"},
    ("system-email", "disable"): {"name": "welcome"},
    ("user", "reset-password"): {"email": BOB},
    ("user", "settings"): {
        "email": BOB,
        "email_on": "on",
        "sound": "off",
        "in_app": "on",
        "delay": "300",
        "acting": ANN,
    },
    ("user", "add"): {"email": "dan@example.com", "name": "Dan", "admin": True},
    ("user", "password"): {"email": BOB},
    ("user", "sessions"): {"email": BOB, "json": True},
    ("user", "end-session"): {"id": "1"},
    ("mail", "receive"): {},
    ("mail", "bounces"): {"json": True},
    ("mail", "clear-bounces"): {"email": BOB, "acting": ANN},
    ("imap", "password"): {},
    ("imap", "test"): {},
    ("serve",): {"smtp_listen": "127.0.0.1:2525", "listen": "127.0.0.1:0"},
    ("rescue",): {"file": "DAMAGED_FILE"},
    # A closed port: the hostile cases must be refused before any connection is tried.
    ("login",): {"url": "http://127.0.0.1:1", "email": BOB},
    ("logout",): {},
    ("events",): {"after": "0", "json": True, "count": "1"},
}
# Commands that read standard input (a password line), with a valid input for the baseline.
STDIN = {
    ("smtp", "password"): b"secret\n",
    ("imap", "password"): b"secret\n",
    ("user", "password"): b"correct horse battery\n",
    ("login",): b"correct horse battery\n",
}
# Baselines not run: they need a server, run forever, or need a damaged file.
NOT_RUN = {
    ("smtp", "test"),
    ("imap", "test"),
    ("serve",),
    ("rescue",),
    ("mail", "receive"),
    ("login",),  # tests/e2e/test_cli_remote.py signs in to a real server
    ("logout",),
    ("events",),  # tests/e2e/test_issue10_user_story.py follows a real server's stream
}

# --- the classes of hostile input --------------------------------------------------------

NOT_UTF8 = "ab\udcff\udcfecd"  # how Python hands over argv bytes b"ab\xff\xfecd"
SURROGATE = "ab\ud800cd"  # a lone surrogate (from Windows argv, or a broken encoder)
LONG = "a" * 60_000
TEXT_CLASSES = {"not UTF-8": NOT_UTF8, "lone surrogate": SURROGATE, "60,000 characters": LONG}
NUMBERS = {
    "past 64 bits": "99999999999999999999",
    "exponent": "1e3",
    "hex": "0x10",
    "superscript": "\u00b2",
    "Arabic-Indic digit": "\u0661",
    "5,000 digits": "5" * 5000,
    "negative": "-1",
    "zero": "0",
    "underscored": "1_0",
}
NUMBER_ARGUMENTS = {**NUMBERS, "padded": " 7"}
ADDRESSES = {
    "quoted CR/LF": '"a\r\nb" <x@example.com>',
    "header injection": "x@example.com\r\nBcc: y@example.com",
    "display name": "Ann <ann@example.com>",
    "no domain": "ann@",
    "quoted local part": '"ann"@example.com',
}
PORT_LIKE = {**NUMBERS, "too big": "65536"}
SETTINGS: dict[str, dict[str, str]] = {
    "smtp.host": {"a space": "mail example.com", "CR/LF": "a\r\nb", "label": "-bad-.com"},
    "smtp.port": PORT_LIKE,
    "smtp.security": {"unknown": "ssl3"},
    "smtp.username": {"CR/LF": "a\r\nb"},
    "smtp.from": ADDRESSES,
    # A literal "=?" is kept and encoded when the header is built (E11), so it is not refused.
    "smtp.from_name": {"CR/LF": "Desk\r\nBcc: x@y.z"},
    "smtp.cafile": {"missing": "/nonexistent/ca.pem", "a folder": "/"},
    "unseen_delay_s": {**NUMBERS, "20 digits": "99999999999999999999", "a month": "2678400"},
    "outbox.lease_s": {**NUMBERS, "12 digits": "999999999999"},
    "imap.host": {"a space": "imap example.com"},
    "imap.port": PORT_LIKE,
    "imap.security": {"unknown": "ssl"},
    "imap.username": {"CR/LF": "a\r\nb"},
    "imap.folder": {"empty": "", "CR/LF": "IN\r\nBOX"},
    "mail.create_items": {"unknown": "maybe", "superscript": "\u00b9"},
}
STDIN_CLASSES = {
    "stdin not UTF-8": b"caf\xe9 au lait\n",
    "stdin encoded surrogate": b"ab\xed\xa0\x80cd\n",
}

ADDRESS_ARGS = {"email", "author", "as_email", "acting", "follower", "requester", "to"}
KIND_OF: dict[str, str] = {
    **dict.fromkeys(ADDRESS_ARGS, "address"),
    "number": "number",
    "id": "number",
    "status": "status",
    "search": "search",
    "file": "path",
    "data_dir": "path",
    "smtp_listen": "listen",
    "listen": "listen",
    "key": "key",
    "count": "number",
    "after": "position",
}
EXTRA: dict[str, dict[str, str]] = {
    "address": ADDRESSES,
    "number": NUMBER_ARGUMENTS,
    "position": {k: v for k, v in NUMBER_ARGUMENTS.items() if k != "zero"},  # 0: the start
    "status": {"bogus": "bogus"},
    "search": {"201 characters": "x" * 201},
    "listen": {"no port": "localhost", "port too big": "127.0.0.1:99999", "hex": "[::1]:0x10"},
    "key": {"unknown": "smtp.hostname", "empty": ""},
    "name": {"spaces": "Bad Name!", "a path": "../etc/passwd"},
}


@dataclass(frozen=True)
class Case:
    command: tuple[str, ...]
    dest: str
    label: str
    value: str | None  # None: the hostile part is standard input
    stdin: bytes | None = None
    global_option: str | None = None

    @property
    def id(self) -> str:
        where = self.global_option or self.dest
        return f"{' '.join(self.command)} {where}: {self.label}"


def _leaves(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield path, parser
        return
    for action in subs:
        for name, sub in action.choices.items():
            yield from _leaves(sub, (*path, name))


PARSER = cli._build_parser()
LEAVES = dict(_leaves(PARSER))


def _valued(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [
        a
        for a in parser._actions
        if a.nargs != 0 and not isinstance(a, argparse._HelpAction | argparse._VersionAction)
    ]


def _argv(command: tuple[str, ...], values: Baseline, files: dict[str, str]) -> list[str]:
    parser = LEAVES[command]
    argv = list(command)
    for action in parser._actions:
        if action.dest not in values or isinstance(action, argparse._HelpAction):
            continue
        value = values[action.dest]
        tokens = value if isinstance(value, list) else [value]
        for token in tokens:
            if token is True:
                argv.append(action.option_strings[0])
                continue
            assert isinstance(token, str)
            token = files.get(token, token)
            argv += [action.option_strings[0], token] if action.option_strings else [token]
    return argv


def _hostile_values(command: tuple[str, ...], dest: str) -> dict[str, str]:
    named = dest == "name" and command[0] in ("template", "system-email")
    kind = "name" if named else KIND_OF.get(dest, "text")
    found = dict(TEXT_CLASSES)
    if (command, dest) == (("post",), "text"):
        found["60,000 characters"] = "a" * 100_001  # a message may be 100,000 long
    if kind == "path":
        found.pop("not UTF-8")  # any bytes make a valid file name
        found["missing"] = "/nonexistent/file"
    found.update(EXTRA.get(kind, {}))
    return found


def _cases() -> Iterator[Case]:
    for command, parser in LEAVES.items():
        if command == ("config", "set"):
            continue  # below, key by key
        for action in _valued(parser):
            if action.choices is not None:
                yield Case(command, action.dest, "not a choice", "bogus")
                yield Case(command, action.dest, "not UTF-8", NOT_UTF8)
                continue
            for label, value in _hostile_values(command, action.dest).items():
                yield Case(command, action.dest, label, value)
    for command in (*STDIN, ("post",), ("automation", "set-text")):
        for label, data in STDIN_CLASSES.items():
            yield Case(command, "text" if command not in STDIN else "", label, "-", stdin=data)
    for key, bad in SETTINGS.items():
        for label, value in {**bad, **TEXT_CLASSES}.items():
            yield Case(("config", "set"), key, label, value)
    for label, value in EXTRA["key"].items():
        yield Case(("config", "set"), "key", label, value)
    global_options = {
        "--data-dir": {
            "lone surrogate": SURROGATE,
            "60,000 characters": LONG,
            "a file": "/etc/hostname",
        },
        "--database-url": {
            **TEXT_CLASSES,
            "not a URL": "::not a url::",
            "no driver": "mysql://db.example.com/deskbell",
            "unreachable": "postgresql+asyncpg://u:secret@127.0.0.1:1/deskbell",
        },
        "--as": ADDRESSES,
        "--server": {
            **TEXT_CLASSES,
            "not a URL": "::not a url::",
            "plain http to another machine": "http://desk.example.com",
            "a port that is not one": "https://desk.example.com:http",
        },
    }
    for option, values in global_options.items():
        for label, value in values.items():
            yield Case(("person", "list"), "", label, value, global_option=option)


CASES = list(_cases())


# --- running ---------------------------------------------------------------------------------


@dataclass
class Workspace:
    data_dir: Path
    files: dict[str, str]

    def dump(self) -> list[str]:
        with contextlib.closing(sqlite3.connect(self.data_dir / "deskbell.db")) as conn:
            return list(conn.iterdump())


def _run(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    argv: list[str],
    stdin: bytes = b"",
) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin), encoding="utf-8"))
    capsys.readouterr()
    code = cli.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def _seed(folder: Path, template: Path) -> None:
    for argv in (
        ["person", "add", ANN, "--name", "Ann Agent"],
        ["person", "add", BOB, "--name", "Bob Agent"],
        ["person", "add", CARL, "--name", "Carl Customer", "--customer"],
        ["item", "add", "Printer on fire", "--follower", ANN, "--follower", BOB],
        ["post", "1", "--as", ANN, "--internal", "first note"],
        ["template", "set", "custom", "--file", str(template)],
    ):
        err = io.StringIO()
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
            assert cli.main(["--data-dir", str(folder), *argv]) == 0, err.getvalue()
    # Bob's emails bounced, so that `mail clear-bounces` has something to clear. Only a
    # delivery report for a sent email records one (tests/integration/test_bounces.py), so
    # the row is written as that path writes it.
    with contextlib.closing(sqlite3.connect(folder / "deskbell.db")) as conn, conn:
        conn.execute(
            "INSERT INTO mail_bounces (address, hard_bounces, soft_bounces, last_status,"
            " last_reason, last_at, blocked_at) VALUES (?, 3, 0, '5.1.1', 'no such user',"
            " '2025-01-02 03:04:05.000000', '2025-01-02 03:04:05.000000')",
            (BOB,),
        )
        # A signed-in device of Bob's, for `user end-session` (signing in is the server's).
        conn.execute(
            "INSERT INTO device_sessions (person_id, token_hash, device, address, created_at,"
            " last_used_at) SELECT id, ?, 'laptop', '192.0.2.1', '2025-01-02 03:04:05.000000',"
            " '2025-01-02 03:04:05.000000' FROM persons WHERE email = ?",
            ("0" * 64, BOB),
        )


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    root = tmp_path_factory.mktemp("hostile")
    template = root / "template.txt"
    template.write_text("Subject: Hi {{ recipient.name }}\n\nHello {{ recipient.name }}.\n")
    _seed(root / "data", template)
    files = {"TEMPLATE_FILE": str(template), "DAMAGED_FILE": str(template)}
    return Workspace(data_dir=root / "data", files=files)


def test_every_command_has_a_baseline() -> None:
    assert set(LEAVES) == set(BASELINES), set(LEAVES) ^ set(BASELINES)


@pytest.mark.parametrize("command", sorted(set(BASELINES) - NOT_RUN), ids=" ".join)
def test_every_baseline_succeeds(
    command: tuple[str, ...],
    workspace: Workspace,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    copy = tmp_path / "data"
    shutil.copytree(workspace.data_dir, copy)
    argv = ["--data-dir", str(copy), *_argv(command, BASELINES[command], workspace.files)]
    code, _, err = _run(capsys, monkeypatch, argv, STDIN.get(command, b""))
    assert code == 0, err


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_m8_hostile_input_is_one_line_exit_1_and_changes_nothing(
    case: Case,
    workspace: Workspace,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    values = dict(BASELINES[case.command])
    if case.command == ("config", "set") and case.dest in KEYS:
        values = {"key": case.dest, "value": case.value or ""}
    elif case.dest:
        listed = isinstance(values.get(case.dest), list)
        values[case.dest] = [case.value or ""] if listed else case.value or ""
    head = ["--data-dir", str(workspace.data_dir)]
    if case.global_option == "--data-dir":
        head = ["--data-dir", case.value or ""]
    elif case.global_option:
        head += [case.global_option, case.value or ""]
    argv = [*head, *_argv(case.command, values, workspace.files)]
    before = workspace.dump()
    stdin = case.stdin if case.stdin is not None else STDIN.get(case.command, b"")
    code, out, err = _run(capsys, monkeypatch, argv, stdin)
    lines = err.splitlines()
    assert code == 1, (code, err)
    assert len(lines) == 1 and lines[0].startswith("deskbell: error: "), err
    assert "Traceback" not in err and not SPEC_CODE.search(lines[0]), err
    assert "internal error" not in lines[0], lines[0]  # refused on purpose, not by accident
    assert len(lines[0]) < 1000, lines[0][:200]
    assert out == ""
    assert workspace.dump() == before


@pytest.mark.parametrize("command", [(), *sorted(LEAVES)], ids=lambda c: " ".join(c) or "deskbell")
def test_m8_help_has_no_spec_codes_and_no_test_flags(
    command: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main([*command, "--help"]) == 0
    shown = capsys.readouterr().out
    assert not SPEC_CODE.search(shown), SPEC_CODE.findall(shown)
    assert "--quit-after-shown" not in shown


def test_m8_listings_have_no_spec_codes(
    workspace: Workspace, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for command in (
        ("automation", "list"),
        ("automation", "show", "1"),
        ("template", "list"),
        ("template", "show", "new_message"),
        ("system-email", "list"),
        ("config", "list"),
    ):
        code, out, err = _run(
            capsys, monkeypatch, ["--data-dir", str(workspace.data_dir), *command]
        )
        assert code == 0, err
        assert not SPEC_CODE.search(out), (command, SPEC_CODE.findall(out))


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    from importlib.metadata import version

    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"deskbell {version('deskbell')}"


def test_an_unreachable_database_is_one_line_without_its_password(
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = "postgresql+asyncpg://agent:s3cret@127.0.0.1:1/deskbell"
    assert cli.main(["--database-url", url, "person", "list"]) == 1
    [line] = capsys.readouterr().err.splitlines()
    assert "cannot reach the database" in line and "s3cret" not in line
