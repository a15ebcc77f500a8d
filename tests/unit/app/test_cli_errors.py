"""Bad input on the command line (issue 2, E11, R2): exit non-zero, exactly one line on stderr
that starts `deskbell: error:`, no traceback, and nothing changed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from app.cli import main

ANN = "ann@example.com"
CARL = "carl@customer.org"


class Cli:
    def __init__(self, data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
        self.data_dir = data_dir
        self.capsys = capsys

    def run(self, *args: str) -> tuple[int, str, str]:
        self.capsys.readouterr()
        code = main(["--data-dir", str(self.data_dir), *args])
        out, err = self.capsys.readouterr()
        return code, out, err

    def ok(self, *args: str) -> str:
        code, out, err = self.run(*args)
        assert code == 0, err
        return out

    def snapshot(self) -> dict[str, Any]:
        items = []
        number = 1
        while True:
            code, out, _ = self.run("item", "show", str(number), "--json")
            if code != 0:
                break
            items.append(json.loads(out))
            number += 1
        emails = json.loads(self.ok("emails", "--json"))
        people = json.loads(self.ok("person", "list", "--json"))
        settings = self.ok("config", "list")
        return {"items": items, "emails": emails, "people": people, "settings": settings}


@pytest.fixture
def cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Cli:
    c = Cli(tmp_path / "data", capsys)
    c.ok("person", "add", ANN, "--name", "Ann Agent")
    c.ok("person", "add", CARL, "--name", "Carl Customer", "--customer")
    c.ok("item", "add", "Printer on fire", "--follower", ANN, "--follower", CARL)
    c.ok("post", "1", "--as", ANN, "--internal", "first note")
    return c


BAD_INPUT = {
    "unknown item (post)": ["post", "99", "--as", ANN, "--internal", "hello"],
    "unknown item (show)": ["item", "show", "99"],
    "unknown item (seen)": ["seen", "99", "--as", ANN],
    "unknown item (follow)": ["item", "follow", "99", ANN],
    "unknown person (post)": ["post", "1", "--as", "nobody@example.com", "--internal", "hi"],
    "unknown person (seen)": ["seen", "1", "--as", "nobody@example.com"],
    "unknown person (follow)": ["item", "follow", "1", "nobody@example.com"],
    "unknown follower of a new item": ["item", "add", "New", "--follower", "nobody@example.com"],
    "invalid address": ["person", "add", "not-an-address", "--name", "X"],
    "invalid address with a header": [
        "person",
        "add",
        "x@example.com\nBcc: y@e.org",
        "--name",
        "X",
    ],
    "duplicate person": ["person", "add", ANN, "--name", "Another Ann"],
    "r2 customer posting internally": ["post", "1", "--as", CARL, "--internal", "let me in"],
    "empty text": ["post", "1", "--as", ANN, "--internal", ""],
    "blank text": ["post", "1", "--as", ANN, "--internal", "  \n\t "],
    "oversized text": ["post", "1", "--as", ANN, "--internal", "x" * 100_001],
    "e11 line break in a name": ["person", "add", "dan@example.com", "--name", "Dan\r\nBcc: x@y.z"],
    "e11 unicode line break in a name": [
        "person",
        "add",
        "dan@example.com",
        "--name",
        "Dan\u2028X",
    ],
    "e11 line break in a title": ["item", "add", "Title\nBcc: x@y.z"],
    "unknown config key": ["config", "set", "smtp.hostname", "mail.example.com"],
    "unknown config key (get)": ["config", "get", "nope"],
    "bad port (text)": ["config", "set", "smtp.port", "smtp"],
    "bad port (range)": ["config", "set", "smtp.port", "70000"],
    "bad port (zero)": ["config", "set", "smtp.port", "0"],
    "bad security": ["config", "set", "smtp.security", "ssl3"],
    "bad delay": ["config", "set", "unseen_delay_s", "-5"],
    "bad from address": ["config", "set", "smtp.from", "a@b.c\nBcc: d@e.f"],
}


@pytest.mark.parametrize("args", BAD_INPUT.values(), ids=BAD_INPUT.keys())
def test_bad_input_exits_non_zero_with_one_line_and_changes_nothing(
    cli: Cli, args: list[str]
) -> None:
    before = cli.snapshot()
    code, out, err = cli.run(*args)
    assert code != 0
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("deskbell: error: ")
    assert "Traceback" not in err
    assert out == ""
    assert cli.snapshot() == before


def test_the_one_line_says_what_is_wrong(cli: Cli) -> None:
    assert "#99" in cli.run("post", "99", "--as", ANN, "--internal", "x")[2]
    assert "smtp.hostname" in cli.run("config", "set", "smtp.hostname", "x")[2]
    assert "70000" in cli.run("config", "set", "smtp.port", "70000")[2]


def test_a_good_command_after_bad_ones_still_works(cli: Cli) -> None:
    cli.run("post", "1", "--as", CARL, "--internal", "let me in")
    message_id = int(cli.ok("post", "1", "--as", CARL, "--external", "hello").strip())
    shown = json.loads(cli.ok("item", "show", "1", "--json"))
    assert [m["id"] for m in shown["messages"]][-1] == message_id
