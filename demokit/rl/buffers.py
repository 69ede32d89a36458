"""Storage of experience: PPO's on-policy ``Rollout`` and DQN's ``ReplayBuffer``.

Both keep observations in their space's dtype and shape (``demokit.rollout.storage_spec``:
a Box as it is, e.g. uint8 images stay uint8; Dict / Tuple spaces flat float32) until the
policy's encoder prepares them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch


@dataclass(frozen=True)
class Rollout:
    """One PPO rollout: tensors of shape (n_steps, num_envs, ...) on the trainer's device.

    obs:          (T, N, ...) the network inputs the policy/critic saw (``policy.preprocess``:
                  float32 (T, N, D) for the MLP encoder, normalised with the statistics in
                  force during collection when ``normalize_obs``, else a view of ``obs_raw``).
    obs_raw:      (T, N, *storage shape) the stored observations (``storage_spec``: a Box's
                  dtype and shape, Dict / Tuple flat float32); what a discriminator wants.
    actions:      policy-space actions: int64 (T, N) index (Discrete, 0-based) or float32
                  (T, N, A) unclipped Gaussian sample; what ``log_probs`` refer to.
    env_actions:  the actions the env received: int64 (T, N) (with the space's start) or
                  float32 (T, N, A) clipped to the Box.
    log_probs, values: float32 (T, N) at collection time. On an autoreset step the value
                  is V(final observation of the episode that just ended): GAE uses it as
                  the bootstrap of a truncated episode.
    rewards:      float32 (T, N) env rewards (0 on invalid steps).
    terminated, truncated: bool (T, N).
    next_obs_raw: like ``obs_raw``: the true next observation (the final one at episode ends).
    valid:        bool (T, N); False on autoreset steps, which are not transitions.
    last_values:  float32 (N,) V(observation after the rollout) for bootstrapping.
    episode_returns / episode_lengths: env returns/lengths of episodes completed in it.
    """

    obs: torch.Tensor
    obs_raw: torch.Tensor
    actions: torch.Tensor
    env_actions: torch.Tensor
    log_probs: torch.Tensor
    values: torch.Tensor
    rewards: torch.Tensor
    terminated: torch.Tensor
    truncated: torch.Tensor
    next_obs_raw: torch.Tensor
    valid: torch.Tensor
    last_values: torch.Tensor
    episode_returns: list[float] = field(default_factory=list)
    episode_lengths: list[int] = field(default_factory=list)

    @property
    def n_steps(self) -> int:
        return int(self.rewards.shape[0])

    @property
    def num_envs(self) -> int:
        return int(self.rewards.shape[1])

    @property
    def num_valid(self) -> int:
        """Number of real transitions (valid steps)."""
        return int(self.valid.sum())

    def valid_flat(self, name: str) -> torch.Tensor:
        """Field ``name`` with (T, N) flattened and invalid steps dropped: (num_valid, ...)."""
        x = getattr(self, name)
        return x.reshape(-1, *x.shape[2:])[self.valid.reshape(-1)]


class ReplayBuffer:
    """A ring buffer of transitions in preallocated numpy arrays.

    Stores ``obs`` / ``next_obs`` (the real next observation, the final one at episode ends):
    flat float32 (capacity, obs_dim) by default, or with ``obs_shape`` / ``obs_dtype`` in the
    stored layout of ``demokit.rollout.storage_spec`` (a Box's own shape and dtype: uint8
    images stay uint8; the policy's ``preprocess`` converts a sampled batch), ``action`` (int64
    index for Discrete, float32 vectors for Box), ``reward``, ``terminated`` and ``truncated``.
    ``add`` inserts a batch at once; ``sample`` returns a dict of tensors drawn uniformly with
    the buffer's seeded generator.
    """

    FIELDS = ("obs", "action", "reward", "next_obs", "terminated", "truncated")

    def __init__(self, capacity: int, obs_dim: int, *, action_shape: tuple[int, ...] = (),
                 action_dtype: Any = np.int64, obs_shape: tuple[int, ...] | None = None, obs_dtype: Any = np.float32,
                 seed: int = 0, device: str | torch.device = "cpu") -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.capacity = int(capacity)
        self.device = torch.device(device)
        shape = (int(obs_dim),) if obs_shape is None else tuple(obs_shape)
        self.obs = np.zeros((capacity, *shape), dtype=obs_dtype)
        self.next_obs = np.zeros((capacity, *shape), dtype=obs_dtype)
        self.action = np.zeros((capacity, *action_shape), dtype=action_dtype)
        self.reward = np.zeros(capacity, dtype=np.float32)
        self.terminated = np.zeros(capacity, dtype=bool)
        self.truncated = np.zeros(capacity, dtype=bool)
        self.pos = 0
        self.size = 0
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return self.size

    def add(self, obs: np.ndarray, action: np.ndarray, reward: np.ndarray, next_obs: np.ndarray,
            terminated: np.ndarray, truncated: np.ndarray) -> None:
        """Insert a batch of B transitions (all arrays with leading axis B)."""
        b = int(np.shape(reward)[0])
        if b == 0:
            return
        if b > self.capacity:  # only the newest ``capacity`` survive anyway
            sl = slice(b - self.capacity, b)
            obs, action, reward, next_obs = obs[sl], action[sl], reward[sl], next_obs[sl]
            terminated, truncated = terminated[sl], truncated[sl]
            b = self.capacity
        idx = (self.pos + np.arange(b)) % self.capacity
        self.obs[idx] = obs
        self.action[idx] = action
        self.reward[idx] = reward
        self.next_obs[idx] = next_obs
        self.terminated[idx] = terminated
        self.truncated[idx] = truncated
        self.pos = int((self.pos + b) % self.capacity)
        self.size = min(self.capacity, self.size + b)

    def sample(self, batch_size: int) -> dict[str, torch.Tensor]:
        """``batch_size`` transitions drawn uniformly (with replacement): a dict of fresh tensors."""
        return {k: v[0] for k, v in self.sample_many(1, batch_size).items()}

    def sample_many(self, n: int, batch_size: int) -> dict[str, torch.Tensor]:
        """``n`` independent minibatches in one gather: tensors of shape (n, batch_size, ...)."""
        if self.size == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        idx = self.rng.integers(0, self.size, size=(int(n), int(batch_size)))
        return {name: torch.from_numpy(getattr(self, name)[idx]).to(self.device) for name in self.FIELDS}
