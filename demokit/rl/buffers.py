"""Storage of experience: PPO's on-policy ``Rollout`` and the off-policy learners' ``ReplayBuffer``
(with ``n_steps`` > 1, n-step transitions built per env by ``NStepWindows``).

Both keep observations in their space's dtype and shape (``demokit.rollout.storage_spec``:
a Box as it is, e.g. uint8 images stay uint8; Dict / Tuple spaces flat float32) until the
policy's encoder prepares them.
"""

from __future__ import annotations

from collections import deque
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


class NStepWindows:
    """Per-env windows that turn each env's stream of 1-step transitions into n-step ones.

    Transition t of an env leaves as (s_t, a_t, R, s_{t+m}, terminated, truncated, discount) with
    ``R = sum_{i<m} gamma^i r_{t+i}`` and ``discount = gamma^m``: m = n once n newer steps of its env
    are in, or fewer when the episode ends inside the window; then s_{t+m} is the episode's final
    observation and terminated / truncated are its last step's (a terminated window does not
    bootstrap, a truncated one bootstraps from the final observation with gamma^m). So a
    transition reaches the buffer n - 1 env steps after it happened (at once at an episode's end).
    The entropy bonuses of the intermediate steps are not added (SAC's target adds only the last
    one's, as other n-step SAC implementations do). Pending windows are not part of a saved
    training state: as in-progress episodes, they are dropped on resume."""

    def __init__(self, n: int, gamma: float, num_envs: int) -> None:
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        self.n = int(n)
        self.powers = [float(gamma) ** i for i in range(self.n + 1)]
        self._windows: list[deque[tuple[np.ndarray, np.ndarray, float]]] = [deque() for _ in range(int(num_envs))]

    def pending(self) -> int:
        """Transitions waiting in the windows."""
        return sum(len(w) for w in self._windows)

    def push(self, env_index: np.ndarray, obs: np.ndarray, action: np.ndarray, reward: np.ndarray,
             next_obs: np.ndarray, terminated: np.ndarray, truncated: np.ndarray) -> dict[str, np.ndarray] | None:
        """Add B 1-step transitions (``env_index[b]``: the env of row b, in step order); returns the n-step
        transitions that left their windows (the buffer's fields plus ``discount``), or None."""
        rows: list[tuple[Any, ...]] = []
        powers = self.powers
        for b in range(int(np.shape(reward)[0])):
            w = self._windows[int(env_index[b])]
            w.append((np.array(obs[b]), np.array(action[b]), float(reward[b])))
            term, trunc = bool(terminated[b]), bool(truncated[b])
            if not (term or trunc) and len(w) < self.n:
                continue
            m = len(w)
            ret = 0.0
            returns = [0.0] * m
            for j in range(m - 1, -1, -1):  # R_j = r_j + gamma * R_{j+1}
                ret = w[j][2] + powers[1] * ret
                returns[j] = ret
            leaving = m if (term or trunc) else 1
            for j in range(leaving):
                rows.append((w[j][0], w[j][1], returns[j], next_obs[b], term, trunc, powers[m - j]))
            if term or trunc:
                w.clear()
            else:
                w.popleft()
        if not rows:
            return None
        cols = list(zip(*rows))
        return {"obs": np.stack(cols[0]), "action": np.stack(cols[1]),
                "reward": np.asarray(cols[2], dtype=np.float32), "next_obs": np.stack(cols[3]),
                "terminated": np.asarray(cols[4], dtype=bool), "truncated": np.asarray(cols[5], dtype=bool),
                "discount": np.asarray(cols[6], dtype=np.float32)}


class ReplayBuffer:
    """A ring buffer of transitions in preallocated numpy arrays.

    Stores ``obs`` / ``next_obs`` (the real next observation, the final one at episode ends):
    flat float32 (capacity, obs_dim) by default, or with ``obs_shape`` / ``obs_dtype`` in the
    stored layout of ``demokit.rollout.storage_spec`` (a Box's own shape and dtype: uint8
    images stay uint8; the policy's ``preprocess`` converts a sampled batch), ``action`` (int64
    index for Discrete, float32 vectors for Box), ``reward``, ``terminated`` and ``truncated``.
    ``add`` inserts a batch at once; ``sample`` returns a dict of tensors drawn uniformly with
    the buffer's seeded generator.

    With ``n_steps`` > 1 the added 1-step transitions pass through :class:`NStepWindows` (one per
    env of ``num_envs``, discount ``gamma``) and the buffer stores n-step transitions: ``reward``
    is the discounted n-step sum and the extra field ``discount`` (float32, gamma^m) is the
    factor of the bootstrap from ``next_obs``.
    """

    FIELDS = ("obs", "action", "reward", "next_obs", "terminated", "truncated")

    def __init__(self, capacity: int, obs_dim: int, *, action_shape: tuple[int, ...] = (),
                 action_dtype: Any = np.int64, obs_shape: tuple[int, ...] | None = None, obs_dtype: Any = np.float32,
                 seed: int = 0, device: str | torch.device = "cpu", n_steps: int = 1, gamma: float = 0.99,
                 num_envs: int = 1) -> None:
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
        self.windows = NStepWindows(n_steps, gamma, num_envs) if n_steps > 1 else None
        #: the stored fields: FIELDS, plus ``discount`` with n-step windows
        self.fields: tuple[str, ...] = self.FIELDS
        if self.windows is not None:
            self.discount = np.zeros(capacity, dtype=np.float32)
            self.fields = (*self.FIELDS, "discount")
        self.pos = 0
        self.size = 0
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return self.size

    def add(self, obs: np.ndarray, action: np.ndarray, reward: np.ndarray, next_obs: np.ndarray,
            terminated: np.ndarray, truncated: np.ndarray, *, env_index: np.ndarray | None = None) -> None:
        """Insert a batch of B 1-step transitions (all arrays with leading axis B, in step order). With
        n-step windows, ``env_index`` (B,) names each row's env (unset: all env 0) and the n-step
        transitions that leave the windows are stored."""
        if self.windows is None:
            self._store(obs, action, reward, next_obs, terminated, truncated)
            return
        b = int(np.shape(reward)[0])
        idx = np.zeros(b, dtype=np.int64) if env_index is None else np.asarray(env_index)
        out = self.windows.push(idx, obs, action, reward, next_obs, terminated, truncated)
        if out is not None:
            self._store(**out)

    def _store(self, obs: np.ndarray, action: np.ndarray, reward: np.ndarray, next_obs: np.ndarray,
               terminated: np.ndarray, truncated: np.ndarray, discount: np.ndarray | None = None) -> None:
        b = int(np.shape(reward)[0])
        if b == 0:
            return
        if b > self.capacity:  # only the newest ``capacity`` survive anyway
            sl = slice(b - self.capacity, b)
            obs, action, reward, next_obs = obs[sl], action[sl], reward[sl], next_obs[sl]
            terminated, truncated = terminated[sl], truncated[sl]
            discount = None if discount is None else discount[sl]
            b = self.capacity
        idx = (self.pos + np.arange(b)) % self.capacity
        self.obs[idx] = obs
        self.action[idx] = action
        self.reward[idx] = reward
        self.next_obs[idx] = next_obs
        self.terminated[idx] = terminated
        self.truncated[idx] = truncated
        if discount is not None:
            self.discount[idx] = discount
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
        return {name: torch.from_numpy(getattr(self, name)[idx]).to(self.device) for name in self.fields}
