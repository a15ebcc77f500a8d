"""Signing the desktop in to a team server and out again (T4), and the forgotten password.

`sign_in_to_team` gives the account and its token, or one error a person can act on, each its own
class so a dialog can say what to do next:

- `InputError`: the address is not a server address (or plain http to another machine);
- `ServerUnreachableError`: nothing answers there (refused, no such host, timed out);
- `UntrustedCertificateError`: the server's certificate is not trusted here, with its SHA-256
  fingerprint (`.fingerprint`) for the person to compare and, if it is theirs, to trust: sign
  in again with `pin_sha256` set to it;
- `TooManyAttemptsError` (an `AuthenticationError`): too many failures, `.retry_at` says when;
- `AuthenticationError`: a wrong email or password (the server does not say which);
- `ServerError`: something that is not a Deskbell server answered.

A forgotten password: `request_password_reset` has the server email a one-time code (the
same answer whether or not the address has an account), `reset_password` sets a new password
with it. `end_team_session` ends the session on the server and says, if it could not be told, what
that means; the caller forgets the token either way.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.errors import AuthenticationError, DeskbellError
from services.server_client import DEFAULT_TIMEOUT_S, ServerClient, normalize_server_url, path
from services.team.account import TeamAccount

__all__ = [
    "NewSignIn",
    "end_team_session",
    "request_password_reset",
    "set_password_with_code",
    "sign_in_to_team",
]


@dataclass(frozen=True, slots=True)
class NewSignIn:
    account: TeamAccount
    token: str  # keep it in the keyring (AccountStore.save), nowhere else


async def sign_in_to_team(
    *,
    server_url: str,
    email: str,
    password: str,
    device: str,
    pin_sha256: str | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> NewSignIn:
    """A new device session for this desktop; the errors are listed in the module's doc."""
    url = normalize_server_url(server_url)
    async with ServerClient(url, pin_sha256=pin_sha256, timeout_s=timeout_s) as client:
        who = await client.sign_in(email=email.strip(), password=password, device=device)
        token = client.token
        if who.customer or token is None:  # customers have no password; never met
            raise AuthenticationError("this account cannot sign in to the desktop app")
    account = TeamAccount(
        server_url=url,
        email=who.email,
        person_id=who.person_id,
        name=who.name,
        pin_sha256=pin_sha256,
    )
    return NewSignIn(account=account, token=token)


async def request_password_reset(
    *, server_url: str, email: str, pin_sha256: str | None = None
) -> None:
    """Ask the server to email a password reset code to `email`."""
    async with ServerClient(server_url, pin_sha256=pin_sha256) as client:
        await client.call("POST", path("password-resets"), json_body={"email": email.strip()})


async def set_password_with_code(
    *, server_url: str, email: str, code: str, password: str, pin_sha256: str | None = None
) -> None:
    """Set a new password with the emailed code; every session of the person ends. A wrong
    or spent code is an AuthenticationError and counts as a failed sign-in; a password the
    server refuses (too short, the address itself) an InputError that says why."""
    async with ServerClient(server_url, pin_sha256=pin_sha256) as client:
        await client.call(
            "POST",
            path("password-resets", "confirm"),
            json_body={"email": email.strip(), "code": code.strip(), "password": password},
        )


async def end_team_session(client: ServerClient) -> str | None:
    """End the client's session on the server. None when done (or already ended there);
    otherwise the sentence to say: the session stays in the server's list until someone ends
    it there. The caller forgets the token in both cases."""
    try:
        await client.sign_out()
    except AuthenticationError:
        return None  # already ended there (revoked, a new password)
    except DeskbellError as exc:
        return (
            f"the server could not be told ({exc}), so the session stays in its list "
            "until you or an administrator end it there"
        )
    return None
