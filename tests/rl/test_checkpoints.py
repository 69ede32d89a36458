"""Trained experts round-trip through demokit checkpoints; bad files are refused."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from demokit.errors import CheckpointError
from demokit.policies import load_checkpoint
from demokit.rl import DQNTrainer, PPOTrainer, evaluate_checkpoint


def _obs_batch(env_id: str, n: int = 16) -> np.ndarray:
    import gymnasium as gym
    space = gym.make(env_id).observation_space
    space.seed(3)
    return np.stack([space.sample() for _ in range(n)])


@pytest.mark.parametrize("env_id", ["CartPole-v1", "Pendulum-v1"])
def test_ppo_checkpoint_round_trip(env_id, tmp_path):
    trainer = PPOTrainer(dict(env_id=env_id, num_envs=2, n_steps=64, total_timesteps=256, normalize_obs=True,
                              device="cpu", seed=1))
    result = trainer.learn(out=tmp_path / "p.pt", stop_at_goal=False)
    trainer.close()
    assert result.checkpoint == str(tmp_path / "p.pt") and result.env_steps >= 256
    ckpt = load_checkpoint(result.checkpoint)
    assert ckpt.algo == "ppo" and ckpt.env_id == env_id and ckpt.env_spec
    assert ckpt.training["config"]["normalize_obs"] is True
    assert ckpt.training["env_steps"] == result.env_steps
    assert ckpt.training["mean_return"] == pytest.approx(result.mean_return)
    assert set(ckpt.extra["critic"]) == set(trainer.critic.state_dict())
    # the normalisation statistics were updated in training and travel with the policy
    assert ckpt.policy.obs_norm is not None and float(ckpt.policy.obs_norm.count) > 1
    torch.testing.assert_close(ckpt.policy.obs_norm.mean, trainer.policy.obs_norm.mean)
    obs = _obs_batch(env_id)
    np.testing.assert_array_equal(ckpt.policy.act(obs), trainer.policy.act(obs))


def test_dqn_checkpoint_is_an_ordinary_qvalue_policy(tmp_path):
    trainer = DQNTrainer(dict(env_id="CartPole-v1", total_timesteps=600, learning_starts=100, train_freq=100,
                              gradient_steps=5, device="cpu", seed=2))
    trainer.learn(out=tmp_path / "q.pt", stop_at_goal=False)
    trainer.close()
    ckpt = load_checkpoint(tmp_path / "q.pt")
    assert ckpt.algo == "dqn" and ckpt.policy.arch.head == "qvalue"
    obs = _obs_batch("CartPole-v1")
    np.testing.assert_array_equal(ckpt.policy.act(obs), trainer.policy.act(obs))
    assert "target" in ckpt.extra


def test_foreign_and_truncated_files_are_refused(tmp_path):
    trainer = PPOTrainer(dict(env_id="CartPole-v1", num_envs=1, n_steps=32, total_timesteps=32, device="cpu"))
    trainer.save(tmp_path / "ok.pt")
    trainer.close()
    data = (tmp_path / "ok.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    (tmp_path / "foreign.pt").write_bytes(b"not a checkpoint at all")
    torch.save({"weights": torch.zeros(3)}, tmp_path / "other.pt")
    for name in ("cut.pt", "foreign.pt", "other.pt", "missing.pt"):
        with pytest.raises(CheckpointError):
            load_checkpoint(tmp_path / name)
        with pytest.raises(CheckpointError):
            evaluate_checkpoint({"policy": str(tmp_path / name)})
    assert evaluate_checkpoint({"policy": str(tmp_path / "ok.pt"), "episodes": 2})["episodes"] == 2
