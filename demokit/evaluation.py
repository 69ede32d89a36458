"""Evaluating a policy: exactly N episodes, seeded, batched across envs (on the rollout engine)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from demokit.envs import make_env, make_vec_env
from demokit.errors import UserError
from demokit.policies.actors import BatchActor, with_history
from demokit.policies.base import Policy
from demokit.results import as_dict
from demokit.rollout import EpisodeTable, VecStepper, run_episodes
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

    @property
    def mean_length(self) -> float:
        return float(np.mean(self.lengths))

    def as_dict(self) -> dict[str, float | int]:
        return as_dict(self, exclude=("returns", "lengths"),
                       include=("mean_return", "std_return", "episodes", "mean_length"))


def evaluate_policy(policy: Policy, env_id: str, *, episodes: int = 20, seed: int = 0, deterministic: bool = True,
                    max_parallel: int = 32) -> EvalResult:
    """Run ``episodes`` episodes of ``env_id`` (episode i reset with seed ``seed + i``).

    Up to ``max_parallel`` envs step together so the policy is called on a batch (the
    envs still running, in env order). The result does not depend on ``max_parallel``
    for policies whose actions do not depend on the batch. Spaces are checked first.
    """
    if episodes < 1:
        raise UserError(f"episodes must be >= 1, got {episodes}")
    probe = make_env(env_id)
    check_same_spaces(what="the policy", expected_obs=policy.observation_space, expected_act=policy.action_space,
                      actual_obs=probe.observation_space, actual_act=probe.action_space, against=f"env {env_id}")
    probe.close()
    n_envs = min(max_parallel, episodes)
    actor = with_history(BatchActor(policy, deterministic=deterministic, seed=seed), policy, n_envs)
    table = EpisodeTable(episodes)
    stepper = VecStepper(make_vec_env(env_id, n_envs, infos=False))
    try:
        run_episodes(stepper, actor, table, seed=seed, n_episodes=episodes, record=False)
    finally:
        stepper.close()
    return EvalResult(returns=table.returns, lengths=table.lengths)
