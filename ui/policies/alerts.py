"""What a new message for me sets off (N1, N4, N5, N6, R5): a ping, a notification, nothing.

The window feeds it what it knows (who I am, whether the conversation is on screen, whether do
not disturb holds) and carries out the answer; the 2 s ping throttle is the `Pinger`'s.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from services.api import MessageRow, PersonInfo
from ui.format import first_words

__all__ = ["APP_NAME", "Alert", "AlertPolicy", "notice_title"]

APP_NAME = "Deskbell"


@dataclass(frozen=True, slots=True)
class Alert:
    """What to do about one message: `notify` shows `title`/`body` under `conversation_id`."""

    conversation_id: int
    ping: bool
    notify: bool
    title: str
    body: str


def notice_title(author: str, conversation: str) -> str:
    """A direct conversation's title is the other person: then the author's name says it all."""
    return author if conversation == author else f"{author} · {conversation}"


class AlertPolicy:
    """Decides alerts and remembers which conversations have a notification up."""

    def __init__(self) -> None:
        self._shown: set[int] = set()

    def on_message(
        self,
        message: MessageRow,
        *,
        me: PersonInfo,
        conversation: str,
        on_screen: bool,
        dnd: bool,
    ) -> Alert | None:
        """None: nothing at all (my own words, N4; or it is being looked at, S1 decides)."""
        if message.author is not None and message.author.id == me.id:
            return None
        if on_screen:
            return None
        author = message.author.name if message.author else APP_NAME
        return Alert(
            conversation_id=message.conversation_id,
            ping=not dnd and me.settings.sound,
            notify=not dnd and me.settings.in_app,
            title=notice_title(author, conversation),
            body=first_words(message.text),
        )

    def shown(self, conversation_id: int) -> None:
        self._shown.add(conversation_id)

    def withdrawn(self, conversation_id: int) -> None:
        self._shown.discard(conversation_id)

    def showing(self) -> list[int]:
        """Conversations with a notification up."""
        return sorted(self._shown)

    def seen_elsewhere(self, by_conversation: Mapping[int, int]) -> list[int]:
        """S4: conversations with a notification up and nothing unseen left: withdraw them."""
        return [c for c in sorted(self._shown) if by_conversation.get(c, 0) == 0]
