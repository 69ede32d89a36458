"""The observation-encoder interface and its registry.

An encoder turns a batch of observations into features for a head, in two steps:

* ``prepare(obs)`` (host side, no parameters): a raw env batch (numpy, nested for Dict /
  Tuple spaces) or a stored batch (a tensor in the layout of :func:`demokit.rollout.storage_spec`:
  the space's dtype and shape for Box spaces, flat float32 otherwise) -> the network input tensor
  on ``device``. Images stay uint8 here; an MLP encoder flattens to float32.
* ``forward(x)`` -> features ``(B, out_dim)`` (float32).

Observation normalisation (``PolicyArch.normalize_obs``) runs between the two on flat float
inputs (an encoder that accepts it sets ``normalizable = True`` and ``input_dim``), or inside
the encoder for other inputs (``normalizes_itself = True``: the encoder keeps its own statistics
and implements ``fit_statistics`` / ``update_statistics`` / ``set_statistics``; nature_cnn
subtracts a mean frame).

Adding an encoder: one module with an :class:`Encoder` subclass and one line
``register_encoder("name", Class)`` in ``demokit/policies/encoders/__init__.py`` (or, from
outside the package, a call to :func:`register_encoder` before the policy is built).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import torch
from gymnasium import spaces
from torch import nn

from demokit.registry import Registry


class Encoder(nn.Module, ABC):
    """Observation batch -> features. Subclasses set ``input_dim`` (width of a flat input,
    0 when the input is not flat) and ``out_dim`` in ``__init__``."""

    #: whether running observation normalisation may run on this encoder's (flat) input
    normalizable: ClassVar[bool] = False
    #: whether ``arch.normalize_obs`` is applied inside this encoder (non-flat inputs)
    normalizes_itself: ClassVar[bool] = False

    def __init__(self, observation_space: spaces.Space, arch: Any) -> None:
        super().__init__()
        self.observation_space = observation_space
        self.input_dim = 0
        self.out_dim = 0

    @classmethod
    def check_space(cls, observation_space: spaces.Space) -> None:
        """Raise a UserError when this encoder cannot take ``observation_space`` (before any work is done)."""

    @abstractmethod
    def prepare(self, obs: Any, device: torch.device) -> torch.Tensor:
        """A raw or stored observation batch -> the network input on ``device``."""

    @abstractmethod
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Network input (prepared, normalised where enabled) -> features (B, out_dim)."""

    # statistics of encoders that normalise their own input (``normalizes_itself``)
    def fit_statistics(self, obs: Any) -> None:
        """Set the statistics to those of a whole stored batch (B, ...)."""
        raise NotImplementedError(f"{type(self).__name__} keeps no input statistics")

    def update_statistics(self, obs: Any) -> None:
        """Fold a stored batch into running statistics."""
        raise NotImplementedError(f"{type(self).__name__} keeps no input statistics")

    def set_statistics(self, mean: torch.Tensor, count: float) -> None:
        """Set the statistics from a flat per-element mean of the stored layout and its count."""
        raise NotImplementedError(f"{type(self).__name__} keeps no input statistics")

    def statistics_seen(self) -> float:
        """Observations folded into the statistics so far (0 before the first)."""
        raise NotImplementedError(f"{type(self).__name__} keeps no input statistics")


#: observation encoder name -> class (the built-in ones are registered by their package's ``__init__``)
ENCODERS: Registry[Encoder] = Registry("observation encoder")


def register_encoder(name: str, cls: type[Encoder]) -> type[Encoder]:
    """Make ``PolicyArch(encoder=name)`` build ``cls``; a name can be registered once."""
    return ENCODERS.register(name, cls)


def encoder_class(name: str) -> type[Encoder]:
    """The registered class of ``name`` (UserError listing the known names)."""
    return ENCODERS.get(name)
