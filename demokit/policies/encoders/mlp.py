"""The MLP encoder: flattened (float32) observations through ``[Linear, activation]`` layers."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from torch import nn

from demokit.policies.encoders.base import Encoder
from demokit.policies.networks import mlp_layers
from demokit.spaces import flat_dim, flatten_batch


class MLPEncoder(Encoder):
    """``flatten_batch`` -> float32 (B, flat_dim) -> hidden layers ``arch.hidden_sizes``.

    Features are the last hidden layer's activations (the flat input without hidden layers).
    State-dict keys: ``net.<i>.weight`` / ``net.<i>.bias`` (``i`` = 0, 2, 4, ...).
    ``forward`` runs the layers' own ``forward`` functions in turn (the same operations as
    ``self.net(x)`` without a module call per layer, ~2 us each on the CPU, a few per cent of
    a small training step): hooks go on the encoder, not on its inner layers.
    """

    normalizable = True

    def __init__(self, observation_space: spaces.Space, arch: Any) -> None:
        super().__init__(observation_space, arch)
        self.input_dim = flat_dim(observation_space)
        layers, self.out_dim = mlp_layers(self.input_dim, arch.hidden_sizes, activation=arch.activation)
        self.net = nn.Sequential(*layers)
        #: a 1-D float32 Box: a (B, D) float32 batch is already flat (the common case when acting)
        self._vector_obs = isinstance(observation_space, spaces.Box) and len(observation_space.shape) == 1

    def flatten(self, obs: Any) -> np.ndarray:
        """Raw observation batch -> float32 (B, input_dim) numpy array."""
        if self._vector_obs and isinstance(obs, np.ndarray) and obs.dtype == np.float32 and obs.ndim == 2:
            return obs  # what flatten_batch returns (as a view), without its reshape arithmetic
        return flatten_batch(self.observation_space, obs)

    def prepare(self, obs: Any, device: torch.device) -> torch.Tensor:
        if isinstance(obs, torch.Tensor):
            return obs.to(device).reshape(obs.shape[0], -1).to(torch.float32)
        flat = self.flatten(obs)
        if not flat.flags.writeable:  # e.g. a dataset's read-only cached arrays
            flat = flat.copy()
        x = torch.from_numpy(flat)
        return x if device.type == "cpu" else x.to(device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.net:
            x = layer.forward(x)
        return x
