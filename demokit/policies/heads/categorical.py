"""The categorical head: logits over a Discrete action space."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.distributions import Categorical

from demokit.policies.heads.base import Head


class CategoricalHead(Head):
    """Logits (B, n). Sampling inverts the CDF with one uniform per row."""

    def mode(self, out: torch.Tensor) -> torch.Tensor:
        return out.argmax(-1)

    def sample(self, out: torch.Tensor, noise: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logp_all = torch.log_softmax(out, -1)
        actions = (logp_all.exp().cumsum(-1) < noise).sum(-1).clamp_(max=self.action_dim - 1)
        return actions, logp_all.gather(-1, actions.unsqueeze(-1)).squeeze(-1)

    def evaluate(self, out: torch.Tensor, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logp_all = torch.log_softmax(out, -1)
        logp = logp_all.gather(-1, actions.long().unsqueeze(-1)).squeeze(-1)
        return logp, -(logp_all.exp() * logp_all).sum(-1)

    def nll(self, out: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(out, actions, reduction="none")

    def distribution(self, out: torch.Tensor) -> Categorical:
        return Categorical(logits=out)
