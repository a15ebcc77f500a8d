"""C1: `deskbell serve --public-url` names the address the chat links in emails start with."""

from __future__ import annotations

import argparse

import pytest

from app.cli_serve import add_serve_arguments


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(exit_on_error=False)
    add_serve_arguments(parser)
    return parser


def test_c1_public_url_is_kept_without_a_trailing_slash() -> None:
    args = _parser().parse_args(["--public-url", "https://desk.example.com/"])
    assert args.public_url == "https://desk.example.com"
    assert _parser().parse_args([]).public_url is None


@pytest.mark.parametrize(
    "bad", ["desk.example.com", "javascript:alert(1)", "https://x.com/a b", "https://x.com/?q=1"]
)
def test_c1_a_public_url_that_is_not_one_is_refused_in_one_line(bad: str) -> None:
    with pytest.raises(argparse.ArgumentError, match=r"server\.public_url must be"):
        _parser().parse_args(["--public-url", bad])
