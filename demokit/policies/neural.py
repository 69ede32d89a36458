"""``NeuralPolicy``: the torch policy every learner trains and every checkpoint holds."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from gymnasium import spaces
from torch import nn
from torch.distributions import Categorical, Distribution, Independent, Normal, TransformedDistribution
from torch.distributions.transforms import TanhTransform

from demokit.errors import UserError
from demokit.policies.base import Policy
from demokit.policies.distributions import SQUASHED_LOG_STD_MAX, SQUASHED_LOG_STD_MIN, squashed_gaussian_sample
from demokit.policies.networks import mlp
from demokit.policies.normalization import ObsNormalizer
from demokit.spaces import describe, flat_dim, flatten_batch

Head = Literal["categorical", "gaussian", "qvalue", "squashed_gaussian"]

#: batches of at least this many rows give every row the same bits whatever the batch size (see ``pad_rows``)
ROW_INVARIANT_BATCH = 16


def pad_rows(t: torch.Tensor, rows: int) -> torch.Tensor:
    """``t`` with zero rows appended up to ``rows`` (a batch already that long is returned as is).

    Matrix products on CPU give each row the same bits whatever the batch size once the batch
    has 16 rows or more (``ROW_INVARIANT_BATCH``; measured for MLPs from 2x32 to 3x512 and
    inputs up to 1000 wide with this torch build); smaller batches take other kernels whose
    rounding differs in the last bit. Acting on batches padded to 16 rows makes a row's
    action independent of how many rows are computed beside it (the collector relies on it
    so that a dataset does not depend on ``num_envs``).
    """
    n = t.shape[0]
    return t if n >= rows else torch.cat([t, t.new_zeros((rows - n, *t.shape[1:]))])


@dataclass(frozen=True)
class PolicyArch:
    """Everything needed to rebuild a ``NeuralPolicy`` (saved in checkpoints).

    head: "categorical" (Discrete, logits), "gaussian" (Box, mean + state-independent
      log std), "qvalue" (Discrete, one Q value per action; acts greedily) or
      "squashed_gaussian" (Box with finite bounds, SAC's actor: the network outputs the mean
      and a state-dependent log std, the action is tanh of the Gaussian draw rescaled to the
      bounds; the deterministic action is tanh(mean)).
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
        if self.head not in ("categorical", "gaussian", "qvalue", "squashed_gaussian"):
            raise UserError(f"unknown policy head {self.head!r}; use categorical, gaussian, qvalue or "
                            f"squashed_gaussian")
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
        if arch.head in ("gaussian", "squashed_gaussian") and not isinstance(action_space, spaces.Box):
            raise UserError(f"a {arch.head} policy needs a Box action space, got {describe(action_space)}")
        self._squashed = arch.head == "squashed_gaussian"
        if self._squashed and not (np.all(np.isfinite(action_space.low)) and np.all(np.isfinite(action_space.high))):
            raise UserError(f"a squashed_gaussian policy rescales tanh to the action bounds, which must be finite; "
                            f"got {describe(action_space)}")
        self.obs_dim = flat_dim(observation_space)
        #: a 1-D Box: a (B, obs_dim) float32 batch is already flat (the common case when acting)
        self._vector_obs = isinstance(observation_space, spaces.Box) and len(observation_space.shape) == 1
        if isinstance(action_space, spaces.Discrete):
            self.out_dim = int(action_space.n)
            self.action_shape: tuple[int, ...] = ()
        else:
            self.out_dim = int(np.prod(action_space.shape))
            self.action_shape = tuple(action_space.shape)
        out_gain = 0.01 if arch.head in ("categorical", "gaussian", "squashed_gaussian") else 1.0
        net_out = 2 * self.out_dim if self._squashed else self.out_dim  # squashed: mean and log std
        self.net = mlp(self.obs_dim, arch.hidden_sizes, net_out, activation=arch.activation, out_gain=out_gain)
        if arch.head == "gaussian":
            self.log_std = nn.Parameter(torch.full((self.out_dim,), float(arch.log_std_init)))
        if arch.head in ("gaussian", "squashed_gaussian"):
            self._low = torch.as_tensor(action_space.low, dtype=torch.float32).reshape(-1)
            self._high = torch.as_tensor(action_space.high, dtype=torch.float32).reshape(-1)
        self.obs_norm = ObsNormalizer(self.obs_dim) if arch.normalize_obs else None
        self._generator: torch.Generator | None = None
        self._device: torch.device | None = None

    # ---- tensors -------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        """The parameters' device (cached: acting asks for it on every call; ``.to()`` resets it)."""
        if self._device is None:
            self._device = next(self.parameters()).device
        return self._device

    def _apply(self, fn: Any, *args: Any, **kwargs: Any) -> "NeuralPolicy":
        self._device = None  # .to() / .cuda() / .cpu() may move the parameters
        return super()._apply(fn, *args, **kwargs)

    def flatten_obs(self, obs: Any) -> np.ndarray:
        """Raw observation batch -> float32 (B, obs_dim) numpy array (not normalised)."""
        if self._vector_obs and isinstance(obs, np.ndarray) and obs.dtype == np.float32 and obs.ndim == 2:
            return obs  # what flatten_batch returns (as a view), without its reshape arithmetic
        return flatten_batch(self.observation_space, obs)

    def preprocess(self, obs: Any) -> torch.Tensor:
        """Raw observation batch (or an already-flat float tensor) -> normalised tensor."""
        if isinstance(obs, torch.Tensor):
            x = obs.to(self.device, torch.float32)
        else:
            flat = self.flatten_obs(obs)
            if not flat.flags.writeable:  # e.g. a dataset's read-only cached arrays
                flat = flat.copy()
            x = torch.from_numpy(flat)
            if self.device.type != "cpu":
                x = x.to(self.device)
        return self.normalize(x)

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """Apply observation normalisation (identity without it) to a flat tensor."""
        return self.obs_norm(x) if self.obs_norm is not None else x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Network output on a *normalised* flat tensor."""
        return self.net(x)

    def mean_log_std(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Squashed-Gaussian head: the pre-tanh mean and the clamped log std, each (B, A)."""
        mean, log_std = self.net(x).chunk(2, dim=-1)
        return mean, log_std.clamp(SQUASHED_LOG_STD_MIN, SQUASHED_LOG_STD_MAX)

    def distribution(self, x: torch.Tensor) -> Distribution:
        """Action distribution for normalised flat observations ``x`` (squashed head: over [-1, 1])."""
        if self._squashed:
            mean, log_std = self.mean_log_std(x)
            return Independent(TransformedDistribution(Normal(mean, log_std.exp()), [TanhTransform(cache_size=1)]), 1)
        out = self.net(x)
        if self.arch.head == "gaussian":
            return Independent(Normal(out, self.log_std.exp().expand_as(out)), 1)
        return Categorical(logits=out)

    def actions_to_tensor(self, actions: Any) -> torch.Tensor:
        """Env actions (B, ...) -> the tensor ``distribution().log_prob`` expects."""
        a = torch.as_tensor(np.asarray(actions), device=self.device)
        if isinstance(self.action_space, spaces.Discrete):
            return (a.reshape(-1).long() - int(self.action_space.start))
        a = a.reshape(a.shape[0], -1).float()
        if self._squashed:  # env bounds -> the head's [-1, 1]
            low, high = self._low.to(a.device), self._high.to(a.device)
            return 2.0 * (a - low) / (high - low) - 1.0
        return a

    # ---- acting --------------------------------------------------------------
    def seed(self, seed: int) -> None:
        self._generator = torch.Generator(device="cpu")
        self._generator.manual_seed(int(seed))

    @torch.no_grad()
    def act_tensor(self, x: torch.Tensor, *, deterministic: bool = True) -> torch.Tensor:
        """Actions (index for Discrete, raw unclipped vector for Box, [-1, 1] for the squashed
        head) from normalised ``x``."""
        if self._squashed:
            mean, log_std = self.mean_log_std(x)
            if deterministic:
                return torch.tanh(mean)
            noise = torch.randn(mean.shape, generator=self._generator).to(mean.device)
            return torch.tanh(mean + noise * log_std.exp())
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

    def act(self, obs: Any, *, deterministic: bool = True, pad_to: int = 0) -> np.ndarray:
        """Env actions for a raw observation batch (no gradients: ``act_tensor`` runs under no_grad).

        ``pad_to``: run the network on the batch padded with zero rows to at least this
        many rows (:func:`pad_rows`; ``ROW_INVARIANT_BATCH`` makes each row's action
        independent of the batch size on the CPU). Sampling (``deterministic=False``) uses
        the generator of :meth:`seed` and draws for the padding rows too; for one stream
        per row see :meth:`sample_rows`.
        """
        x = self.preprocess(obs)
        a = self.act_tensor(pad_rows(x, pad_to), deterministic=deterministic)
        if a.shape[0] != x.shape[0]:
            a = a[: x.shape[0]]
        return self.to_env_action(a.cpu())

    @torch.no_grad()
    def sample_rows(self, obs: Any, rngs: Sequence[np.random.Generator], *, pad_to: int = 0,
                    log_prob: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
        """Sampled env actions where row ``i`` draws from ``rngs[i]`` alone (one random stream per row).

        Categorical heads invert the CDF with one uniform per row, Gaussian heads add
        ``std * z`` with ``z`` (float32 standard normals) drawn per row, so with ``pad_to``
        (see :meth:`act`) a row's action depends only on its observation and its own
        generator. ``log_prob``: also the float32 log-probability of each sampled action
        (before Box clipping). Returns (actions, log-probabilities or None).
        """
        if self.arch.head == "qvalue":
            raise ValueError("a qvalue policy acts greedily: it has no action distribution to sample")
        x = self.preprocess(obs)
        n = x.shape[0]
        if len(rngs) != n:
            raise ValueError(f"sample_rows needs one generator per row: {len(rngs)} for {n} rows")
        if self._squashed:  # log-probability of the [-1, 1] action, before the rescaling to the bounds
            z = torch.from_numpy(np.stack([g.standard_normal(self.out_dim, dtype=np.float32) for g in rngs]))
            mean, log_std = self.mean_log_std(pad_rows(x, pad_to))
            raw, lp_t = squashed_gaussian_sample(mean[:n], log_std[:n], z.to(x.device))
            return self.to_env_action(raw.cpu()), (lp_t.float().cpu().numpy() if log_prob else None)
        dist = self.distribution(pad_rows(x, pad_to))
        if self.arch.head == "gaussian":
            z = torch.from_numpy(np.stack([g.standard_normal(self.out_dim, dtype=np.float32) for g in rngs]))
            raw = dist.base_dist.loc[:n] + dist.base_dist.scale[:n] * z.to(x.device)
        else:
            probs = dist.probs[:n].cpu().double()
            u = torch.from_numpy(np.array([g.random() for g in rngs]))
            cdf = probs.cumsum(-1)
            raw = (cdf < u.unsqueeze(-1) * cdf[:, -1:]).sum(-1).clamp_(max=probs.shape[-1] - 1).to(x.device)
        lp = dist.log_prob(pad_rows(raw, pad_to))[:n].float().cpu().numpy() if log_prob else None
        return self.to_env_action(raw.cpu()), lp

    def to_env_action(self, a: torch.Tensor) -> np.ndarray:
        """Tensor actions -> numpy actions valid in the env (Discrete offset, Box clipped; the
        squashed head's [-1, 1] rescaled to the bounds, clamped only against rounding)."""
        if isinstance(self.action_space, spaces.Discrete):
            return (a.numpy().astype(np.int64) + int(self.action_space.start))
        if self._squashed:
            a = self._low + (a.float() + 1.0) * (0.5 * (self._high - self._low))
        a = torch.maximum(torch.minimum(a.float(), self._high), self._low)
        return a.numpy().reshape((a.shape[0], *self.action_shape)).astype(self.action_space.dtype)


def make_policy(observation_space: spaces.Space, action_space: spaces.Space, *, head: Head | None = None,
                hidden_sizes: Sequence[int] = (64, 64), activation: str = "tanh", normalize_obs: bool = False,
                log_std_init: float = 0.0) -> NeuralPolicy:
    """Build a ``NeuralPolicy`` with ``head`` defaulting to the action space's natural one."""
    arch = PolicyArch(head=head or default_head(action_space), hidden_sizes=tuple(hidden_sizes),
                      activation=activation, normalize_obs=normalize_obs, log_std_init=log_std_init)
    return NeuralPolicy(observation_space, action_space, arch)
