"""Expert data for reward-model / GAIL tests: a hand-written CartPole controller.

``action = 1 if theta + 0.5*theta_dot + 0.01*x + 0.1*x_dot > 0 else 0`` balances the
pole for the full 500 steps from every start state we tried. Used until the committed
``datasets/cartpole-v1-expert.h5`` exists (and kept for deterministic tests).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from demokit.data import DatasetWriter, Episode
from demokit.envs import make_env
from tests.helpers import cartpole_controller


def cartpole_episode(seed: int, *, controller=cartpole_controller) -> Episode:
    """One CartPole-v1 episode of ``controller`` from ``reset(seed=seed)``."""
    env = make_env("CartPole-v1")
    obs, _ = env.reset(seed=seed)
    observations, actions, rewards = [], [], []
    terminated = truncated = False
    while not (terminated or truncated):
        action = int(controller(obs)[0])
        observations.append(obs)
        actions.append(action)
        obs, reward, terminated, truncated, _ = env.step(action)
        rewards.append(reward)
    env.close()
    flags = np.zeros(len(rewards), dtype=bool)
    term, trunc = flags.copy(), flags.copy()
    term[-1], trunc[-1] = terminated, truncated
    return Episode(observations=np.asarray(observations, dtype=np.float32), actions=np.asarray(actions),
                   rewards=np.asarray(rewards), terminated=term, truncated=trunc,
                   final_observation=np.asarray(obs, dtype=np.float32)[None], seed=seed)


def write_cartpole_expert(path: str | Path, *, episodes: int = 10, seed: int = 0,
                          controller=cartpole_controller) -> Path:
    """Write ``episodes`` controller episodes (reset seeds seed, seed+1, ...) to ``path``."""
    env = make_env("CartPole-v1")
    with DatasetWriter(path, observation_space=env.observation_space, action_space=env.action_space,
                       env_id="CartPole-v1", provenance={"policy": "hand-written controller"}) as writer:
        for i in range(episodes):
            writer.add_episode(cartpole_episode(seed + i, controller=controller))
    env.close()
    return Path(path)


def random_cartpole_batch(n: int, *, seed: int = 0) -> dict[str, np.ndarray]:
    """``n`` transitions of uniformly random actions in CartPole-v1 (a clearly non-expert distribution)."""
    env = make_env("CartPole-v1")
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    out: dict[str, list] = {"obs": [], "action": [], "reward": [], "next_obs": [], "terminated": [], "truncated": []}
    for _ in range(n):
        action = int(rng.integers(2))
        next_obs, reward, terminated, truncated, _ = env.step(action)
        for key, value in zip(out, (obs, action, reward, next_obs, terminated, truncated)):
            out[key].append(value)
        obs = env.reset()[0] if terminated or truncated else next_obs
    env.close()
    return {"obs": np.asarray(out["obs"], dtype=np.float32), "action": np.asarray(out["action"], dtype=np.int64),
            "reward": np.asarray(out["reward"], dtype=np.float32),
            "next_obs": np.asarray(out["next_obs"], dtype=np.float32),
            "terminated": np.asarray(out["terminated"]), "truncated": np.asarray(out["truncated"])}


#: device parametrisation: CUDA runs where a GPU exists
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(),
                                                                 reason="needs a CUDA device"))]
