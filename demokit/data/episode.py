"""The unit of demonstration data: one finished (or cut) episode.

An observation ``Obs`` is an ndarray for Box/Discrete/MultiDiscrete/MultiBinary
spaces, a ``dict[str, Obs]`` for Dict spaces and a ``tuple[Obs, ...]`` for Tuple
spaces; a *batch* of observations has the same structure with a leading axis.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Union

import numpy as np

ObsBatch = Union[np.ndarray, "dict[str, ObsBatch]", "tuple[ObsBatch, ...]"]


def obs_len(obs: Any) -> int:
    """Leading-axis length of a (possibly nested) observation batch."""
    if isinstance(obs, Mapping):
        return obs_len(next(iter(obs.values())))
    if isinstance(obs, tuple):
        return obs_len(obs[0])
    return int(np.shape(obs)[0])


def obs_map(fn: Any, obs: Any) -> Any:
    """Apply ``fn`` to every leaf array of a (possibly nested) observation batch."""
    if isinstance(obs, Mapping):
        return {k: obs_map(fn, v) for k, v in obs.items()}
    if isinstance(obs, tuple):
        return tuple(obs_map(fn, v) for v in obs)
    return fn(obs)


def obs_stack(items: list[Any]) -> Any:
    """Stack a list of single observations (same structure) into a batch."""
    first = items[0]
    if isinstance(first, Mapping):
        return {k: obs_stack([it[k] for it in items]) for k in first}
    if isinstance(first, tuple):
        return tuple(obs_stack([it[i] for it in items]) for i in range(len(first)))
    return np.stack([np.asarray(x) for x in items])


def obs_concat(items: list[Any]) -> Any:
    """Concatenate a list of observation batches along the leading axis."""
    first = items[0]
    if isinstance(first, Mapping):
        return {k: obs_concat([it[k] for it in items]) for k in first}
    if isinstance(first, tuple):
        return tuple(obs_concat([it[i] for it in items]) for i in range(len(first)))
    return np.concatenate([np.asarray(x) for x in items], axis=0)


def obs_index(obs: Any, idx: Any) -> Any:
    """Index every leaf of a batch with ``idx`` (int, slice or index array)."""
    return obs_map(lambda a: a[idx], obs)


@dataclass(frozen=True)
class Episode:
    """One episode of ``T >= 1`` steps, validated on construction.

    Fields (T = number of steps):
      observations: ObsBatch with T rows; row t is the observation the action at t saw.
      actions: (T, *action_shape) array (nested like observations for Dict/Tuple action spaces).
      rewards: (T,) float64 array, or None for reward-free data (teleoperation, robot logs):
        every episode of one dataset has rewards or none does (docs/dataset-format.md).
      terminated: (T,) bool; only the last step may be True (the MDP ended).
      truncated: (T,) bool; only the last step may be True (time limit / cut; bootstrap).
      final_observation: ObsBatch with 1 row: the observation after the last step
        (the last ``next_obs``), so ``next_obs`` of every step can be derived.
      extras: optional per-step arrays, each with T rows (e.g. ``log_prob``, ``value``).
      seed: the reset seed of the episode, or -1 when unknown.

    An episode whose last step is neither terminated nor truncated is legal but
    means it was cut short by the collector's budget; collectors mark such cuts as
    truncated so that no partial episode is ever presented as complete.
    """

    observations: Any
    actions: np.ndarray
    rewards: np.ndarray | None
    terminated: np.ndarray
    truncated: np.ndarray
    final_observation: Any
    extras: Mapping[str, np.ndarray] = field(default_factory=dict)
    seed: int = -1

    def __post_init__(self) -> None:
        counted = self.terminated if self.rewards is None else self.rewards
        T = int(np.shape(counted)[0]) if np.ndim(counted) else 0
        if T < 1:
            raise ValueError("an episode needs at least one step")
        if self.rewards is not None:
            object.__setattr__(self, "rewards", np.asarray(self.rewards, dtype=np.float64).reshape(T))
        object.__setattr__(self, "terminated", np.asarray(self.terminated, dtype=bool).reshape(T))
        object.__setattr__(self, "truncated", np.asarray(self.truncated, dtype=bool).reshape(T))
        # actions of Dict / Tuple action spaces are nested like observations
        object.__setattr__(self, "actions", obs_map(np.asarray, self.actions))
        for name, n in (("observations", obs_len(self.observations)), ("actions", obs_len(self.actions))):
            if n != T:
                raise ValueError(f"episode {name} has {n} rows but {'terminated' if self.rewards is None else 'rewards'} "
                                 f"has {T}")
        if obs_len(self.final_observation) != 1:
            raise ValueError(f"final_observation must have exactly 1 row, got {obs_len(self.final_observation)}")
        for name, arr in self.extras.items():
            if len(arr) != T:
                raise ValueError(f"episode extra {name!r} has {len(arr)} rows but the episode has {T} steps")
        if T > 1 and (self.terminated[:-1].any() or self.truncated[:-1].any()):
            raise ValueError("terminated/truncated may only be set on an episode's last step")

    def __len__(self) -> int:
        return int(self.terminated.shape[0])

    @property
    def has_rewards(self) -> bool:
        return self.rewards is not None

    @property
    def episode_return(self) -> float | None:
        """The sum of the rewards, or None for a reward-free episode."""
        return None if self.rewards is None else float(self.rewards.sum())

    @property
    def is_terminated(self) -> bool:
        return bool(self.terminated[-1])

    @property
    def is_truncated(self) -> bool:
        return bool(self.truncated[-1])

    @property
    def next_observations(self) -> Any:
        """ObsBatch with T rows: observation after each step."""
        return obs_concat([obs_index(self.observations, slice(1, None)), self.final_observation])
