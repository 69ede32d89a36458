"""The reward-model contract (DI-engine's ``BaseRewardModel``) and transition-data helpers.

A reward model learns a reward from data and replaces the rewards of transitions
with its own estimate. The serial IRL round (docs/reward-models.md) calls, in order::

    reward_model.collect_data(new_data)      # 1. data collected by the current policy
    reward_model.train()                     # 2. fit the reward model ...
    reward_model.clear_data(iter)            #    ... and release its training set
    batch = reward_model.estimate(batch)     # 3. the RL learner trains on these rewards

Transition data (:data:`Transitions`) comes in three shapes:

* a :class:`~demokit.transitions.TransitionBatch` (what demokit's trainers hand over);
* a **list of transition dicts** (DI-engine's shape): one dict per step with at least
  ``obs`` and ``action`` (usually also ``reward``, ``next_obs`` and ``done`` or
  ``terminated`` / ``truncated``); values are torch tensors, numpy arrays or numbers;
* a **batch dict**: the same keys, each holding a whole batch (leading axis), e.g. a
  replay-buffer sample.

:func:`as_transition_batch` turns the DI-engine shapes into a ``TransitionBatch`` (the
adapter at this API's edge). ``estimate`` never mutates what it is given: it returns
data of the same shape whose ``reward`` entries are new objects (:func:`with_rewards`).
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Union

import numpy as np
import torch
from gymnasium import spaces

from demokit.config import from_mapping
from demokit.data.episode import obs_stack
from demokit.errors import ConfigError, UserError
from demokit.spaces import flatten_batch
from demokit.transitions import TransitionBatch

Transitions = Union[TransitionBatch, Sequence[Mapping[str, Any]], Mapping[str, Any]]

#: what a reward model may need from the learner (``BaseRewardModel.needs``)
LEARNER_FACTS = frozenset({"gamma", "log_probs", "next_observations", "policy_log_probs", "replay"})

#: DI-engine's config key -> demokit's (accepted when the model's config class has demokit's key)
DI_ENGINE_KEYS = {"input_size": "input_dims", "hidden_size": "hidden_dims", "data_path": "expert_data_path"}


class BaseRewardModel(ABC):
    """A learned reward: ``estimate`` / ``train`` / ``collect_data`` / ``clear_data`` (seed 002's abstract methods).

    Subclasses are constructed as ``Model(config, device, tb_logger)`` (see
    :func:`demokit.reward_models.create_reward_model`) and registered with
    ``@register_reward_model("name")``. ``load_expert_data``, ``state_dict`` and
    ``load_state_dict`` have working defaults (nothing to load; the weights of every
    ``torch.nn.Module`` attribute), so a model written to the seed's contract runs;
    ``training_state`` / ``load_training_state`` (continuing an interrupted run) only where a model
    implements them (GAIL, SQIL).

    Class attributes a model may declare (the pipelines read them; they never branch on a
    model's type):

    * ``config_class``: its frozen config dataclass (keys are checked before anything
      trains; DI-engine's key names :data:`DI_ENGINE_KEYS` are accepted); None: the
      config mapping is passed through unchecked;
    * ``needs``: what it needs from the learner, a subset of :data:`LEARNER_FACTS`:
      ``"gamma"`` (its config's ``gamma`` is set to the learner's discount unless given),
      ``"log_probs"`` (only learners whose batches carry the acting policy's
      log-probabilities fit), ``"policy_log_probs"`` (learners whose trainer gives log pi(a|s) of the
      policy it acts with for any transitions, bound by ``use_policy_log_probs``: PPO, SAC, DQN's
      epsilon-greedy policy; e.g. AIRL), ``"next_observations"`` (every learner provides them), ``"replay"``
      (only off-policy learners, which train on replay minibatches, fit; e.g. SQIL).
    * ``pipeline_defaults``: ``{env_id: {learner: {"rl" | "reward_model": {key: value}}}}``, the
      model's measured settings under the user's (the IRL pipelines apply them);
    * ``default_learners``: ``{env_id: learner}`` when the model imitates best with a
      learner other than the pipeline's first fitting one;
    * ``name``: set by the registry to the registered name.
    """

    name: ClassVar[str] = ""
    config_class: ClassVar[type | None] = None
    needs: ClassVar[frozenset[str]] = frozenset()
    pipeline_defaults: ClassVar[Mapping[str, Mapping[str, Mapping[str, Mapping[str, Any]]]]] = {}
    default_learners: ClassVar[Mapping[str, str]] = {}

    @abstractmethod
    def estimate(self, data: Transitions) -> Transitions:
        """Return NEW data of the same shape with ``reward`` replaced by the model's reward."""

    @abstractmethod
    def train(self) -> dict[str, float] | None:
        """Fit the model on the collected data (and expert data); returns training figures."""

    @abstractmethod
    def collect_data(self, data: Transitions) -> None:
        """Add newly collected transitions to the model's training set."""

    @abstractmethod
    def clear_data(self, iter: int | None = None) -> None:
        """Release the training set (models with a period: when ``iter`` is a multiple of it; no ``iter``: now)."""

    def load_expert_data(self, data: Any = None) -> None:  # noqa: B027 - a default, not abstract
        """Load expert demonstrations (only models that learn from experts need this)."""

    def _modules(self) -> dict[str, torch.nn.Module]:
        return {k: v for k, v in vars(self).items() if isinstance(v, torch.nn.Module)}

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Everything needed to reproduce ``estimate`` (tensors only). Default: the weights of
        every ``torch.nn.Module`` attribute, keyed ``<attribute>.<parameter>``."""
        return {f"{attr}.{k}": v.detach().cpu().clone() for attr, module in self._modules().items()
                for k, v in module.state_dict().items()}

    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        """Inverse of :meth:`state_dict` (default: loads every ``torch.nn.Module`` attribute)."""
        modules = self._modules()
        unknown = sorted({k.split(".", 1)[0] for k in state} - set(modules))
        if unknown:
            raise UserError(f"{type(self).__name__} has no module {unknown[0]!r} to load state into; "
                            f"it has: {', '.join(sorted(modules)) or 'none'}")
        for attr, module in modules.items():
            prefix = f"{attr}."
            module.load_state_dict({k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)})

    def training_state(self) -> dict[str, Any]:
        """Everything needed to CONTINUE training it (a learner's ``save_training_state`` includes it):
        :meth:`state_dict` plus optimiser states, random streams and the collected data; tensors and
        plain containers only (loaded with ``weights_only=True``). Default: none (a UserError naming the
        model): only models that implement it can be resumed."""
        raise UserError(f"the {self.name or type(self).__name__} reward model has no resumable training state "
                        f"(training_state / load_training_state): its run cannot be saved and continued")

    def load_training_state(self, state: Mapping[str, Any]) -> None:
        """Inverse of :meth:`training_state` (default: a UserError, as there)."""
        self.training_state()

    @classmethod
    def parse_config(cls, config: Any) -> Any:
        """The typed config of ``config`` (a mapping with DI-engine or demokit keys, or the config itself).

        Without a ``config_class`` the mapping is returned as a dict. Unknown keys: one
        ConfigError naming the closest known key.
        """
        target = cls.config_class
        if target is None or isinstance(config, target):
            return config if target is not None else dict(config or {})
        if config is not None and not isinstance(config, Mapping):
            raise ConfigError(f"a {cls.__name__} config must be a mapping or {target.__name__}, "
                              f"got {type(config).__name__}")
        return from_mapping(target, rename_di_engine_keys(dict(config or {}), target))


def rename_di_engine_keys(config: dict[str, Any], target: type) -> dict[str, Any]:
    """``config`` with DI-engine's key names renamed to ``target``'s fields.

    The names: :data:`DI_ENGINE_KEYS` plus the config class's own ``di_engine_keys``
    (a ClassVar ``{DI-engine's key: field}``, e.g. T-REX's ``min_snippet_length``). A
    DI-engine key the class lists in ``di_engine_unmapped`` (``{key: why}``: a setting
    with no equivalent) is a ConfigError saying why; giving both names of one setting is
    a ConfigError.
    """
    fields = {f.name for f in dataclasses.fields(target)}
    unmapped = getattr(target, "di_engine_unmapped", {})
    for key in config:
        if key in unmapped and key not in fields:
            raise ConfigError(f"{target.__name__}: DI-engine's key {key!r} has no equivalent here: {unmapped[key]}")
    out = dict(config)
    for theirs, ours in {**DI_ENGINE_KEYS, **getattr(target, "di_engine_keys", {})}.items():
        if theirs in out and ours in fields and theirs not in fields:
            if ours in out:
                raise ConfigError(f"{target.__name__}: give {ours!r} or DI-engine's {theirs!r}, not both")
            out[ours] = out.pop(theirs)
    return out


# -- transition data -------------------------------------------------------------------

def _stack(values: list[Any]) -> Any:
    """Stack per-step values: tensors with ``torch.stack``, anything else (arrays, numbers,
    nested dicts/tuples of arrays) with :func:`~demokit.data.episode.obs_stack`."""
    first = values[0]
    if isinstance(first, torch.Tensor):
        return torch.stack([torch.as_tensor(v, device=first.device) for v in values])
    return obs_stack(values)


def as_batch(data: Transitions, keys: Sequence[str]) -> dict[str, Any]:
    """The fields ``keys`` of ``data`` as one batch dict (a list of dicts is stacked once).

    Missing keys are left out. Nothing in ``data`` is modified or aliased for writing.
    """
    if isinstance(data, Mapping):
        return {k: data[k] for k in keys if k in data}
    items = list(data)
    if not items:
        return {}
    return {k: _stack([it[k] for it in items]) for k in keys if k in items[0]}


def num_transitions(data: Transitions) -> int:
    """Number of transitions in a TransitionBatch, a list of dicts or a batch dict (0 for an empty list)."""
    if isinstance(data, TransitionBatch):
        return len(data)
    if isinstance(data, Mapping):
        value = data["obs"]
        while isinstance(value, (Mapping, tuple)):
            value = next(iter(value.values())) if isinstance(value, Mapping) else value[0]
        return int(value.shape[0])
    return len(data)


def _like(rewards: torch.Tensor, template: Any) -> Any:
    """``rewards`` converted to the container type, dtype, device and shape of ``template``."""
    if isinstance(template, torch.Tensor):
        dtype = template.dtype if template.is_floating_point() else torch.float32
        return rewards.to(device=template.device, dtype=dtype).reshape(template.shape).clone()
    if isinstance(template, np.ndarray):
        dtype = template.dtype if np.issubdtype(template.dtype, np.floating) else np.float32
        return rewards.detach().cpu().numpy().astype(dtype).reshape(template.shape)
    if isinstance(template, (float, int, np.number)):
        return float(rewards.reshape(-1)[0])
    return rewards.clone()


def with_rewards(data: Transitions, rewards: torch.Tensor) -> Transitions:
    """A new copy of ``data`` whose ``reward`` is ``rewards`` (shape (B,)).

    The new rewards take the type (tensor / array / float), dtype, device and shape of
    the rewards they replace, so learners see what they would have seen from the env.
    The caller's list and dicts are not touched; other values are shared (read-only).
    A TransitionBatch gets float32 rewards on its device.
    """
    rewards = rewards.detach().reshape(-1)
    if isinstance(data, TransitionBatch):
        if rewards.shape[0] != len(data):
            raise ValueError(f"batch has {len(data)} transitions but {rewards.shape[0]} rewards were estimated")
        return data.with_rewards(rewards)
    if isinstance(data, Mapping):
        out = dict(data)
        template = data.get("reward")
        if template is None:
            out["reward"] = rewards.clone()
        else:
            if isinstance(template, torch.Tensor):
                template_shape = template.shape
            else:
                template_shape = np.shape(template)
            if int(np.prod(template_shape)) != rewards.shape[0]:
                raise ValueError(f"batch has {int(np.prod(template_shape))} rewards but {rewards.shape[0]} were estimated")
            out["reward"] = _like(rewards, template)
        return out
    items = list(data)
    if len(items) != rewards.shape[0]:
        raise ValueError(f"{len(items)} transitions but {rewards.shape[0]} rewards were estimated")
    if not items:
        return []
    template = items[0].get("reward")
    if isinstance(template, torch.Tensor):  # one device transfer, then views per item
        per_item = list(rewards.to(device=template.device,
                                   dtype=template.dtype if template.is_floating_point() else torch.float32).unbind(0))
        return [{**it, "reward": r.reshape(it["reward"].shape).clone()} for it, r in zip(items, per_item)]
    host = rewards.cpu().numpy()
    if isinstance(template, np.ndarray):
        return [{**it, "reward": np.asarray(r, dtype=it["reward"].dtype if np.issubdtype(it["reward"].dtype, np.floating)
                                            else np.float32).reshape(it["reward"].shape)}
                for it, r in zip(items, host)]
    return [{**it, "reward": float(r)} for it, r in zip(items, host)]


def device_tensor(value: Any, device: torch.device) -> torch.Tensor:
    """``value`` (tensor, array, nested numbers) as a tensor on ``device`` (read-only arrays are copied)."""
    if isinstance(value, torch.Tensor):
        return value.to(device)
    array = np.asarray(value)
    if not array.flags.writeable:
        array = array.copy()
    return torch.as_tensor(array, device=device)


def flat_observation_tensor(value: Any, space: spaces.Space | None, device: torch.device) -> torch.Tensor:
    """(B, D) float32: tensors are reshaped; arrays / nested dicts are flattened with ``space``."""
    if isinstance(value, torch.Tensor):
        return value.to(device=device, dtype=torch.float32).reshape(value.shape[0], -1)
    host = _to_numpy(value)
    flat = flatten_batch(space, host) if space is not None else np.asarray(host, np.float32).reshape(len(host), -1)
    return device_tensor(flat, device).to(torch.float32)


def _to_numpy(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _to_numpy(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return tuple(_to_numpy(v) for v in value)
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    return np.asarray(value)


def as_transition_batch(data: Transitions, *, observation_space: spaces.Space | None = None,
                        device: torch.device | str = "cpu") -> TransitionBatch:
    """The adapter at the API edge: any :data:`Transitions` shape as a TransitionBatch on ``device``.

    DI-engine dicts: ``obs`` and ``action`` are required; ``reward`` (default 0),
    ``next_obs`` (default None), ``log_prob``, and the end flags are optional. Only
    ``terminated`` marks a termination; data with ``done`` but neither ``terminated`` nor
    ``truncated`` (DI-engine's shape) uses ``done`` as termination. Caveat: DI-engine's
    ``done`` also marks time-limit ends, which then count as terminations; convert such
    data with ``demokit convert --env ENV`` to tell them apart. Observations are
    flattened with ``observation_space`` (nested Dict / Tuple observations need it).
    """
    device = torch.device(device)
    if isinstance(data, TransitionBatch):
        return data
    batch = as_batch(data, ("obs", "action", "reward", "next_obs", "terminated", "truncated", "done", "log_prob"))
    for key in ("obs", "action"):
        if key not in batch:
            raise UserError(f"transition data needs an {key!r} entry; got keys {sorted(batch)}")
    obs = flat_observation_tensor(batch["obs"], observation_space, device)
    n = int(obs.shape[0])
    actions = device_tensor(_to_numpy(batch["action"]) if not isinstance(batch["action"], torch.Tensor)
                            else batch["action"], device)
    rewards = (device_tensor(batch["reward"], device).to(torch.float32).reshape(-1) if "reward" in batch
               else torch.zeros(n, device=device))
    next_obs = (flat_observation_tensor(batch["next_obs"], observation_space, device) if "next_obs" in batch else None)

    def flag(key: str) -> torch.Tensor:
        return device_tensor(batch[key], device).reshape(-1).bool()

    zeros = torch.zeros(n, dtype=torch.bool, device=device)
    if "terminated" in batch or "truncated" in batch:
        terminated = flag("terminated") if "terminated" in batch else zeros
        truncated = flag("truncated") if "truncated" in batch else zeros
    else:
        terminated = flag("done") if "done" in batch else zeros
        truncated = zeros
    log_probs = device_tensor(batch["log_prob"], device).to(torch.float32).reshape(-1) if "log_prob" in batch else None
    if int(actions.shape[0]) != n:
        raise UserError(f"{n} observations but {int(actions.shape[0])} actions in the batch")
    try:
        return TransitionBatch(observations=obs, actions=actions, rewards=rewards, next_observations=next_obs,
                               terminated=terminated, truncated=truncated, log_probs=log_probs)
    except ValueError as exc:
        raise UserError(f"transition data: {exc}") from None
