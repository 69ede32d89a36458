"""scripts/train_expert_logged.py: a SAC run stopped by SIGTERM saves its training state and
best/partial snapshots, and --resume continues from the saved env step."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_sigterm_saves_the_state_and_resume_continues(tmp_path):
    out, log = tmp_path / "p.pt", tmp_path / "p.log"
    cmd = [sys.executable, str(REPO / "scripts" / "train_expert_logged.py"), "--env", "Pendulum-v1",
           "--out", str(out), "--log", str(log), "--log-every", "250", "--snapshot-every", "100000",
           "--timesteps", "3000", "--resume"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env)
    try:
        deadline = time.time() + 300
        while time.time() < deadline and not (log.exists() and " steps 1000 " in log.read_text()):
            time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=120) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    text = log.read_text()
    stopped = re.search(r"stopped \(signal\) at (\d+) steps", text)
    assert stopped, text
    state = tmp_path / "p.state.pt"
    assert state.exists() and (tmp_path / "p.partial.pt").exists() and (tmp_path / "p.best.pt").exists()
    assert not out.exists()  # no final checkpoint from a stopped run
    at = int(stopped.group(1))
    assert subprocess.run(cmd, cwd=tmp_path, env=env, timeout=600).returncode == 0
    text = log.read_text()
    assert f"resumed from {state} at {at} steps" in text
    done = re.search(r"done \{.*'env_steps': (\d+)", text)
    assert done and at < int(done.group(1)) <= 3000 and out.exists(), text
