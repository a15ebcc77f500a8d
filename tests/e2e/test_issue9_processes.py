"""Races between real processes, on a SQLite file and on a real PostgreSQL (issue 9, T1, T2).

Every actor is a process: the `deskbell` command, `deskbell serve`, and two small scripts that
use `services.api` (tests/support/api_writer.py writes; tests/support/feed_listener.py records
what `Service.subscribe` hears). Writers wait for one line on their standard input, so all of
them start at the same moment. Nothing waits a fixed time: each step waits for an event (a
"ready" line, a process's exit) or polls a condition with a generous deadline."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import ROOT, wait_until
from tests.support.feed_listener import heard
from tests.support.postgres import PostgresCluster
from tests.support.proc_stats import measure, wait_until_quiet

pytestmark = pytest.mark.slow

ANN, BOB = "ann@example.com", "bob@example.com"
TIMEOUT_S = 300  # a process's whole life on a machine ten times slower than usual


def engines() -> list[Any]:
    """Both engines as parameters; the PostgreSQL one marked as needing a server."""
    return [pytest.param("sqlite"), pytest.param("postgresql", marks=[pytest.mark.postgres])]


@dataclass
class Target:
    """One empty database on one engine, and how each kind of process is pointed at it."""

    engine: str
    data_dir: Path  # the data folder (SQLite's file lives here; PostgreSQL: logs only)
    url: str | None = None  # PostgreSQL's URL
    started: list[subprocess.Popen[str]] = field(default_factory=list)

    @property
    def where(self) -> list[str]:
        """The arguments that select this database, for `deskbell` and the scripts alike."""
        if self.url is not None:
            return ["--database-url", self.url]
        return ["--data-dir", str(self.data_dir)]

    def _env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        env = dict(os.environ, **(extra or {}))
        env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
        env.pop("DESKBELL_DATABASE_URL", None)
        env.pop("DESKBELL_DATA_DIR", None)
        return env

    def start(
        self, *argv: str, log: Path | None = None, env: dict[str, str] | None = None
    ) -> subprocess.Popen[str]:
        """`python argv...` in the background; its standard output is a pipe unless `log`;
        `env`: variables to add to its environment."""
        out = log.open("w") if log is not None else subprocess.PIPE
        proc = subprocess.Popen(
            [sys.executable, *argv],
            cwd=ROOT,
            env=self._env(env),
            stdin=subprocess.PIPE,
            stdout=out,
            stderr=subprocess.STDOUT if log is not None else subprocess.PIPE,
            text=True,
        )
        if log is not None:
            out.close()  # type: ignore[union-attr]
        self.started.append(proc)
        return proc

    def deskbell(self, *args: str) -> subprocess.Popen[str]:
        return self.start("-m", "app.cli", *self.where, *args)

    def run(self, *args: str) -> str:
        """`deskbell args...` to its end; its standard output. Fails the test on an error."""
        proc = self.deskbell(*args)
        out, err = proc.communicate(timeout=TIMEOUT_S)
        assert proc.returncode == 0 and not err, f"deskbell {' '.join(args)}: {err}"
        return out.strip()

    def script(self, module: str, *args: str, log: Path | None = None) -> subprocess.Popen[str]:
        return self.start("-m", module, *self.where, *args, log=log)

    def stop_all(self) -> None:
        for proc in self.started:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=30)
            for pipe in (proc.stdin, proc.stdout, proc.stderr):
                if pipe is not None:
                    pipe.close()


@pytest.fixture
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Target]:
    """An empty database (not even migrated) on the engine named by the test's parameter."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    if request.param == "sqlite":
        made = Target("sqlite", data_dir)
        try:
            yield made
        finally:
            made.stop_all()
        return
    cluster: PostgresCluster = request.getfixturevalue("postgres_cluster")
    name = cluster.create_database(template="template0")
    made = Target("postgresql", data_dir, url=cluster.url(name))
    try:
        yield made
    finally:
        made.stop_all()
        cluster.drop_database(name)


def _ready(proc: subprocess.Popen[str]) -> None:
    """Wait for the script's "ready" line (it opened the service)."""
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if line != "ready":
        _, err = proc.communicate(timeout=TIMEOUT_S)
        raise AssertionError(f"not ready ({line!r}): {err}")


def _results(writers: list[subprocess.Popen[str]]) -> list[dict[str, Any]]:
    """Tell every ready writer to go at once, then read each one's JSON line."""
    for proc in writers:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    results = []
    for proc in writers:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line:
            _, err = proc.communicate(timeout=TIMEOUT_S)
            raise AssertionError(f"a writer ended with {proc.returncode}: {err}")
        results.append(json.loads(line))
    return results


def _finish(procs: list[subprocess.Popen[str]]) -> None:
    """Close each one's standard input (listeners stop then) and wait for a clean exit."""
    for proc in procs:
        _, err = proc.communicate(timeout=TIMEOUT_S)
        assert proc.returncode == 0, err


def _serve_running(log: Path) -> bool:
    return "service running" in log.read_text()


# --- first starts ----------------------------------------------------------------------------

FIRST_STARTS = 8


@pytest.mark.parametrize("target", engines(), indirect=True)
def test_t1_eight_simultaneous_first_starts_migrate_once_and_seed_once(
    target: Target, tmp_path: Path
) -> None:
    """8 `deskbell` processes start at once on an empty database: every one succeeds, and the
    database ends exactly as after one first start: the built-in automations, templates and
    system emails once each."""
    procs = [target.deskbell("automation", "list", "--json") for _ in range(FIRST_STARTS)]
    outcomes = [(p.communicate(timeout=TIMEOUT_S), p.returncode) for p in procs]
    failed = [err.strip() for (_out, err), code in outcomes if code != 0 or err]
    assert not failed, f"{len(failed)} of {FIRST_STARTS} first starts failed: {failed[0]}"

    automations = json.loads(target.run("automation", "list", "--json"))
    templates = json.loads(target.run("template", "list", "--json"))
    system_emails = target.run("system-email", "list")
    # What one first start makes, on a SQLite file of its own.
    reference = Target("sqlite", tmp_path / "reference")
    reference.data_dir.mkdir()
    assert automations == json.loads(reference.run("automation", "list", "--json"))
    assert templates == json.loads(reference.run("template", "list", "--json"))
    assert system_emails == reference.run("system-email", "list")
    assert all(json.loads(out) == automations for (out, _err), _code in outcomes)


# --- item numbers ----------------------------------------------------------------------------

WRITERS = 8
ITEMS_EACH = 25
CLI_ITEMS = 4


@pytest.mark.parametrize("target", engines(), indirect=True)
def test_t1_items_created_by_many_processes_at_once_never_share_a_number(
    target: Target,
) -> None:
    """8 processes create 25 items each, all at the same moment, while 4 `deskbell item add`
    run: every creation succeeds and no two items share a number."""
    target.run("person", "list")  # the first start, so the race is about items only
    writers = [
        target.script("tests.support.api_writer", "items", str(ITEMS_EACH)) for _ in range(WRITERS)
    ]
    for proc in writers:
        _ready(proc)
    cli = [target.deskbell("item", "add", f"From the command line {i}") for i in range(CLI_ITEMS)]
    results = _results(writers)
    _finish(writers)
    errors = [e for r in results for e in r["errors"]]
    cli_numbers = []
    for proc in cli:
        out, err = proc.communicate(timeout=TIMEOUT_S)
        if proc.returncode == 0:
            cli_numbers.append(int(out.strip()))
        else:
            errors.append(err.strip())
    assert not errors, f"{len(errors)} creations failed, e.g. {errors[0]}"
    numbers = [n for r in results for n in r["numbers"]] + cli_numbers
    assert len(numbers) == WRITERS * ITEMS_EACH + CLI_ITEMS
    doubled = {n: c for n, c in Counter(numbers).items() if c > 1}
    assert not doubled, f"numbers given twice: {doubled}"


# --- the change feed -------------------------------------------------------------------------

POSTERS = 4
POSTS_EACH = 60
LISTENERS = 3
SERVES = 2


@pytest.mark.parametrize(
    "target",
    engines(),
    indirect=True,
)
def test_t1_no_change_is_missed_by_any_subscriber(target: Target, tmp_path: Path) -> None:
    """3 processes listen with `Service.subscribe` and 2 `deskbell serve` run while 4
    processes (which listen too) post 60 messages each at once, each into its own item: every
    listener hears every post, and the last one, posted after all the others."""
    target.run("person", "add", ANN, "--name", "Ann")
    target.run("person", "add", BOB, "--name", "Bob")
    items = [
        int(target.run("item", "add", f"Busy {i}", f"--follower={ANN}", f"--follower={BOB}"))
        for i in range(POSTERS + 1)
    ]
    *busy, last_item = items

    logs = [tmp_path / f"serve-{i}.log" for i in range(SERVES)]
    for log in logs:
        target.start("-m", "app.cli", *target.where, "serve", log=log)
    outs = [tmp_path / f"heard-{i}.jsonl" for i in range(LISTENERS)]
    listeners = [target.script("tests.support.feed_listener", "--out", str(out)) for out in outs]
    for proc in listeners:
        _ready(proc)
    assert wait_until(lambda: all(_serve_running(log) for log in logs), timeout_s=TIMEOUT_S), [
        log.read_text() for log in logs
    ]

    # The posters listen too: a process that reads the feed right after each of its own
    # commits is the likeliest to skip a change another process has not committed yet.
    heard_by_posters = [tmp_path / f"heard-poster-{i}.jsonl" for i in range(POSTERS)]
    writers = [
        target.script(
            "tests.support.api_writer",
            "--started",
            "--heard",
            str(out),
            "posts",
            str(POSTS_EACH),
            "--item",
            str(n),
            "--as",
            ANN,
        )
        for n, out in zip(busy, heard_by_posters, strict=True)
    ]
    for proc in writers:
        _ready(proc)
    results = _results(writers)
    errors = [e for r in results for e in r["errors"]]
    assert not errors, f"{len(errors)} posts failed, e.g. {errors[0]}"
    # One more post once every other has committed: whoever hears it has had its chance to
    # hear everything before it.
    last = target.script(
        "tests.support.api_writer", "posts", "1", "--item", str(last_item), "--as", BOB
    )
    _ready(last)
    (last_result,) = _results([last])
    _finish([last])
    last_conversation = last_result["conversation_ids"][0]
    expected = {r["conversation_ids"][0]: len(r["message_ids"]) for r in results}
    outs += heard_by_posters

    def messages_heard(out: Path) -> Counter[int]:
        ids = {(e["position"], e["conversation_id"]) for e in heard(out) if e["kind"] == "message"}
        return Counter(conversation for _id, conversation in ids)

    for out in outs:
        assert wait_until(
            lambda out=out: messages_heard(out)[last_conversation] >= 1, timeout_s=TIMEOUT_S
        ), f"{out.name} never heard the last post"
    missed: dict[str, dict[int, int]] = {}
    for out in outs:
        wait_until(
            lambda out=out: all(messages_heard(out)[c] >= n for c, n in expected.items()),
            timeout_s=10,
        )
        counts = messages_heard(out)
        short = {c: n - counts[c] for c, n in expected.items() if counts[c] < n}
        if short:
            missed[out.name] = short
    _finish(writers + listeners)
    assert not missed, f"changes missed (conversation: how many): {missed}"
    assert all(_serve_running(log) for log in logs)


# --- idle ------------------------------------------------------------------------------------

IDLE_WINDOW_S = 5.0
# Start-up work is over once the process reports itself running; what follows (a first feed
# read, a scheduler pass) takes well under a second even on a slow machine. The bound only
# limits what a process that never goes quiet would cost the suite.
QUIET_WITHIN_S = 20
# An idle process has nothing to do until its next deadline: no wake-up at all. A handful is
# allowed for what no program controls (a signal, the kernel's own housekeeping of a thread).
IDLE_MAX_SWITCHES = 3


def _quiet_item(target: Target, *, emailing: str, reading: str) -> None:
    """Ann and Bob follow one item; `emailing` writes in it; `reading`, who never wants
    email, has it unseen: nothing will ever fall due."""
    target.run("person", "add", ANN, "--name", "Ann")
    target.run("person", "add", BOB, "--name", "Bob")
    number = target.run("item", "add", "Quiet", f"--follower={ANN}", f"--follower={BOB}")
    target.run("user", "settings", reading, "--delay", "never", "--as", reading)
    target.run("post", number, "--as", emailing, "--internal", "Nothing will fall due")


def _assert_sleeps(pid: int, what: str) -> None:
    """Once start-up work is over, the process makes no wake-up over `IDLE_WINDOW_S`."""
    settled = wait_until_quiet(pid, timeout_s=QUIET_WITHIN_S)
    idle = measure(pid, IDLE_WINDOW_S)
    assert settled is not None and idle.switches <= IDLE_MAX_SWITCHES, f"{what}: {idle}" + (
        "" if settled else f" (it never went quiet for 1 s in {QUIET_WITHIN_S} s)"
    )


@pytest.mark.parametrize("target", engines(), indirect=True)
def test_issue9_an_idle_serve_does_not_wake_up(target: Target, tmp_path: Path) -> None:
    """`deskbell serve` with people, an item and its messages, nothing due: once start-up work
    is over it sleeps until something happens, with no wake-up over 5 s (measured from
    /proc: context switches of all its threads)."""
    _quiet_item(target, emailing=ANN, reading=BOB)
    log = tmp_path / "serve.log"
    serve = target.start("-m", "app.cli", *target.where, "serve", log=log)
    assert wait_until(lambda: _serve_running(log), timeout_s=TIMEOUT_S), log.read_text()
    _assert_sleeps(serve.pid, "idle serve")
    assert serve.poll() is None, log.read_text()


@pytest.mark.parametrize("target", engines(), indirect=True)
def test_issue9_an_idle_desktop_app_does_not_wake_up(target: Target, tmp_path: Path) -> None:
    """The desktop app (offscreen) shown with its data, no input, nothing due: once start-up
    work is over, no wake-up over 5 s, Qt's and the service's together."""
    _quiet_item(target, emailing=BOB, reading=ANN)
    state = tmp_path / "state.json"
    app = target.start(
        "-m",
        "app.cli",
        *target.where,
        "--as",
        ANN,
        log=tmp_path / "desktop.log",
        env={"QT_QPA_PLATFORM": "offscreen", "DESKBELL_TEST_STATE_FILE": str(state)},
    )
    assert wait_until(state.exists, timeout_s=TIMEOUT_S), (tmp_path / "desktop.log").read_text()
    _assert_sleeps(app.pid, "idle desktop")
    assert app.poll() is None, (tmp_path / "desktop.log").read_text()
