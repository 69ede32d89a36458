"""DQN pieces an outer loop (GAIL) relies on: the replay buffer and reward_fn."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from demokit.errors import UserError
from demokit.rl import DQNTrainer, ReplayBuffer


def test_replay_buffer_wraps_around_and_samples_tensors():
    buf = ReplayBuffer(5, 2, seed=0)
    for start in (0, 3):
        k = 3
        obs = np.arange(start, start + k, dtype=np.float32)[:, None].repeat(2, 1)
        buf.add(obs, np.arange(start, start + k), np.arange(start, start + k, dtype=np.float32), obs + 0.5,
                np.zeros(k, bool), np.zeros(k, bool))
    assert len(buf) == 5 and buf.pos == 1
    # slot 0 was overwritten by item 5; items 1..5 remain
    assert sorted(buf.reward.tolist()) == [1, 2, 3, 4, 5]
    batch = buf.sample(64)
    assert set(batch) == {"obs", "action", "reward", "next_obs", "terminated", "truncated"}
    assert batch["obs"].shape == (64, 2) and batch["obs"].dtype == torch.float32
    torch.testing.assert_close(batch["next_obs"], batch["obs"] + 0.5)
    torch.testing.assert_close(batch["reward"], batch["obs"][:, 0])


def test_reward_fn_replaces_sampled_rewards_without_touching_the_buffer():
    trainer = DQNTrainer(dict(env_id="CartPole-v1", learning_starts=0, batch_size=32, device="cpu", seed=0))
    new = trainer.collect(100)
    assert set(new) == {"obs", "action", "reward", "next_obs", "terminated", "truncated"}
    assert len(new["reward"]) == 100 == len(trainer.replay)
    stored = trainer.replay.reward.copy()
    seen = []

    def reward_fn(batch):
        seen.append(batch["obs"].shape[0])
        return -torch.ones(batch["obs"].shape[0])

    stats = trainer.train_steps(3, reward_fn=reward_fn)
    assert seen == [32, 32, 32] and stats["train/gradient_steps"] == 3
    np.testing.assert_array_equal(trainer.replay.reward, stored)
    trainer.close()


def test_dqn_refuses_box_actions():
    with pytest.raises(UserError, match="ppo"):
        DQNTrainer(dict(env_id="Pendulum-v1", device="cpu"))


def test_target_network_follows_the_schedule():
    trainer = DQNTrainer(dict(env_id="CartPole-v1", learning_starts=0, target_update_interval=4, device="cpu",
                              learning_rate=1e-2))
    trainer.collect(64)
    target0 = [p.clone() for p in trainer.target.parameters()]
    trainer.train_steps(3)
    assert all(torch.equal(a, b) for a, b in zip(target0, trainer.target.parameters()))
    trainer.train_steps(1)  # 4th gradient step: hard copy
    assert all(torch.equal(a, b) for a, b in zip(trainer.policy.parameters(), trainer.target.parameters()))
    trainer.close()
