"""``NeuralPolicy``: the torch policy every learner trains and every checkpoint holds.

A policy is an observation encoder plus a head (``PolicyArch.encoder`` / ``PolicyArch.head``,
each looked up in its registry: :mod:`demokit.policies.encoders`, :mod:`demokit.policies.heads`),
with optional running observation normalisation between the encoder's ``prepare`` and its
network. Learners and collectors use only the methods: ``preprocess`` (observations -> network
input), ``sample``, ``evaluate_actions``, ``value``, ``nll``, ``act``, ``to_env_action``,
``actions_to_tensor`` and the observation-statistics methods.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from gymnasium import spaces
from torch import nn
from torch.distributions import Distribution

from demokit.errors import UserError
from demokit.policies.base import Policy
from demokit.policies.encoders import encoder_class
from demokit.policies.heads import head_class
from demokit.policies.normalization import ObsNormalizer
from demokit.policies.predicted_state import STATE_INPUTS, PredictedState
from demokit.registry import Registry
from demokit.spaces import describe

#: the built-in heads' names (any name registered with ``register_head`` is accepted too)
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

    head: a registered head: "categorical" (Discrete, logits), "gaussian" (Box, mean +
      state-independent log std), "qvalue" (Discrete, one Q value per action; acts greedily)
      or "squashed_gaussian" (Box with finite bounds, SAC's actor: mean and state-dependent
      log std, the action is tanh of the Gaussian draw rescaled to the bounds).
    hidden_sizes: widths of the encoder's hidden layers.
    activation: "tanh", "relu", "elu" or "gelu".
    normalize_obs: whether observations pass through running mean/std statistics.
    log_std_init: initial log standard deviation of the Gaussian head.
    encoder: a registered observation encoder ("mlp", "nature_cnn").
    history: observations the encoder sees per decision (1: the current one; K > 1: the last K,
      oldest first, stacked on a new leading axis; acting keeps a per-env history buffer,
      :class:`demokit.policies.actors.HistoryActor`). Box observation spaces only.
    state_dim: 0 (the head acts on the encoder's features), or D > 0: the features pass through a
      linear layer to a D-component state estimate and an MLP of ``hidden_sizes`` to the head
      (:mod:`demokit.policies.predicted_state`; BC's ``state_head`` trains the estimate).
    state_input: with ``state_dim``: that MLP's input, "state" (the estimate alone) or
      "features+state" (the features and the estimate).
    ensemble: 1 (one network), or N > 1: N members of the same encoder and head, their parameters
      stacked on a leading member axis, acting with the mean of the members' actions
      (:mod:`demokit.policies.ensemble`; BC's ``ensemble`` trains them). Box actions (gaussian head) only.
    """

    head: Head
    hidden_sizes: tuple[int, ...] = (64, 64)
    activation: str = "tanh"
    normalize_obs: bool = False
    log_std_init: float = 0.0
    encoder: str = "mlp"
    history: int = 1
    state_dim: int = 0
    state_input: str = "state"
    ensemble: int = 1

    def __post_init__(self) -> None:
        head_class(self.head)
        encoder_class(self.encoder)
        if isinstance(self.history, bool) or not isinstance(self.history, int) or self.history < 1:
            raise UserError(f"history must be an integer >= 1, got {self.history!r}")
        if isinstance(self.state_dim, bool) or not isinstance(self.state_dim, int) or self.state_dim < 0:
            raise UserError(f"state_dim must be an integer >= 0, got {self.state_dim!r}")
        if self.state_input not in STATE_INPUTS:
            raise UserError(f"state_input must be one of {', '.join(STATE_INPUTS)}, got {self.state_input!r}")
        if isinstance(self.ensemble, bool) or not isinstance(self.ensemble, int) or self.ensemble < 1:
            raise UserError(f"ensemble must be an integer >= 1 (members), got {self.ensemble!r}")
        object.__setattr__(self, "hidden_sizes", tuple(int(h) for h in self.hidden_sizes))

    def to_dict(self) -> dict[str, Any]:
        d = {"head": self.head, "hidden_sizes": list(self.hidden_sizes), "activation": self.activation,
             "normalize_obs": self.normalize_obs, "log_std_init": self.log_std_init, "encoder": self.encoder}
        if self.history != 1:  # older checkpoints unchanged
            d["history"] = self.history
        if self.state_dim:
            d.update(state_dim=self.state_dim, state_input=self.state_input)
        if self.ensemble != 1:
            d["ensemble"] = self.ensemble
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "PolicyArch":
        return cls(head=d["head"], hidden_sizes=tuple(d["hidden_sizes"]), activation=d.get("activation", "tanh"),
                   normalize_obs=bool(d.get("normalize_obs", False)), log_std_init=float(d.get("log_std_init", 0.0)),
                   encoder=str(d.get("encoder", "mlp")), history=int(d.get("history", 1)),
                   state_dim=int(d.get("state_dim", 0)), state_input=str(d.get("state_input", "state")),
                   ensemble=int(d.get("ensemble", 1)))


def stack_space(space: spaces.Space, history: int) -> spaces.Space:
    """The space of ``history`` stacked observations of ``space`` (``space`` itself for 1): a Box
    with a new leading axis of size ``history``. Other spaces cannot be stacked (UserError)."""
    if history == 1:
        return space
    if not isinstance(space, spaces.Box):
        raise UserError(f"a history of observations needs a Box observation space, not {describe(space)}")
    return spaces.Box(np.repeat(space.low[None], history, 0), np.repeat(space.high[None], history, 0),
                      dtype=space.dtype)


def default_head(action_space: spaces.Space) -> Head:
    """categorical for Discrete, gaussian for Box; anything else is unsupported for learning."""
    if isinstance(action_space, spaces.Discrete):
        return "categorical"
    if isinstance(action_space, spaces.Box):
        return "gaussian"
    raise UserError(f"learning policies support Discrete and Box action spaces, not {describe(action_space)}")


def _upgrade_v1_keys(module: "NeuralPolicy", state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
    """Load-state-dict pre-hook: rename the keys of the one-MLP layout (checkpoint format 1:
    ``net.<i>.*`` with the output layer last, ``log_std``) to the encoder + head layout
    (``encoder.net.<i>.*``, ``head.linear.*``, ``head.log_std``). Same tensors, same maths."""
    out_index = 2 * len(module.arch.hidden_sizes)
    for key in [k for k in state_dict if k.startswith(prefix + "net.") or k == prefix + "log_std"]:
        rest = key[len(prefix):]
        if rest == "log_std":
            new = "head.log_std"
        else:
            _, index, name = rest.split(".", 2)
            new = f"head.linear.{name}" if int(index) == out_index else f"encoder.net.{index}.{name}"
        state_dict[prefix + new] = state_dict.pop(key)


class NeuralPolicy(nn.Module, Policy):
    """An observation encoder plus a head, with optional observation normalisation.

    ``preprocess(obs)`` turns a raw observation batch (numpy, nested for Dict/Tuple) or a
    stored batch (tensor) into the network input on the policy's device, normalised when
    ``arch.normalize_obs``. On that input ``x``: ``forward(x)`` is the head's output
    (logits, action means or Q values), ``sample(x)`` draws (actions, log-probabilities),
    ``evaluate_actions(x, actions)`` gives (log-probabilities, entropies), ``value(x)`` the
    action values of a Q head. Actions in these calls are policy-space actions (see
    :mod:`demokit.policies.heads.base`); ``act`` / ``to_env_action`` give env actions.
    """

    def __init__(self, observation_space: spaces.Space, action_space: spaces.Space, arch: PolicyArch) -> None:
        super().__init__()
        self.observation_space = observation_space
        self.action_space = action_space
        self.arch = arch
        head_cls = head_class(arch.head)
        head_cls.check_action_space(action_space, arch.head)
        self.encoder = encoder_class(arch.encoder)(stack_space(observation_space, arch.history), arch)
        #: the trunk through a predicted state (``arch.state_dim``; None: the head acts on the features)
        self.state_head = PredictedState(self.encoder.out_dim, arch) if arch.state_dim else None
        self.head = head_cls(self.state_head.out_dim if self.state_head is not None else self.encoder.out_dim,
                             action_space, arch)
        if arch.normalize_obs and not (self.encoder.normalizable or self.encoder.normalizes_itself):
            raise UserError(f"observation normalisation needs flat inputs; the {arch.encoder} encoder does not take "
                            f"it: set normalize_obs to false")
        #: width of the flat network input (0 for encoders whose input is not flat)
        self.obs_dim = self.encoder.input_dim
        self.obs_norm = ObsNormalizer(self.obs_dim) if arch.normalize_obs and self.encoder.normalizable else None
        self.register_load_state_dict_pre_hook(_upgrade_v1_keys)
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

    @property
    def stochastic(self) -> bool:
        """Whether the head has an action distribution (False: a Q head acting greedily)."""
        return self.head.stochastic

    def preprocess(self, obs: Any) -> torch.Tensor:
        """Raw or stored observation batch -> the (normalised) network input on the policy's device."""
        return self.normalize(self.encoder.prepare(obs, self.device))

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """Apply observation normalisation (identity without it) to a prepared flat input."""
        return self.obs_norm(x) if self.obs_norm is not None else x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The head's output on a network input ``x`` (from :meth:`preprocess`)."""
        if self.state_head is not None:
            return self.head(self.state_head(self.encoder(x))[0])
        return self.head(self.encoder(x))

    def distribution(self, x: torch.Tensor) -> Distribution:
        """Action distribution at network input ``x`` (a ``torch.distributions`` object)."""
        return self.head.distribution(self(x))

    def actions_to_tensor(self, actions: Any) -> torch.Tensor:
        """Env actions (B, ...) -> policy-space actions (what ``evaluate_actions`` takes)."""
        return self.head.from_env(actions, self.device)

    def to_env_action(self, a: torch.Tensor) -> np.ndarray:
        """Policy-space actions (CPU tensor) -> numpy actions valid in the env (Discrete offset, Box clipped)."""
        return self.head.to_env(a)

    # ---- the learners' calls -------------------------------------------------
    def evaluate_actions(self, x: torch.Tensor, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(log-probability (B,), entropy (B,)) of policy-space ``actions`` at network input ``x``."""
        return self.head.evaluate(self(x), actions)

    def nll(self, out: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Per-sample negative log-likelihood of ``actions`` given the head's output ``out`` (BC's loss)."""
        return self.head.nll(out, actions)

    def value(self, x: torch.Tensor) -> torch.Tensor:
        """Action values Q(x, .) (B, n) of a Q head (DQN)."""
        return self.head.values(self(x))

    def rsample(self, x: torch.Tensor, noise: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Reparameterised (differentiable) actions and log-probabilities at network input ``x``
        for the standard ``noise`` (SAC's actor loss)."""
        return self.head.sample(self(x), noise)

    @torch.no_grad()
    def sample(self, x: torch.Tensor, *, generator: torch.Generator | None = None,
               rngs: Sequence[np.random.Generator] | None = None,
               pad_to: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """Sampled policy-space actions and their float32 log-probabilities at network input ``x``.

        The head turns standard noise into actions; the noise comes from ``rngs`` (one numpy
        generator per row: row ``i`` draws from ``rngs[i]`` alone), else from ``generator``,
        else from the generator of :meth:`seed` (torch's global one before ``seed``). ``pad_to``:
        compute on the batch padded with zero rows to at least this many rows (:func:`pad_rows`),
        so that with ``rngs`` a row's action depends only on its observation and its generator.
        Log-probabilities are those of the unclipped sample (Box).
        """
        if not self.head.stochastic:
            raise ValueError(f"a {self.arch.head} policy acts greedily: it has no action distribution to sample")
        n = x.shape[0]
        if rngs is not None and len(rngs) != n:
            raise ValueError(f"sampling with per-row generators needs one generator per row: {len(rngs)} for {n} rows")
        out = self(pad_rows(x, pad_to))
        noise = pad_rows(self._noise(n, generator, rngs), pad_to).to(out.device)
        actions, log_probs = self.head.sample(out, noise)
        if actions.shape[0] != n:
            actions, log_probs = actions[:n], log_probs[:n]
        return actions.cpu(), log_probs.float().cpu()

    def _noise(self, n: int, generator: torch.Generator | None,
               rngs: Sequence[np.random.Generator] | None) -> torch.Tensor:
        """The standard noise of ``n`` samples (see :mod:`demokit.policies.heads.base`)."""
        normal, dim = self.head.noise_kind == "normal", self.head.noise_dim
        if rngs is not None:
            if normal:
                return torch.from_numpy(np.stack([g.standard_normal(dim, dtype=np.float32) for g in rngs]))
            return torch.from_numpy(np.array([[g.random()] for g in rngs]))
        gen = generator if generator is not None else self._generator
        return torch.randn((n, dim), generator=gen) if normal else torch.rand((n, 1), generator=gen)

    # ---- observation statistics ----------------------------------------------
    @property
    def normalizes_obs(self) -> bool:
        """Whether observations are normalised (flat: ``obs_norm``; else inside the encoder, e.g. a mean frame)."""
        return self.obs_norm is not None or self._encoder_normalizes

    @property
    def _encoder_normalizes(self) -> bool:
        return self.arch.normalize_obs and self.encoder.normalizes_itself and not self.encoder.normalizable

    def update_obs_statistics(self, obs: np.ndarray | torch.Tensor) -> None:
        """Fold a batch of stored observations into the running statistics (no-op without normalisation)."""
        if self.obs_norm is not None:
            self.obs_norm.update(obs)
        elif self._encoder_normalizes:
            self.encoder.update_statistics(obs)

    @torch.no_grad()
    def set_obs_statistics(self, mean: torch.Tensor, var: torch.Tensor | None, count: float) -> None:
        """Set the normalisation statistics (e.g. merged across ranks); flat per-element mean and variance
        of the stored layout (an encoder that normalises itself uses what it needs: nature_cnn the mean)."""
        if self._encoder_normalizes:
            self.encoder.set_statistics(mean, count)
            return
        assert self.obs_norm is not None and var is not None, "the policy does not normalise observations"
        self.obs_norm.mean.copy_(mean)
        self.obs_norm.var.copy_(var)
        self.obs_norm.count.fill_(float(count))

    def fit_obs_statistics(self, x: np.ndarray | torch.Tensor) -> None:
        """Set the statistics to those of a whole data set (BC, GAIL): flat inputs, or stored observations for
        an encoder that normalises itself; no-op without normalisation."""
        if self.obs_norm is not None:
            self.obs_norm.set_from_data(x)
        elif self._encoder_normalizes:
            self.encoder.fit_statistics(x)

    def freeze_action_std(self) -> None:
        """Stop training the head's observation-independent spread (BC with an MSE loss fits means only)."""
        for p in self.head.spread_parameters():
            p.requires_grad_(False)

    # ---- acting --------------------------------------------------------------
    def seed(self, seed: int) -> None:
        self._generator = torch.Generator(device="cpu")
        self._generator.manual_seed(int(seed))

    def act(self, obs: Any, *, deterministic: bool = True, pad_to: int = 0) -> np.ndarray:
        """Env actions for a raw observation batch (no gradients).

        ``pad_to``: run the network on the batch padded with zero rows to at least this
        many rows (:func:`pad_rows`; ``ROW_INVARIANT_BATCH`` makes each row's action
        independent of the batch size on the CPU). Sampling (``deterministic=False``, heads
        with a distribution) uses the generator of :meth:`seed`; for one stream per row see
        :meth:`sample`.
        """
        with torch.no_grad():
            x = self.preprocess(obs)
            if deterministic or not self.head.stochastic:
                a = self.head.mode(self.forward(pad_rows(x, pad_to)))  # no module-call hooks on the hot path
                if a.shape[0] != x.shape[0]:
                    a = a[: x.shape[0]]
            else:
                a, _ = self.sample(x, pad_to=pad_to)
        return self.to_env_action(a.cpu())


def make_policy(observation_space: spaces.Space, action_space: spaces.Space, *, head: Head | None = None,
                hidden_sizes: Sequence[int] = (64, 64), activation: str = "tanh", normalize_obs: bool = False,
                log_std_init: float = 0.0, encoder: str = "mlp", history: int = 1, state_dim: int = 0,
                state_input: str = "state", ensemble: int = 1) -> NeuralPolicy:
    """Build a ``NeuralPolicy`` with ``head`` defaulting to the action space's natural one (``ensemble`` > 1: the
    registered ensemble policy of that many members, :func:`build_policy`)."""
    arch = PolicyArch(head=head or default_head(action_space), hidden_sizes=tuple(hidden_sizes),
                      activation=activation, normalize_obs=normalize_obs, log_std_init=log_std_init,
                      encoder=encoder, history=history, state_dim=state_dim, state_input=state_input,
                      ensemble=ensemble)
    return build_policy(observation_space, action_space, arch)


#: policy classes by kind: "single" (one network, ``PolicyArch.ensemble == 1``) and "ensemble" (``ensemble`` > 1;
#: registered by :mod:`demokit.policies`' ``__init__`` from :mod:`demokit.policies.ensemble`)
POLICY_KINDS: Registry[NeuralPolicy] = Registry("policy kind")
POLICY_KINDS.register("single", NeuralPolicy)


def register_policy_kind(name: str, cls: type[NeuralPolicy]) -> type[NeuralPolicy]:
    """Make :func:`build_policy` build ``cls`` for archs of kind ``name``; a name can be registered once."""
    return POLICY_KINDS.register(name, cls)


def build_policy(observation_space: spaces.Space, action_space: spaces.Space, arch: PolicyArch) -> NeuralPolicy:
    """The policy ``arch`` describes (what training and :func:`demokit.policies.load_checkpoint` build): a
    ``NeuralPolicy``, or for ``arch.ensemble`` > 1 the class registered as the "ensemble" kind."""
    return POLICY_KINDS.get("ensemble" if arch.ensemble > 1 else "single")(observation_space, action_space, arch)
