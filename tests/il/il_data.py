"""Small generated datasets for the imitation tests (importable as ``il_data``).

The CartPole "expert" is the hand-written controller of ``tests.helpers`` written as a
one-layer ``NeuralPolicy`` (logits ``[0, w . obs]``), so it can be saved as a checkpoint
and used by DAgger like any trained expert. It scores 500 on every seed.
"""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

from demokit.data import DatasetWriter, Episode
from demokit.envs import make_env
from demokit.il.dagger import rollout_mixture
from demokit.policies import NeuralPolicy, Policy, make_policy, save_checkpoint

CARTPOLE = "CartPole-v1"
#: theta + 0.5 theta_dot + 0.01 x + 0.1 x_dot > 0 -> push right (tests.helpers.cartpole_controller)
CONTROLLER_WEIGHTS = (0.01, 0.1, 1.0, 0.5)


def controller_policy() -> NeuralPolicy:
    env = make_env(CARTPOLE)
    policy = make_policy(env.observation_space, env.action_space, hidden_sizes=())
    with torch.no_grad():
        layer = policy.head.linear  # no hidden layers: the head's linear layer is the whole net
        layer.weight.zero_()
        layer.bias.zero_()
        layer.weight[1] = torch.tensor(CONTROLLER_WEIGHTS)
    env.close()
    return policy.eval()


def save_controller(path: Path) -> Path:
    save_checkpoint(path, controller_policy(), algo="handcoded", env_id=CARTPOLE)
    return path


def write_episodes(path: Path, env_id: str, episodes: list[Episode], *, spaces_from: gym.Env | None = None) -> Path:
    env = spaces_from or make_env(env_id)
    with DatasetWriter(path, observation_space=env.observation_space, action_space=env.action_space,
                       env_id=env_id, mode="overwrite") as w:
        w.add_episodes(episodes)
    return path


def rollouts(env_id: str, policy: Policy, episodes: int, seed: int) -> list[Episode]:
    """``episodes`` episodes of ``policy`` (extras dropped: a plain demonstration dataset)."""
    eps = rollout_mixture(env_id, expert=policy, learner=None, beta=1.0, episodes=episodes, seed=seed,
                          rng=np.random.default_rng(seed))
    return [Episode(observations=e.observations, actions=e.actions, rewards=e.rewards, terminated=e.terminated,
                    truncated=e.truncated, final_observation=e.final_observation, seed=e.seed) for e in eps]


def write_cartpole(path: Path, episodes: int, seed: int = 0) -> Path:
    return write_episodes(path, CARTPOLE, rollouts(CARTPOLE, controller_policy(), episodes, seed))


class NoisyLinearPendulum(Policy):
    """Pendulum-v1 actions ``clip(obs . w, -2, 2) + N(0, noise^2)``: a known target for continuous BC."""

    W = np.array([-1.0, 0.5, -0.3])

    def __init__(self, noise: float, seed: int) -> None:
        env = make_env("Pendulum-v1")
        self.observation_space, self.action_space = env.observation_space, env.action_space
        self.noise = noise
        self.rng = np.random.default_rng(seed)

    def mean_action(self, obs: np.ndarray) -> np.ndarray:
        return np.clip(np.asarray(obs, dtype=np.float64) @ self.W, -2.0, 2.0)[:, None]

    def act(self, obs, *, deterministic: bool = True) -> np.ndarray:
        a = self.mean_action(obs) + self.noise * self.rng.standard_normal((len(obs), 1))
        return a.astype(np.float32)


def write_pendulum(path: Path, episodes: int, noise: float = 0.1, seed: int = 0) -> Path:
    return write_episodes(path, "Pendulum-v1", rollouts("Pendulum-v1", NoisyLinearPendulum(noise, seed), episodes, seed))


def write_empty(path: Path) -> Path:
    return write_episodes(path, CARTPOLE, [])


def write_with_nan(path: Path, where: str = "observations") -> Path:
    eps = rollouts(CARTPOLE, controller_policy(), 3, 0)
    ep = eps[1]
    obs = ep.observations.copy()
    actions = ep.actions
    if where == "observations":
        obs[7, 2] = np.nan
    else:
        obs[7, 2] = np.inf
    eps[1] = Episode(observations=obs, actions=actions, rewards=ep.rewards, terminated=ep.terminated,
                     truncated=ep.truncated, final_observation=ep.final_observation, seed=ep.seed)
    return write_episodes(path, CARTPOLE, eps)
