"""Small helpers shared by tests (import as tests.helpers)."""

from __future__ import annotations

import numpy as np


def cartpole_controller(obs: np.ndarray) -> np.ndarray:
    """A hand-written CartPole expert (scores 500): push towards where the pole falls."""
    obs = np.asarray(obs, dtype=np.float64).reshape(-1, 4)
    x, x_dot, theta, theta_dot = obs.T
    return (theta + 0.5 * theta_dot + 0.01 * x + 0.1 * x_dot > 0).astype(np.int64)


def leaning_pole_frames(n: int, rng: np.random.Generator, *, size: int = 36, stack: int = 2,
                        with_state: bool = False) -> tuple[np.ndarray, ...]:
    """``n`` synthetic CartPole-like frames (uint8 (n, stack, size, size), the stack's frames equal) and
    labels (int64 (n,)): a white background, a grey track, a dark 5x4 cart anywhere on it and a
    1-pixel grey pole that leans 1 or 2 pixels at its top; label 1 when it leans right. Like the
    rendered frames, ~95% of the pixels are white and the label is in a few dim pixels. ``with_state``:
    also the scene's state, float32 (n, 2): the cart's column and the lean in pixels."""
    x = np.full((n, stack, size, size), 255, np.uint8)
    lean = rng.choice([-1, 1], n) * rng.integers(1, 3, n)
    cart = rng.integers(6, size - 6, n)
    x[:, :, 28, :] = 180
    for i in range(n):
        c = int(cart[i])
        x[i, :, 26:30, c - 2:c + 3] = 0
        for r in range(12, 26):
            x[i, :, r, c + int(round(lean[i] * (26 - r) / 14))] = 120
    labels = (lean > 0).astype(np.int64)
    if with_state:
        return x, labels, np.stack([cart, lean], axis=1).astype(np.float32)
    return x, labels


def write_leaning_poles(path, episodes: int, steps: int, seed: int, with_state: bool = False):
    """A dataset of :func:`leaning_pole_frames` (uint8 (2, 36, 36), env ``pixels36-gray-stack2/CartPole-v1``)
    whose action is the lean's side: ``episodes`` episodes of ``steps`` steps (terminated). ``with_state``:
    the scene's state (cart column, lean) is the per-step extra ``state_observation``
    (what ``collect --record-state`` writes)."""
    import gymnasium as gym

    from demokit.data import DatasetWriter, Episode

    rng = np.random.default_rng(seed)
    space = gym.spaces.Box(0, 255, (2, 36, 36), np.uint8)
    extras = {"state_observation": ((2,), np.dtype(np.float32))} if with_state else None
    with DatasetWriter(path, observation_space=space, action_space=gym.spaces.Discrete(2),
                       env_id="pixels36-gray-stack2/CartPole-v1", mode="overwrite", extras=extras) as w:
        for _ in range(episodes):
            x, y, *state = leaning_pole_frames(steps + 1, rng, with_state=with_state)
            done = np.zeros(steps, bool)
            done[-1] = True
            w.add_episodes([Episode(observations=x[:steps], actions=y[:steps], rewards=np.ones(steps),
                                    terminated=done, truncated=np.zeros(steps, bool), final_observation=x[steps:],
                                    extras={"state_observation": state[0][:steps]} if with_state else {})])
    return path
