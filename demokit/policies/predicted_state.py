"""A policy trunk through a predicted state: encoder features -> a state estimate -> the head's input.

With ``PolicyArch.state_dim = D > 0`` a :class:`~demokit.policies.neural.NeuralPolicy` passes its
encoder's features ``f`` (B, F) through a linear layer to a D-component state estimate ``s`` (B, D),
then through an MLP (``arch.hidden_sizes``, ``arch.activation``) to the head. ``arch.state_input``
chooses that MLP's input: ``"state"`` (``s`` alone: the head sees only what is read as the state) or
``"features+state"`` (``[f, s]``, F + D wide). What ``s`` means is the learner's business: BC's
``state_head`` option trains it to the expert's standardised state observation (privileged state
supervision, ``aux_state``) while the policy still acts from its own observations (frames).
State-dict keys: ``state_head.linear.*``, ``state_head.net.<i>.*``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from demokit.policies.networks import init_threads, mlp_layers

#: the accepted values of ``PolicyArch.state_input``
STATE_INPUTS = ("state", "features+state")


class PredictedState(nn.Module):
    """features (B, F) -> (head input (B, out_dim), state estimate (B, state_dim))."""

    def __init__(self, in_dim: int, arch: Any) -> None:
        super().__init__()
        self.concat = arch.state_input == "features+state"
        with init_threads():
            self.linear = nn.Linear(int(in_dim), int(arch.state_dim))
        layers, self.out_dim = mlp_layers(int(arch.state_dim) + (int(in_dim) if self.concat else 0),
                                          arch.hidden_sizes, activation=arch.activation)
        self.net = nn.Sequential(*layers)

    def forward(self, feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s = self.linear(feats)
        return self.trunk(feats, s), s

    def trunk(self, feats: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        """The MLP's output (B, out_dim) on the state ``s`` (B, state_dim) (and ``feats`` with features+state):
        the estimate when acting, or another state when a learner fits the MLP on it (BC's state_head_fit)."""
        return self.net(torch.cat([feats, s], -1) if self.concat else s)
