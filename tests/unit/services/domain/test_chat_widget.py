"""C1: the widget snippet, one text for the server and the desktop's Chat section."""

from __future__ import annotations

import services.api
from services.domain.chat_widget import widget_snippet


def test_c1_the_snippet_names_the_servers_widget_script() -> None:
    assert (
        widget_snippet(" https://desk.example.com/ ")
        == '<script src="https://desk.example.com/chat/widget.js" async></script>'
    )


def test_c1_the_snippet_escapes_the_address_and_is_empty_without_one() -> None:
    assert widget_snippet('https://a.example/"x&y') == (
        '<script src="https://a.example/&quot;x&amp;y/chat/widget.js" async></script>'
    )
    assert widget_snippet("") == widget_snippet("  /") == ""


def test_c1_the_desktop_gets_the_same_function_through_the_facade() -> None:
    assert services.api.widget_snippet is widget_snippet
