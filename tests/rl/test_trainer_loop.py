"""The shared learn loop: stopping at the goal, keeping the best policy, reward scaling."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from demokit.errors import ConfigError
from demokit.evaluation import EvalResult
from demokit.rl import PPOConfig, PPOTrainer
from demokit.rl.common import clears_stop_value


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


def _fake_eval_returns(trainer, runs):
    """Each evaluation returns the next list of per-episode returns, repeated to the episodes asked for."""
    calls = iter(runs)

    def evaluate(episodes=20, seed=None, *, deterministic=True):
        r = np.resize(np.asarray(next(calls), dtype=np.float64), episodes)
        return EvalResult(returns=r, lengths=np.ones(episodes, dtype=np.int64))

    trainer.evaluate = evaluate


def test_clears_stop_value_known_answers():
    r = np.array([1.0, 2.0, 3.0, 4.0, 5.0])  # mean 3, sample std sqrt(2.5): se = sqrt(2.5 / 5) = sqrt(0.5)
    se = math.sqrt(0.5)
    assert clears_stop_value(r, 3.0) and not clears_stop_value(r, 3.0 + 1e-9)  # margin 0: the mean alone
    assert clears_stop_value(r, 3.0 - se - 1e-9, 1.0) and not clears_stop_value(r, 3.0 - se + 1e-9, 1.0)
    assert clears_stop_value(r, 3.0 - 2 * se - 1e-9, 2.0) and not clears_stop_value(r, 3.0 - 2 * se + 1e-9, 2.0)
    assert clears_stop_value(np.full(50, 7.0), 7.0, 3.0)  # no spread: no margin needed
    # the HalfCheetah case: 48 episodes at 5200 and 2 flipped at 2000: mean 5072, se 89.6 (sample std 633.4 over
    # sqrt 50): clears 5000 alone, not by one se (4982.4)
    flips = np.array([5200.0] * 48 + [2000.0] * 2)
    assert clears_stop_value(flips, 5000.0) and not clears_stop_value(flips, 5000.0, 1.0)
    assert abs(float(np.std(flips, ddof=1)) / math.sqrt(50) - 89.58) < 0.01
    with pytest.raises(ValueError):
        clears_stop_value(np.array([1.0]), 0.0, 1.0)


def test_stop_margin_goes_on_past_a_confirmation_within_its_standard_error():
    trainer = PPOTrainer(dict(env_id="CartPole-v1", num_envs=8, n_steps=32, total_timesteps=10 * 256,
                              eval_every=200, stop_value=100, device="cpu", eval_episodes=2, final_eval_episodes=4,
                              stop_margin_se=1.0))
    # check 1: quick (120, 120) passes, the confirmation's 4 returns 120, 120, 60, 140 (mean 110, se = std / sqrt 3
    # = 29.6 / 1.73 = 17.1): 92.9 < 100 goes on; check 2: quick (120, 120) and the rest (120, 120): no spread, stop
    _fake_eval_returns(trainer, [[120, 120], [60, 140], [120, 120], [120, 120]])
    result = trainer.learn()
    assert trainer.iterations == 2 and result.reached_threshold and result.mean_return == 120
    trainer.close()


def test_stop_margin_zero_is_the_mean_alone():
    # the same evaluations at the default (margin 0): the first confirmation (mean 110) stops the run
    trainer = PPOTrainer(dict(env_id="CartPole-v1", num_envs=8, n_steps=32, total_timesteps=10 * 256,
                              eval_every=200, stop_value=100, device="cpu", eval_episodes=2, final_eval_episodes=4))
    assert trainer.config.stop_margin_se == 0.0
    _fake_eval_returns(trainer, [[120, 120], [60, 140]])
    result = trainer.learn()
    assert trainer.iterations == 1 and result.mean_return == 110
    trainer.close()


@pytest.mark.parametrize("bad", [dict(stop_margin_se=-0.5), dict(stop_margin_se=float("nan")),
                                 dict(stop_margin_se=float("inf")), dict(stop_margin_se=1.0, final_eval_episodes=1)])
def test_stop_margin_is_validated(bad):
    with pytest.raises(ConfigError, match="stop_margin_se"):
        PPOConfig(env_id="CartPole-v1", **bad)


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
