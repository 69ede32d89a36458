"""The Nature-DQN CNN encoder for image observations (uint8 until the network).

Mnih et al. 2015: conv 32 8x8 stride 4, conv 64 4x4 stride 2, conv 64 3x3 stride 1 (ReLU
after each), flatten, linear 512 + ReLU. Features: (B, 512).

Input layout. A Box observation of shape ``(..., H, W)`` (grayscale frames, stacked on any
leading axes: ``(H, W)``, ``(K, H, W)``, a policy history ``(K2, K, H, W)``) or
``(..., H, W, C)`` with ``C`` in (1, 3, 4) (channels-last RGB / RGBA frames); every leading
axis and the channel axis are merged into the conv's input channels. Images stay uint8 from
the env to ``forward``, which scales by 1/255 (``x.float() / 255``); a uint8 Box is what the
encoder expects (an image space of another dtype is refused, as is a frame too small for the
three convolutions: at least 36x36).

Mean-frame centring (``arch.normalize_obs``): the network input is ``x / 255 - frame_mean``, the
per-pixel mean of the training frames (in [0, 1], a buffer saved with the policy; fitted by BC
from its data, a running mean under PPO). Rendered classic-control frames are ~98% white
background: uncentred, every first-layer unit's pre-activation is about the sum of its weights
plus its bias, so Adam's common-mode steps switch whole units off (measured on CartPole-v1 84x84
frames: 91% -> 6% of the first layer's channels active on some frame after 100 BC updates at lr
1e-3, the output constant, the loss ln 2; centred: 100%). Without it the input is ``x / 255`` exactly.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from torch import nn

from demokit.errors import UserError
from demokit.policies.encoders.base import Encoder
from demokit.spaces import describe

#: the smallest frame the three convolutions accept (8 + 4 * (2 + 2 * (3 - 1)) = 36)
MIN_SIDE = 36
FEATURES = 512


def image_layout(space: spaces.Space) -> tuple[int, int, int, bool]:
    """(channels, height, width, channels_last) of an image observation space (UserError if not one)."""
    if not (isinstance(space, spaces.Box) and space.dtype == np.uint8 and len(space.shape) >= 2):
        raise UserError(f"the nature_cnn encoder needs uint8 image observations (a uint8 Box of shape (..., H, W) "
                        f"or (..., H, W, C)), not {describe(space)}")
    shape = tuple(space.shape)
    last = len(shape) >= 3 and shape[-1] in (1, 3, 4) and shape[-2] >= MIN_SIDE
    h, w = (shape[-3], shape[-2]) if last else (shape[-2], shape[-1])
    c = int(np.prod(shape[:-3] + shape[-1:], dtype=np.int64)) if last else int(np.prod(shape[:-2], dtype=np.int64))
    if h < MIN_SIDE or w < MIN_SIDE:
        raise UserError(f"the nature_cnn encoder needs frames of at least {MIN_SIDE}x{MIN_SIDE}; the observation "
                        f"shape {shape} has {h}x{w} (record them larger, e.g. collect --render-size 84)")
    return c, int(h), int(w), bool(last)


class NatureCNNEncoder(Encoder):
    """uint8 images -> (B, 512) features (see the module docstring for the input layout)."""

    normalizes_itself = True

    @classmethod
    def check_space(cls, observation_space: spaces.Space) -> None:
        image_layout(observation_space)

    def __init__(self, observation_space: spaces.Space, arch: Any) -> None:
        super().__init__(observation_space, arch)
        self.channels, self.height, self.width, self.channels_last = image_layout(observation_space)
        self.obs_shape = tuple(observation_space.shape)
        self.centred = bool(getattr(arch, "normalize_obs", False))
        if self.centred:  # per-pixel mean of the training frames in [0, 1] (network-input layout), frames seen
            self.register_buffer("frame_mean", torch.zeros(self.channels, self.height, self.width))
            self.register_buffer("frame_count", torch.zeros((), dtype=torch.float64))
        self.convs = nn.Sequential(
            nn.Conv2d(self.channels, 32, 8, stride=4), nn.ReLU(),
            nn.Conv2d(32, 64, 4, stride=2), nn.ReLU(),
            nn.Conv2d(64, 64, 3, stride=1), nn.ReLU(), nn.Flatten())
        with torch.no_grad():
            n_flat = int(self.convs(torch.zeros(1, self.channels, self.height, self.width)).shape[1])
        self.fc = nn.Sequential(nn.Linear(n_flat, FEATURES), nn.ReLU())
        self.out_dim = FEATURES

    def prepare(self, obs: Any, device: torch.device) -> torch.Tensor:
        x = obs if isinstance(obs, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(obs))
        if tuple(x.shape[1:]) != self.obs_shape:
            raise UserError(f"the nature_cnn encoder was built for observations of shape {self.obs_shape}, got a "
                            f"batch of shape {tuple(x.shape)}")
        return x.to(device)  # still uint8: forward scales it

    def _layout(self, x: torch.Tensor) -> torch.Tensor:
        """(B, *obs_shape) -> (B, channels, H, W) (same dtype)."""
        if self.channels_last:  # (B, ..., H, W, C) -> (B, ..., C, H, W)
            x = x.movedim(-1, -3)
        return x.reshape(x.shape[0], self.channels, self.height, self.width)

    def _input(self, x: torch.Tensor) -> torch.Tensor:
        """(B, *obs_shape) uint8 -> the convolutions' float input (B, channels, H, W)."""
        x = self._layout(x).float() / 255.0
        return x - self.frame_mean if self.centred else x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.convs(self._input(x)))

    # -- mean-frame statistics (``arch.normalize_obs``) ----------------------------------
    @torch.no_grad()
    def _frame_sum(self, obs: Any) -> tuple[torch.Tensor, int]:
        """(per-pixel sum in [0, 1] units, float64, network layout; rows) of a stored batch, in row chunks."""
        x = obs if isinstance(obs, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(obs))
        x = x.reshape(-1, *self.obs_shape)
        total = torch.zeros(self.channels, self.height, self.width, dtype=torch.float64)
        for lo in range(0, x.shape[0], 1024):  # bounded float64 copies
            total += self._layout(x[lo:lo + 1024].cpu()).double().sum(0)
        return total / 255.0, int(x.shape[0])

    def _check_centred(self) -> None:
        if not self.centred:
            raise ValueError("this nature_cnn encoder was built without normalize_obs: it keeps no mean frame")

    @torch.no_grad()
    def fit_statistics(self, obs: Any) -> None:
        """Set the mean frame to that of a whole stored batch (B, *obs_shape) (BC)."""
        self._check_centred()
        total, n = self._frame_sum(obs)
        self.frame_mean.copy_((total / max(n, 1)).to(self.frame_mean))
        self.frame_count.fill_(float(n))

    @torch.no_grad()
    def update_statistics(self, obs: Any) -> None:
        """Fold a stored batch into the running mean frame (PPO's rollouts)."""
        self._check_centred()
        total, n = self._frame_sum(obs)
        if n == 0:
            return
        count = float(self.frame_count) + n
        mean = self.frame_mean.double().cpu()
        self.frame_mean.copy_((mean + (total - n * mean) / count).to(self.frame_mean))
        self.frame_count.fill_(count)

    def statistics_seen(self) -> float:
        self._check_centred()
        return float(self.frame_count)

    @torch.no_grad()
    def set_statistics(self, mean: torch.Tensor, count: float) -> None:
        """Set the mean frame from a flat per-pixel mean in pixel units (0..255) over the stored layout
        ``prod(obs_shape)`` (statistics merged across ranks or streamed)."""
        self._check_centred()
        m = torch.as_tensor(mean, dtype=torch.float64).reshape(1, *self.obs_shape)
        self.frame_mean.copy_((self._layout(m)[0] / 255.0).to(self.frame_mean))
        self.frame_count.fill_(float(count))
