"""`make test` runs the offscreen suite on several pytest-xdist workers at once: every worker
must keep its own keyring file, default data folder and temporary folders, or two tests on two
workers would read and overwrite each other's passwords and data. (Each worker's PostgreSQL
cluster lives in a fresh folder of its own: tests/support/postgres.py.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_OUR_PYTEST = ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "PYTEST_CURRENT_TEST")


def test_each_xdist_worker_keeps_its_own_keyring_data_folder_and_temp_folder(
    tmp_path: Path,
) -> None:
    env = {k: v for k, v in os.environ.items() if k not in _OUR_PYTEST}
    env.pop("DESKBELL_DATA_DIR", None)  # the probe asks for the default data folder
    env["DESKBELL_PROBE_DIR"] = str(tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "2",
         "--dist", "each", "tests/support/parallel_probe.py"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    gw0, gw1 = (json.loads((tmp_path / f"gw{n}.json").read_text()) for n in (0, 1))
    for key in gw0:
        assert gw0[key] != gw1[key], (key, gw0[key])
    for state in (gw0, gw1):
        assert Path(state["keyring_file"]).is_relative_to(state["xdg_data_home"]), state
        assert Path(state["data_dir"]).is_relative_to(state["xdg_data_home"]), state
