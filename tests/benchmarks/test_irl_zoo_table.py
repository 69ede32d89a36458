"""benchmarks/irl_zoo_table.py: the ranked datasets T-REX's cells train on, for any env."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np

from demokit.data.dataset import load_dataset

REPO = Path(__file__).resolve().parents[2]


def _zoo_table():
    name = "benchmarks_irl_zoo_table"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / "irl_zoo_table.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def test_make_ranked_on_box_actions(tmp_path: Path) -> None:
    """Pendulum-v1 (Box actions): ten ranked episodes, rank = -epsilon on every step, actions in the space."""
    data = load_dataset(_zoo_table().make_ranked(tmp_path / "ranked.h5", "Pendulum-v1"))
    assert data.env_id == "Pendulum-v1" and len(data.episode_returns) == 10
    starts = np.concatenate([[0], np.cumsum(data.episode_lengths)[:-1]])
    ranks = np.asarray(data.extras["rank"]).reshape(-1)
    assert ranks[starts].tolist() == [-1.0, -1.0, -0.75, -0.75, -0.5, -0.5, -0.25, -0.25, 0.0, 0.0]
    assert len(np.unique(ranks[starts[2]:starts[3]])) == 1  # the episode's rank on each of its steps
    actions = np.asarray(data.actions)
    assert actions.shape[-1] == 1 and np.abs(actions).max() <= 2.0
