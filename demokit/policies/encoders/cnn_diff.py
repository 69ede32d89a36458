"""The Nature CNN on the newest frame and the differences of consecutive stacked frames (``nature_cnn_diff``).

Same layers, input layout and mean-frame centring as ``nature_cnn`` (:mod:`demokit.policies.encoders.cnn`);
only the input the convolutions see differs. For a stack of K frames ``f_1 .. f_K`` (oldest first, each
scaled by 1/255, c channels each) the input is ``[f_K - mean_K, G (f_2 - f_1), ..., G (f_K - f_{K-1})]``
(K * c channels, as many as ``nature_cnn``'s; ``mean_K`` the newest frame's slot of the fitted mean frame
when centred; gain ``G = 10``). This is a fixed linear change of input coordinates, so it can represent
what ``nature_cnn`` represents; what changes is how fast gradient descent finds motion. Why it exists:
on CartPole-v1 frames (84x84, 4 stacked) a privileged state expert's actions depend mostly on the
cart's and the pole's velocities, which move edges by a fraction of a pixel per step: the plain CNN
learned the pole's lean in a few hundred updates but hardly the velocities (docs/benchmarks.md, "BC from
pixels"). The observation needs at least two stacked frames (a leading axis of size >= 2).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from gymnasium import spaces

from demokit.errors import UserError
from demokit.policies.encoders.cnn import NatureCNNEncoder, image_layout

#: factor on the frame differences (a sub-pixel edge motion changes a few grey levels)
DIFF_GAIN = 10.0


def frames_of(space: spaces.Space) -> int:
    """The number of stacked frames of an image space: the product of its leading axes."""
    shape = tuple(space.shape)
    _, _, _, last = image_layout(space)
    return int(np.prod(shape[:-3] if last else shape[:-2], dtype=np.int64))


class FrameDiffCNNEncoder(NatureCNNEncoder):
    """uint8 stacked frames -> (B, 512) features from the newest frame and the frame differences."""

    @classmethod
    def check_space(cls, observation_space: spaces.Space) -> None:
        if frames_of(observation_space) < 2:
            raise UserError(f"the nature_cnn_diff encoder needs stacked frames (at least 2 on a leading axis, e.g. "
                            f"collect --frame-stack 4), not one frame of shape {tuple(observation_space.shape)}")

    def __init__(self, observation_space: spaces.Space, arch: Any) -> None:
        self.check_space(observation_space)
        super().__init__(observation_space, arch)
        self.per_frame = self.channels // frames_of(observation_space)

    def _input(self, x: torch.Tensor) -> torch.Tensor:
        x = self._layout(x).float() / 255.0  # frame-major channels: frame i holds [i * c, (i + 1) * c)
        c = self.per_frame
        newest = x[:, -c:] - self.frame_mean[-c:] if self.centred else x[:, -c:]
        return torch.cat([newest, DIFF_GAIN * (x[:, c:] - x[:, :-c])], dim=1)
