"""A real, private Dovecot IMAP server for tests (I1): own config, own port, own mail dir.

It never reads or touches the system configuration: everything lives in one temporary
directory, and the server runs in the foreground (`dovecot -F`) as a child process.
"""

from __future__ import annotations

import contextlib
import getpass
import imaplib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import psutil

__all__ = ["DOVECOT_BINARY", "DovecotServer", "dovecot_missing_reason", "free_port"]

DOVECOT_BINARY = Path("/usr/sbin/dovecot")


def dovecot_missing_reason() -> str | None:
    """Why a real Dovecot cannot run here, or None when it can."""
    if not DOVECOT_BINARY.exists():
        return "Dovecot is not installed (apt-get install dovecot-imapd provides /usr/sbin/dovecot)"
    if shutil.which("openssl") is None:
        return "the openssl command is missing (needed for the test certificate)"
    return None


def free_port() -> int:
    """A free loopback port (bind to port 0, read it, release it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _config(root: Path, *, port: int, tls_port: int, tls: bool) -> str:
    if os.getuid() == 0:
        # Dovecot refuses root for login and mail processes: use the package's own users for
        # its services and `nobody` for the mailbox (the temp dir is made traversable).
        users = "default_internal_user = dovecot\ndefault_login_user = dovenull\n"
        mail_uid, mail_gid = pwd.getpwnam("nobody").pw_uid, pwd.getpwnam("nobody").pw_gid
        chroot = ""
    else:
        # One unprivileged user for every process, without chroot (that needs root).
        user = getpass.getuser()
        users = f"default_internal_user = {user}\ndefault_login_user = {user}\n"
        mail_uid, mail_gid = os.getuid(), os.getgid()
        chroot = "  chroot =\n"
    ssl_lines = (
        f"ssl = yes\nssl_cert = <{root}/cert.pem\nssl_key = <{root}/key.pem\n"
        if tls
        else "ssl = no\n"
    )
    imaps = f"  inet_listener imaps {{\n    port = {tls_port}\n    ssl = yes\n  }}\n" if tls else ""
    return f"""\
base_dir = {root}/run
state_dir = {root}/state
instance_name = deskbell-test-{port}
listen = 127.0.0.1
protocols = imap
log_path = {root}/dovecot.log
info_log_path = {root}/dovecot.log
{users}\
first_valid_uid = {min(mail_uid, os.getuid())}
first_valid_gid = 0
mail_uid = {mail_uid}
mail_gid = {mail_gid}
mail_location = maildir:{root}/mail/%u
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
{ssl_lines}\
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = static
  args = uid={mail_uid} gid={mail_gid} home={root}/mail/%u
}}
service imap-login {{
{chroot}\
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
{imaps}}}
"""


class DovecotServer:
    """A private Dovecot on 127.0.0.1: `.port` (plain/STARTTLS), `.tls_port` (implicit TLS)."""

    def __init__(self, *, tls: bool = True) -> None:
        # Its own dir under /tmp rather than pytest's tmp_path, whose 0700 parents the
        # unprivileged Dovecot processes could not traverse.
        self.root = Path(tempfile.mkdtemp(prefix="deskbell-dovecot-"))
        self.root.chmod(0o711)
        self.tls = tls
        self.user = "agent@deskbell.test"
        self.password = "test-password-1"
        self.port = free_port()
        self.tls_port = free_port() if tls else 0
        self.cafile: str | None = str(self.root / "cert.pem") if tls else None
        self._process: subprocess.Popen[bytes] | None = None
        self._write_files()

    def _write_files(self) -> None:
        for sub in ("run", "state", "mail"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        if os.getuid() == 0:
            nobody = pwd.getpwnam("nobody")
            os.chown(self.root / "mail", nobody.pw_uid, nobody.pw_gid)
        (self.root / "passwd").write_text(f"{self.user}:{{PLAIN}}{self.password}\n")
        if self.tls:
            subprocess.run(
                [
                    "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                    "-keyout", str(self.root / "key.pem"), "-out", str(self.root / "cert.pem"),
                ],
                check=True,
                capture_output=True,
            )  # fmt: skip
        self.config_path = self.root / "dovecot.conf"
        self.config_path.write_text(
            _config(self.root, port=self.port, tls_port=self.tls_port, tls=self.tls)
        )

    @property
    def log(self) -> str:
        path = self.root / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self, *, timeout_s: float = 60.0) -> None:
        """Start the server and wait until its IMAP port accepts connections."""
        if self.running:
            return
        self._process = subprocess.Popen(
            [str(DOVECOT_BINARY), "-F", "-c", str(self.config_path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                output = (
                    self._process.stdout.read().decode(errors="replace")
                    if self._process.stdout
                    else ""
                )
                raise RuntimeError(f"dovecot exited: {output}\n{self.log}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock,
            ):
                if sock.recv(64).startswith(b"* OK"):
                    return
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"dovecot did not start within {timeout_s} s\n{self.log}")

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL): open client connections are dropped."""
        process, self._process = self._process, None
        if process is None:
            return
        # Mail processes can outlive the master (and keep clients connected): end them too,
        # so a stop really drops every connection.
        children = psutil.Process(process.pid).children(recursive=True)
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        for child in children:
            with contextlib.suppress(psutil.NoSuchProcess):
                child.kill()
        psutil.wait_procs(children, timeout=5)
        if process.stdout is not None:
            process.stdout.close()

    def _imap(self) -> imaplib.IMAP4:
        conn = imaplib.IMAP4("127.0.0.1", self.port, timeout=5)
        conn.login(self.user, self.password)
        return conn

    def deliver(self, raw: bytes, *, folder: str = "INBOX") -> None:
        """Append one message to a folder (IMAP APPEND), as a delivery would."""
        conn = self._imap()
        try:
            status, data = conn.append(folder, None, None, raw)
            if status != "OK":
                raise RuntimeError(f"APPEND failed: {data!r}")
        finally:
            conn.logout()

    def create_folder(self, name: str) -> None:
        conn = self._imap()
        try:
            conn.create(name)
        finally:
            conn.logout()

    def recreate_folder(self, name: str) -> None:
        """Delete and create a folder again: it gets a new UIDVALIDITY."""
        conn = self._imap()
        try:
            conn.delete(name)
            conn.create(name)
        finally:
            conn.logout()

    def __enter__(self) -> DovecotServer:
        self.start()
        return self

    def close(self) -> None:
        """Stop the server and remove its directory."""
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def __exit__(self, *exc: object) -> None:
        self.close()
