"""Desktops in a team (issue 11 "Prove it"; T5, S4, N3): three desktop processes — Ann (A),
Bob (B) and Ann's second desktop (A2) — against two real `deskbell serve` processes on one
PostgreSQL. A is connected to one serve, B and A2 to the other, so every step crosses serves.

A, B and A2, which post and mark seen, are headless replica processes
(tests/support/team_replica_process.py: the replica, sync and service calls the desktop runs,
driven over stdin, since a window cannot be driven from outside); each writes the counts its
bubble would show to a state file whenever its replica changes. Beside them, Bob and Ann
each have a real desktop, `deskbell` offscreen signed in to the team (app/team_start.py, from
branch s18-t11ui), whose DESKBELL_TEST_STATE_FILE gives the counts and tray count it shows.

A post on A raises B's counts and Bob's window's; B's post raises A's, A2's and Ann's
window's; seen on A2 clears it on A and on Ann's window (S4); after every step each desktop's
counts equal the server's `/v1/unseen-counts` for its person (N3), and each message is on the
server once. Nothing waits a fixed time: every step polls a
state file or waits for a process's answer, with a generous deadline."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from services.api import LOCAL_OPERATOR, AccountStore, Service, sign_in_to_team
from services.server_client import ServerClient
from tests.e2e.conftest import ROOT, Deskbell, _env, wait_until
from tests.e2e.test_issue10_scale_out import _api_address
from tests.support.postgres import PostgresCluster
from tests.support.service_url import service_url
from tests.support.smtpd import free_port
from tests.support.world import seed

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

ANN, BOB = "ann@example.com", "bob@example.com"
PASSWORD = "a long test password"
DEADLINE_S = 180.0  # generous: the machine is shared and can be slow
COUNT_KEYS = ("total", "internal", "external", "by_conversation")
WINDOW_KEYS = ("total", "internal", "external", "tray")


@dataclass
class Desktop:
    """One desktop process: its state file and, headless, its command line on stdin."""

    name: str
    person_id: int
    base: str
    token: str
    proc: subprocess.Popen[str]
    state_file: Path
    window: bool = False

    def ask(self, command: dict[str, Any]) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()
        answer: dict[str, Any] = json.loads(self._line())
        assert "error" not in answer, answer
        return answer

    def _line(self) -> str:
        assert self.proc.stdout is not None
        with ThreadPoolExecutor(1) as pool:
            line = pool.submit(self.proc.stdout.readline).result(timeout=DEADLINE_S)
        assert line, f"{self.name} ended: {self.proc.poll()}"
        return line

    def counts(self) -> dict[str, Any]:
        """What this desktop's bubble shows now (its state file)."""
        try:
            doc = json.loads(self.state_file.read_text())
        except FileNotFoundError:
            return {}
        return {key: doc[key] for key in (WINDOW_KEYS if self.window else COUNT_KEYS)}

    def server_counts(self) -> dict[str, Any]:
        """The server's `/v1/unseen-counts` for this desktop's person."""
        request = urllib.request.Request(
            f"{self.base}/api/v1/unseen-counts", headers={"Authorization": f"Bearer {self.token}"}
        )
        with urllib.request.urlopen(request, timeout=DEADLINE_S) as response:
            doc = json.load(response)
        doc["by_conversation"] = {str(k): v for k, v in doc["by_conversation"].items()}
        doc["tray"] = doc["total"]  # the tray shows the bubble's total
        return {key: doc[key] for key in (WINDOW_KEYS if self.window else COUNT_KEYS)}


async def _set_up(url: str) -> tuple[int, int, int]:
    service = await Service.open(url=url)
    try:
        world = await seed(service, delay_s=3600)  # no email during the test
        for email in (ANN, BOB):
            await service.set_password(acting=LOCAL_OPERATOR, email=email, password=PASSWORD)
        internal = (await service.item(world.item)).internal_conversation_id
        return world.ann, world.bob, internal
    finally:
        await service.close()


async def _sign_in(base: str, email: str, device: str) -> str:
    async with ServerClient(base) as client:
        await client.sign_in(email=email, password=PASSWORD, device=device)
        assert client.token is not None
        return client.token


async def _texts(url: str, conversation_id: int, viewer_id: int) -> list[str]:
    service = await Service.open(url=url)
    try:
        rows = await service.messages(conversation_id=conversation_id, viewer_id=viewer_id)
        return [row.text for row in rows]
    finally:
        await service.close()


def _desktop(
    name: str, person_id: int, base: str, email: str, tmp_path: Path, data_dir: Path
) -> Desktop:
    token = asyncio.run(_sign_in(base, email, name))
    state_file = tmp_path / f"{name}.json"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.support.team_replica_process",
            base,
            token,
            str(person_id),
            str(tmp_path / name),
            str(state_file),
        ],
        cwd=ROOT,
        env=_env(data_dir),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    desktop = Desktop(name, person_id, base, token, proc, state_file)
    assert desktop._line().strip() == "ready"
    return desktop


def _window(name: str, person_id: int, base: str, email: str, tmp_path: Path) -> Desktop:
    """The real desktop, offscreen, signed in to the team as the sign-in dialog leaves it."""
    folder = tmp_path / name
    new = asyncio.run(sign_in_to_team(server_url=base, email=email, password=PASSWORD, device=name))
    AccountStore(folder).save(new.account, new.token)
    state_file = tmp_path / f"{name}.json"
    env = dict(_env(folder), QT_QPA_PLATFORM="offscreen", DESKBELL_TEST_STATE_FILE=str(state_file))
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "--data-dir", str(folder)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    desktop = Desktop(name, person_id, base, new.token, proc, state_file, window=True)
    assert wait_until(
        lambda: state_file.exists() or proc.poll() is not None, timeout_s=DEADLINE_S
    ), f"{name}: no window shown"
    assert proc.poll() is None, f"{name} ended: {proc.returncode}"
    return desktop


def _agree(desktops: list[Desktop]) -> None:
    """N3: each desktop's writes reach the server, then each has all the server has, and its
    bubble shows the server's counts for its person."""
    for _ in range(2):
        for desktop in desktops:
            if not desktop.window:
                desktop.ask({"do": "current"})
    for desktop in desktops:
        assert wait_until(
            lambda d=desktop: d.counts() == d.server_counts(), timeout_s=DEADLINE_S
        ), (desktop.name, desktop.counts(), desktop.server_counts())


def test_t5_s4_n3_three_desktop_processes_on_two_serves_agree_at_every_step(
    postgres_cluster: PostgresCluster, tmp_path: Path
) -> None:
    url = service_url(postgres_cluster.url(postgres_cluster.create_database()))
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    ann, bob, internal = asyncio.run(_set_up(url))
    team = Deskbell(data_dir=data_dir, url=url)
    desktops: list[Desktop] = []
    try:
        for _ in range(2):
            team.serve("--listen", f"127.0.0.1:{free_port()}")
        bases = [_api_address(team, 0), _api_address(team, 1)]
        a = _desktop("a", ann, bases[0], ANN, tmp_path, data_dir)
        desktops.append(a)
        b = _desktop("b", bob, bases[1], BOB, tmp_path, data_dir)
        desktops.append(b)
        a2 = _desktop("a2", ann, bases[1], ANN, tmp_path, data_dir)
        desktops.append(a2)
        bob_window = _window("bob-window", bob, bases[0], BOB, tmp_path)
        desktops.append(bob_window)
        ann_window = _window("ann-window", ann, bases[1], ANN, tmp_path)
        desktops.append(ann_window)
        _agree(desktops)
        assert all(d.counts()["total"] == 0 for d in desktops)

        # A post on A raises B's bubble (through the other serve).
        a.ask({"do": "post", "conversation": internal, "text": "the printer again"})
        for bobs in (b, bob_window):
            assert wait_until(lambda d=bobs: d.counts()["total"] == 1, timeout_s=DEADLINE_S), (
                bobs.name,
                bobs.counts(),
            )
        _agree(desktops)
        assert [d.counts()["total"] for d in (a, a2, ann_window)] == [0, 0, 0]  # one's own post

        # B's answer raises both of Ann's desktops.
        b.ask({"do": "post", "conversation": internal, "text": "on it"})
        for mine in (a, a2, ann_window):
            assert wait_until(lambda d=mine: d.counts()["total"] == 1, timeout_s=DEADLINE_S), (
                mine.name,
                mine.counts(),
            )
        _agree(desktops)

        # S4: seen on A2 clears it on A.
        assert a2.ask({"do": "seen_all"}) == {"seen": 1}
        assert wait_until(lambda: a2.counts()["total"] == 0, timeout_s=DEADLINE_S)
        for mine in (a, ann_window):
            assert wait_until(lambda d=mine: d.counts()["total"] == 0, timeout_s=DEADLINE_S), (
                mine.name,
                mine.counts(),
            )
        _agree(desktops)
        assert b.counts()["total"] == bob_window.counts()["total"] == 1  # not seen by Bob yet

        # And Bob's seen mark leaves every bubble empty, everywhere.
        assert b.ask({"do": "seen_all"}) == {"seen": 1}
        _agree(desktops)
        assert [d.counts()["total"] for d in desktops] == [0] * len(desktops)
    finally:
        for desktop in desktops:
            desktop.proc.kill()
            desktop.proc.communicate(timeout=60)  # and closes its pipes
        team.stop_all()

    # T5: each write reached the server once, in order.
    assert asyncio.run(_texts(url, internal, ann)) == ["the printer again", "on it"]
