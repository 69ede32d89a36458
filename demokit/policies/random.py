"""A uniformly random policy (the baseline every table compares against)."""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces

from demokit.policies.base import Policy
from demokit.spaces import batch_size_of


class RandomPolicy(Policy):
    """Samples each action uniformly from ``action_space`` (seeded by :meth:`seed`)."""

    def __init__(self, observation_space: spaces.Space, action_space: spaces.Space, *, seed: int | None = None) -> None:
        self.observation_space = observation_space
        self.action_space = action_space
        if seed is not None:
            self.seed(seed)

    def seed(self, seed: int) -> None:
        self.action_space.seed(int(seed))

    def act(self, obs: Any, *, deterministic: bool = True) -> np.ndarray:
        n = batch_size_of(self.observation_space, obs)
        return np.stack([np.asarray(self.action_space.sample()) for _ in range(n)])
