"""Gymnasium 1.x NEXT_STEP autoreset: the step after an episode end is not a transition.

The scripted env (conftest) has episodes of 3 (terminated), 2 (truncated) and 4
(terminated) steps with rewards 10 * episode + step. Code that treats every vector step
as a transition (gymnasium 0.29 style) would store 12 transitions instead of 9, with
reward-0 transitions from final to reset observations, and these tests would fail.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from demokit.rl import DQNTrainer, PPOTrainer

VALID = [True, True, True, False, True, True, False, True, True, True, True, False]


def ppo(env_id, **kw):
    cfg = dict(env_id=env_id, num_envs=1, n_steps=12, batch_size=12, n_epochs=2, device="cpu",
               total_timesteps=1000, seed=0)
    cfg.update(kw)
    return PPOTrainer(cfg)


def test_rollout_marks_autoreset_steps_and_keeps_final_observations(scripted_env_id):
    trainer = ppo(scripted_env_id)
    ro = trainer.collect_rollout()
    assert ro.valid[:, 0].tolist() == VALID
    assert ro.num_valid == 9 and trainer.env_steps == 9
    assert ro.rewards[:, 0].tolist() == [1, 2, 3, 0, 11, 12, 0, 21, 22, 23, 24, 0]
    assert ro.terminated[:, 0].tolist() == [False, False, True] + [False] * 7 + [True, False]
    assert ro.truncated[:, 0].tolist() == [False] * 5 + [True] + [False] * 6
    # the true next observation at an episode end is the final one, [episode, length]
    assert ro.next_obs_raw[2, 0].tolist() == [0, 3]
    assert ro.next_obs_raw[5, 0].tolist() == [1, 2]
    assert ro.next_obs_raw[10, 0].tolist() == [2, 4]
    # the autoreset step's input is the final observation; its output the reset one
    assert ro.obs_raw[3, 0].tolist() == [0, 3] and ro.next_obs_raw[3, 0].tolist() == [1, 0]
    assert ro.episode_returns == [6.0, 23.0, 90.0]
    assert ro.episode_lengths == [3, 2, 4]
    flat = ro.valid_flat("obs_raw")
    assert flat.shape == (9, 2) and flat[:, 1].tolist() == [0, 1, 2, 0, 1, 0, 1, 2, 3]
    trainer.close()


def test_update_ignores_whatever_is_on_autoreset_steps(scripted_env_id):
    ro = ppo(scripted_env_id).collect_rollout()
    invalid = ~ro.valid
    # (values on autoreset steps are meaningful: V(final obs), the truncation bootstrap)
    garbage = {name: getattr(ro, name).clone() for name in ("rewards", "log_probs", "actions", "obs")}
    garbage["rewards"][invalid] = 1e6
    garbage["log_probs"][invalid] = 3.0
    garbage["actions"][invalid] = 1 - garbage["actions"][invalid]
    garbage["obs"][invalid] = 123.0
    ro_bad = type(ro)(**{**ro.__dict__, **garbage})
    params = []
    for rollout in (ro, ro_bad):
        trainer = ppo(scripted_env_id)  # same seed: same initial weights and minibatch order
        trainer.update(rollout)
        params.append(torch.cat([p.detach().flatten() for p in trainer.params]))
        trainer.close()
    torch.testing.assert_close(params[0], params[1])


def test_rewards_argument_replaces_env_rewards(scripted_env_id):
    ro = ppo(scripted_env_id).collect_rollout()
    with pytest.raises(ValueError):
        ppo(scripted_env_id).update(ro, rewards=torch.zeros(3))
    results = []
    for rewards in (None, ro.rewards.clone(), torch.zeros_like(ro.rewards)):
        trainer = ppo(scripted_env_id)
        trainer.update(ro, rewards=rewards)
        results.append(torch.cat([p.detach().flatten() for p in trainer.params]))
    torch.testing.assert_close(results[0], results[1])
    assert not torch.allclose(results[0], results[2])
    assert ro.rewards[0, 0].item() == 1.0  # the rollout itself is untouched


def test_dqn_collect_skips_autoreset_steps(scripted_env_id):
    trainer = DQNTrainer(dict(env_id=scripted_env_id, num_envs=1, device="cpu", buffer_size=100, seed=0))
    new = trainer.collect(9)
    assert len(trainer.replay) == 9 and trainer.env_steps == 9
    assert new["reward"].tolist() == [1, 2, 3, 11, 12, 21, 22, 23, 24]
    assert new["terminated"].tolist() == [False, False, True, False, False, False, False, False, True]
    assert new["truncated"].tolist() == [False, False, False, False, True, False, False, False, False]
    np.testing.assert_array_equal(new["next_obs"][[2, 4, 8]], [[0, 3], [1, 2], [2, 4]])
    np.testing.assert_array_equal(new["obs"][:, 1], [0, 1, 2, 0, 1, 0, 1, 2, 3])
    np.testing.assert_array_equal(trainer.replay.next_obs[:9], new["next_obs"])
    trainer.close()


def test_two_envs_give_each_env_its_own_mask(scripted_env_id):
    trainer = ppo(scripted_env_id, num_envs=2)
    ro = trainer.collect_rollout()
    assert ro.valid[:, 0].tolist() == VALID and ro.valid[:, 1].tolist() == VALID
    assert sorted(ro.episode_returns) == [6.0, 6.0, 23.0, 23.0, 90.0, 90.0]
    trainer.close()
