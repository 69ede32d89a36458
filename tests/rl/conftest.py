"""Fixtures of the rl tests: a scripted env with known episode ends."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces

SCRIPTED_ID = "DemokitScripted-v0"

#: (length, how it ends) of the scripted episodes, cycled: "term" or "trunc".
SCRIPT = ((3, "term"), (2, "trunc"), (4, "term"))


class ScriptedEnv(gym.Env):
    """Observation [episode index, step in episode]; reward = 10 * episode index + step
    (1-based); episode k lasts SCRIPT[k % 3][0] steps and ends as SCRIPT[k % 3][1]. The
    final observation of an episode is [k, length] -- never seen as a reset observation,
    whose step is 0."""

    observation_space = spaces.Box(-1e6, 1e6, shape=(2,), dtype=np.float32)
    action_space = spaces.Discrete(2)

    def __init__(self) -> None:
        self.episode = -1
        self.t = 0

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.episode += 1
        self.t = 0
        return np.array([self.episode, 0], dtype=np.float32), {}

    def step(self, action):
        length, kind = SCRIPT[self.episode % len(SCRIPT)]
        self.t += 1
        end = self.t >= length
        reward = float(10 * self.episode + self.t)
        obs = np.array([self.episode, self.t], dtype=np.float32)
        return obs, reward, end and kind == "term", end and kind == "trunc", {}


if SCRIPTED_ID not in gym.registry:
    gym.register(SCRIPTED_ID, entry_point=ScriptedEnv)


@pytest.fixture
def scripted_env_id() -> str:
    return SCRIPTED_ID
