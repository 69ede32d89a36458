"""The shared learn loop: stopping at the goal, keeping the best policy, reward scaling."""

from __future__ import annotations

import numpy as np
import torch

from demokit.evaluation import EvalResult
from demokit.rl import PPOTrainer


def _fake_evals(trainer, means):
    calls = iter(means)

    def evaluate(episodes=20, seed=None, *, deterministic=True):
        m = next(calls)
        return EvalResult(returns=np.full(episodes, float(m)), lengths=np.ones(episodes, dtype=np.int64))

    trainer.evaluate = evaluate


def _params(trainer):
    return torch.cat([p.detach().flatten() for p in trainer.policy.parameters()])


def test_budget_exhausted_keeps_the_best_checked_policy():
    # 256 vector steps per rollout, a few of them autoreset steps: 3 iterations, a check after each
    trainer = PPOTrainer(dict(env_id="CartPole-v1", num_envs=8, n_steps=32, total_timesteps=3 * 256 - 100,
                              eval_every=200, stop_value=1e9, device="cpu"))
    # three goal checks (10, 50, 20), then the final policy (20) and the best snapshot (50)
    _fake_evals(trainer, [10, 50, 20, 20, 50])
    snapshots = []
    step = trainer._iteration

    def iteration():
        stats = step()
        snapshots.append(_params(trainer))
        return stats

    trainer._iteration = iteration
    result = trainer.learn()
    assert trainer.iterations == 3
    assert result.mean_return == 50 and not result.reached_threshold
    torch.testing.assert_close(_params(trainer), snapshots[1])
    trainer.close()


def test_stops_once_the_confirming_evaluation_passes():
    trainer = PPOTrainer(dict(env_id="CartPole-v1", num_envs=8, n_steps=32, total_timesteps=10 * 256,
                              eval_every=200, stop_value=100, device="cpu", eval_episodes=5))
    # check 1: quick 50 (fail); check 2: quick 150 -> rest 150 (pass, stop)
    _fake_evals(trainer, [50, 150, 150])
    result = trainer.learn()
    assert result.reached_threshold and result.mean_return == 150
    assert trainer.iterations == 2
    trainer.close()


def test_stop_after_passes_needs_consecutive_passing_checks():
    trainer = PPOTrainer(dict(env_id="CartPole-v1", num_envs=8, n_steps=32, total_timesteps=10 * 256,
                              eval_every=200, stop_value=100, device="cpu", eval_episodes=5, stop_after_passes=2))
    # check 1 passes (quick 150, rest 150), check 2 fails (quick 50): the streak restarts;
    # checks 3 and 4 pass in a row: stop after the 4th iteration with check 4's figures
    _fake_evals(trainer, [150, 150, 50, 150, 150, 160, 160])
    result = trainer.learn()
    assert result.reached_threshold and result.mean_return == 160
    assert trainer.iterations == 4
    trainer.close()


def test_reward_scaling_is_scale_invariant():
    out = []
    for scale in (1.0, 100.0):
        trainer = PPOTrainer(dict(env_id="CartPole-v1", num_envs=2, n_steps=64, normalize_reward=True,
                                  device="cpu"))
        ro = trainer.collect_rollout()
        out.append(trainer._scale_rewards(ro.rewards * scale, ro))
        trainer.close()
    torch.testing.assert_close(out[0], out[1], rtol=1e-3, atol=1e-4)
    assert 0.01 < float(out[0].max()) < 1.0  # CartPole's +1 rewards scaled by the return std (> 1)
