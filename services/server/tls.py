"""TLS served directly (`deskbell serve --tls-cert FILE --tls-key FILE`): the server's
context, TLS 1.2 or newer, loaded before anything starts so a missing, unreadable or
mismatched file is one clear line and nothing half-started."""

from __future__ import annotations

import ssl
from pathlib import Path

from services.errors import InputError

__all__ = ["server_context"]


def _readable(path: Path, what: str) -> None:
    try:
        with path.open("rb") as file:
            file.read(1)
    except OSError as exc:
        raise InputError(f"cannot read the TLS {what} {path}: {exc.strerror or exc}") from None


def server_context(*, certfile: Path, keyfile: Path) -> ssl.SSLContext:
    """The context serving `certfile` (PEM, the chain after it) with `keyfile` (PEM, no
    passphrase: the server starts unattended); InputError saying which file is wrong."""
    _readable(certfile, "certificate")
    _readable(keyfile, "key")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        # An encrypted key gets an empty passphrase and fails here, never a prompt.
        context.load_cert_chain(certfile, keyfile, password=b"")
    except ssl.SSLError as exc:
        if exc.reason == "KEY_VALUES_MISMATCH":
            raise InputError(
                f"the TLS key {keyfile} does not belong to the certificate {certfile}"
            ) from None
        if not _is_certificate(certfile):
            raise InputError(f"the TLS certificate {certfile} is not a PEM certificate") from None
        raise InputError(
            f"the TLS key {keyfile} is not a PEM private key without a passphrase"
        ) from None
    return context


def _is_certificate(path: Path) -> bool:
    try:
        ssl.create_default_context(cafile=str(path))
    except ssl.SSLError:
        return False
    return True
