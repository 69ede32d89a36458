"""The one policy interface used by evaluation, collection, DAgger, BC and GAIL."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np
from gymnasium import spaces


class Policy(ABC):
    """Acts on a *batch* of raw env observations (numpy in, numpy out).

    ``act(obs, deterministic=True)`` returns a (B, ...) action array valid in
    ``action_space``. ``seed(s)`` seeds the policy's own sampling generator so that
    stochastic acting is reproducible.
    """

    observation_space: spaces.Space
    action_space: spaces.Space

    @abstractmethod
    def act(self, obs: Any, *, deterministic: bool = True) -> np.ndarray:
        """Actions for a batch of observations."""

    def seed(self, seed: int) -> None:  # pragma: no cover - overridden where sampling exists
        """Seed the sampling generator (no-op for deterministic policies)."""
