"""Stepping a gymnasium 1.x vector env (autoreset NEXT_STEP) and telling real transitions apart.

In NEXT_STEP mode, when sub-env i ends an episode at step t (terminated or
truncated), step t returns that episode's *final* observation, and step t+1 resets
sub-env i: it ignores the action, returns the reset observation, reward 0 and both
flags False. Step t+1 is therefore not a transition of the MDP. :class:`VecRunner`
marks it ``valid=False`` so learners can drop it from rollouts, GAE, losses and
replay buffers. (gymnasium 0.29 reset in the same step and put the final
observation in ``info``; code written that way silently trains on the fake step.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from gymnasium.vector import VectorEnv

from demokit.spaces import flatten_batch


@dataclass
class VecStep:
    """One vector step. ``next_obs`` is the raw (possibly nested) batch the env returned,
    ``next_flat`` its float32 (N, D) flattening. For a valid sub-env whose episode ended,
    ``next_obs`` is that episode's final observation. ``valid[i]`` is False on autoreset steps.
    ``episode_returns`` / ``episode_lengths`` list the episodes completed in this step."""

    next_obs: Any
    next_flat: np.ndarray
    reward: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    valid: np.ndarray
    episode_returns: list[float]
    episode_lengths: list[int]


class VecRunner:
    """Wraps a NEXT_STEP vector env: current observations, the autoreset mask, episode stats.

    ``obs`` / ``flat_obs``: the observation each sub-env's next action will be taken at.
    ``next_valid``: whether the *next* step of each sub-env will be a real transition
    (False right after an episode end).
    """

    def __init__(self, venv: VectorEnv) -> None:
        self.venv = venv
        self.num_envs = int(venv.num_envs)
        self.observation_space = venv.single_observation_space
        self.action_space = venv.single_action_space
        self.obs: Any = None
        self.flat_obs = np.zeros((self.num_envs, 0), dtype=np.float32)
        self.next_valid = np.ones(self.num_envs, dtype=bool)
        self._ep_return = np.zeros(self.num_envs, dtype=np.float64)
        self._ep_length = np.zeros(self.num_envs, dtype=np.int64)

    def reset(self, *, seed: int | None = None) -> np.ndarray:
        """Reset all sub-envs (sub-env i gets seed+i); returns the flat observations."""
        self.obs, _ = self.venv.reset(seed=seed)
        self.flat_obs = flatten_batch(self.observation_space, self.obs)
        self.next_valid[:] = True
        self._ep_return[:] = 0.0
        self._ep_length[:] = 0
        return self.flat_obs

    def step(self, actions: np.ndarray) -> VecStep:
        """Step all sub-envs with ``actions`` (ignored by the env on autoreset steps)."""
        valid = self.next_valid.copy()
        obs, reward, terminated, truncated, _ = self.venv.step(actions)
        reward = np.asarray(reward, dtype=np.float64)
        terminated = np.asarray(terminated, dtype=bool) & valid
        truncated = np.asarray(truncated, dtype=bool) & valid
        done = terminated | truncated
        self._ep_return += np.where(valid, reward, 0.0)
        self._ep_length += valid
        ended = np.flatnonzero(done)
        returns = [float(self._ep_return[i]) for i in ended]
        lengths = [int(self._ep_length[i]) for i in ended]
        self._ep_return[ended] = 0.0
        self._ep_length[ended] = 0
        self.next_valid = ~done
        self.obs = obs
        self.flat_obs = flatten_batch(self.observation_space, obs)
        return VecStep(next_obs=obs, next_flat=self.flat_obs, reward=reward, terminated=terminated, truncated=truncated,
                       valid=valid, episode_returns=returns, episode_lengths=lengths)
