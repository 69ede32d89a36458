"""``TransitionBatch``: the transitions a trainer hands to a reward model (one typed contract).

A learner builds one after each collection (the reward model's training data) and one
for each training batch (whose rewards the reward model relabels): the on-policy
rollout, or every replay minibatch off-policy. ``BaseRewardModel`` accepts it beside
DI-engine's list-of-dicts / batch-dict shapes (:func:`demokit.reward_models.as_transition_batch`
converts those at the API edge).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch


@dataclass(frozen=True, kw_only=True)
class TransitionBatch:
    """B transitions as tensors on one device (B may be 0).

    observations:      (B, ...) raw (not normalised) observations as the learner stores them: flat float32
                       (B, D) for vector spaces (``spaces.flatten_batch``), the space's dtype and shape for
                       images (e.g. uint8 (B, H, W, C)).
    actions:           the actions the env received: int64 (B,) with the space's start (Discrete),
                       or float32 (B, A) clipped to the Box (Box / MultiDiscrete / MultiBinary: (B, A)).
    rewards:           float32 (B,) the env's rewards (what a reward model replaces).
    next_observations: like ``observations``: the true next observation (the final one at an episode's end);
                       every learner fills it, None only for DI-engine data converted without ``next_obs``.
    terminated:        bool (B,) the episode ended in a terminal state (no bootstrap).
    truncated:         bool (B,) the episode was cut by a time limit (bootstrap).
    log_probs:         float32 (B,) log pi(action | observation) of the acting policy, or None when the
                       learner does not provide it (e.g. replay minibatches of DQN).
    """

    observations: torch.Tensor
    actions: torch.Tensor
    rewards: torch.Tensor
    next_observations: torch.Tensor | None
    terminated: torch.Tensor
    truncated: torch.Tensor
    log_probs: torch.Tensor | None = None

    def __post_init__(self) -> None:
        n = int(self.rewards.shape[0]) if self.rewards.dim() else -1
        if self.rewards.dim() != 1:
            raise ValueError(f"TransitionBatch.rewards must be (B,), got shape {tuple(self.rewards.shape)}")
        for name in ("observations", "actions", "next_observations", "terminated", "truncated", "log_probs"):
            value = getattr(self, name)
            if value is None:
                continue
            if not isinstance(value, torch.Tensor):
                raise TypeError(f"TransitionBatch.{name} must be a torch.Tensor, got {type(value).__name__}")
            if value.dim() == 0 or int(value.shape[0]) != n:
                raise ValueError(f"TransitionBatch.{name} has shape {tuple(value.shape)}; the batch has {n} "
                                 f"transitions")
        if self.next_observations is not None and self.observations.shape != self.next_observations.shape:
            raise ValueError(f"TransitionBatch: observations {tuple(self.observations.shape)} and next_observations "
                             f"{tuple(self.next_observations.shape)} differ in shape")
        for name in ("terminated", "truncated"):
            if getattr(self, name).dim() != 1:
                raise ValueError(f"TransitionBatch.{name} must be (B,), got {tuple(getattr(self, name).shape)}")
        if self.log_probs is not None and self.log_probs.dim() != 1:
            raise ValueError(f"TransitionBatch.log_probs must be (B,), got {tuple(self.log_probs.shape)}")

    def __len__(self) -> int:
        return int(self.rewards.shape[0])

    def with_rewards(self, rewards: torch.Tensor) -> TransitionBatch:
        """A new batch whose ``rewards`` are ``rewards`` (B,) (float32, on this batch's device)."""
        r = torch.as_tensor(rewards).detach().reshape(-1).to(self.rewards.device, torch.float32)
        return dataclasses.replace(self, rewards=r)

    def select(self, mask: torch.Tensor) -> TransitionBatch:
        """The transitions where ``mask`` (bool (B,)) is True."""
        def pick(x: Any) -> Any:
            return None if x is None else x[mask]
        return TransitionBatch(**{f.name: pick(getattr(self, f.name)) for f in dataclasses.fields(self)})

    def keys(self) -> tuple[str, ...]:
        """DI-engine's batch-dict keys present (``batch["obs"]`` and ``dict(batch)`` read like a batch dict)."""
        return tuple(self.as_dict())

    def __getitem__(self, key: str) -> torch.Tensor:
        """Read access with DI-engine's batch-dict keys (obs, action, reward, next_obs, terminated, truncated,
        done = terminated or truncated, log_prob), for reward models written against batch dicts."""
        if key == "done":
            return self.terminated | self.truncated
        try:
            return self.as_dict()[key]
        except KeyError:
            raise KeyError(f"TransitionBatch has no {key!r}; keys: {', '.join(self.keys())}, done") from None

    def as_dict(self) -> dict[str, torch.Tensor]:
        """DI-engine's batch-dict keys: obs, action, reward, next_obs, terminated, truncated, log_prob
        (the last two of them only when present)."""
        out = {"obs": self.observations, "action": self.actions, "reward": self.rewards,
               "terminated": self.terminated, "truncated": self.truncated}
        if self.next_observations is not None:
            out["next_obs"] = self.next_observations
        if self.log_probs is not None:
            out["log_prob"] = self.log_probs
        return out
