"""Who receives a message (SPEC R1–R4), as pure functions over plain data."""

from __future__ import annotations

from collections.abc import Iterable

from services.domain.model import ConversationKind, Person

__all__ = ["may_see", "recipients"]


def may_see(person: Person, kind: ConversationKind) -> bool:
    """R2/R3: users see every conversation; customers only external ones."""
    return person.is_user or not kind.users_only


def recipients(
    *, kind: ConversationKind, author_id: int | None, audience: Iterable[Person]
) -> list[Person]:
    """R1–R4: the audience (an item's followers, or a direct conversation's participants)
    minus the author, minus anyone who may not see this kind of conversation.

    Deduplicated by person id, in the audience's order, so callers get stable results.
    `author_id` is None for messages inserted by automations or system events.
    """
    seen_ids: set[int] = set()
    result: list[Person] = []
    for person in audience:
        if person.id in seen_ids:
            continue
        seen_ids.add(person.id)
        if person.id == author_id or not may_see(person, kind):
            continue
        result.append(person)
    return result
