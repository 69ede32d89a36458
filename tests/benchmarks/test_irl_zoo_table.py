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


def test_make_ranked_from_a_policy_checkpoint(tmp_path: Path) -> None:
    """--ranked-policy: the checkpoint's noisy rollouts (at epsilon 0 its own deterministic actions), with each
    episode's rank and return and their Spearman correlation in the summary; --rank-by return."""
    import torch

    from demokit.envs import make_env
    from demokit.policies import make_policy, save_checkpoint

    env = make_env("CartPole-v1")
    torch.manual_seed(0)
    policy = make_policy(env.observation_space, env.action_space, hidden_sizes=(8,))
    env.close()
    ckpt = tmp_path / "policy.pt"
    save_checkpoint(ckpt, policy, algo="ppo", env_id="CartPole-v1")
    table = _zoo_table()
    data = load_dataset(table.make_ranked(tmp_path / "ranked.h5", "CartPole-v1", policy_path=ckpt))
    assert str(ckpt) in data.provenance["policy"]
    last = list(data.iter_episodes())[-1]  # epsilon 0: the policy's deterministic actions
    np.testing.assert_array_equal(last.actions, policy.act(last.observations, deterministic=True))
    summary = table.ranked_summary(data.path)
    assert summary["rank"] == [-1.0, -1.0, -0.75, -0.75, -0.5, -0.5, -0.25, -0.25, 0.0, 0.0]
    assert summary["return"] == [round(float(r), 1) for r in data.episode_returns]
    assert -1.0 <= summary["spearman"] <= 1.0
    by_return = table.ranked_summary(table.make_ranked(tmp_path / "by-return.h5", "CartPole-v1", policy_path=ckpt,
                                                       rank_by="return"))
    assert by_return["rank"] == [float(r) for r in by_return["return"]]  # CartPole's returns: whole numbers
    assert by_return["spearman"] == 1.0  # ranks in the order of the returns, ties included
