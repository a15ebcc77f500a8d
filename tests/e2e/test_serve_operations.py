"""`deskbell serve` for operations (T1, T4): TLS directly, `--check`, structured logs. Real
processes, a real aiosmtpd on loopback, certificates made for the test."""

from __future__ import annotations

import json
import re
import signal
import socket
import ssl
import subprocess
import urllib.request
from pathlib import Path

import pytest

from tests.e2e.conftest import Deskbell, wait_until
from tests.support.smtpd import SmtpServer, free_port
from tests.support.tls import CertBundle, make_certificates

ANN = "ann@example.com"
PW = "correct horse battery"


@pytest.fixture
def certs(tmp_path: Path) -> CertBundle:
    folder = tmp_path / "certs"
    folder.mkdir()
    return make_certificates(directory=folder)


def _started_url(cli: Deskbell, proc: subprocess.Popen[str]) -> str:
    found: list[str] = []

    def serving() -> bool:
        assert proc.poll() is None, cli.serve_log()
        found.extend(re.findall(r"serving the API on (\S+)", cli.serve_log()))
        return bool(found)

    assert wait_until(serving, timeout_s=60), cli.serve_log()
    return found[0]


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)


def _get(url: str, *, context: ssl.SSLContext | None = None, token: str | None = None) -> int:
    request = urllib.request.Request(url)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, context=context, timeout=30) as response:
        status: int = response.status
        return status


def _sign_in(base: str, *, context: ssl.SSLContext | None = None) -> str:
    body = json.dumps({"email": ANN, "password": PW, "device": "test"}).encode()
    request = urllib.request.Request(
        f"{base}/api/v1/sessions", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, context=context, timeout=60) as response:
        token: str = json.load(response)["token"]
        return token


def _user(cli: Deskbell) -> None:
    cli.out("user", "add", ANN, "--name", "Ann Admin", "--admin")
    cli.run("user", "password", ANN, stdin=PW + "\n")


# --- TLS directly -----------------------------------------------------------------------------


def test_t1_serve_speaks_tls_1_2_or_newer_with_the_given_certificate(
    deskbell: Deskbell, certs: CertBundle
) -> None:
    _user(deskbell)
    proc = deskbell.serve(
        "--listen",
        f"127.0.0.1:{free_port()}",
        "--tls-cert",
        str(certs.certfile),
        "--tls-key",
        str(certs.keyfile),
    )
    url = _started_url(deskbell, proc)
    assert url.startswith("https://127.0.0.1:")
    trusting = certs.client_context()
    assert _get(f"{url}/healthz", context=trusting) == 200
    token = _sign_in(url, context=trusting)
    assert _get(f"{url}/api/v1/me", context=trusting, token=token) == 200
    # A client that does not trust the certificate refuses the server (no silent downgrade).
    with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
        _get(f"{url}/healthz", context=ssl.create_default_context())
    host, port = url.removeprefix("https://").split(":")
    with (
        socket.create_connection((host, int(port)), timeout=30) as raw,
        trusting.wrap_socket(raw, server_hostname=host) as tls,
    ):
        assert tls.version() in ("TLSv1.2", "TLSv1.3")
    _stop(proc)


def test_t1_a_missing_unreadable_or_mismatched_tls_file_is_one_line_before_anything_starts(
    deskbell: Deskbell, certs: CertBundle, tmp_path: Path
) -> None:
    other_folder = tmp_path / "other"
    other_folder.mkdir()
    other = make_certificates(directory=other_folder)
    unreadable = tmp_path / "unreadable.pem"
    unreadable.write_text("x")
    unreadable.chmod(0)
    missing = tmp_path / "missing.pem"
    # (certificate, key) -> what the line says, and the file it names
    cases = {
        (missing, certs.keyfile): ("cannot read the TLS certificate", missing),
        (certs.certfile, other.keyfile): ("does not belong to the certificate", other.keyfile),
        (certs.keyfile, certs.keyfile): ("is not a PEM certificate", certs.keyfile),
        (certs.certfile, certs.cafile): ("is not a PEM private key", certs.cafile),
    }
    if not _readable(unreadable):  # root reads any file
        cases[(certs.certfile, unreadable)] = ("cannot read the TLS key", unreadable)
    for (cert, key), (said, named) in cases.items():
        done = deskbell.run(
            "serve",
            "--listen",
            f"127.0.0.1:{free_port()}",
            "--tls-cert",
            str(cert),
            "--tls-key",
            str(key),
            check=False,
        )
        assert done.returncode == 1, done
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("deskbell: error: "), done.stderr
        assert said in lines[0] and str(named) in lines[0], lines[0]
        assert "serving" not in done.stdout
    # Nothing started: not even the database was created.
    assert not (deskbell.data_dir / "deskbell.db").exists()
    done = deskbell.run(
        "serve",
        "--listen",
        f"127.0.0.1:{free_port()}",
        "--tls-cert",
        str(certs.certfile),
        check=False,
    )
    assert done.returncode == 1 and "both --tls-cert and --tls-key" in done.stderr


def _readable(path: Path) -> bool:
    try:
        path.read_bytes()
    except OSError:
        return False
    return True


def test_t1_the_server_context_refuses_anything_older_than_tls_1_2(certs: CertBundle) -> None:
    from services.server.tls import server_context

    context = server_context(certfile=certs.certfile, keyfile=certs.keyfile)
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2


# --- serve --check ----------------------------------------------------------------------------


def _mail_settings(cli: Deskbell, port: int) -> None:
    for key, value in (
        ("smtp.host", "127.0.0.1"),
        ("smtp.port", str(port)),
        ("smtp.security", "none"),
        ("smtp.from", "support@deskbell.test"),
    ):
        cli.out("config", "set", key, value)


def _problems(done: subprocess.CompletedProcess[str]) -> list[str]:
    lines = done.stderr.strip().splitlines()
    assert all(line.startswith("deskbell: problem: ") for line in lines), done.stderr
    return [line.removeprefix("deskbell: problem: ") for line in lines]


def test_t1_check_passes_a_ready_configuration_and_starts_nothing(
    deskbell: Deskbell, certs: CertBundle
) -> None:
    with SmtpServer() as smtp:
        _mail_settings(deskbell, smtp.port)
        done = deskbell.run(
            "serve", "--check", "--listen", f"127.0.0.1:{free_port()}",
            "--smtp-listen", f"127.0.0.1:{free_port()}",
            "--tls-cert", str(certs.certfile), "--tls-key", str(certs.keyfile),
            check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert done.stderr == ""
        said = done.stdout
        for what in ("TLS:", "listening for the API:", "listening for incoming mail:",
                     "database: answers, schema at revision", "SMTP:"):  # fmt: skip
            assert f"ok: {what}" in said, said
        assert smtp.handler.connections >= 1  # it really greeted the server
    assert not re.search(r"serving the API", said)


def test_t1_check_names_each_problem_on_its_own_line_and_exits_1(
    deskbell: Deskbell, tmp_path: Path
) -> None:
    _mail_settings(deskbell, free_port())  # nobody listens there
    deskbell.out("config", "set", "imap.host", "127.0.0.1")
    deskbell.out("config", "set", "imap.port", str(free_port()))
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        done = deskbell.run(
            "serve", "--check", "--listen", f"127.0.0.1:{taken}",
            "--tls-cert", str(tmp_path / "missing.pem"), "--tls-key", str(tmp_path / "k.pem"),
            check=False,
        )  # fmt: skip
    assert done.returncode == 1
    problems = _problems(done)
    assert len(problems) == 4, problems
    assert problems[0].startswith("TLS: cannot read the TLS certificate")
    assert problems[1].startswith(f"listening for the API: cannot listen on 127.0.0.1:{taken}")
    assert problems[2].startswith("SMTP: ")
    assert problems[3].startswith("IMAP: ")
    assert "ok: database: answers" in done.stdout


def test_t1_check_says_when_there_is_no_database_yet(deskbell: Deskbell) -> None:
    done = deskbell.run("serve", "--check", check=False)
    assert done.returncode == 1
    assert _problems(done) == [
        f"database: there is no database at {deskbell.data_dir}/deskbell.db yet"
    ]
    assert not (deskbell.data_dir / "deskbell.db").exists()


# --- structured logs --------------------------------------------------------------------------


def _served_session(cli: Deskbell, *args: str) -> tuple[str, str]:
    """Serve, sign in, make one API call, stop: (the token, the whole log)."""
    _user(cli)
    proc = cli.serve("--listen", f"127.0.0.1:{free_port()}", *args)
    url = _started_url(cli, proc)
    token = _sign_in(url)
    assert _get(f"{url}/api/v1/me", token=token) == 200
    assert _get(f"{url}/healthz") == 200
    _stop(proc)
    return token, cli.serve_log()


def test_t1_json_logs_are_one_object_a_line_with_the_request_fields_and_no_secret(
    deskbell: Deskbell,
) -> None:
    token, log = _served_session(deskbell, "--log-format", "json")
    lines = [line for line in log.splitlines() if not line.startswith("deskbell: ")]
    records = [json.loads(line) for line in lines]  # every log line is one JSON object
    assert records
    for record in records:
        assert {"time", "level", "logger", "message"} <= record.keys(), record
    access = [r for r in records if r["logger"] == "deskbell.access"]
    assert [(r["method"], r["path"], r["status"]) for r in access] == [
        ("POST", "/api/v1/sessions", 201),
        ("GET", "/api/v1/me", 200),
    ]  # one line per API call; the health probe is not logged
    for r in access:
        assert r["level"] == "INFO"
        assert isinstance(r["duration_ms"], float | int) and r["duration_ms"] >= 0
        assert re.fullmatch(r"[0-9a-f]{16}", r["request_id"])
        assert r["client"] == "127.0.0.1"
    assert token not in log and PW not in log


def test_t1_the_default_log_is_the_readable_line_with_an_access_line_per_call(
    deskbell: Deskbell,
) -> None:
    token, log = _served_session(deskbell)
    assert re.search(
        r"^\S+ \S+ INFO deskbell\.access: "
        r"GET /api/v1/me 200 [0-9.]+ms 127\.0\.0\.1 id=[0-9a-f]{16}$",
        log,
        re.MULTILINE,
    ), log
    assert token not in log and PW not in log
