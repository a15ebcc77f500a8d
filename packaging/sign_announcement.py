"""Make and sign Deskbell's update announcement (services/updates.py reads it).

    # once: a key pair; keep the private key offline (or in the release secrets), commit nothing
    python packaging/sign_announcement.py keygen --out ~/deskbell-updates.pem
    # each release: the announcement, signed, to publish at the update URL
    python packaging/sign_announcement.py sign --key ~/deskbell-updates.pem --version 0.2.0 \
        --url https://deskbell.app/download/0.2.0 --installer dist/Deskbell-0.2.0-setup.exe \
        > latest.json
    # check a published one against the key the app ships
    python packaging/sign_announcement.py verify latest.json

`keygen` prints the `PUBLIC_KEY = ...` line for services/updates.py. `sign` takes the SHA-256
from `--installer` (or `--sha256`). The private key may also come from the environment
(`--key-env DESKBELL_UPDATE_KEY`, a PEM), as in the release workflow. Signing uses
`cryptography` (in the dev extras), a vetted implementation for the one step that handles the
secret; the app verifies with its own small RFC 8032 verifier.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import sys
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from services.updates import PUBLIC_KEY, read_announcement  # noqa: E402


def keygen(out: Path) -> bytes:
    """Write a new private key (PEM, owner-only) to `out`; return the public key."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def load_key(pem: bytes) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise SystemExit("sign_announcement: the key is not an Ed25519 private key")
    return key


def sign(key: Ed25519PrivateKey, *, version: str, url: str, sha256: str) -> str:
    """The announcement document (JSON text) for this release."""
    payload = json.dumps({"version": version, "url": url, "sha256": sha256.lower()})
    signature = key.sign(payload.encode("utf-8"))
    return json.dumps(
        {"payload": payload, "signature": base64.b64encode(signature).decode("ascii")}, indent=1
    )


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    k = sub.add_parser("keygen", help="make a key pair")
    k.add_argument("--out", type=Path, required=True, help="where to write the private key")
    s = sub.add_parser("sign", help="print the signed announcement")
    where = s.add_mutually_exclusive_group(required=True)
    where.add_argument("--key", type=Path, help="the private key (PEM)")
    where.add_argument("--key-env", help="an environment variable holding the PEM")
    s.add_argument("--version", required=True)
    s.add_argument("--url", required=True, help="the download page (https)")
    digest = s.add_mutually_exclusive_group(required=True)
    digest.add_argument("--installer", type=Path, help="the installer, to hash")
    digest.add_argument("--sha256", help="its SHA-256, in hex")
    v = sub.add_parser("verify", help="check a document against the key the app ships")
    v.add_argument("document", type=Path)
    args = parser.parse_args(argv)

    if args.command == "keygen":
        public = keygen(args.out)
        print(f"private key: {args.out} (keep it secret; it is not needed in the repository)")
        print("put this line in services/updates.py:")
        print(f'PUBLIC_KEY = bytes.fromhex("{public.hex()}")')
        return 0
    if args.command == "sign":
        pem = args.key.read_bytes() if args.key else os.environb[args.key_env.encode()]
        sha256 = args.sha256 or sha256_of(args.installer)
        document = sign(load_key(pem), version=args.version, url=args.url, sha256=sha256)
        # Refuse to print a document the app would refuse (a wrong key, a bad field).
        read_announcement(document.encode(), public_key=_public(load_key(pem)))
        print(document)
        if _public(load_key(pem)) != PUBLIC_KEY:
            print(
                "sign_announcement: warning: this key is not the one the app ships", file=sys.stderr
            )
        return 0
    announcement = read_announcement(args.document.read_bytes())
    print(f"ok: version {announcement.version}, {announcement.url}, sha256 {announcement.sha256}")
    return 0


def _public(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


if __name__ == "__main__":
    sys.exit(main())
