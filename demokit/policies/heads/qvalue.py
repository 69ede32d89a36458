"""The Q-value head: one value per Discrete action; acts greedily (DQN)."""

from __future__ import annotations

import torch

from demokit.policies.heads.base import Head


class QValueHead(Head):
    """Q values (B, n); ``mode`` is the greedy action. No distribution: ``sample`` refuses."""

    out_gain = 1.0
    stochastic = False

    def mode(self, out: torch.Tensor) -> torch.Tensor:
        return out.argmax(-1)

    def values(self, out: torch.Tensor) -> torch.Tensor:
        return out
