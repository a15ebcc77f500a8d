"""The window's first-page reads, written against a statement runner (N2, N3, E10, R5).

Who is signed in, the unseen counts, a page of each inbox, the open conversation and its
messages: the rows they read and how rows become views. Each function takes a `Reads`, which
runs a statement by its key: on the service's database worker it is the SQLAlchemy Core
statement (`services.store.window_statements`, inside a `Tx`); before the service is open, the
desktop's first window runs the very same SQL, compiled ahead from those statements, on plain
`sqlite3` (`services.first_window`). This module imports no SQLAlchemy, so the first window
needs none.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from services.domain.model import (
    ConversationKind,
    DeliveryState,
    EmailStatus,
    NotificationSettings,
    PersonKind,
)
from services.domain.model import Person as DomainPerson
from services.domain.recipients import may_see
from services.errors import NotFoundError
from services.views import (
    ConversationInfo,
    ConversationRow,
    EmailedEntry,
    MessageRow,
    MessageStatus,
    PersonInfo,
    SeenEntry,
    UnseenCounts,
)

__all__ = [
    "NEVER_DELAY",
    "PERSON_WIDTH",
    "Reads",
    "audience",
    "conversation_info",
    "effective_delay",
    "members",
    "message_rows",
    "messages",
    "open_conversations",
    "open_page_key",
    "person_by_email",
    "person_by_id",
    "person_info_from_row",
    "settings_from_row",
    "unseen_counts",
]


class Reads(Protocol):
    """Runs one of the window's statements by key (`window_statements.KEYS`): plain tuples,
    typed as SQLAlchemy's result processors make them (aware UTC datetimes, bools, JSON)."""

    def run(self, key: str, params: Mapping[str, Any]) -> list[Any]: ...


# A person's stored delay: NULL follows the workspace's default, 0 means "never email me".
NEVER_DELAY = 0
# The columns of a person snapshot (`queries.PERSON_COLUMNS`): id, email, name, kind, is_admin,
# then the notification settings from the sixth on.
PERSON_WIDTH = 11
_SETTINGS_AT = 5
_CHUNK = 500  # ids per IN list: under every engine's bound-parameter limit
# "Before no message": past every id, a team replica's provisional ones too (services/team).
_NO_LIMIT = 2**63 - 1


def open_page_key(kinds: Iterable[str], *, by_ids: bool) -> str:
    """The key of the Open Conversations statement for one set of conversation kinds."""
    return f"open:{','.join(sorted(kinds))}:{'ids' if by_ids else 'page'}"


# --- people (R5, N6) ---------------------------------------------------------------------------


def effective_delay(stored: int | None, default_delay_s: int) -> int | None:
    """A person's delay before an email: their own, the workspace's (NULL) or none (0)."""
    if stored is None:
        return default_delay_s
    return None if stored == NEVER_DELAY else stored


def settings_from_row(row: Sequence[Any], *, default_delay_s: int) -> NotificationSettings:
    """R5, N6, E1: the settings part of a `PERSON_COLUMNS` row (from its sixth column on)."""
    in_app, email, sound, delay_s, dnd_until, dnd_weekly = row[_SETTINGS_AT : _SETTINGS_AT + 6]
    return NotificationSettings(
        in_app=bool(in_app),
        email=bool(email),
        sound=bool(sound),
        delay_s=effective_delay(delay_s, default_delay_s),
        dnd_until=dnd_until,
        dnd_weekly=tuple((int(w[0]), int(w[1]), int(w[2])) for w in dnd_weekly or ()),
    )


def person_info_from_row(row: Sequence[Any], *, default_delay_s: int) -> PersonInfo:
    """A person as the service hands it out, from one `PERSON_COLUMNS` row."""
    return PersonInfo(
        id=row[0],
        email=row[1],
        name=row[2],
        kind=PersonKind(row[3]),
        is_admin=bool(row[4]),
        settings=settings_from_row(row, default_delay_s=default_delay_s),
    )


def person_by_email(r: Reads, email: str, *, default_delay_s: int) -> PersonInfo:
    rows = r.run("person_by_email", {"email": email.strip().lower()})
    if not rows:
        raise NotFoundError(f"no person with the address {email}")
    return person_info_from_row(rows[0], default_delay_s=default_delay_s)


def person_by_id(r: Reads, person_id: int, *, default_delay_s: int) -> PersonInfo:
    rows = r.run("person_by_id", {"person_id": person_id})
    if not rows:
        raise NotFoundError(f"no person {person_id}")
    return person_info_from_row(rows[0], default_delay_s=default_delay_s)


def members(rows: Iterable[Sequence[Any]], at: int, default_delay_s: int) -> tuple[PersonInfo, ...]:
    """The persons whose `PERSON_COLUMNS` start at column `at` of each row (outer-joined:
    a row without one is skipped)."""
    return tuple(
        person_info_from_row(row[at : at + PERSON_WIDTH], default_delay_s=default_delay_s)
        for row in rows
        if row[at] is not None
    )


# --- counts and the Open Conversations list (N2, N3) -------------------------------------------


def unseen_counts(r: Reads, person_id: int) -> UnseenCounts:
    """N3: one query; the bubble, the tabs and the rows all read from it."""
    by_conv: dict[int, int] = {}
    internal = external = 0
    for conv_id, kind, n in r.run("unseen", {"person_id": person_id}):
        by_conv[conv_id] = n
        if kind == ConversationKind.EXTERNAL:
            external += n
        else:
            internal += n
    return UnseenCounts(
        total=internal + external, internal=internal, external=external, by_conversation=by_conv
    )


def open_conversations(
    r: Reads,
    *,
    person_id: int,
    inbox: Sequence[ConversationKind],
    limit: int = 200,
    offset: int = 0,
    conversation_ids: Sequence[int] | None = None,
) -> list[ConversationRow]:
    """N2: the person's conversations with activity (a message, or a new item's internal
    conversation, which shows from its creation on), most recent activity first."""
    kinds = [k.value for k in inbox]
    if conversation_ids is not None:
        if not conversation_ids:
            return []
        rows = r.run(
            open_page_key(kinds, by_ids=True),
            {"person_id": person_id, "ids": list(conversation_ids)},
        )
    else:
        rows = r.run(
            open_page_key(kinds, by_ids=False),
            {"person_id": person_id, "limit": limit, "offset": offset},
        )
    directs = [row[0] for row in rows if row[1] == ConversationKind.DIRECT]
    direct_titles = (
        dict(r.run("direct_names", {"ids": directs, "person_id": person_id})) if directs else {}
    )
    return [
        ConversationRow(
            id=cid,
            kind=ConversationKind(kind),
            item_number=number,
            title=title if title is not None else direct_titles.get(cid, "Direct"),
            last_text=(text or "")[:300],
            # A message without an author is an automation's; no message, no author.
            last_author=author_name or ("Deskbell" if text is not None else ""),
            last_at=last_at,
            unseen=n,
        )
        for cid, kind, number, title, last_at, text, author_name, n in rows
    ]


# --- the open conversation (E10) ----------------------------------------------------------------


def audience(r: Reads, conversation_id: int, *, default_delay_s: int) -> tuple[PersonInfo, ...]:
    """Who a message in the conversation may reach before R1-R4: followers or members."""
    rows = r.run("audience", {"conversation_id": conversation_id})
    return members(rows, 1, default_delay_s)


def takes_part(r: Reads, *, person_id: int, conversation_id: int) -> bool:
    """Whether the person takes part in the conversation (`queries.visible_conversations_clause`):
    what a customer may read, R2."""
    return bool(r.run("takes_part", {"b_conversation": conversation_id, "b_person": person_id}))


def conversation_info(
    r: Reads, conversation_id: int, *, default_delay_s: int, viewer_id: int | None = None
) -> ConversationInfo:
    """`viewer_id`: as that person may see it; a customer only the external conversations
    they take part in (R2), any other answering as a missing one."""
    rows = r.run("conversation_info", {"conversation_id": conversation_id})
    hidden = (
        viewer_id is not None
        and person_by_id(r, viewer_id, default_delay_s=0).kind is PersonKind.CUSTOMER
        and not takes_part(r, person_id=viewer_id, conversation_id=conversation_id)
    )
    if not rows or hidden:
        raise NotFoundError(f"no conversation {conversation_id}")
    cid, kind, number, title = rows[0]
    conversation_kind = ConversationKind(kind)
    found = audience(r, cid, default_delay_s=default_delay_s)
    if title is None:
        title = " & ".join(m.name for m in found)
    if conversation_kind is ConversationKind.INTERNAL:
        # R2: an internal conversation is read by users only.
        found = tuple(m for m in found if m.kind is PersonKind.USER)
    return ConversationInfo(
        id=cid, kind=conversation_kind, item_number=number, title=title, members=found
    )


_MessageRow = tuple[int, int, int | None, str, datetime, str]


def messages(
    r: Reads,
    *,
    conversation_id: int,
    viewer_id: int,
    default_delay_s: int,
    before_id: int | None = None,
    limit: int = 200,
    message_ids: Sequence[int] | None = None,
) -> list[MessageRow]:
    """A page of a conversation, oldest first, with each message's status (E10)."""
    found = r.run("viewer", {"conversation_id": conversation_id, "viewer_id": viewer_id})
    missing = NotFoundError("no such conversation or person")
    if not found or found[0][4] is None:
        raise missing
    pid, email, name, kind, conversation_kind = found[0]
    viewer = DomainPerson(id=pid, email=email, name=name, kind=PersonKind(kind))
    # R2: a customer reads only the external conversations they take part in; any other
    # answers as a missing one, so its existence shows neither.
    if not may_see(viewer, ConversationKind(str(conversation_kind))) or (
        not viewer.is_user and not takes_part(r, person_id=pid, conversation_id=conversation_id)
    ):
        raise missing
    if message_ids is not None:
        rows = (
            r.run("messages_by_ids", {"conversation_id": conversation_id, "ids": list(message_ids)})
            if message_ids
            else []
        )
    else:
        rows = r.run(
            "messages_page",
            {
                "conversation_id": conversation_id,
                "before_id": _NO_LIMIT if before_id is None else before_id,
                "limit": limit,
            },
        )
    rows.sort(key=lambda row: row[0])
    return message_rows(r, rows, viewer_id, default_delay_s)


def message_rows(
    r: Reads, rows: Sequence[_MessageRow], viewer_id: int, default_delay_s: int
) -> list[MessageRow]:
    """Messages (id, conversation, author id, text, time, source) as the window shows them,
    with their authors and each one's status: seen by, emailed to, waiting for (E10)."""
    ids = [row[0] for row in rows]
    author_ids = sorted({row[2] for row in rows if row[2]})
    authors: dict[int, PersonInfo] = {}
    for start in range(0, len(author_ids), _CHUNK):
        for row in r.run("persons_by_ids", {"ids": author_ids[start : start + _CHUNK]}):
            person = person_info_from_row(row, default_delay_s=default_delay_s)
            authors[person.id] = person
    seen: dict[int, list[SeenEntry]] = {}
    emailed: dict[int, list[EmailedEntry]] = {}
    waiting: dict[int, list[str]] = {}
    unseen_by_viewer: set[int] = set()
    for start in range(0, len(ids), _CHUNK):
        for (
            mid,
            rid,
            seen_at,
            state,
            reason,
            name,
            email,
            e_status,
            e_sent,
            e_reply,
            e_next,
            e_reason,
        ) in r.run("message_status", {"ids": ids[start : start + _CHUNK]}):
            if rid == viewer_id and seen_at is None:
                unseen_by_viewer.add(mid)
            if seen_at is not None:
                seen.setdefault(mid, []).append(SeenEntry(name=name, email=email, at=seen_at))
            if e_status is not None:
                detail = e_reason or e_reply
                if e_status == EmailStatus.RETRYING and e_next is not None:
                    detail = f"{e_reply or 'not reached'}; next try {e_next:%H:%M:%S} UTC"
                emailed.setdefault(mid, []).append(
                    EmailedEntry(name=name, email=email, status=e_status, at=e_sent, detail=detail)
                )
            elif state == DeliveryState.SUPPRESSED and seen_at is None:
                emailed.setdefault(mid, []).append(
                    EmailedEntry(
                        name=name, email=email, status="suppressed", at=None, detail=reason
                    )
                )
            elif seen_at is None:
                waiting.setdefault(mid, []).append(name)
    return [
        MessageRow(
            id=mid,
            conversation_id=conv_id,
            author=authors.get(author_id) if author_id else None,
            text=text,
            created_at=created_at,
            source=source,
            status=MessageStatus(
                sent_at=created_at,
                seen=tuple(seen.get(mid, ())),
                emailed=tuple(emailed.get(mid, ())),
                waiting=tuple(waiting.get(mid, ())),
            ),
            unseen_by_viewer=mid in unseen_by_viewer,
        )
        for mid, conv_id, author_id, text, created_at, source in rows
    ]
