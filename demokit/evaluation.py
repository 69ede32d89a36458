"""Evaluating a policy: exactly N episodes, seeded, batched across envs."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from demokit.data.episode import obs_stack
from demokit.envs import make_env
from demokit.errors import UserError
from demokit.policies.base import Policy
from demokit.spaces import check_same_spaces


@dataclass(frozen=True)
class EvalResult:
    """Returns and lengths of ``episodes`` evaluation episodes (shape (episodes,))."""

    returns: np.ndarray
    lengths: np.ndarray

    @property
    def mean_return(self) -> float:
        return float(np.mean(self.returns))

    @property
    def std_return(self) -> float:
        return float(np.std(self.returns))

    @property
    def episodes(self) -> int:
        return int(len(self.returns))

    def as_dict(self) -> dict[str, float | int]:
        return {"mean_return": self.mean_return, "std_return": self.std_return, "episodes": self.episodes,
                "mean_length": float(np.mean(self.lengths))}


def evaluate_policy(policy: Policy, env_id: str, *, episodes: int = 20, seed: int = 0, deterministic: bool = True,
                    max_parallel: int = 32) -> EvalResult:
    """Run ``episodes`` episodes of ``env_id`` (episode i reset with seed ``seed + i``).

    Up to ``max_parallel`` envs step together so the policy is called on a batch.
    The result does not depend on ``max_parallel``. Spaces are checked first.
    """
    if episodes < 1:
        raise UserError(f"episodes must be >= 1, got {episodes}")
    probe = make_env(env_id)
    check_same_spaces(what="the policy", expected_obs=policy.observation_space, expected_act=policy.action_space,
                      actual_obs=probe.observation_space, actual_act=probe.action_space, against=f"env {env_id}")
    probe.close()
    if not deterministic:
        policy.seed(seed)
    returns = np.zeros(episodes)
    lengths = np.zeros(episodes, dtype=np.int64)
    next_ep = 0
    slots: list[tuple[object, int, object]] = []  # (env, episode index, current obs)
    envs = [make_env(env_id) for _ in range(min(max_parallel, episodes))]
    for env in envs:
        if next_ep < episodes:
            obs, _ = env.reset(seed=seed + next_ep)
            slots.append((env, next_ep, obs))
            next_ep += 1
    while slots:
        actions = policy.act(obs_stack([s[2] for s in slots]), deterministic=deterministic)
        new_slots = []
        for (env, ep, _), action in zip(slots, actions):
            obs, reward, terminated, truncated, _ = env.step(action)
            returns[ep] += float(reward)
            lengths[ep] += 1
            if terminated or truncated:
                if next_ep < episodes:
                    obs, _ = env.reset(seed=seed + next_ep)
                    new_slots.append((env, next_ep, obs))
                    next_ep += 1
            else:
                new_slots.append((env, ep, obs))
        slots = new_slots
    for env in envs:
        env.close()
    return EvalResult(returns=returns, lengths=lengths)
