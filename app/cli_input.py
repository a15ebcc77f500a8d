"""What the command line accepts, and how it refuses the rest: one line, exit status 1.

argparse's own errors (a missing argument, an unknown option, a number that is not one) follow
the same promise as the service's: `Parser.error` prints one line and exits 1 instead of a
usage block and status 2. Numbers are plain ASCII digits within SQLite's 64 bits (no `1e3`,
`0x10`, `²` or 5,000 digits). Text arguments must be valid UTF-8: Python hands over bytes that
are not as lone surrogates, which no database or email can hold; paths keep them, since a
file name may legitimately be any bytes. Standard input is read as bytes and decoded here.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Iterable
from typing import Final, NoReturn

from services.errors import InputError, quoted

__all__ = [
    "ACTING_DEST",
    "ACTING_REQUIRED_IN",
    "MAX_NUMBER",
    "Parser",
    "acting_option",
    "address",
    "check_text_arguments",
    "number",
    "one_line",
    "read_stdin_line",
    "read_stdin_text",
]

MAX_NUMBER: Final = 10**18 - 1  # 18 digits: always inside SQLite's signed 64-bit integers
_DIGITS: Final = re.compile(r"[0-9]{1,18}")


def one_line(text: str) -> str:
    """`text` with every line break, control character and lone surrogate escaped."""
    return "".join(
        ch if ch.isprintable() or ch == " " else ch.encode("unicode_escape").decode("ascii")
        for ch in text
    )


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line on stderr and exit status 1."""

    def error(self, message: str) -> NoReturn:
        self.exit(1, f"deskbell: error: {one_line(message)}; see {self.prog} --help\n")


def number(value: str) -> int:
    """An item number or an id: 1 to MAX_NUMBER, written in ASCII digits."""
    if not _DIGITS.fullmatch(value) or int(value) < 1:
        raise argparse.ArgumentTypeError(
            f"{quoted(value)} is not a number from 1 to {MAX_NUMBER} (digits 0-9 only)"
        )
    return int(value)


def address(value: str) -> str:
    """An email address, normalised as the service stores it."""
    from services.domain.headers import normalize_address

    try:
        return normalize_address(value)
    except InputError:
        raise argparse.ArgumentTypeError(f"{quoted(value)} is not an email address") from None


# Set by `acting_option` on the command it belongs to: which argument names who acts, and
# (for the commands that cannot do without one on this machine's database) the command's name.
ACTING_DEST: Final = "acting_dest"
ACTING_REQUIRED_IN: Final = "acting_required_in"


def acting_option(
    parser: argparse.ArgumentParser,
    dest: str,
    *,
    required_locally: bool = False,
    metavar: str = "EMAIL",
    help: str | None = None,
) -> None:
    """`--as EMAIL`: who acts. On a server the signed-in user always does, so it may be left
    out there; `required_locally` commands still need it on this machine's database."""
    parser.add_argument("--as", dest=dest, type=address, metavar=metavar, help=help)
    parser.set_defaults(
        **{ACTING_DEST: dest, ACTING_REQUIRED_IN: parser.prog if required_locally else None}
    )


def check_text_arguments(args: argparse.Namespace, *, paths: Iterable[str]) -> None:
    """Refuse any text argument that is not valid UTF-8, and any path this system cannot
    name a file with (see the module docstring)."""
    path_args = set(paths)
    for dest, value in vars(args).items():
        for text in value if isinstance(value, list) else [value]:
            if not isinstance(text, str):
                continue
            if dest in path_args:
                try:
                    os.fsencode(text)
                except UnicodeError:
                    raise InputError(f"{quoted(text)} cannot be a file name here") from None
            elif _has_surrogate(text):
                raise InputError(
                    f"{quoted(text)} is not valid text: it holds bytes that are not UTF-8"
                )


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def read_stdin_text(what: str = "standard input") -> str:
    """All of standard input as text; InputError if it is not UTF-8."""
    return _decode(sys.stdin.buffer.read(), what)


def read_stdin_line(what: str = "standard input") -> str:
    """The first line of standard input (a password typed or piped), without its line end."""
    return _decode(sys.stdin.buffer.readline(), what).rstrip("\r\n")


def _decode(data: bytes, what: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{what} is not UTF-8 text (byte {exc.start + 1} is {data[exc.start]:#04x})"
        ) from None
