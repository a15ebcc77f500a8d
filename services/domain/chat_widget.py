"""The widget snippet (C1): the tag a help desk puts on its own site to offer the chat. One
text for the server's chat settings and the Messaging Center's Chat section."""

from __future__ import annotations

import html

__all__ = ["widget_snippet"]


def widget_snippet(public_url: str) -> str:
    """The `<script>` tag for the server at `public_url`; empty without a public address (a
    tag without one could not work)."""
    root = public_url.strip().rstrip("/")
    if not root:
        return ""
    return f'<script src="{html.escape(root)}/chat/widget.js" async></script>'
