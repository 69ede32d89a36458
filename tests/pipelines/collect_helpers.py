"""Helpers of the collection tests (a Dict-observation test env, random-weight checkpoints)."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from demokit.envs import make_env
from demokit.policies import make_policy, save_checkpoint

DICT_ENV_ID = "DemokitDictObsTest-v0"


class DictObsEnv(gym.Env):
    """A tiny env with Dict observations and Box actions: episode lengths 3..9 depend on the reset seed."""

    observation_space = spaces.Dict({"pos": spaces.Box(-10.0, 10.0, (2,), np.float32), "count": spaces.Discrete(16)})
    action_space = spaces.Box(-1.0, 1.0, (2,), np.float32)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.t = 0
        self.length = int(self.np_random.integers(3, 10))
        self.pos = self.np_random.uniform(-1, 1, 2).astype(np.float32)
        return self._obs(), {}

    def _obs(self) -> dict:
        return {"pos": self.pos.copy(), "count": np.int64(self.t)}

    def step(self, action):
        self.pos = np.clip(self.pos + np.asarray(action, np.float32), -10, 10).astype(np.float32)
        self.t += 1
        terminated = self.t >= self.length
        return self._obs(), float(-np.abs(self.pos).sum()), terminated, False, {}


if DICT_ENV_ID not in gym.registry:
    gym.register(DICT_ENV_ID, entry_point=DictObsEnv, max_episode_steps=20)


def write_checkpoint(path: Path, env_id: str, *, seed: int = 0, training: dict | None = None, **arch) -> Path:
    """Save a random-weight NeuralPolicy for ``env_id`` as a demokit checkpoint."""
    import torch

    env = make_env(env_id)
    torch.manual_seed(seed)
    policy = make_policy(env.observation_space, env.action_space, **arch)
    env.close()
    save_checkpoint(path, policy, algo="bc", env_id=env_id, training=training)
    return path
