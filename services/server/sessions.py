"""Accounts over HTTP (T4): signing in and out, one's sessions, passwords. A device session's
token is shown once, in the answer to the sign-in; `DELETE /api/v1/sessions/current` ends the
caller's own. The service decides "oneself, or an administrator"; the acting person is always
the token's."""

from __future__ import annotations

from dataclasses import dataclass

from services.accounts import NewSession, NewUser, PasswordSet, SessionInfo, SignedIn
from services.errors import InputError
from services.server.auth import Access
from services.server.endpoints import Call, Endpoints, Id, client_address, read_json

__all__ = ["client_address", "read_json", "routes"]

api = Endpoints()
routes = api.routes


@dataclass(frozen=True, slots=True)
class SignInForm:
    email: str
    password: str
    device: str


@dataclass(frozen=True, slots=True)
class NewUserForm:
    email: str
    name: str
    admin: bool = False


@dataclass(frozen=True, slots=True)
class PasswordForm:
    password: str


@dataclass(frozen=True, slots=True)
class PasswordChange:
    current: str
    new: str


@dataclass(frozen=True, slots=True)
class ResetRequestForm:
    email: str


@dataclass(frozen=True, slots=True)
class ResetConfirmation:
    email: str
    code: str
    password: str


@api("POST", "/sessions", summary="Sign in: a new device session", access=Access.PUBLIC, status=201)
async def sign_in(call: Call, body: SignInForm) -> NewSession:
    """The answer's token is shown once; only its hash is stored. Failed attempts are
    throttled per account and per address (429 with Retry-After)."""
    return await call.service.sign_in(
        email=body.email, password=body.password, device=body.device, address=call.address
    )


@api("DELETE", "/sessions/current", summary="Sign out", access=Access.CUSTOMER)
async def sign_out(call: Call) -> None:
    await call.service.sign_out(call.who)


@api("GET", "/me", summary="Who the token signs in", access=Access.CUSTOMER)
async def me(call: Call) -> SignedIn:
    return call.who


@api("GET", "/users/{email}/sessions", summary="A person's live sessions (own, or an admin)")
async def sessions(call: Call, email: str) -> list[SessionInfo]:
    return await call.service.sessions(acting=call.who, email=email)


@api("DELETE", "/sessions/{session_id}", summary="End a session (own, or an admin)")
async def end_session(call: Call, session_id: Id) -> SessionInfo:
    """Its token stops working at once."""
    return await call.service.end_session(acting=call.who, session_id=session_id)


@api("POST", "/users", summary="Add a user", access=Access.ADMIN, status=201)
async def add_user(call: Call, body: NewUserForm) -> NewUser:
    """The welcome email, if it is on, invites them to set a password."""
    return await call.service.add_user(
        acting=call.who, email=body.email, name=body.name, admin=body.admin
    )


@api("PUT", "/users/{email}/password", summary="Set a user's password", access=Access.ADMIN)
async def set_password(call: Call, email: str, body: PasswordForm) -> PasswordSet:
    """The user's other sessions end."""
    return await call.service.set_password(acting=call.who, email=email, password=body.password)


@api("POST", "/me/password", summary="Change one's own password")
async def change_password(call: Call, body: PasswordChange) -> PasswordSet:
    """A wrong current password counts as a failed sign-in; the other sessions end."""
    return await call.service.change_password(
        who=call.who, current=body.current, new=body.new, address=call.address
    )


@api(
    "POST",
    "/password-resets",
    summary="Email a password reset code",
    access=Access.PUBLIC,
    status=202,
)
async def request_reset(call: Call, body: ResetRequestForm) -> None:
    """The same answer whether or not a user has that address, so it tells no one who has
    an account."""
    try:
        await call.service.system_emails.reset_password(body.email)
    except InputError:  # no such user, a customer, not an address: say nothing
        return


@api(
    "POST",
    "/password-resets/confirm",
    summary="Set a new password with the emailed code",
    access=Access.PUBLIC,
)
async def confirm_reset(call: Call, body: ResetConfirmation) -> PasswordSet:
    """A wrong code counts as a failed sign-in; every session of the person ends."""
    return await call.service.reset_password(
        email=body.email, code=body.code, password=body.password, address=call.address
    )
