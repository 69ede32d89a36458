"""PWIL (Dadashi, Hussenot, Geist & Pietquin, 2021): primal Wasserstein imitation, no adversary.

The expert's state-action pairs ``[s, a]`` (standardised with the expert's per-dimension
std, actions one-hot for Discrete) are atoms of weight ``1 / N_E``. Along each policy
episode, step ``t``'s pair gets weight ``1 / T`` (``T`` = the horizon, the env's time
limit) and is coupled greedily with the closest atoms that still have weight left
(consuming it); its coupling cost is ``c_t = sum_j w_tj * ||x_t - e_j||``. The reward is
the paper's

    r_t = alpha * exp(-beta * T * c_t / sqrt(d))          (alpha = 5, beta = 5, d = input width)

Sign and scale: ``0 < r <= alpha``; ``alpha`` at a perfect match. Being positive it pays
for living longer (right for CartPole); the atoms running out over an episode rewards
finishing only weakly. ``reward_form: negative`` pays ``r - alpha`` in ``(-alpha, 0]``
instead (every step costs: for tasks solved by ending the episode; the per-env defaults,
``pipeline_defaults``, choose it where measured).

The reward depends on the episode's history, so it is computed when the transitions are
collected (``collect_data``, in order: an episode continues where a transition's
observation equals the previous one's next observation, also across calls) and kept in
a table keyed by ``(obs, action, next_obs)``; ``estimate`` looks it up (replay
minibatches, the rollout). A transition never collected (e.g. a frozen model,
``cooptrain_reward=False``) gets the reward of a first step against all atoms.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch

from demokit.config import option
from demokit.data.dataset import DemoDataset
from demokit.devices import resolve_device
from demokit.envs import max_episode_steps
from demokit.errors import ConfigError
from demokit.reward_models.base import BaseRewardModel, Transitions, num_transitions
from demokit.reward_models.expert import (BoundedForm, bounded_form, check_form, check_positive, check_type,
                                          expert_data_for, model_config, relabel)
from demokit.reward_models.gail import encode_actions
from demokit.reward_models.registry import register_reward_model
from demokit.seeding import derive_seed
from demokit.transitions import TransitionBatch


@dataclass(frozen=True)
class PwilConfig:
    """Config of :class:`PwilRewardModel`."""

    type: str = option("pwil", "reward model type (registry name)")
    expert_data_path: str | None = option(None, "expert demonstrations: a demokit .h5 dataset")
    alpha: float = option(5.0, "reward scale alpha (the paper's 5)")
    beta: float = option(5.0, "cost sharpness beta (the paper's 5)")
    horizon: int | None = option(None, "T, steps per episode (default: the env's time limit, else the longest "
                                       "expert episode)")
    table_size: int = option(1_000_000, "transitions whose rewards are remembered for estimate (oldest dropped)")
    collect_count: int | None = option(None, "use the first N expert transitions; unset: all")
    sample_size: int | None = option(None, "atoms: a seeded random sample of N expert transitions (DI-engine's key; "
                                           "after collect_count); unset: all")
    s_size: int | None = option(None, "DI-engine's state width: checked against the data's (unset: not checked)")
    a_size: int | None = option(None, "DI-engine's action width (one-hot for Discrete): checked against the data's "
                                      "(unset: not checked)")
    reward_form: BoundedForm = option("positive", "positive (the paper's, in (0, alpha]) or negative (that minus "
                                                  "alpha, in (-alpha, 0]: ending sooner pays)")

    #: DI-engine's PWIL keys without an equivalent here, and why (ding/reward_model/pwil_irl_model.py)
    di_engine_unmapped: ClassVar[dict[str, str]] = {
        "clear_buffer_per_iters": "demokit's PWIL keeps no policy buffer to clear (its reward table follows the "
                                  "replay buffer, bounded by table_size): remove the key",
    }

    def __post_init__(self) -> None:
        check_type(self, "pwil")
        check_form(self)
        check_positive(self, "sample_size", "s_size", "a_size")
        check_positive(self, "alpha", "beta", "horizon", "table_size", "collect_count")


def _keys(*arrays: np.ndarray) -> list[bytes]:
    """One bytes key per row of the float32 arrays (B, ...) side by side."""
    rows = np.ascontiguousarray(np.concatenate([a.reshape(a.shape[0], -1).astype(np.float32) for a in arrays], 1))
    return [r.tobytes() for r in rows]


def greedy_coupling_cost(x: np.ndarray, atoms: np.ndarray, weights: np.ndarray, w: float) -> float:
    """Greedy transport of mass ``w`` from point ``x`` (d,) to ``atoms`` (N, d) with remaining ``weights`` (N,),
    closest first; ``weights`` is consumed in place. Returns the cost sum(mass * distance)."""
    dist = np.sqrt(((atoms - x) ** 2).sum(1))
    dist[weights <= 0] = np.inf
    cost = 0.0
    order = np.argsort(dist, kind="stable")
    for j in order:
        if w <= 1e-15 or not np.isfinite(dist[j]):
            break
        moved = min(w, weights[j])
        cost += moved * dist[j]
        weights[j] -= moved
        w -= moved
    return cost


#: PWIL's own defaults per env and learner for the IRL pipelines (measured, seed 0, 100 evaluation episodes:
#: docs/benchmarks.md, reward-model zoo). Acrobot-v1 is solved by ending the episode: the positive reward kept
#: PPO at -500 for 1M env steps; ``negative`` reached -81.7 (expert -86.0).
PWIL_PIPELINE_DEFAULTS: dict[str, dict[str, dict[str, dict[str, Any]]]] = {
    "Acrobot-v1": {"ppo": {"reward_model": {"reward_form": "negative"}}},
    # MountainCar-v0 is ended by reaching the flag: negative with DQN. With the horizon at the time limit (200)
    # every step carries the mass of 5 of the 10 demonstrations' atoms, so the data's rarer way up the hill is
    # paid like a non-expert's: 0.89 of the expert at a 60k cap (alpha 5 and 1 alike). horizon 500 (2 atoms a
    # step): -98.9 over 100 episodes (expert -102.9, random -200: 1.04) after 30k env steps, seed 0
    "MountainCar-v0": {"dqn": {"reward_model": {"reward_form": "negative", "horizon": 500}}},
}
#: PWIL's learner per env when none is given: SAC on Pendulum-v1 (-161.6 after 17k env steps); DQN on
#: MountainCar-v0 (the env's tuned learner: PPO does not solve it even with the env's reward)
PWIL_DEFAULT_LEARNERS: dict[str, str] = {"Pendulum-v1": "sac", "MountainCar-v0": "dqn"}


@register_reward_model("pwil")
class PwilRewardModel(BaseRewardModel):
    """PWIL's greedy-coupling reward (see the module docstring)."""

    config_class = PwilConfig
    pipeline_defaults = PWIL_PIPELINE_DEFAULTS
    default_learners = PWIL_DEFAULT_LEARNERS

    @classmethod
    def parse_config(cls, config: Any) -> PwilConfig:
        return model_config(PwilConfig, config)

    def __init__(self, config: Mapping[str, Any] | PwilConfig, device: Any = "auto", tb_logger: Any = None, *,
                 seed: int = 0, expert_data: DemoDataset | None = None) -> None:
        self.cfg = self.parse_config(config)
        self.device = device if isinstance(device, torch.device) else resolve_device(str(device))
        self.expert = expert_data_for(self.cfg, self.device, "PWIL", expert_data, self.cfg.collect_count)
        x = self.expert.expert_features().cpu().numpy().astype(np.float64)
        self._check_sizes(x.shape[1])
        self._atom_rows = np.arange(len(x))
        if self.cfg.sample_size is not None and self.cfg.sample_size < len(x):
            rng = np.random.default_rng(derive_seed(seed, "pwil", "sample"))
            self._atom_rows = np.sort(rng.choice(len(x), size=self.cfg.sample_size, replace=False))
        x = x[self._atom_rows]
        std = x.std(0)
        self.scale = np.where(std > 1e-6, std, 1.0)  # standardise [s, a] with the expert's std (paper)
        self.atoms = x / self.scale
        self.dim = self.atoms.shape[1]
        env_t = max_episode_steps(self.expert.dataset.env_id) if self.expert.dataset.env_id else None
        self.horizon = int(self.cfg.horizon or env_t or int(self.expert.episode_lengths.max()))
        self._table: OrderedDict[bytes, float] = OrderedDict()
        self._open: dict[bytes, np.ndarray] = {}  # next_obs key of an unfinished episode -> atoms' weights left

    def _check_sizes(self, width: int) -> None:
        """DI-engine's ``s_size`` / ``a_size``, when given, must be the data's widths."""
        widths = {"s_size": self.expert.obs_dim, "a_size": width - self.expert.obs_dim}
        for key, actual in widths.items():
            given = getattr(self.cfg, key)
            if given is not None and given != actual:
                raise ConfigError(f"PwilConfig.{key} is {given} but the expert data's width is {actual} (actions "
                                  f"one-hot for Discrete): leave it unset, demokit reads it from the data")

    def _points(self, b: TransitionBatch) -> np.ndarray:
        """Standardised [s, a] of the expert's layout (x - 0) / std: (B, d)."""
        obs = (b.observations.to(self.device, torch.float32) - self.expert.obs_mean) / self.expert.obs_std
        x = torch.cat([obs.clamp(-10, 10), encode_actions(self.expert.action_space, b.actions.to(self.device))], 1)
        return x.cpu().numpy().astype(np.float64) / self.scale

    def reward_of_cost(self, cost: np.ndarray | float) -> np.ndarray:
        """``alpha * exp(-beta * T * cost / sqrt(d))`` (minus alpha in the ``negative`` form)."""
        r = self.cfg.alpha * np.exp(-self.cfg.beta * self.horizon * np.asarray(cost) / math.sqrt(self.dim))
        return bounded_form(r, self.cfg.alpha, self.cfg.reward_form)

    def _fresh_weights(self) -> np.ndarray:
        return np.full(len(self.atoms), 1.0 / len(self.atoms))

    def episode_rewards(self, data: Transitions) -> np.ndarray:
        """Rewards (B,) of transitions, coupling each episode greedily in order (see the module docstring).

        Does not touch the table of collected rewards: a pure function of ``data``.
        """
        return self._couple(self.expert.batch(data), {})[0]

    def _couple(self, b: TransitionBatch, open_eps: dict[bytes, np.ndarray]) -> tuple[np.ndarray, list[bytes]]:
        points = self._points(b)
        obs = b.observations.cpu().numpy()
        nxt = b.next_observations.cpu().numpy() if b.next_observations is not None else obs
        starts, ends = _keys(obs), _keys(nxt)
        done = (b.terminated | b.truncated).cpu().numpy()
        rewards = np.empty(len(b))
        w = 1.0 / self.horizon
        for i in range(len(b)):
            weights = open_eps.pop(starts[i], None)
            if weights is None:
                weights = self._fresh_weights()
            rewards[i] = self.reward_of_cost(greedy_coupling_cost(points[i], self.atoms, weights, w))
            if not done[i]:
                open_eps[ends[i]] = weights
        act = b.actions.cpu().numpy()
        return rewards, _keys(obs, act, nxt)

    # -- the contract ----------------------------------------------------------------------
    def collect_data(self, data: Transitions) -> None:
        """Compute the rewards of newly collected transitions along their episodes and remember them."""
        if num_transitions(data) == 0:
            return
        rewards, keys = self._couple(self.expert.batch(data), self._open)
        for k, r in zip(keys, rewards):
            self._table[k] = float(r)
        while len(self._table) > self.cfg.table_size:
            self._table.popitem(last=False)
        if len(self._open) > 4096:  # episodes that never continued (e.g. after a reset of the collector)
            for k in list(self._open)[:-1024]:
                del self._open[k]

    def clear_data(self, iter: int | None = None) -> None:
        """Nothing to release: the table follows the learner's replay (bounded by ``table_size``)."""

    def train(self) -> dict[str, float]:
        """PWIL has nothing to train (no adversary)."""
        return {"table": float(len(self._table))}

    def rewards(self, data: Transitions) -> torch.Tensor:
        """Rewards (B,): the collected ones, else a first step's."""
        b = self.expert.batch(data)
        obs = b.observations.cpu().numpy()
        nxt = b.next_observations.cpu().numpy() if b.next_observations is not None else obs
        keys = _keys(obs, b.actions.cpu().numpy(), nxt)
        out = np.array([self._table.get(k, np.nan) for k in keys])
        missing = np.isnan(out)
        if missing.any():
            pts = self._points(b)[missing]
            w = 1.0 / self.horizon
            out[missing] = [self.reward_of_cost(greedy_coupling_cost(p, self.atoms, self._fresh_weights(), w))
                            for p in pts]
        return torch.as_tensor(out, dtype=torch.float32)

    def estimate(self, data: Transitions) -> Transitions:
        """New data with PWIL rewards; ``data`` is untouched."""
        return relabel(data, self.rewards)

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The coupling's constants (the table of collected rewards is not a weight: it is rebuilt)."""
        return {"scale": torch.as_tensor(self.scale), "horizon": torch.tensor(self.horizon)}

    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        self.scale = state["scale"].cpu().numpy().astype(np.float64)
        self.atoms = self.expert.expert_features().cpu().numpy().astype(np.float64)[self._atom_rows] / self.scale
        self.horizon = int(state["horizon"])
