"""The operations the command line calls, as a Protocol (T6): `services.api.Service` runs them
on this machine's database, `services.remote.RemoteService` on a team server over HTTP. The
command line's handlers take a `Facade`, so `mypy --strict` holds both to the same names,
signatures and answers.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from services.accounts import Caller, NewUser, PasswordSet, SessionInfo
    from services.automations import AutomationInfo
    from services.clock import Clock
    from services.domain.model import ConversationKind, NotificationSettings, PersonKind
    from services.email_log import EmailDetail
    from services.incoming.decide import IncomingResult
    from services.system_emails import ResetRequest, SystemEmailInfo
    from services.template_catalog import RenderedEmail
    from services.template_store import TemplateInfo
    from services.views import (
        BounceInfo,
        Changes,
        EmailLogEntry,
        ItemInfo,
        MessageRow,
        PersonInfo,
        PostResult,
    )

__all__ = [
    "AutomationsFacade",
    "CenterFacade",
    "Facade",
    "SystemEmailsFacade",
    "TemplatesFacade",
]


class AutomationsFacade(Protocol):
    async def list(self) -> list[AutomationInfo]: ...
    async def get(self, automation_id: int) -> AutomationInfo: ...
    async def enable(self, automation_id: int) -> AutomationInfo: ...
    async def disable(self, automation_id: int) -> AutomationInfo: ...
    async def set_enabled(self, automation_id: int, *, enabled: bool) -> AutomationInfo: ...
    async def delete(self, automation_id: int) -> None: ...
    async def set_text(self, automation_id: int, text: str) -> AutomationInfo: ...
    def preview_text(self, text: str, *, critical: bool = False) -> str: ...


class TemplatesFacade(Protocol):
    async def list(self) -> list[TemplateInfo]: ...
    async def get(self, name: str) -> TemplateInfo: ...
    async def save(
        self,
        *,
        name: str,
        subject: str | None = None,
        body_text: str | None = None,
        body_html: str | None = None,
        kind: str = "automation",
        description: str | None = None,
    ) -> TemplateInfo: ...
    async def preview(
        self,
        name: str,
        *,
        subject: str | None = None,
        body_text: str | None = None,
        body_html: str | None = None,
        intro: str | None = None,
    ) -> RenderedEmail: ...
    async def test_send(self, name: str, *, to: str) -> int: ...
    async def delete(self, name: str) -> None: ...


class SystemEmailsFacade(Protocol):
    async def list(self) -> list[SystemEmailInfo]: ...
    async def enable(self, name: str) -> SystemEmailInfo: ...
    async def disable(self, name: str) -> SystemEmailInfo: ...
    async def set_enabled(self, name: str, *, enabled: bool) -> SystemEmailInfo: ...
    # None: the server does not say whether the account exists (the same answer either way).
    async def reset_password(self, email: str) -> ResetRequest | None: ...


class CenterFacade(Protocol):
    """What the desktop asks of the workspace's authority (T5): the Messaging Center (M1-M8,
    C1's chat settings), other users' notification settings (M7), creating and changing
    items, and who is in the customer chat now (C2). A workspace of one's own is its
    `services.api.Service`; in a team it is the server (`services.remote.RemoteService`): the
    replica holds none of this, and its numbers and emails are the server's."""

    @property
    def clock(self) -> Clock: ...
    @property
    def automations(self) -> AutomationsFacade: ...
    @property
    def templates(self) -> TemplatesFacade: ...
    @property
    def system_emails(self) -> SystemEmailsFacade: ...

    async def set_config(self, key: str, value: str) -> Changes: ...
    async def settings(self) -> dict[str, str]: ...

    async def people(self, *, kind: PersonKind | None = None) -> list[PersonInfo]: ...
    async def set_notification_settings(
        self, *, person_id: int, settings: NotificationSettings, acting_id: int | None = None
    ) -> PersonInfo: ...
    async def add_user(
        self, *, acting: Caller, email: str, name: str, admin: bool = False
    ) -> NewUser: ...
    async def sessions(self, *, acting: Caller, email: str) -> list[SessionInfo]: ...
    async def end_session(self, *, acting: Caller, session_id: int) -> SessionInfo: ...

    async def create_item(
        self, *, title: str, followers: Iterable[str] = (), requester: str | None = None
    ) -> ItemInfo: ...
    async def set_item_status(
        self, *, number: int, status: str, acting: str | None = None
    ) -> ItemInfo: ...
    async def assign_item(self, *, number: int, email: str | None) -> ItemInfo: ...

    async def emails(
        self,
        *,
        status: str | None = None,
        direction: str | None = None,
        search: str | None = None,
        limit: int = 500,
        offset: int = 0,
    ) -> list[EmailLogEntry]: ...
    async def email_detail(self, email_id: int) -> EmailDetail: ...
    async def bounced_addresses(self, *, blocked_only: bool = False) -> list[BounceInfo]: ...
    async def clear_bounces(self, *, address: str, acting: str) -> Changes: ...

    async def customers_in_chat(self, person_ids: Iterable[int]) -> frozenset[int]: ...


class Facade(CenterFacade, Protocol):
    """What `deskbell COMMAND` may call, wherever the workspace lives (the desktop's part,
    `CenterFacade`, and the rest)."""

    @property
    def notice(self) -> str | None: ...
    async def close(self) -> None: ...

    # the mail servers' passwords
    async def store_smtp_password(self, password: str) -> None: ...
    async def test_smtp(self) -> str: ...
    async def store_imap_password(self, password: str) -> None: ...
    async def test_imap(self) -> str: ...

    # people and accounts
    async def add_person(
        self,
        *,
        email: str,
        name: str,
        kind: PersonKind = ...,
        is_admin: bool | None = None,
    ) -> PersonInfo: ...
    async def person(self, email: str) -> PersonInfo: ...
    async def set_password(self, *, acting: Caller, email: str, password: str) -> PasswordSet: ...

    # items and messages
    async def item(self, number: int) -> ItemInfo: ...
    async def item_messages(self, number: int) -> list[tuple[ConversationKind, MessageRow]]: ...
    async def follow(self, *, number: int, email: str) -> Changes: ...
    async def unfollow(self, *, number: int, email: str) -> Changes: ...
    async def close_item(self, *, number: int, acting: str | None = None) -> ItemInfo: ...
    async def post(
        self,
        *,
        author: str,
        text: str,
        conversation_id: int | None = None,
        item_number: int | None = None,
        kind: ConversationKind | None = None,
    ) -> PostResult: ...
    async def mark_item_seen(self, *, number: int, email: str) -> Changes: ...

    # mail
    async def receive_mail(self, raw: bytes) -> IncomingResult: ...
