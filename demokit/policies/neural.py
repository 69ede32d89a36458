"""``NeuralPolicy``: the torch policy every learner trains and every checkpoint holds."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from gymnasium import spaces
from torch import nn
from torch.distributions import Categorical, Distribution, Independent, Normal

from demokit.errors import UserError
from demokit.policies.base import Policy
from demokit.policies.networks import mlp
from demokit.policies.normalization import ObsNormalizer
from demokit.spaces import describe, flat_dim, flatten_batch

Head = Literal["categorical", "gaussian", "qvalue"]


@dataclass(frozen=True)
class PolicyArch:
    """Everything needed to rebuild a ``NeuralPolicy`` (saved in checkpoints).

    head: "categorical" (Discrete, logits), "gaussian" (Box, mean + state-independent
      log std) or "qvalue" (Discrete, one Q value per action; acts greedily).
    hidden_sizes: widths of the hidden layers.
    activation: "tanh", "relu", "elu" or "gelu".
    normalize_obs: whether observations pass through running mean/std statistics.
    log_std_init: initial log standard deviation of the Gaussian head.
    """

    head: Head
    hidden_sizes: tuple[int, ...] = (64, 64)
    activation: str = "tanh"
    normalize_obs: bool = False
    log_std_init: float = 0.0

    def __post_init__(self) -> None:
        if self.head not in ("categorical", "gaussian", "qvalue"):
            raise UserError(f"unknown policy head {self.head!r}; use categorical, gaussian or qvalue")
        object.__setattr__(self, "hidden_sizes", tuple(int(h) for h in self.hidden_sizes))

    def to_dict(self) -> dict[str, Any]:
        return {"head": self.head, "hidden_sizes": list(self.hidden_sizes), "activation": self.activation,
                "normalize_obs": self.normalize_obs, "log_std_init": self.log_std_init}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "PolicyArch":
        return cls(head=d["head"], hidden_sizes=tuple(d["hidden_sizes"]), activation=d.get("activation", "tanh"),
                   normalize_obs=bool(d.get("normalize_obs", False)), log_std_init=float(d.get("log_std_init", 0.0)))


def default_head(action_space: spaces.Space) -> Head:
    """categorical for Discrete, gaussian for Box; anything else is unsupported for learning."""
    if isinstance(action_space, spaces.Discrete):
        return "categorical"
    if isinstance(action_space, spaces.Box):
        return "gaussian"
    raise UserError(f"learning policies support Discrete and Box action spaces, not {describe(action_space)}")


class NeuralPolicy(nn.Module, Policy):
    """An MLP policy over flattened (optionally normalised) observations.

    ``preprocess(obs)`` turns a raw observation batch (numpy, nested for Dict/Tuple)
    into a float32 tensor (B, obs_dim) on the policy's device, normalised when
    ``arch.normalize_obs``. ``forward(x)`` returns logits (categorical), action means
    (gaussian) or Q values (qvalue). ``distribution(x)`` gives the action distribution.
    """

    def __init__(self, observation_space: spaces.Space, action_space: spaces.Space, arch: PolicyArch) -> None:
        super().__init__()
        self.observation_space = observation_space
        self.action_space = action_space
        self.arch = arch
        if arch.head in ("categorical", "qvalue") and not isinstance(action_space, spaces.Discrete):
            raise UserError(f"a {arch.head} policy needs a Discrete action space, got {describe(action_space)}")
        if arch.head == "gaussian" and not isinstance(action_space, spaces.Box):
            raise UserError(f"a gaussian policy needs a Box action space, got {describe(action_space)}")
        self.obs_dim = flat_dim(observation_space)
        if isinstance(action_space, spaces.Discrete):
            self.out_dim = int(action_space.n)
            self.action_shape: tuple[int, ...] = ()
        else:
            self.out_dim = int(np.prod(action_space.shape))
            self.action_shape = tuple(action_space.shape)
        out_gain = 0.01 if arch.head in ("categorical", "gaussian") else 1.0
        self.net = mlp(self.obs_dim, arch.hidden_sizes, self.out_dim, activation=arch.activation, out_gain=out_gain)
        if arch.head == "gaussian":
            self.log_std = nn.Parameter(torch.full((self.out_dim,), float(arch.log_std_init)))
            self._low = torch.as_tensor(action_space.low, dtype=torch.float32).reshape(-1)
            self._high = torch.as_tensor(action_space.high, dtype=torch.float32).reshape(-1)
        self.obs_norm = ObsNormalizer(self.obs_dim) if arch.normalize_obs else None
        self._generator: torch.Generator | None = None

    # ---- tensors -------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def flatten_obs(self, obs: Any) -> np.ndarray:
        """Raw observation batch -> float32 (B, obs_dim) numpy array (not normalised)."""
        return flatten_batch(self.observation_space, obs)

    def preprocess(self, obs: Any) -> torch.Tensor:
        """Raw observation batch (or an already-flat float tensor) -> normalised tensor."""
        if isinstance(obs, torch.Tensor):
            x = obs.to(self.device, torch.float32)
        else:
            flat = self.flatten_obs(obs)
            if not flat.flags.writeable:  # e.g. a dataset's read-only cached arrays
                flat = flat.copy()
            x = torch.as_tensor(flat, device=self.device)
        return self.normalize(x)

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """Apply observation normalisation (identity without it) to a flat tensor."""
        return self.obs_norm(x) if self.obs_norm is not None else x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Network output on a *normalised* flat tensor."""
        return self.net(x)

    def distribution(self, x: torch.Tensor) -> Distribution:
        """Action distribution for normalised flat observations ``x``."""
        out = self.net(x)
        if self.arch.head == "gaussian":
            return Independent(Normal(out, self.log_std.exp().expand_as(out)), 1)
        return Categorical(logits=out)

    def actions_to_tensor(self, actions: Any) -> torch.Tensor:
        """Env actions (B, ...) -> the tensor ``distribution().log_prob`` expects."""
        a = torch.as_tensor(np.asarray(actions), device=self.device)
        if isinstance(self.action_space, spaces.Discrete):
            return (a.reshape(-1).long() - int(self.action_space.start))
        return a.reshape(a.shape[0], -1).float()

    # ---- acting --------------------------------------------------------------
    def seed(self, seed: int) -> None:
        self._generator = torch.Generator(device="cpu")
        self._generator.manual_seed(int(seed))

    @torch.no_grad()
    def act_tensor(self, x: torch.Tensor, *, deterministic: bool = True) -> torch.Tensor:
        """Actions (index for Discrete, raw unclipped vector for Box) from normalised ``x``."""
        out = self.net(x)
        if self.arch.head in ("categorical", "qvalue"):
            if deterministic or self.arch.head == "qvalue":
                return out.argmax(-1)
            probs = torch.softmax(out, -1).cpu()
            return torch.multinomial(probs, 1, generator=self._generator).squeeze(-1).to(out.device)
        if deterministic:
            return out
        noise = torch.randn(out.shape, generator=self._generator).to(out.device)
        return out + noise * self.log_std.exp()

    @torch.no_grad()
    def act(self, obs: Any, *, deterministic: bool = True) -> np.ndarray:
        a = self.act_tensor(self.preprocess(obs), deterministic=deterministic).cpu()
        return self.to_env_action(a)

    def to_env_action(self, a: torch.Tensor) -> np.ndarray:
        """Tensor actions -> numpy actions valid in the env (Discrete offset, Box clipped)."""
        if isinstance(self.action_space, spaces.Discrete):
            return (a.numpy().astype(np.int64) + int(self.action_space.start))
        a = torch.maximum(torch.minimum(a.float(), self._high), self._low)
        return a.numpy().reshape((a.shape[0], *self.action_shape)).astype(self.action_space.dtype)


def make_policy(observation_space: spaces.Space, action_space: spaces.Space, *, head: Head | None = None,
                hidden_sizes: Sequence[int] = (64, 64), activation: str = "tanh", normalize_obs: bool = False,
                log_std_init: float = 0.0) -> NeuralPolicy:
    """Build a ``NeuralPolicy`` with ``head`` defaulting to the action space's natural one."""
    arch = PolicyArch(head=head or default_head(action_space), hidden_sizes=tuple(hidden_sizes),
                      activation=activation, normalize_obs=normalize_obs, log_std_init=log_std_init)
    return NeuralPolicy(observation_space, action_space, arch)
