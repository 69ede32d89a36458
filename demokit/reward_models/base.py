"""The reward-model contract (DI-engine's ``BaseRewardModel``) and transition-data helpers.

A reward model learns a reward from data and replaces the rewards of transitions
with its own estimate. The serial IRL round (docs/reward-models.md) calls, in order::

    reward_model.collect_data(new_data)      # 1. data collected by the current policy
    reward_model.train()                     # 2. fit the reward model ...
    reward_model.clear_data(iter)            #    ... and release its training set
    batch = reward_model.estimate(batch)     # 3. the RL learner trains on these rewards

Transition data (:data:`Transitions`) comes in the two shapes the pipelines produce:

* a **list of transition dicts** (DI-engine's shape): one dict per step with at least
  ``obs``, ``action``, ``reward``, ``next_obs`` and ``done`` (or ``terminated`` /
  ``truncated``); values are torch tensors, numpy arrays or Python numbers;
* a **batch dict**: the same keys, each holding a whole batch (leading axis), e.g. a
  replay-buffer sample.

``estimate`` never mutates what it is given: it returns a new list of new dicts, or a
new dict, whose ``reward`` entries are new objects (:func:`with_rewards`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any, Union

import numpy as np
import torch

from demokit.data.episode import obs_stack

Transitions = Union[Sequence[Mapping[str, Any]], Mapping[str, Any]]


class BaseRewardModel(ABC):
    """A learned reward: ``estimate`` / ``train`` / ``collect_data`` / ``clear_data``.

    Subclasses are constructed as ``Model(config, device, tb_logger)`` (see
    :func:`demokit.reward_models.create_reward_model`) and registered with
    ``@register_reward_model("name")``. ``state_dict()`` returns tensors only, so it
    can travel in a checkpoint's ``extra`` and be read with ``weights_only=True``.
    """

    @abstractmethod
    def estimate(self, data: Transitions) -> Transitions:
        """Return NEW data of the same shape with ``reward`` replaced by the model's reward."""

    @abstractmethod
    def train(self) -> dict[str, float]:
        """Fit the model on the collected data (and expert data); returns training figures."""

    @abstractmethod
    def collect_data(self, data: Transitions) -> None:
        """Add newly collected transitions to the model's training set."""

    @abstractmethod
    def clear_data(self, iter: int) -> None:
        """Release the training set when ``iter`` is a multiple of the configured period."""

    def load_expert_data(self) -> None:
        """Load expert demonstrations (only models that learn from experts need this)."""

    @abstractmethod
    def state_dict(self) -> dict[str, torch.Tensor]:
        """Everything needed to reproduce ``estimate`` (tensors only)."""

    @abstractmethod
    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        """Inverse of :meth:`state_dict`."""


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
    """Number of transitions in a list of dicts or a batch dict (0 for an empty list)."""
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
    """
    rewards = rewards.detach().reshape(-1)
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
