"""HTML to plain text for mail bodies (I4), on the standard library's html.parser.

Only what a reply needs: readable paragraphs, no scripts or styles, entities unescaped, and
`<blockquote>` content marked with "> " so quoted history is stripped like a text reply's.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

__all__ = ["html_to_text"]

_BLOCK = frozenset(
    {
        "address", "article", "aside", "blockquote", "dd", "div", "dl", "dt", "fieldset",
        "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header",
        "hr", "li", "main", "nav", "ol", "p", "pre", "section", "table", "tr", "ul",
    }
)  # fmt: skip
_DROP = frozenset({"script", "style", "head", "title", "template", "noscript"})
_VOID = frozenset({"br", "hr", "img", "meta", "link", "input", "wbr", "area", "base", "col"})
_SPACES = re.compile(r"[ \t\r\n\f\v\u00a0]+")


class _TextBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self._line: list[str] = []
        self._drop_depth = 0
        self._quote_depth = 0
        self._pre_depth = 0

    def _break(self) -> None:
        text = "".join(self._line).strip()
        prefix = "> " * self._quote_depth
        self.lines.append(f"{prefix}{text}".rstrip() if text or prefix else "")
        self._line = []

    def _block_edge(self) -> None:
        if "".join(self._line).strip():
            self._break()
        elif self.lines and self.lines[-1].strip(" >"):
            self.lines.append("> " * self._quote_depth if self._quote_depth else "")
            self._line = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _DROP:
            self._drop_depth += 1
        elif tag == "br":
            self._break()
        elif tag in _BLOCK:
            self._block_edge()
            if tag == "blockquote":
                self._quote_depth += 1
            elif tag == "pre":
                self._pre_depth += 1
            elif tag == "li":
                self._line.append("* ")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "br":
            self._break()
        elif tag == "hr":
            self._block_edge()

    def handle_endtag(self, tag: str) -> None:
        if tag in _DROP:
            self._drop_depth = max(0, self._drop_depth - 1)
        elif tag in _BLOCK:
            if tag == "blockquote":
                # Close the quote first, so the blank line after it is not quoted.
                if "".join(self._line).strip():
                    self._break()
                self._quote_depth = max(0, self._quote_depth - 1)
            elif tag == "pre":
                self._pre_depth = max(0, self._pre_depth - 1)
            self._block_edge()

    def handle_data(self, data: str) -> None:
        if self._drop_depth:
            return
        if self._pre_depth:
            first, *rest = data.split("\n")
            self._line.append(first)
            for part in rest:
                self._break()
                self._line.append(part)
            return
        text = _SPACES.sub(" ", data)
        if not self._line or "".join(self._line).endswith(" "):
            text = text.lstrip()
        self._line.append(text)

    def text(self) -> str:
        self._break()
        out: list[str] = []
        for line in self.lines:
            # Collapse runs of blank lines (quoted or not) to one.
            if not line.strip(" >") and out and not out[-1].strip(" >"):
                continue
            out.append(line)
        return "\n".join(out).strip("\n")


def html_to_text(html: str) -> str:
    """Readable text from an HTML body; never raises on malformed markup."""
    builder = _TextBuilder()
    try:
        builder.feed(html)
        builder.close()
    except Exception:  # html.parser is lenient, but a broken document must not lose the text
        return _SPACES.sub(" ", re.sub(r"<[^>]*>", " ", html)).strip()
    return builder.text()
