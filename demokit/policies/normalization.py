"""Running observation normalisation whose statistics travel with the checkpoint."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


class ObsNormalizer(nn.Module):
    """Running mean/variance (parallel Welford), applied as clip((x - mean) / sqrt(var + eps)).

    Statistics are buffers, so they are part of ``state_dict()`` and of every
    checkpoint. ``update`` is called by trainers only; acting never changes them.
    """

    def __init__(self, dim: int, *, clip: float = 10.0, eps: float = 1e-8) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim, dtype=torch.float64))
        self.register_buffer("var", torch.ones(dim, dtype=torch.float64))
        self.register_buffer("count", torch.tensor(1e-4, dtype=torch.float64))
        self.clip = float(clip)
        self.eps = float(eps)

    @torch.no_grad()
    def update(self, x: np.ndarray | torch.Tensor) -> None:
        """Fold a batch (B, dim) into the running statistics."""
        x = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x, dtype=torch.float64)
        x = x.reshape(-1, self.mean.shape[0]).to(self.mean.device)
        n = x.shape[0]
        if n == 0:
            return
        b_mean = x.mean(0)
        b_var = x.var(0, unbiased=False)
        delta = b_mean - self.mean
        tot = self.count + n
        self.mean += delta * n / tot
        m2 = self.var * self.count + b_var * n + delta.pow(2) * self.count * n / tot
        self.var.copy_(m2 / tot)
        self.count.fill_(float(tot))

    @torch.no_grad()
    def set_from_data(self, x: np.ndarray | torch.Tensor) -> None:
        """Set the statistics to those of a whole dataset (BC/GAIL)."""
        x = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x, dtype=torch.float64)
        x = x.reshape(-1, self.mean.shape[0]).to(self.mean.device)
        self.mean.copy_(x.mean(0))
        self.var.copy_(x.var(0, unbiased=False))
        self.count.fill_(float(x.shape[0]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = self.mean.to(x.dtype)
        std = torch.sqrt(self.var.to(x.dtype) + self.eps)
        return torch.clamp((x - mean) / std, -self.clip, self.clip)
