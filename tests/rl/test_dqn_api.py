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


def test_epsilon_greedy_log_probs_known_answers():
    from demokit.rl.dqn import MIN_ACTION_PROB, epsilon_greedy_log_probs

    greedy, actions = torch.tensor([0, 1, 2]), torch.tensor([0, 0, 2])
    got = epsilon_greedy_log_probs(greedy, actions, 0.3, 3)
    assert torch.allclose(got.exp(), torch.tensor([0.8, 0.1, 0.8]))
    assert torch.allclose(epsilon_greedy_log_probs(greedy, actions, 0.0, 3).exp(),
                          torch.tensor([1.0, MIN_ACTION_PROB, 1.0]))


def test_policy_log_probs_are_those_of_the_acting_policy():
    trainer = DQNTrainer(dict(env_id="CartPole-v1", device="cpu", exploration_initial_eps=0.5, hidden_sizes=(8,)))
    try:
        obs = torch.randn(5, 4)
        probs = torch.stack([trainer.policy_log_probs(obs, torch.full((5,), a)).exp() for a in (0, 1)], 1)
        greedy = trainer.policy.value(trainer.policy.preprocess(obs)).argmax(-1)
    finally:
        trainer.close()
    assert torch.allclose(probs.sum(1), torch.ones(5))
    assert torch.allclose(probs.gather(1, greedy[:, None]).squeeze(1), torch.full((5,), 0.75))


def test_fused_adam_trains_as_torch_optim_adam(monkeypatch):
    """DQN's optimizer (the fused kernel without torch.optim) gives the same weights as torch.optim.Adam(fused=True)."""
    import demokit.rl.dqn as dqn

    def run():
        trainer = DQNTrainer(dict(env_id="CartPole-v1", device="cpu", learning_starts=0, hidden_sizes=(8,), seed=2,
                                  lr_schedule="linear", total_timesteps=1000))
        try:
            trainer.collect(200)
            trainer.train_steps(5)
            trainer.collect(200)  # the linear schedule has moved: a new learning rate
            trainer.train_steps(5)
            return type(trainer.optimizer).__name__, [p.detach().clone() for p in trainer.policy.parameters()]
        finally:
            trainer.close()

    direct_name, direct = run()
    monkeypatch.setattr(dqn, "make_adam", lambda params, lr, **_: torch.optim.Adam(params, lr=lr, fused=True))
    optim_name, optim = run()
    assert (direct_name, optim_name) == ("FusedAdam", "Adam")
    assert all(torch.equal(a, b) for a, b in zip(direct, optim))
