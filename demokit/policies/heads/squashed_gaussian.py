"""The squashed-Gaussian head of SAC's actor: a state-dependent Gaussian through tanh, rescaled to the Box."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from torch.distributions import Independent, Normal, TransformedDistribution
from torch.distributions.transforms import TanhTransform

from demokit.errors import UserError
from demokit.policies.distributions import SQUASHED_LOG_STD_MAX, SQUASHED_LOG_STD_MIN, squashed_gaussian_sample
from demokit.policies.heads.base import Head
from demokit.spaces import describe

#: squashed actions are kept this far inside (-1, 1) when their log-probability is evaluated
_EDGE = 1e-6


class SquashedGaussianHead(Head):
    """Output (B, 2A): the pre-tanh mean and the log std (clamped to
    [SQUASHED_LOG_STD_MIN, SQUASHED_LOG_STD_MAX]). Policy-space actions are in [-1, 1]
    (``tanh`` of the Gaussian draw; the deterministic action is ``tanh(mean)``); the env gets
    them rescaled to the (finite) Box bounds. Log-probabilities are those of the [-1, 1] action."""

    action_spaces = (spaces.Box,)
    noise_kind = "normal"

    @classmethod
    def check_action_space(cls, action_space: spaces.Space, name: str) -> None:
        super().check_action_space(action_space, name)
        if not (np.all(np.isfinite(action_space.low)) and np.all(np.isfinite(action_space.high))):
            raise UserError(f"a {name} policy rescales tanh to the action bounds, which must be finite; "
                            f"got {describe(action_space)}")

    @property
    def out_dim(self) -> int:
        return 2 * self.action_dim

    def mean_log_std(self, out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The pre-tanh mean and the clamped log std, each (B, A)."""
        mean, log_std = out.chunk(2, dim=-1)
        return mean, log_std.clamp(SQUASHED_LOG_STD_MIN, SQUASHED_LOG_STD_MAX)

    def mode(self, out: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.mean_log_std(out)[0])

    def sample(self, out: torch.Tensor, noise: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, log_std = self.mean_log_std(out)
        return squashed_gaussian_sample(mean, log_std, noise)

    def distribution(self, out: torch.Tensor) -> Independent:
        mean, log_std = self.mean_log_std(out)
        return Independent(TransformedDistribution(Normal(mean, log_std.exp()), [TanhTransform(cache_size=1)]), 1)

    def nll(self, out: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return -self.distribution(out).log_prob(actions.clamp(-1.0 + _EDGE, 1.0 - _EDGE))

    def evaluate(self, out: torch.Tensor, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(log-probability, its negation): the squashed Gaussian has no closed-form entropy, so the
        second value is the one-sample estimate ``-log pi(a)`` at the given actions."""
        logp = -self.nll(out, actions)
        return logp, -logp

    def to_env(self, a: torch.Tensor) -> np.ndarray:
        a = self._low + (a.float() + 1.0) * (0.5 * (self._high - self._low))
        return super().to_env(a)  # the clamp to the bounds only catches rounding

    def from_env(self, actions: Any, device: torch.device) -> torch.Tensor:
        a = super().from_env(actions, device)
        low, high = self._low.to(a.device), self._high.to(a.device)
        return 2.0 * (a - low) / (high - low) - 1.0
