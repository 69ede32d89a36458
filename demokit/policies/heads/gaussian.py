"""The Gaussian head: action means plus a state-independent log standard deviation (Box actions)."""

from __future__ import annotations

from typing import Any

import torch
from gymnasium import spaces
from torch import nn
from torch.distributions import Independent, Normal

from demokit.policies.distributions import (diag_gaussian_entropy, diag_gaussian_log_prob, diag_gaussian_nll,
                                            diag_gaussian_nll_of_noise)
from demokit.policies.heads.base import Head


class GaussianHead(Head):
    """Means (B, A) and ``log_std`` (A,) (initialised to ``arch.log_std_init``); the env gets
    samples clipped to the Box (log-probabilities are those of the unclipped sample)."""

    action_spaces = (spaces.Box,)
    noise_kind = "normal"

    def __init__(self, in_dim: int, action_space: spaces.Space, arch: Any) -> None:
        super().__init__(in_dim, action_space, arch)
        self.log_std = nn.Parameter(torch.full((self.action_dim,), float(arch.log_std_init)))

    def mode(self, out: torch.Tensor) -> torch.Tensor:
        return out

    def sample(self, out: torch.Tensor, noise: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return out + noise * self.log_std.exp(), -diag_gaussian_nll_of_noise(noise, self.log_std)

    def evaluate(self, out: torch.Tensor, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return (diag_gaussian_log_prob(actions, out, self.log_std),
                diag_gaussian_entropy(self.log_std).expand(out.shape[0]))

    def nll(self, out: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return diag_gaussian_nll(actions, out, self.log_std)

    def distribution(self, out: torch.Tensor) -> Independent:
        return Independent(Normal(out, self.log_std.exp().expand_as(out)), 1)

    def spread_parameters(self) -> list[nn.Parameter]:
        return [self.log_std]
