"""benchmarks/_sidebyside.py: two processes started together, one stopped at R x the leader's wall time."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("benchmarks_sidebyside", REPO / "benchmarks" / "_sidebyside.py")
assert spec is not None and spec.loader is not None
sbs = importlib.util.module_from_spec(spec)
spec.loader.exec_module(sbs)

FAST = "import json, sys; print('round 3/9 {\"check\": 1}', file=sys.stderr); print('noise'); print(json.dumps({'ret': 7}))"
SLOW = "import time; time.sleep(60)"


def test_leader_reaches_and_follower_is_stopped_at_the_ratio(tmp_path: Path) -> None:
    cmds = {"lead": [sys.executable, "-c", FAST], "peer": [sys.executable, "-c", SLOW]}
    logs = {name: tmp_path / f"{name}.log" for name in cmds}
    runs = sbs.run_side_by_side(cmds, cwd=str(tmp_path), logs=logs, max_wall=50.0, leader="lead", stop_ratio=3.0,
                                reached=lambda name, r: r["ret"] >= 5, poll_s=0.2)
    assert runs["lead"]["finished"] and runs["lead"]["reached"] and runs["lead"]["result"] == {"ret": 7}
    assert runs["lead"]["cpu_s"] >= 0
    peer = runs["peer"]
    assert not peer["finished"] and not peer["reached"] and peer["result"] is None
    assert peer["wall_s"] < 30  # stopped at ~3x the leader's wall, long before its own 60 s or the 50 s cap
    assert sbs.json_lines(logs["lead"]) == [{"check": 1}]


def test_a_failing_process_names_its_log(tmp_path: Path) -> None:
    cmds = {"bad": [sys.executable, "-c", "import sys; sys.exit(3)"], "peer": [sys.executable, "-c", SLOW]}
    logs = {name: tmp_path / f"{name}.log" for name in cmds}
    with pytest.raises(SystemExit, match="bad failed"):
        sbs.run_side_by_side(cmds, cwd=str(tmp_path), logs=logs, max_wall=50.0, reached=lambda n, r: True,
                             poll_s=0.2)
