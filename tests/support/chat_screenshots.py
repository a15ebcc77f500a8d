"""Screenshots of the customer chat for docs/screenshots/: a phone and a desktop, light and dark.

    .venv/bin/python -m tests.support.chat_screenshots [--out docs/screenshots]

The same set-up as the browser tests (tests/support/chat_world.py): a real server on loopback,
the customer in through the link in a real email, a short conversation with an agent's
replies, a message with markup in it (shown as text), the page in a headless Chromium. Writes
`chat-<phone|desktop>-<light|dark>.png`.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path

from services.api import ConversationKind
from tests.support.browser import SCREENS, chromium, chromium_missing
from tests.support.chat_world import ANN, CARL, ChatWorld, chat_world
from tests.support.smtpd import SmtpServer

__all__ = ["take_screenshots"]

ROOT = Path(__file__).resolve().parents[2]
READY = "document.body.dataset.ready === 'true'"

_CUSTOMER_SAYS = (
    "Hi, the printer on the second floor has started smoking again. "
    "I switched it off at the wall. Is it safe to use the one by the kitchen?"
)
_AGENT_SAYS = (
    "Thanks Carl. Yes, the kitchen printer is fine. Please leave the other one off, "
    "we will bring a replacement this afternoon.",
    "A technician is on the way: <b>Dana</b> from facilities. She will be there by 3 pm.",
)


async def _conversation(world: ChatWorld) -> tuple[str, int]:
    link, conversation_id = await world.first_link()
    await world.service.post(
        author=CARL, text=_CUSTOMER_SAYS, item_number=1, kind=ConversationKind.EXTERNAL
    )
    for text in _AGENT_SAYS:
        await world.service.post(
            author=ANN, text=text, item_number=1, kind=ConversationKind.EXTERNAL
        )
    return link, conversation_id


async def take_screenshots(out: Path) -> list[Path]:
    """Every screen in both colour schemes; the files written."""
    reason = chromium_missing()
    if reason is not None:
        raise SystemExit(reason)
    written: list[Path] = []
    with tempfile.TemporaryDirectory(prefix="deskbell-shots-") as tmp, SmtpServer() as smtp:
        async with chat_world(Path(tmp) / "workspace", smtp) as world, chromium() as browser:
            await world.service.set_config("chat.title", "Acme Help Desk")
            link, _ = await _conversation(world)
            await browser.open(link)
            await browser.wait_until(READY, what="the chat page live")
            for screen in SCREENS:
                for scheme in ("light", "dark"):
                    await browser.show_as(screen, scheme)
                    # A phone shows the end of the page: the newest message above the
                    # composer; a desktop the page from its top.
                    await browser.script(
                        "window.scrollTo(0, arguments[0] ? "
                        "document.documentElement.scrollHeight : 0)",
                        screen.mobile,
                    )
                    await browser.settle()
                    path = out / f"chat-{screen.name}-{scheme}.png"
                    await browser.screenshot(path)
                    written.append(path)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    args = parser.parse_args()
    for path in asyncio.run(take_screenshots(args.out)):
        print(path)


if __name__ == "__main__":
    main()
