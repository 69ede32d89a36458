"""Tiny episode factories for the dataset-format tests (imported by tests/data/*)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from gymnasium import spaces

from demokit.data import DatasetWriter, Episode
from demokit.data.episode import obs_stack

BOX = spaces.Box(low=-1.0, high=1.0, shape=(3,), dtype=np.float32)
DISCRETE = spaces.Discrete(3)


def make_episode(obs_space: spaces.Space, act_space: spaces.Space, length: int, *, seed: int = 0,
                 terminated: bool = True, extras: dict[str, Any] | None = None) -> Episode:
    """A random episode of ``length`` steps (distinct rewards so sums are checkable)."""
    obs_space.seed(seed)
    act_space.seed(seed + 1)
    rng = np.random.default_rng(seed)
    term = np.zeros(length, dtype=bool)
    trunc = np.zeros(length, dtype=bool)
    (term if terminated else trunc)[-1] = True
    return Episode(
        observations=obs_stack([obs_space.sample() for _ in range(length)]),
        actions=obs_stack([act_space.sample() for _ in range(length)]),
        rewards=rng.normal(size=length),
        terminated=term,
        truncated=trunc,
        final_observation=obs_stack([obs_space.sample()]),
        extras={k: f(length, rng) for k, f in (extras or {}).items()},
        seed=seed,
    )


def make_episodes(obs_space: spaces.Space = BOX, act_space: spaces.Space = DISCRETE, n: int = 4, *,
                  seed: int = 0, **kwargs: Any) -> list[Episode]:
    return [make_episode(obs_space, act_space, length=2 + (seed + i) % 5, seed=seed + 10 * i,
                         terminated=i % 2 == 0, **kwargs) for i in range(n)]


def write(path: Path, episodes: list[Episode], obs_space: spaces.Space = BOX, act_space: spaces.Space = DISCRETE,
          **kwargs: Any) -> Path:
    kwargs.setdefault("env_id", "Test-v0")
    with DatasetWriter(path, observation_space=obs_space, action_space=act_space, **kwargs) as w:
        w.add_episodes(episodes)
    return path


def assert_tree_equal(a: Any, b: Any) -> None:
    """Exact equality of (possibly nested) batches, dtype included."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and list(a) == list(b)
        for k in a:
            assert_tree_equal(a[k], b[k])
    elif isinstance(a, tuple):
        assert isinstance(b, tuple) and len(a) == len(b)
        for x, y in zip(a, b):
            assert_tree_equal(x, y)
    else:
        a, b = np.asarray(a), np.asarray(b)
        assert a.dtype == b.dtype, (a.dtype, b.dtype)
        np.testing.assert_array_equal(a, b)
