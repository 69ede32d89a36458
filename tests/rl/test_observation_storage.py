"""Rollouts and replay buffers keep observations in their space's dtype and shape (uint8 stays uint8)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces

from demokit.rl import DQNTrainer, PPOTrainer
from demokit.rollout import storage_spec, to_storage

PIXELS_ID = "DemokitTinyPixels-v0"


class TinyPixelsEnv(gym.Env):
    """uint8 (3, 3) frames whose pixels all equal 10 * step; episodes of 4 steps (terminated)."""

    observation_space = spaces.Box(0, 255, (3, 3), np.uint8)
    action_space = spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.zeros((3, 3), np.uint8), {}

    def step(self, action):
        self.t += 1
        return np.full((3, 3), 10 * self.t, np.uint8), float(action), self.t >= 4, False, {}


if PIXELS_ID not in gym.registry:
    gym.register(PIXELS_ID, entry_point=TinyPixelsEnv)


def test_storage_spec_keeps_boxes_and_flattens_nested_spaces():
    assert storage_spec(spaces.Box(0, 255, (2, 3), np.uint8)) == ((2, 3), np.dtype(np.uint8))
    nested = spaces.Dict({"a": spaces.Box(-1, 1, (2,)), "b": spaces.Discrete(3)})
    assert storage_spec(nested) == ((3,), np.dtype(np.float32))  # demokit flattens Discrete to its index
    flat = to_storage(nested, {"a": np.ones((4, 2), np.float32), "b": np.array([0, 1, 2, 0])})
    assert flat.shape == (4, 3) and flat.dtype == np.float32


def test_ppo_rollout_stores_uint8_frames_and_feeds_the_encoder_floats():
    trainer = PPOTrainer(dict(env_id=PIXELS_ID, num_envs=2, n_steps=6, batch_size=12, n_epochs=1, device="cpu",
                              total_timesteps=100, seed=0))
    ro = trainer.collect_rollout()
    assert ro.obs_raw.dtype == torch.uint8 and tuple(ro.obs_raw.shape) == (6, 2, 3, 3)
    assert ro.next_obs_raw.dtype == torch.uint8
    assert ro.obs.dtype == torch.float32 and tuple(ro.obs.shape) == (6, 2, 9)  # the MLP encoder's input
    torch.testing.assert_close(ro.obs, ro.obs_raw.reshape(6, 2, 9).float())
    assert ro.obs_raw[:4, 0, 0, 0].tolist() == [0, 10, 20, 30]
    assert trainer.update(ro)  # the update runs on the stored layout
    trainer.close()


def test_dqn_replay_keeps_uint8_frames():
    trainer = DQNTrainer(dict(env_id=PIXELS_ID, num_envs=2, learning_starts=0, batch_size=4, train_freq=8,
                              buffer_size=64, device="cpu", total_timesteps=100, seed=0))
    new = trainer.collect(8)
    assert trainer.replay.obs.dtype == np.uint8 and trainer.replay.obs.shape == (64, 3, 3)
    assert new["obs"].dtype == np.uint8 and new["next_obs"].shape[1:] == (3, 3)
    assert np.array_equal(new["next_obs"][:, 0, 0], new["obs"][:, 0, 0] + 10)  # transitions, no autoreset steps
    assert trainer.train_steps(2)["train/gradient_steps"] == 2.0
    trainer.close()
