"""benchmarks/mujoco_cell_probe.py: the one-env replay reads falls, flips and velocity; a missing policy is one
error line."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO / "benchmarks") not in sys.path:
    sys.path.insert(0, str(REPO / "benchmarks"))

import mujoco_cell_probe as probe  # noqa: E402


class Constant:
    """A policy acting one fixed action."""

    def __init__(self, action: np.ndarray) -> None:
        self.action = action

    def act(self, obs: np.ndarray, deterministic: bool) -> np.ndarray:
        assert deterministic and obs.shape[0] == 1
        return self.action[None]


def test_replay_reads_falls_and_the_full_length():
    pytest.importorskip("mujoco")
    # Walker2d with no torque collapses: the episode terminates early; HalfCheetah never terminates
    [(_, steps, flip, _)] = probe.replay(Constant(np.zeros(6, np.float32)), "Walker2d-v5", 0, 1)
    assert steps < 1000 and flip is None
    [(_, steps, flip, vel)] = probe.replay(Constant(np.zeros(6, np.float32)), "HalfCheetah-v5", 0, 1)
    assert steps == 1000 and flip is None and abs(vel) < 0.1


def test_missing_policy_is_one_error_line(tmp_path, capsys):
    assert probe.main(["Walker2d-v5-gail-ppo-k4-s0", "--cache", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ")
