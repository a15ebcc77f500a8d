"""Run by tests/unit/test_parallel_isolation.py in a pytest of its own, on every xdist worker
(`--dist each`): each worker writes down where its per-process state lives. Not collected by a
plain run (the name does not start with test_)."""

from __future__ import annotations

import json
import os
from pathlib import Path


def test_write_down_where_this_worker_keeps_its_state(tmp_path: Path) -> None:
    from keyrings.alt.file import PlaintextKeyring

    from app.paths import data_dir

    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    state = {
        "xdg_data_home": os.environ["XDG_DATA_HOME"],
        "keyring_file": PlaintextKeyring().file_path,
        "data_dir": str(data_dir()),
        "tmp_path": str(tmp_path),
    }
    (Path(os.environ["DESKBELL_PROBE_DIR"]) / f"{worker}.json").write_text(json.dumps(state))
