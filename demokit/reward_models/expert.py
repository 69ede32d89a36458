"""``ExpertData``: a demokit expert dataset as tensors on a device, with the features the reward models share.

Every reward model of the zoo (AIRL, SQIL, PWIL, RED, T-REX / D-REX) reads its expert
demonstrations through this class, so they all see the same thing:

* ``observations`` / ``next_observations``: flat float32 (N, D) (``spaces.flatten_batch``);
* ``actions``: the env's actions as stored (int64 (N,) for Discrete, float32 (N, A) otherwise);
* ``terminated`` / ``truncated``: bool (N,); ``episode_starts`` / ``episode_lengths`` /
  ``episode_returns``: per-episode numpy arrays;
* ``obs_mean`` / ``obs_std``: the expert's per-dimension statistics (a constant dimension gets std 1);
* :meth:`features`: ``[normalised obs (clipped to +-10), action encoding]`` with GAIL's
  encoding (one-hot for Discrete), the input of every (s, a) network.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, Literal

import numpy as np
import torch

from demokit.config import from_mapping
from demokit.data.checks import check_values
from demokit.data.dataset import DemoDataset, load_dataset
from demokit.data.episode import obs_index
from demokit.errors import ConfigError, DatasetError
from demokit.reward_models.base import (Transitions, as_transition_batch, device_tensor, num_transitions,
                                        rename_di_engine_keys, with_rewards)
from demokit.reward_models.gail import OBS_CLIP, action_features_dim, encode_actions
from demokit.spaces import flat_dim, flatten_batch
from demokit.transitions import TransitionBatch


def open_expert_dataset(source: DemoDataset | str | None, who: str) -> DemoDataset:
    """The expert dataset (a loaded one or a path); a ConfigError without one, a DatasetError when empty."""
    if source is None:
        raise ConfigError(f"{who} needs expert demonstrations: set expert_data_path to a demokit .h5 dataset")
    data = source if isinstance(source, DemoDataset) else load_dataset(source)
    if len(data) == 0:
        raise DatasetError(f"expert dataset {data.path} holds no transitions")
    return data


class ExpertData:
    """The expert transitions of ``dataset`` (the first ``rows`` when given) on ``device``."""

    def __init__(self, dataset: DemoDataset, device: torch.device, *, who: str, rows: int | None = None) -> None:
        self.dataset = dataset
        self.device = device
        self.observation_space = dataset.observation_space
        self.action_space = dataset.action_space
        self.obs_dim = flat_dim(self.observation_space)
        self.action_dim = action_features_dim(self.action_space)
        n = len(dataset) if rows is None else min(len(dataset), int(rows))
        cols = dataset.read(["observations", "actions", "next_observations", "terminated", "truncated"])
        if n < len(dataset):
            cols = {k: obs_index(v, slice(0, n)) for k, v in cols.items()}
        obs = flatten_batch(self.observation_space, cols["observations"])
        next_obs = flatten_batch(self.observation_space, cols["next_observations"])
        check_values(dataset.path, obs, cols["actions"], self.action_space, who)
        check_values(dataset.path, next_obs, cols["actions"], self.action_space, who)
        self.observations = device_tensor(obs, device).to(torch.float32)
        self.next_observations = device_tensor(next_obs, device).to(torch.float32)
        self.actions = device_tensor(np.asarray(cols["actions"]), device)
        self.terminated = device_tensor(np.asarray(cols["terminated"]), device).bool().reshape(-1)
        self.truncated = device_tensor(np.asarray(cols["truncated"]), device).bool().reshape(-1)
        keep = dataset.episode_starts < n
        self.episode_starts = np.asarray(dataset.episode_starts[keep], dtype=np.int64)
        self.episode_lengths = np.minimum(np.asarray(dataset.episode_lengths[keep], dtype=np.int64),
                                          n - self.episode_starts)
        self.episode_returns = (np.asarray(dataset.episode_returns[keep], dtype=np.float64) if dataset.has_rewards
                                else None)  # None: a reward-free dataset
        std = self.observations.std(0, unbiased=False)
        self.obs_mean = self.observations.mean(0)
        self.obs_std = torch.where(std > 1e-6, std, torch.ones_like(std))

    def __len__(self) -> int:
        return int(self.observations.shape[0])

    @property
    def feature_dim(self) -> int:
        """Width of :meth:`features`."""
        return self.obs_dim + self.action_dim

    def normalize(self, flat_obs: torch.Tensor) -> torch.Tensor:
        """Observations (B, D) standardised with the expert's statistics, clipped to +-OBS_CLIP."""
        x = (flat_obs.to(self.device, torch.float32) - self.obs_mean) / self.obs_std
        return x.clamp(-OBS_CLIP, OBS_CLIP)

    def features(self, flat_obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """(B, feature_dim): normalised observations and the action encoding (one-hot for Discrete)."""
        return torch.cat([self.normalize(flat_obs), encode_actions(self.action_space, actions.to(self.device))], 1)

    def expert_features(self) -> torch.Tensor:
        """:meth:`features` of every expert transition."""
        return self.features(self.observations, self.actions)

    def batch(self, data: Transitions) -> TransitionBatch:
        """Any transition data as a TransitionBatch on the device (flat observations)."""
        b = as_transition_batch(data, observation_space=self.observation_space, device=self.device)
        obs = b.observations.to(self.device, torch.float32).reshape(len(b), -1)
        nxt = None if b.next_observations is None else b.next_observations.to(self.device, torch.float32).reshape(
            len(b), -1)
        return TransitionBatch(observations=obs, actions=b.actions.to(self.device), rewards=b.rewards.to(self.device),
                               next_observations=nxt, terminated=b.terminated.to(self.device),
                               truncated=b.truncated.to(self.device),
                               log_probs=None if b.log_probs is None else b.log_probs.to(self.device))

    def transitions(self, index: torch.Tensor, rewards: torch.Tensor | None = None) -> TransitionBatch:
        """The expert transitions at ``index`` (B,) as a TransitionBatch (rewards: given, else zeros)."""
        index = index.to(self.device)
        r = torch.zeros(index.shape[0], device=self.device) if rewards is None else rewards.to(self.device)
        return TransitionBatch(observations=self.observations[index], actions=self.actions[index], rewards=r,
                               next_observations=self.next_observations[index], terminated=self.terminated[index],
                               truncated=self.truncated[index])

    def episode_slices(self) -> list[slice]:
        """One slice per expert episode (rows of the tensors above)."""
        return [slice(int(s), int(s + n)) for s, n in zip(self.episode_starts, self.episode_lengths)]


def expert_data_for(config: Any, device: torch.device, who: str, dataset: DemoDataset | None = None,
                    rows: int | None = None) -> ExpertData:
    """The ExpertData of a model: ``dataset`` when given, else ``config.expert_data_path``."""
    return ExpertData(open_expert_dataset(dataset if dataset is not None else config.expert_data_path, who),
                      device, who=who, rows=rows)


def model_config(cls: type, config: Any) -> Any:
    """A reward model's typed config from a mapping (DI-engine key names accepted; ``hidden_dims: 64`` is one
    layer) or the config itself; unknown keys are a ConfigError naming the closest known key."""
    if isinstance(config, cls):
        return config
    if config is not None and not hasattr(config, "keys"):
        raise ConfigError(f"a {cls.__name__} must be built from a mapping, got {type(config).__name__}")
    values = rename_di_engine_keys(dict(config or {}), cls)
    if isinstance(values.get("hidden_dims"), int):
        values["hidden_dims"] = (values["hidden_dims"],)
    return from_mapping(cls, values)


def check_positive(cfg: Any, *names: str) -> None:
    """ConfigError unless every field ``names`` of ``cfg`` is > 0."""
    for name in names:
        value = getattr(cfg, name)
        if value is not None and not value > 0:
            raise ConfigError(f"{type(cfg).__name__}.{name} must be > 0, got {value}")


#: the reward models' stop on Pendulum-v1 (RED's and AIRL's rows): stricter than the env's -200 (0.94 of the
#: reference expert; RED's seed 0 stopped at its first -200 check at 0.949 over 100 fresh episodes): -180 (0.957)
#: on all 20 check episodes at once, not on the 5-episode quick check (Pendulum's return depends on the start
#: state: the expert itself scores -189 on seeds 1 and 2's five quick-check episodes, -149.5 on their 20). RED,
#: seeds 0-2: 0.979 / 0.969 / 0.974 (docs/benchmarks.md, the zoo's score table, session 7); AIRL with its gradient
#: penalty (session 8)
PENDULUM_STOP: dict[str, float | int] = {"stop_value": -180.0, "eval_episodes": 20}

#: sign conventions of a bounded similarity reward ``0 < r <= r_max`` (RED, PWIL): ``positive`` keeps it,
#: ``negative`` pays ``r - r_max`` (``-r_max < r - r_max <= 0``: the same ranking of transitions, but every
#: step costs, so ending an episode sooner pays: for tasks solved by ending it, e.g. Acrobot-v1, MountainCar-v0)
BoundedForm = Literal["positive", "negative"]
BOUNDED_FORMS: tuple[str, ...] = ("positive", "negative")


def check_form(cfg: Any) -> None:
    """ConfigError unless ``cfg.reward_form`` is one of :data:`BOUNDED_FORMS`."""
    if cfg.reward_form not in BOUNDED_FORMS:
        raise ConfigError(f"{type(cfg).__name__}.reward_form must be one of {', '.join(BOUNDED_FORMS)}, "
                          f"got {cfg.reward_form!r}")


def bounded_form(rewards: Any, r_max: float, form: str) -> Any:
    """``rewards`` (in (0, r_max]) in the sign convention ``form`` (:data:`BOUNDED_FORMS`)."""
    return rewards - r_max if form == "negative" else rewards


def check_type(cfg: Any, name: str) -> None:
    """ConfigError unless ``cfg.type`` is ``name``; hidden widths must be positive."""
    if cfg.type != name:
        raise ConfigError(f"{type(cfg).__name__}.type must be {name!r}, got {cfg.type!r}")
    hidden = getattr(cfg, "hidden_dims", (1,))
    if not hidden or min(hidden) < 1:
        raise ConfigError(f"{type(cfg).__name__}.hidden_dims must be positive widths like 64,64, got {hidden!r}")


def rows_of(batch: TransitionBatch, index: torch.Tensor) -> TransitionBatch:
    """The transitions of ``batch`` at ``index`` (B,)."""
    return TransitionBatch(**{f.name: (None if getattr(batch, f.name) is None else getattr(batch, f.name)[index])
                              for f in dataclasses.fields(batch)})


def concat_batches(batches: list[TransitionBatch]) -> TransitionBatch:
    """One TransitionBatch of several (optional fields kept only when every batch has them)."""
    if len(batches) == 1:
        return batches[0]
    return TransitionBatch(**{f.name: (None if any(getattr(b, f.name) is None for b in batches)
                                       else torch.cat([getattr(b, f.name) for b in batches]))
                              for f in dataclasses.fields(batches[0])})


def relabel(data: Transitions, rewards: Callable[[Transitions], torch.Tensor]) -> Transitions:
    """``estimate``'s body for the zoo: NEW data with ``reward`` = ``rewards(data)`` (empty data: an empty copy)."""
    if num_transitions(data) == 0:
        return data if isinstance(data, TransitionBatch) else ([] if not isinstance(data, Mapping) else dict(data))
    return with_rewards(data, rewards(data))
