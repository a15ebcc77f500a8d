"""The command line's operations on a team server (T6): `RemoteService` has the names,
signatures and answers of `services.api.Service` that `services.facade.Facade` lists, and
makes each one HTTP call to the route of the API contract, decoding the answer into the same
dataclasses. The server's refusals come back as the same errors (`ServerClient`).

The signed-in user always acts: the server takes who acts from the token, never from a
field. An `acting`, `author` or `email` that names the person who acts must therefore be the
signed-in user (or left to them); naming someone else is refused here, before any call, with
one line that says who is signed in. `LOCAL_OPERATOR`, the command line's own caller, is the
signed-in user on a server.

It is also the desktop's `services.facade.CenterFacade` in a team (T5): the Messaging Center,
item creation and changes, and who is in the customer chat go to the server, never to the
replica.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeVar

from services.accounts import (
    Caller,
    NewUser,
    PasswordSet,
    SessionInfo,
    SignedIn,
)
from services.automations import AutomationInfo, preview_text
from services.clock import Clock, SystemClock
from services.domain.headers import normalize_address
from services.domain.model import ConversationKind, NotificationSettings, PersonKind
from services.email_log import EmailDetail
from services.errors import InputError, NotFoundError, PermissionDeniedError, quoted
from services.incoming.decide import IncomingResult
from services.server.codec import plain
from services.server_client import ServerClient, decode, path
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

__all__ = ["RemoteService"]

T = TypeVar("T")


class _Calls:
    """One decoded API call at a time, over the client the parts share."""

    def __init__(self, client: ServerClient) -> None:
        self.client = client

    async def call(
        self,
        tp: type[T],
        method: str,
        api_path: str,
        *,
        body: object = None,
        params: Mapping[str, str] | Sequence[tuple[str, str]] | None = None,
    ) -> T:
        answer = await self.client.call(method, api_path, json_body=body, params=params)
        return decode(tp, answer)


class RemoteAutomations(_Calls):
    async def list(self) -> list[AutomationInfo]:
        return await self.call(list[AutomationInfo], "GET", path("automations"))

    async def get(self, automation_id: int) -> AutomationInfo:
        return await self.call(AutomationInfo, "GET", path("automations", automation_id))

    async def enable(self, automation_id: int) -> AutomationInfo:
        return await self.call(AutomationInfo, "POST", path("automations", automation_id, "enable"))

    async def disable(self, automation_id: int) -> AutomationInfo:
        return await self.call(
            AutomationInfo, "POST", path("automations", automation_id, "disable")
        )

    async def delete(self, automation_id: int) -> None:
        await self.client.call("DELETE", path("automations", automation_id))

    async def set_text(self, automation_id: int, text: str) -> AutomationInfo:
        return await self.call(
            AutomationInfo, "PUT", path("automations", automation_id, "text"), body={"text": text}
        )

    async def set_enabled(self, automation_id: int, *, enabled: bool) -> AutomationInfo:
        return await (self.enable(automation_id) if enabled else self.disable(automation_id))

    def preview_text(self, text: str, *, critical: bool = False) -> str:
        """Rendered here with sample data, as the server would (no workspace data in it)."""
        return preview_text(text, critical=critical)


class RemoteTemplates(_Calls):
    async def list(self) -> list[TemplateInfo]:
        return await self.call(list[TemplateInfo], "GET", path("templates"))

    async def get(self, name: str) -> TemplateInfo:
        return await self.call(TemplateInfo, "GET", path("templates", name))

    async def save(
        self,
        *,
        name: str,
        subject: str | None = None,
        body_text: str | None = None,
        body_html: str | None = None,
        kind: str = "automation",
        description: str | None = None,
    ) -> TemplateInfo:
        body = {
            "subject": subject,
            "body_text": body_text,
            "body_html": body_html,
            "kind": kind,
            "description": description,
        }
        return await self.call(TemplateInfo, "PUT", path("templates", name), body=body)

    async def preview(
        self,
        name: str,
        *,
        subject: str | None = None,
        body_text: str | None = None,
        body_html: str | None = None,
        intro: str | None = None,
    ) -> RenderedEmail:
        body = {"subject": subject, "body_text": body_text, "body_html": body_html, "intro": intro}
        return await self.call(RenderedEmail, "POST", path("templates", name, "preview"), body=body)

    async def test_send(self, name: str, *, to: str) -> int:
        return await self.call(int, "POST", path("templates", name, "test"), body={"to": to})

    async def delete(self, name: str) -> None:
        await self.client.call("DELETE", path("templates", name))


class RemoteSystemEmails(_Calls):
    async def list(self) -> list[SystemEmailInfo]:
        return await self.call(list[SystemEmailInfo], "GET", path("system-emails"))

    async def enable(self, name: str) -> SystemEmailInfo:
        return await self.call(SystemEmailInfo, "POST", path("system-emails", name, "enable"))

    async def disable(self, name: str) -> SystemEmailInfo:
        return await self.call(SystemEmailInfo, "POST", path("system-emails", name, "disable"))

    async def set_enabled(self, name: str, *, enabled: bool) -> SystemEmailInfo:
        return await (self.enable(name) if enabled else self.disable(name))

    async def reset_password(self, email: str) -> ResetRequest | None:
        """The public reset route answers the same whether or not the account exists, so
        there may be no log entry to show."""
        answer = await self.client.call("POST", path("password-resets"), json_body={"email": email})
        if not isinstance(answer, dict) or "email_id" not in answer:
            return None  # the public answer, alike for every address
        return decode(ResetRequest, answer)


class RemoteService(_Calls):
    """The command line's operations, each one call to the server `client` is signed in to."""

    def __init__(self, client: ServerClient, *, clock: Clock | None = None) -> None:
        super().__init__(client)
        self.clock = clock if clock is not None else SystemClock()  # what times are shown against
        self._who: SignedIn | None = None
        self._automations = RemoteAutomations(client)
        self._templates = RemoteTemplates(client)
        self._system_emails = RemoteSystemEmails(client)

    @property
    def notice(self) -> str | None:
        return None  # the server's database notices are the server's log's

    @property
    def automations(self) -> RemoteAutomations:
        return self._automations

    @property
    def templates(self) -> RemoteTemplates:
        return self._templates

    @property
    def system_emails(self) -> RemoteSystemEmails:
        return self._system_emails

    async def close(self) -> None:
        await self.client.close()

    # --- who acts --------------------------------------------------------------------------

    async def who(self) -> SignedIn:
        """The signed-in user (asked once)."""
        if self._who is None:
            self._who = await self.client.me()
        return self._who

    async def _check_acting_email(self, email: str | None) -> None:
        if email is None:
            return
        me = await self.who()
        if normalize_address(email) != me.email:
            raise self._not_you(quoted(email))

    async def _check_caller(self, acting: Caller) -> None:
        if isinstance(acting, SignedIn) and acting.person_id != (await self.who()).person_id:
            raise self._not_you(quoted(acting.email))

    def _not_you(self, whom: str) -> PermissionDeniedError:
        assert self._who is not None
        return PermissionDeniedError(
            f"you are signed in to {self.client.base_url} as {self._who.email}, so you act as "
            f"yourself there, not as {whom}"
        )

    # --- settings and the mail servers' passwords -------------------------------------------

    async def set_config(self, key: str, value: str) -> Changes:
        return await self.call(Changes, "PUT", path("settings", key), body={"value": value})

    async def settings(self) -> dict[str, str]:
        return await self.call(dict[str, str], "GET", path("settings"))

    async def store_smtp_password(self, password: str) -> None:
        await self.client.call("PUT", path("smtp", "password"), json_body={"password": password})

    async def test_smtp(self) -> str:
        return await self.call(str, "POST", path("smtp", "test"))

    async def store_imap_password(self, password: str) -> None:
        await self.client.call("PUT", path("imap", "password"), json_body={"password": password})

    async def test_imap(self) -> str:
        return await self.call(str, "POST", path("imap", "test"))

    # --- people and accounts ---------------------------------------------------------------

    async def add_person(
        self,
        *,
        email: str,
        name: str,
        kind: PersonKind = PersonKind.USER,
        is_admin: bool | None = None,
    ) -> PersonInfo:
        body: dict[str, Any] = {"email": email, "name": name, "kind": kind.value}
        if is_admin is not None:
            body["is_admin"] = is_admin
        return await self.call(PersonInfo, "POST", path("people"), body=body)

    async def person(self, email: str) -> PersonInfo:
        return await self.call(PersonInfo, "GET", path("people", normalize_address(email)))

    async def people(self, *, kind: PersonKind | None = None) -> list[PersonInfo]:
        params = {} if kind is None else {"kind": kind.value}
        return await self.call(list[PersonInfo], "GET", path("people"), params=params)

    async def set_notification_settings(
        self, *, person_id: int, settings: NotificationSettings, acting_id: int | None = None
    ) -> PersonInfo:
        if acting_id is not None and acting_id != (await self.who()).person_id:
            raise self._not_you(f"person {acting_id}")
        # The routes name people by address; the command line knows the id of someone it
        # has just read, so this finds them in the list the caller may see.
        target = next((p for p in await self.people() if p.id == person_id), None)
        if target is None:
            raise NotFoundError(f"no person {person_id}")
        return await self.call(
            PersonInfo,
            "PUT",
            path("people", target.email, "notifications"),
            body=plain(settings),
        )

    async def add_user(
        self, *, acting: Caller, email: str, name: str, admin: bool = False
    ) -> NewUser:
        await self._check_caller(acting)
        body = {"email": email, "name": name, "admin": admin}
        return await self.call(NewUser, "POST", path("users"), body=body)

    async def set_password(self, *, acting: Caller, email: str, password: str) -> PasswordSet:
        await self._check_caller(acting)
        return await self.call(
            PasswordSet, "PUT", path("users", email, "password"), body={"password": password}
        )

    async def sessions(self, *, acting: Caller, email: str) -> list[SessionInfo]:
        await self._check_caller(acting)
        return await self.call(list[SessionInfo], "GET", path("users", email, "sessions"))

    async def end_session(self, *, acting: Caller, session_id: int) -> SessionInfo:
        await self._check_caller(acting)
        return await self.call(SessionInfo, "DELETE", path("sessions", session_id))

    # --- items and messages ----------------------------------------------------------------

    async def create_item(
        self, *, title: str, followers: Iterable[str] = (), requester: str | None = None
    ) -> ItemInfo:
        body = {"title": title, "followers": list(followers), "requester": requester}
        return await self.call(ItemInfo, "POST", path("items"), body=body)

    async def item(self, number: int) -> ItemInfo:
        return await self.call(ItemInfo, "GET", path("items", number))

    async def item_messages(self, number: int) -> list[tuple[ConversationKind, MessageRow]]:
        rows = await self.call(list[dict[str, Any]], "GET", path("items", number, "messages"))
        return [
            (
                decode(ConversationKind, row.get("conversation")),
                decode(MessageRow, row.get("message")),
            )
            for row in rows
        ]

    async def follow(self, *, number: int, email: str) -> Changes:
        return await self.call(Changes, "PUT", path("items", number, "followers", email))

    async def unfollow(self, *, number: int, email: str) -> Changes:
        return await self.call(Changes, "DELETE", path("items", number, "followers", email))

    async def set_item_status(
        self, *, number: int, status: str, acting: str | None = None
    ) -> ItemInfo:
        await self._check_acting_email(acting)
        return await self.call(
            ItemInfo, "PUT", path("items", number, "status"), body={"status": status}
        )

    async def close_item(self, *, number: int, acting: str | None = None) -> ItemInfo:
        await self._check_acting_email(acting)
        return await self.call(ItemInfo, "POST", path("items", number, "close"))

    async def assign_item(self, *, number: int, email: str | None) -> ItemInfo:
        return await self.call(
            ItemInfo, "PUT", path("items", number, "assignee"), body={"email": email}
        )

    async def post(
        self,
        *,
        author: str,
        text: str,
        conversation_id: int | None = None,
        item_number: int | None = None,
        kind: ConversationKind | None = None,
    ) -> PostResult:
        await self._check_acting_email(author)
        if item_number is not None:
            body = {"kind": kind.value if kind else None, "text": text}
            return await self.call(
                PostResult, "POST", path("items", item_number, "messages"), body=body
            )
        if conversation_id is None:
            raise InputError("say where to post: an item or a conversation")
        return await self.call(
            PostResult,
            "POST",
            path("conversations", conversation_id, "messages"),
            body={"text": text},
        )

    async def mark_item_seen(self, *, number: int, email: str) -> Changes:
        await self._check_acting_email(email)
        return await self.call(Changes, "POST", path("items", number, "seen"))

    # --- mail ------------------------------------------------------------------------------

    async def emails(
        self,
        *,
        status: str | None = None,
        direction: str | None = None,
        search: str | None = None,
        limit: int = 500,
        offset: int = 0,
    ) -> list[EmailLogEntry]:
        params = {"limit": str(limit), "offset": str(offset)}
        for name, value in (("status", status), ("direction", direction), ("search", search)):
            if value is not None:
                params[name] = value
        return await self.call(list[EmailLogEntry], "GET", path("emails"), params=params)

    async def email_detail(self, email_id: int) -> EmailDetail:
        return await self.call(EmailDetail, "GET", path("emails", email_id))

    async def bounced_addresses(self, *, blocked_only: bool = False) -> list[BounceInfo]:
        params = {"blocked_only": "true" if blocked_only else "false"}
        return await self.call(list[BounceInfo], "GET", path("bounces"), params=params)

    async def clear_bounces(self, *, address: str, acting: str) -> Changes:
        await self._check_acting_email(acting)
        return await self.call(Changes, "DELETE", path("bounces", address))

    async def receive_mail(self, raw: bytes) -> IncomingResult:
        answer = await self.client.call(
            "POST", path("mail"), data=raw, content_type="message/rfc822"
        )
        return decode(IncomingResult, answer)

    # --- the customer chat -----------------------------------------------------------------

    async def customers_in_chat(self, person_ids: Iterable[int]) -> frozenset[int]:
        """C2: presence lives on the server (a replica has none)."""
        params = [("ids", str(i)) for i in person_ids]
        if not params:
            return frozenset()
        found = await self.call(list[int], "GET", path("people", "in-chat"), params=params)
        return frozenset(found)
