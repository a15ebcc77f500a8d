"""HTML to plain text for mail bodies (I4), with a small tokenizer of our own.

Only what a reply needs: readable paragraphs, no scripts or styles, entities unescaped, and
`<blockquote>` content marked with "> " so quoted history is stripped like a text reply's.

The standard library's `html.parser` is not used: on Python 3.11.7 it takes quadratic time
on crafted input (400 KB of "<" took 7 minutes). This tokenizer looks at every character a
bounded number of times, so any body costs time linear in its size.
"""

from __future__ import annotations

import html
import re

__all__ = ["html_to_text"]

_BLOCK = frozenset(
    {
        "address", "article", "aside", "blockquote", "dd", "div", "dl", "dt", "fieldset",
        "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header",
        "hr", "li", "main", "nav", "ol", "p", "pre", "section", "table", "tr", "ul",
    }
)  # fmt: skip
_DROP = frozenset({"script", "style", "head", "title", "template", "noscript"})
# Elements whose content is raw text up to their end tag (no tags inside).
_RAW_TEXT = frozenset({"script", "style", "title", "textarea", "noscript", "template"})
_SPACES = re.compile(r"[ \t\r\n\f\v\u00a0]+")
_TAG = re.compile(r"(/?)([A-Za-z][A-Za-z0-9:-]{0,40})")
_RAW_TEXT_END = {name: re.compile(f"</{name}", re.IGNORECASE) for name in _RAW_TEXT}


class _TextBuilder:
    """Collects lines of text from tags and data, tracking quote, pre and dropped depth."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._line: list[str] = []
        self._line_has_text = False  # anything but spaces on the current line
        self._line_ends_space = True  # the current line is empty or ends with a space
        self._drop_depth = 0
        self._quote_depth = 0
        self._pre_depth = 0

    def _append(self, text: str) -> None:
        if text:
            self._line.append(text)
            self._line_has_text = self._line_has_text or bool(text.strip())
            self._line_ends_space = text.endswith(" ")

    def _break(self) -> None:
        text = "".join(self._line).strip()
        prefix = "> " * self._quote_depth
        self.lines.append(f"{prefix}{text}".rstrip() if text or prefix else "")
        self._line = []
        self._line_has_text = False
        self._line_ends_space = True

    def _block_edge(self) -> None:
        if self._line_has_text:
            self._break()
        elif self.lines and self.lines[-1].strip(" >"):
            self.lines.append("> " * self._quote_depth if self._quote_depth else "")
            self._line = []
            self._line_ends_space = True

    def start(self, tag: str, *, closed: bool) -> None:
        if tag in _DROP:
            self._drop_depth += 0 if closed else 1
        elif tag == "br":
            self._break()
        elif tag in _BLOCK:
            self._block_edge()
            if closed:
                return
            if tag == "blockquote":
                self._quote_depth += 1
            elif tag == "pre":
                self._pre_depth += 1
            elif tag == "li":
                self._append("* ")

    def end(self, tag: str) -> None:
        if tag in _DROP:
            self._drop_depth = max(0, self._drop_depth - 1)
        elif tag in _BLOCK:
            if tag == "blockquote":
                # Close the quote first, so the blank line after it is not quoted.
                if self._line_has_text:
                    self._break()
                self._quote_depth = max(0, self._quote_depth - 1)
            elif tag == "pre":
                self._pre_depth = max(0, self._pre_depth - 1)
            self._block_edge()

    def data(self, raw: str) -> None:
        if self._drop_depth or not raw:
            return
        data = html.unescape(raw)
        if self._pre_depth:
            first, *rest = data.split("\n")
            self._append(first)
            for part in rest:
                self._break()
                self._append(part)
            return
        text = _SPACES.sub(" ", data)
        if self._line_ends_space:
            text = text.lstrip()
        self._append(text)

    def text(self) -> str:
        self._break()
        out: list[str] = []
        for line in self.lines:
            # Collapse runs of blank lines (quoted or not) to one.
            if not line.strip(" >") and out and not out[-1].strip(" >"):
                continue
            out.append(line)
        return "\n".join(out).strip("\n")


def _feed(source: str, builder: _TextBuilder) -> None:
    """Tokenize `source` into `builder`: each find() starts past the previous one."""
    size = len(source)
    pos = 0
    next_gt = -1  # the first ">" at or after the last "<" (kept: many "<" share one ">")
    while pos < size:
        lt = source.find("<", pos)
        if lt < 0:
            builder.data(source[pos:])
            return
        builder.data(source[pos:lt])
        if source.startswith("<!--", lt):
            end = source.find("-->", lt + 4)
            if end < 0:
                return  # an unclosed comment hides the rest, as in a browser
            pos = end + 3
            continue
        if next_gt <= lt:
            next_gt = source.find(">", lt + 1)
        if next_gt < 0:
            builder.data(source[lt:])  # no tag can close any more: the rest is text
            return
        tag = _TAG.match(source, lt + 1, next_gt)
        if tag is None:
            if source[lt + 1 : lt + 2] in ("!", "?"):  # a declaration or processing instruction
                pos = next_gt + 1
            else:
                builder.data("<")  # a lone "<" is text
                pos = lt + 1
            continue
        name = tag.group(2).lower()
        pos = next_gt + 1
        if tag.group(1):
            builder.end(name)
            continue
        closed = source[next_gt - 1] == "/"
        builder.start(name, closed=closed)
        if name in _RAW_TEXT and not closed:
            found = _RAW_TEXT_END[name].search(source, pos)
            end = size if found is None else found.start()
            builder.data(source[pos:end])  # dropped (or shown) as text, never as tags
            pos = end


def html_to_text(source: str) -> str:
    """Readable text from an HTML body; never raises on malformed markup."""
    builder = _TextBuilder()
    _feed(source, builder)
    return builder.text()
