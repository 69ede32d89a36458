"""The policy-head interface and its registry.

A head maps encoder features ``(B, in_dim)`` to its output ``out`` (logits, action means,
Q values, ...) and owns everything that depends on the action distribution:

* ``mode(out)``: the deterministic (greedy / mean) action, in policy space;
* ``sample(out, noise)``: (action, log-probability) from standard noise the caller drew
  (``noise_kind`` "uniform": (B, 1) uniforms in [0, 1); "normal": (B, noise_dim) standard
  normals). The caller chooses the random stream (a torch generator, or one numpy generator
  per row) and the head has the one formula, so every sampler gives the same action for the
  same noise;
* ``evaluate(out, actions)``: (log-probability, entropy) of policy-space actions;
* ``nll(out, actions)``: the per-sample negative log-likelihood (BC's loss);
* ``values(out)``: action values (Q heads only);
* ``to_env(actions)`` / ``from_env(env_actions)``: policy-space <-> env actions.

Policy-space actions: int64 indices from 0 for Discrete spaces (the env adds ``start``),
float32 (B, prod(shape)) vectors for Box spaces (the env gets them clipped to the bounds).

Adding a head: one module with a :class:`Head` subclass and one line
``register_head("name", Class)`` in ``demokit/policies/heads/__init__.py`` (or a call to
:func:`register_head` from outside the package before the policy is built).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np
import torch
from gymnasium import spaces
from torch import nn
from torch.distributions import Distribution

from demokit.errors import UserError
from demokit.registry import Registry
from demokit.policies.networks import init_threads, linear
from demokit.spaces import describe


class Head(nn.Module, ABC):
    """Features -> action distribution (see the module docstring). The base class builds
    ``self.linear`` (features -> ``out_dim``, orthogonal init with ``out_gain``) and the
    Discrete / Box action conversions; subclasses add parameters after it."""

    #: action-space classes the head supports
    action_spaces: ClassVar[tuple[type[spaces.Space], ...]] = (spaces.Discrete,)
    #: orthogonal gain of the output layer (0.01: near-uniform initial policies)
    out_gain: ClassVar[float] = 0.01
    #: False for heads without an action distribution (they act greedily)
    stochastic: ClassVar[bool] = True
    #: the standard noise ``sample`` consumes: "uniform" or "normal"
    noise_kind: ClassVar[str] = "uniform"

    def __init__(self, in_dim: int, action_space: spaces.Space, arch: Any) -> None:
        super().__init__()
        self.check_action_space(action_space, arch.head)
        self.action_space = action_space
        self.discrete = isinstance(action_space, spaces.Discrete)
        if self.discrete:
            self.action_dim = int(action_space.n)
            self.action_shape: tuple[int, ...] = ()
        else:
            self.action_dim = int(np.prod(action_space.shape))
            self.action_shape = tuple(action_space.shape)
            self._low = torch.as_tensor(action_space.low, dtype=torch.float32).reshape(-1)
            self._high = torch.as_tensor(action_space.high, dtype=torch.float32).reshape(-1)
        self.noise_dim = self.action_dim if self.noise_kind == "normal" else 1
        with init_threads():
            self.linear = linear(in_dim, self.out_dim, gain=self.out_gain)

    @property
    def out_dim(self) -> int:
        """Width of ``self.linear``'s output (one value per action or action dimension)."""
        return self.action_dim

    @classmethod
    def check_action_space(cls, action_space: spaces.Space, name: str) -> None:
        if not isinstance(action_space, cls.action_spaces):
            kinds = " or ".join(c.__name__ for c in cls.action_spaces)
            raise UserError(f"a {name} policy needs a {kinds} action space, got {describe(action_space)}")

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.linear.forward(features)  # F.linear without a module call (hooks go on the head)

    @abstractmethod
    def mode(self, out: torch.Tensor) -> torch.Tensor:
        """The deterministic action of each row."""

    def sample(self, out: torch.Tensor, noise: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(actions, log-probabilities) for the standard ``noise`` (see the module docstring)."""
        raise ValueError(f"a {type(self).__name__} acts greedily: it has no action distribution to sample")

    def evaluate(self, out: torch.Tensor, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(log-probability (B,), entropy (B,)) of policy-space ``actions``."""
        raise ValueError(f"a {type(self).__name__} has no action distribution")

    def nll(self, out: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Per-sample negative log-likelihood (B,) of policy-space ``actions``."""
        raise ValueError(f"a {type(self).__name__} has no action distribution")

    def distribution(self, out: torch.Tensor) -> Distribution:
        """The action distribution as a ``torch.distributions`` object (slower; for tests and users)."""
        raise ValueError(f"a {type(self).__name__} has no action distribution")

    def values(self, out: torch.Tensor) -> torch.Tensor:
        """Action values (B, n) (Q heads)."""
        raise ValueError(f"a {type(self).__name__} has no action values")

    def spread_parameters(self) -> list[nn.Parameter]:
        """Parameters that do not depend on the observation (a Gaussian's log std): BC's MSE loss leaves them."""
        return []

    # ---- action conversions ----------------------------------------------------------
    def to_env(self, a: torch.Tensor) -> np.ndarray:
        """Policy-space actions (on the CPU) -> numpy actions valid in the env (Discrete offset, Box clipped)."""
        if self.discrete:
            return a.numpy().astype(np.int64) + int(self.action_space.start)
        a = torch.maximum(torch.minimum(a.float(), self._high), self._low)
        return a.numpy().reshape((a.shape[0], *self.action_shape)).astype(self.action_space.dtype)

    def from_env(self, actions: Any, device: torch.device) -> torch.Tensor:
        """Env actions (B, ...) -> policy-space actions on ``device``."""
        a = torch.as_tensor(np.asarray(actions), device=device)
        if self.discrete:
            return a.reshape(-1).long() - int(self.action_space.start)
        return a.reshape(a.shape[0], -1).float()


#: policy head name -> class (the built-in ones are registered by their package's ``__init__``)
HEADS: Registry[Head] = Registry("policy head")


def register_head(name: str, cls: type[Head]) -> type[Head]:
    """Make ``PolicyArch(head=name)`` build ``cls``; a name can be registered once."""
    return HEADS.register(name, cls)


def head_class(name: str) -> type[Head]:
    """The registered class of ``name`` (UserError listing the known names)."""
    return HEADS.get(name)
