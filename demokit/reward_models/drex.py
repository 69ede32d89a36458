"""D-REX (Brown, Goo & Niekum, 2019): T-REX with a ranking made from plain demonstrations.

D-REX needs no ranked data. It trains a behavioural-cloning policy on the demonstrations
(demokit's BC), rolls it out with increasing action noise (epsilon-greedy: with
probability ``epsilon`` a uniformly random action, else the BC action) at the levels
``noise_levels`` (``rollouts_per_level`` episodes each), and ranks the rollouts by their
noise: less noise = better (score ``-epsilon``). The demonstrations themselves rank
above every rollout (``include_demos``). T-REX's Bradley-Terry fit
(:mod:`demokit.reward_models.trex`) then learns ``R(s)`` from that ranking; the reward's
sign and scale are T-REX's (a sigmoid of the standardised ``R``, in (0, 1)).

The env is the dataset's (its ``env_id``); every random source (BC, noise, env resets)
is derived from the model's seed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from demokit.config import option
from demokit.errors import ConfigError, UserError
from demokit.reward_models.expert import check_positive
from demokit.reward_models.registry import register_reward_model
from demokit.reward_models.trex import RANKED_PIPELINE_DEFAULTS, RankedRewardConfig, Trajectory, TrexRewardModel
from demokit.seeding import derive_seed
from demokit.spaces import flatten_batch


@dataclass(frozen=True)
class DrexConfig(RankedRewardConfig):
    """Config of :class:`DrexRewardModel`."""

    type: str = option("drex", "reward model type (registry name)")
    noise_levels: tuple[float, ...] = option((1.0, 0.75, 0.5, 0.25, 0.02), "epsilon-greedy noise of the BC "
                                                                           "rollouts (one ranked group each)")
    rollouts_per_level: int = option(5, "BC rollouts (episodes) per noise level")
    include_demos: bool = option(True, "rank the demonstrations above every rollout")
    bc_epochs: int = option(30, "epochs of the BC policy")

    registered_as = "drex"

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive(self, "rollouts_per_level", "bc_epochs")
        if not self.noise_levels or any(not 0.0 <= e <= 1.0 for e in self.noise_levels):
            raise ConfigError(f"DrexConfig.noise_levels must be epsilons in [0, 1], got {self.noise_levels!r}")
        if len(set(self.noise_levels)) < 2 and not self.include_demos:
            raise ConfigError("DrexConfig needs two noise levels (or include_demos) to make a ranking")


def noisy_rollouts(policy: Any, env_id: str, epsilon: float, episodes: int, seed: int) -> list[np.ndarray]:
    """``episodes`` epsilon-greedy episodes of ``policy`` in ``env_id``: their flat observations (T, D) each."""
    from demokit.envs import make_env

    env = make_env(env_id, seed=seed)
    rng = np.random.default_rng(derive_seed(seed, "drex", "noise"))
    env.action_space.seed(derive_seed(seed, "drex", "random_actions"))
    out = []
    try:
        for k in range(episodes):
            obs, _ = env.reset(seed=derive_seed(seed, "drex", "episode", k))
            rows = []
            done = False
            while not done:
                rows.append(obs)
                if rng.random() < epsilon:
                    action = env.action_space.sample()
                else:
                    action = policy.act(np.asarray(obs)[None], deterministic=True)[0]
                obs, _, terminated, truncated, _ = env.step(action)
                done = terminated or truncated
            out.append(flatten_batch(env.observation_space, np.stack(rows)).astype(np.float32))
    finally:
        env.close()
    return out


#: D-REX's own defaults per env and learner: T-REX's (``RANKED_PIPELINE_DEFAULTS``), and on MountainCar-v0 (DQN)
#: a longer horizon and a stop at the goal's level (measured, 100 evaluation episodes: docs/benchmarks.md, the zoo's
#: score table, session 8). The noise-ranked reward discounted at DQN's tuned 0.98 rated a policy that sometimes
#: misses the flag as high as one that never does (``benchmarks/ranked_reward_probe.py``): seed 2 oscillated to
#: 150k (0.903). With gamma 0.99 the misses cost more, but the env's -110 stop (0.927 of this expert) on 20
#: episodes let seed 2 stop at 75k on such a policy (0.945). Stopping at -107 (0.95) confirmed on 50 episodes:
#: seeds 0 / 1 / 2 1.018 / 1.011 / 0.981 (145k; 200k cap, the best checked policy, 85k; 80k env steps). T-REX keeps
#: the tuned row (its ranked data are another's; its three seeds are >= 0.95 without it).
DREX_PIPELINE_DEFAULTS: dict[str, dict[str, dict[str, dict[str, Any]]]] = {
    **RANKED_PIPELINE_DEFAULTS,
    "MountainCar-v0": {"dqn": {**RANKED_PIPELINE_DEFAULTS["MountainCar-v0"]["dqn"],
                               "rl": {"gamma": 0.99, "stop_value": -107.0, "final_eval_episodes": 50}}},
}


@register_reward_model("drex")
class DrexRewardModel(TrexRewardModel):
    """D-REX: T-REX on noise-ranked BC rollouts (see the module docstring)."""

    config_class = DrexConfig
    pipeline_defaults = DREX_PIPELINE_DEFAULTS
    title = "D-REX"

    def ranked_trajectories(self) -> list[Trajectory]:
        """BC rollouts ranked by their noise (plus the demonstrations on top)."""
        from demokit.il import train_bc

        ds = self.expert.dataset
        if not ds.env_id:
            raise UserError(f"D-REX rolls out a BC policy in the dataset's env, but {ds.path} records no env id")
        bc = train_bc(ds, {"epochs": self.cfg.bc_epochs, "eval_episodes": 0, "seed": derive_seed(self._seed, "drex",
                                                                                                 "bc"),
                           "device": str(self.device)})
        self.bc_policy = bc.policy.cpu()
        trajs = []
        for level, eps in enumerate(self.cfg.noise_levels):
            for obs in noisy_rollouts(self.bc_policy, ds.env_id, eps, self.cfg.rollouts_per_level,
                                      derive_seed(self._seed, "drex", "level", level)):
                trajs.append(Trajectory(torch.as_tensor(obs, device=self.device), -float(eps)))
        if self.cfg.include_demos:
            trajs += [Trajectory(self.expert.observations[s], 1.0) for s in self.expert.episode_slices()]
        return trajs
