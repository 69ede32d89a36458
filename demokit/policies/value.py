"""A state-value network built like a policy: the arch's kind of encoder (its own weights) plus one output."""

from __future__ import annotations

from typing import Any

import torch
from gymnasium import spaces
from torch import nn

from demokit.policies.encoders import encoder_class
from demokit.policies.networks import init_threads, linear


class ValueNet(nn.Module):
    """V(x) (B,) from the network input ``x`` of a policy with the same ``arch`` (``policy.preprocess``):
    an encoder of ``arch.encoder`` with ``arch``'s hidden sizes and activation, then a linear
    output (orthogonal gain 1). PPO's critic; image inputs work as they do for the policy."""

    def __init__(self, observation_space: spaces.Space, arch: Any) -> None:
        super().__init__()
        self.encoder = encoder_class(arch.encoder)(observation_space, arch)
        with init_threads():
            self.out = linear(self.encoder.out_dim, 1, gain=1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.encoder(x)).reshape(-1)
