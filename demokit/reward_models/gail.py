"""GAIL (Ho & Ermon, 2016): a discriminator between expert and policy transitions as the reward.

Label convention (the opposite of DI-engine's, the same as imitation's and the paper's
GAN form)::

    EXPERT_LABEL = 1   # D(s, a) -> 1 on expert data
    POLICY_LABEL = 0   # D(s, a) -> 0 on policy data

The discriminator outputs a LOGIT ``z``, ``D = sigmoid(z)``, and is trained with
``binary_cross_entropy_with_logits`` on ``z`` (:func:`logits_expert_is_one_loss`): never
``sigmoid`` followed by ``log(x + eps)``, which saturates and loses gradient.

Reward forms (``reward_form``), all computed stably from the logit:

=============  =====================  =====================  =======================================
name           formula                from the logit         sign / bias
=============  =====================  =====================  =======================================
``logit``      log D - log(1 - D)     ``z``                  either sign: no survival/ending bias
``positive``   -log(1 - D)            ``softplus(z)``        > 0: rewards living longer (imitation's;
                                                             = DI-engine's -log D with D -> 1 on agent)
``negative``   log D                  ``-softplus(-z)``      < 0: rewards ending sooner
=============  =====================  =====================  =======================================

Discriminator input: flattened observation (normalised with the expert data's mean
and std), the action encoded one-hot for ``Discrete`` (one one-hot per component for
``MultiDiscrete``; raw for ``Box`` / ``MultiBinary``) and optionally the flattened next
observation. One-hot instead of DI-engine's raw action index: a raw index puts the
actions on a line (action 1 "between" 0 and 2) and makes the score of one action a
smooth interpolation of its neighbours', which a small tanh MLP cannot undo; one-hot
gives every action its own input weight.

Image observations (``encoder``: auto picks ``nature_cnn`` for uint8 images of at least 36x36):
the observation (and next observation) goes through a Nature CNN (its own weights, mean-frame
centring fitted on the expert data with ``normalize_obs``) and its 512 features are concatenated
with the action encoding (and the absorbing indicator) before the MLP. The feature rows then hold
the raw pixel values as float32 (4 bytes per pixel and transition, expert data included), which
the CNN scales by 1/255.

Everything runs on ``device``: the expert features live there as one tensor, batches
are drawn by index with a seeded ``torch.randint``, collected policy data is
concatenated once per round.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from gymnasium import spaces
from torch import nn

from demokit.devices import resolve_device
from demokit.config import from_mapping, option, to_dict
from demokit.data.checks import check_values
from demokit.data.dataset import DemoDataset, load_dataset
from demokit.data.episode import obs_index
from demokit.errors import ConfigError, DatasetError, UserError
from demokit.policies.encoders import NatureCNNEncoder, resolve_encoder
from demokit.policies.networks import make_adam, mlp
from demokit.reward_models.base import (BaseRewardModel, Transitions, as_transition_batch, device_tensor,
                                        flat_observation_tensor, num_transitions, rename_di_engine_keys,
                                        with_rewards)
from demokit.reward_models.registry import register_reward_model
from demokit.seeding import derive_seed
from demokit.spaces import describe, flat_dim, flatten_batch
from demokit.transitions import TransitionBatch

#: D(s, a) -> 1 on expert data.
EXPERT_LABEL = 1.0
#: D(s, a) -> 0 on policy data.
POLICY_LABEL = 0.0
#: normalised discriminator inputs are clipped to this range (policy states far from the expert's)
OBS_CLIP = 10.0

RewardForm = Literal["logit", "positive", "negative"]

#: reward as a function of the discriminator logit z = log D - log(1 - D)
REWARD_FORMS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "logit": lambda z: z,                       # log D - log(1 - D)
    "positive": F.softplus,                     # -log(1 - D)
    "negative": lambda z: -F.softplus(-z),      # log D
}


@dataclass(frozen=True)
class GailConfig:
    """Config of :class:`GailRewardModel` (DI-engine's key names plus demokit's options)."""

    type: str = option("gail", "reward model type (registry name)")
    expert_data_path: str | None = option(None, "expert demonstrations: a demokit .h5 dataset")
    input_dims: int | None = option(None, "discriminator input width (inferred from the dataset when omitted)")
    hidden_dims: tuple[int, ...] = option((64, 64), "discriminator hidden layer widths (tanh)")
    batch_size: int = option(128, "expert and policy transitions per discriminator update (each)")
    update_per_collect: int = option(5, "discriminator updates per round")
    learning_rate: float = option(1e-3, "discriminator Adam learning rate")
    clear_buffer_per_iters: int = option(1, "clear the collected policy data every N rounds")
    policy_window: int | None = option(None, "off-policy learners: clear_data(iter) keeps the latest N collected "
                                             "policy transitions (the replay buffer's recent ones) instead of "
                                             "clearing; unset: clear every clear_buffer_per_iters rounds")
    reward_form: RewardForm = option("logit", "logit (log D - log(1-D)), positive (-log(1-D)) or negative (log D)")
    use_next_obs: bool = option(False, "feed the next observation to the discriminator too")
    normalize_obs: bool = option(True, "normalise discriminator observations with the expert data's mean/std "
                                       "(images: subtract the expert frames' mean frame in the CNN)")
    encoder: str = option("auto", "discriminator observation encoder: mlp (flattened observations) or nature_cnn "
                                  "(CNN features concatenated with the action); auto: nature_cnn for uint8 image "
                                  "observations of at least 36x36, else mlp")
    grad_penalty: float = option(0.0, "weight of a zero-centred gradient penalty on expert/policy interpolates")
    normalize_reward: bool = option(False, "divide rewards by their std on the latest policy data (sign kept)")
    collect_count: int | None = option(None, "use the first N expert transitions (DI-engine's collect_count); "
                                             "unset: all")
    absorbing: bool = option(True, "learn a reward for the absorbing state after termination (DAC) and add its "
                                   "discounted value gamma/(1-gamma)*r_absorbing to terminating transitions")
    absorbing_indicator: float = option(1.0, "the absorbing state's indicator input (its other inputs are 0, the "
                                             "expert's mean state): larger keeps it apart from real states when a "
                                             "gradient penalty limits how fast D may change")
    gamma: float = option(0.99, "the learner's discount, for the absorbing state's value (pipelines set it)")

    def __post_init__(self) -> None:
        if self.type != "gail":
            raise ConfigError(f"GailConfig.type must be 'gail', got {self.type!r}")
        positive = {"batch_size": self.batch_size, "update_per_collect": self.update_per_collect,
                    "clear_buffer_per_iters": self.clear_buffer_per_iters}
        for name, value in positive.items():
            if value < 1:
                raise ConfigError(f"GailConfig.{name} must be >= 1, got {value}")
        if not self.hidden_dims or min(self.hidden_dims) < 1:
            raise ConfigError(f"GailConfig.hidden_dims must be positive widths like 64,64, got {self.hidden_dims!r}")
        if not self.learning_rate > 0:
            raise ConfigError(f"GailConfig.learning_rate must be > 0, got {self.learning_rate}")
        if self.grad_penalty < 0:
            raise ConfigError(f"GailConfig.grad_penalty must be >= 0, got {self.grad_penalty}")
        if not self.absorbing_indicator > 0:
            raise ConfigError(f"GailConfig.absorbing_indicator must be > 0, got {self.absorbing_indicator}")
        if not 0.0 <= self.gamma < 1.0:
            raise ConfigError(f"GailConfig.gamma must be in [0, 1), got {self.gamma}")
        if self.input_dims is not None and self.input_dims < 1:
            raise ConfigError(f"GailConfig.input_dims must be >= 1, got {self.input_dims}")
        if self.policy_window is not None and self.policy_window < 1:
            raise ConfigError(f"GailConfig.policy_window must be >= 1, got {self.policy_window}")
        if self.collect_count is not None and self.collect_count < 1:
            raise ConfigError(f"GailConfig.collect_count must be >= 1, got {self.collect_count}")
        if self.encoder not in ("auto", "mlp", "nature_cnn"):
            raise ConfigError(f"GailConfig.encoder must be auto, mlp or nature_cnn, got {self.encoder!r}")


def gail_config(config: Mapping[str, Any] | GailConfig | None = None, /, **overrides: Any) -> GailConfig:
    """A :class:`GailConfig` from a mapping or a config. DI-engine's spellings are accepted:
    ``hidden_dims: 64`` (one layer) and the key names ``input_size``, ``hidden_size``, ``data_path``."""
    if isinstance(config, Mapping):
        config = rename_di_engine_keys(dict(config), GailConfig)
        if isinstance(config.get("hidden_dims"), int):
            config["hidden_dims"] = (config["hidden_dims"],)
    if isinstance(overrides.get("hidden_dims"), int):
        overrides["hidden_dims"] = (overrides["hidden_dims"],)
    return from_mapping(GailConfig, config, **overrides)


def logits_expert_is_one_loss(expert_logits: torch.Tensor, policy_logits: torch.Tensor) -> torch.Tensor:
    """Discriminator loss with labels expert = 1, policy = 0, on logits (mean per side, summed).

    ``-mean(log D(expert)) - mean(log(1 - D(policy)))`` computed by BCE-with-logits.
    """
    expert = F.binary_cross_entropy_with_logits(expert_logits, torch.full_like(expert_logits, EXPERT_LABEL))
    policy = F.binary_cross_entropy_with_logits(policy_logits, torch.full_like(policy_logits, POLICY_LABEL))
    return expert + policy


def interpolate_grad_penalty(fn: Callable[[torch.Tensor], torch.Tensor], expert_x: torch.Tensor,
                             policy_x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Zero-centred gradient penalty ``mean_i ||d fn(x_i) / d x_i||^2`` at the interpolates
    ``x_i = alpha_i * expert_i + (1 - alpha_i) * policy_i`` (``alpha_i ~ U[0, 1)`` from ``generator``, one per
    row pair; the first ``min(len(expert_x), len(policy_x))`` rows of each). ``fn``: rows (m, width) -> (m,)
    logits; the result keeps the graph (add it to a loss, weighted)."""
    m = min(expert_x.shape[0], policy_x.shape[0])
    alpha = torch.rand(m, 1, device=expert_x.device, generator=generator)
    mix = (alpha * expert_x[:m] + (1 - alpha) * policy_x[:m]).requires_grad_(True)
    grad, = torch.autograd.grad(fn(mix).sum(), mix, create_graph=True)
    return grad.pow(2).sum(-1).mean()


def reward_from_logits(logits: torch.Tensor, form: str) -> torch.Tensor:
    """The reward of ``form`` (see :data:`REWARD_FORMS`) from discriminator logits."""
    try:
        return REWARD_FORMS[form](logits)
    except KeyError:
        raise ConfigError(f"unknown GAIL reward_form {form!r}; use one of {', '.join(REWARD_FORMS)}") from None


@dataclass(frozen=True)
class ImageInputs:
    """Where a discriminator's feature rows hold images: the observation space, the column offset of each
    image (observation, next observation) and whether the CNN centres with a mean frame."""

    observation_space: spaces.Space
    offsets: tuple[int, ...]
    normalize_obs: bool

    @property
    def width(self) -> int:
        return flat_dim(self.observation_space)


class Discriminator(nn.Module):
    """MLP ``features -> logit`` (tanh hidden layers). ``forward`` gives logits of shape (B,).

    With ``images``: the columns of each image go through one Nature CNN (``self.cnn``) and its features
    replace them (in their place) before the MLP."""

    def __init__(self, input_dim: int, hidden_dims: tuple[int, ...], images: ImageInputs | None = None) -> None:
        super().__init__()
        self.input_dim = int(input_dim)
        self.images = images
        width = self.input_dim
        if images is not None:
            self.cnn = NatureCNNEncoder(images.observation_space, images)
            self._shape = tuple(images.observation_space.shape)
            width += len(images.offsets) * (self.cnn.out_dim - images.width)
        self.net = mlp(width, hidden_dims, 1, activation="tanh")

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Feature rows -> the MLP's input (images replaced by their CNN features)."""
        if self.images is None:
            return x
        parts, at, w = [], 0, self.images.width
        for off in self.images.offsets:
            parts += [x[:, at:off], self.cnn(x[:, off:off + w].reshape(x.shape[0], *self._shape))]
            at = off + w
        return torch.cat([*parts, x[:, at:]], dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.encode(x)).squeeze(-1)

    def learn(self, expert_x: torch.Tensor, policy_x: torch.Tensor, *, grad_penalty: float = 0.0,
              generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Loss of one batch pair plus the logits on each side (one forward pass over both)."""
        n = expert_x.shape[0]
        logits = self(torch.cat([expert_x, policy_x]))
        expert_logits, policy_logits = logits[:n], logits[n:]
        loss = logits_expert_is_one_loss(expert_logits, policy_logits)
        if grad_penalty > 0:
            loss = loss + grad_penalty * interpolate_grad_penalty(self, expert_x, policy_x, generator)
        return loss, expert_logits, policy_logits


class PolicyRows:
    """The discriminator's policy rows (R, width) in arrival order, in one growable tensor.

    ``append`` copies only the new rows (the buffer doubles, or is compacted, when full: amortised O(1)
    per row); ``keep_latest(n)`` (a sliding window) and ``clear`` move offsets; ``rows()`` is a view of
    the live rows, oldest first: the rows a list of chunks concatenated every round would give, without
    copying the whole window each round (an off-policy round is one env step)."""

    def __init__(self) -> None:
        self._buf: torch.Tensor | None = None
        self._lo = 0
        self._hi = 0

    def __len__(self) -> int:
        return self._hi - self._lo

    def append(self, x: torch.Tensor) -> None:
        """Add rows (n, width) after the live ones."""
        n = int(x.shape[0])
        buf = self._buf
        if buf is None or buf.shape[1:] != x.shape[1:] or buf.dtype != x.dtype or buf.device != x.device:
            buf = self._buf = x.new_empty((max(2 * n, 1024), *x.shape[1:]))
            self._lo = self._hi = 0
        if self._hi + n > buf.shape[0]:  # compact the live rows to the front of a buffer twice their size
            live = len(self)
            new = x.new_empty((max(buf.shape[0], 2 * (live + n)), *x.shape[1:]))
            new[:live] = buf[self._lo:self._hi]
            self._buf, self._lo, self._hi = new, 0, live
        self._buf[self._hi:self._hi + n] = x
        self._hi += n

    def keep_latest(self, n: int) -> None:
        """Drop all but the latest ``n`` rows."""
        self._lo = max(self._lo, self._hi - int(n))

    def clear(self) -> None:
        """Drop every row (the memory is kept for the next round's)."""
        self._lo = self._hi = 0

    def rows(self) -> torch.Tensor:
        """The live rows (R, width), oldest first (a view)."""
        assert self._buf is not None
        return self._buf[self._lo:self._hi]


def action_features_dim(space: spaces.Space) -> int:
    """Width of the discriminator's action encoding for ``space``."""
    if isinstance(space, spaces.Discrete):
        return int(space.n)
    if isinstance(space, spaces.MultiDiscrete):
        return int(np.asarray(space.nvec).sum())
    if isinstance(space, (spaces.Box, spaces.MultiBinary)):
        return flat_dim(space)
    raise UserError(f"GAIL supports Discrete, MultiDiscrete, MultiBinary and Box actions, not {describe(space)}")


def encode_actions(space: spaces.Space, actions: torch.Tensor) -> torch.Tensor:
    """Actions (B, ...) -> float features: one-hot for (Multi)Discrete, flattened otherwise."""
    b = actions.shape[0]
    if isinstance(space, spaces.Discrete):
        values = actions.reshape(b, -1)[:, 0]
        idx = _indices(values, int(space.start), int(space.n), space)
        return F.one_hot(idx, int(space.n)).float()
    if isinstance(space, spaces.MultiDiscrete):
        nvec = np.asarray(space.nvec).reshape(-1)
        start = np.broadcast_to(np.asarray(space.start if space.start is not None else 0), nvec.shape)
        values = actions.reshape(b, -1)
        return torch.cat([F.one_hot(_indices(values[:, j], int(start[j]), int(n), space), int(n)).float()
                          for j, n in enumerate(nvec)], dim=1)
    return actions.reshape(b, -1).float()


def _indices(values: torch.Tensor, start: int, n: int, space: spaces.Space) -> torch.Tensor:
    """0-based indices of discrete action ``values``; a UserError names the first value outside
    ``start .. start + n - 1`` (or not a whole number) instead of changing it."""
    idx = values.long()
    bad = (idx < start) | (idx >= start + n)
    if values.is_floating_point():
        bad = bad | (values != idx.to(values.dtype))
    if bool(bad.any()):
        first = values[bad][0].item()
        raise UserError(f"action {first:g} at row {int(bad.nonzero()[0, 0])} is not a valid index of the action "
                        f"space {describe(space)} (valid: {start} .. {start + n - 1}); demokit does not change "
                        f"actions: check the data's action encoding")
    return idx - start


#: off-policy GAIL: the discriminator on the replay buffer's latest 1000 transitions, one update per env step
OFF_POLICY_WINDOW: dict[str, Any] = {"policy_window": 1_000, "update_per_collect": 1}
#: the reward of GAIL on MuJoCo tasks (see GAIL_PIPELINE_DEFAULTS)
MUJOCO_REWARD: dict[str, Any] = {"reward_form": "positive", "absorbing": False}
#: GAIL's env-step budget on the MuJoCo locomotion tasks of issue 11's table (else 3x the tuned RL budget) and its
#: stop value: the SAC expert's goal (the tuned table's), for GAIL-PPO too (the envs' reward thresholds are above it)
MUJOCO_BUDGET: dict[str, dict[str, Any]] = {env: {"total_timesteps": 1_000_000, "stop_value": goal}
                                            for env, goal in (("Hopper-v5", 3000.0), ("HalfCheetah-v5", 5000.0),
                                                              ("Walker2d-v5", 4000.0))}

#: GAIL-PPO's own settings per MuJoCo task over the shared ones (the positive reward without the absorbing state,
#: running observation and reward normalisation, MUJOCO_BUDGET): "rl" over PPO's config, "reward_model" over
#: GailConfig's. Each was measured on the MuJoCo table's cells (docs/benchmarks.md: "The MuJoCo table", "GAIL to 0.9
#: on Hopper", "GAIL-PPO on HalfCheetah-v5 and Walker2d-v5"), the reasons in short:
#: - PPO's reward normalisation, shared (session 11): Hopper's 12 cells >= 0.99 with it in 0.72x the env steps;
#:   Walker2d's 12 all >= 0.95 with it, 8 of 12 without.
#: - Hopper-v5: minibatches of 64 (PPO's default 256: 4x the gradient steps per 1024-step rollout, ~1.25x the CPU
#:   per env step). Session 13, all 12 cells: 0.91-1.06 (cell means 0.985-1.013), 2.58M env steps in total to the
#:   3000 stop against 3.62M with minibatches of 128 (session 12) and 4.92M with 256 (session 11); 0.9 normalised at
#:   205k / 185k / 82k env steps on seeds 0-2 (128: 184k / 451k / 308k). Also measured: 20 epochs, lr 6e-4, 4 envs,
#:   a narrower initial Gaussian, a 600k budget (a faster learning-rate decay: 0.85x the env steps of 128's cells).
#: - HalfCheetah-v5: a narrower initial Gaussian (std e^-1) and the stop confirmed on 50 episodes (a deterministic
#:   cheetah that flips scores ~0 on a quick check), checks every 20k env steps, stop at 5100 (0.98 of the
#:   expert: 11 of 12 cells >= 0.95 against 10), Walker2d's gradient penalty (seed 1 at k 25 flipped without it).
#:   Not adopted: stop_margin_se 1, use_next_obs; minibatches of 128 once (seed 0, k 25: 401k against 580k).
#: - Walker2d-v5: a zero-centred gradient penalty on the discriminator, weight 1 (0.64 after 1M with falls ->
#:   1.02 at 580k; weight 10 walked slowly), checks every 20k, 50 confirming episodes. Minibatches of 128: worse
#:   (0.92 after 1M against 1.005 at 461k, seed 0).
MUJOCO_PPO: dict[str, dict[str, dict[str, Any]]] = {
    "Hopper-v5": {"rl": {"batch_size": 64}},
    "HalfCheetah-v5": {"rl": {"log_std_init": -1.0, "eval_every": 20_000,
                              "final_eval_episodes": 50, "stop_value": 5100.0}, "reward_model": {"grad_penalty": 1.0}},
    "Walker2d-v5": {"rl": {"eval_every": 20_000, "final_eval_episodes": 50}, "reward_model": {"grad_penalty": 1.0}},
}

#: GAIL-SAC's settings on the MuJoCo tasks (Hopper-v5 measured, the other tasks carry them over; docs/benchmarks.md,
#: "GAIL-SAC, session 8" and "GAIL-SAC, session 15"): a zero-centred gradient penalty of weight 1 on the
#: discriminator, one discriminator update per 10 env steps (SAC's rounds of 10 env steps, each followed by 10
#: gradient steps: still one gradient step per env step) and 128x128 networks. Without a penalty the
#: discriminator saturated within 20k steps (D 1.00 / 0.003; quick checks 224-1151 to 30k, session 5); with a
#: penalty of 10 and an update per env step the policy plateaued near 1000 to 220k (session 7). With these: 0.908
#: after 300k (seed 0, session 8, bfloat16), 0.975 at 200k (seed 2, session 15, float32, confirmed on 50 episodes).
MUJOCO_SAC: dict[str, dict[str, Any]] = {"reward_model": {"grad_penalty": 1.0},
                                         "rl": {"train_freq": 10, "gradient_steps": -1, "hidden_sizes": (128, 128)}}

#: GAIL's own defaults per env and learner for the IRL pipelines, under the user's settings: "rl" over
#: the tuned RL table, "reward_model" over GailConfig's defaults (measured: docs/benchmarks.md, GAIL).
GAIL_PIPELINE_DEFAULTS: dict[str, dict[str, dict[str, dict[str, Any]]]] = {
    "CartPole-v1": {
        "ppo": {"rl": {"n_epochs": 10, "eval_every": 5_000}},
        "dqn": {"rl": {"eval_every": 5_000}},
    },
    "Acrobot-v1": {
        # two passing checks in a row: a 3-round policy once passed a 50-episode check by luck (-77.6)
        # and scored -87.5 on fresh episodes
        "ppo": {"reward_model": {"update_per_collect": 20}, "rl": {"stop_after_passes": 2}},
        "dqn": {"rl": {"train_freq": 256, "gradient_steps": 128, "eval_every": 5_000}},
    },
    "MountainCar-v0": {
        "dqn": {"rl": {"train_freq": 64, "gradient_steps": 32, "eval_every": 5_000}},
    },
    # the discriminator on the replay buffer's latest 1000 transitions, one update per env step (measured on
    # Pendulum-v1; the MuJoCo rows below carry it over)
    "Pendulum-v1": {"sac": {"reward_model": dict(OFF_POLICY_WINDOW)}},
    # MuJoCo (Hopper-v5 measured, docs/benchmarks.md "GAIL on Hopper-v5"; the other tasks carry it over, GAIL-PPO
    # with its own settings per task over it: MUJOCO_PPO): the
    # positive reward -log(1 - D) (a survival bonus: imitation's and DI-engine's MuJoCo form) without the absorbing
    # state. The expert data never terminates, so the absorbing state's reward is learned from the policy's falls
    # alone and, until the discriminator has learned it, its value gamma / (1 - gamma) * r_abs (~99 steps' worth)
    # pays for falling: GAIL-PPO with it fell at once (returns 2-4 after 20-40k steps, logit and positive forms),
    # without it the positive form stood up (274 after 20k). GAIL-PPO with running observation and reward
    # normalisation (the reward's: session 11, see MUJOCO_PPO). GAIL-SAC with its own settings: MUJOCO_SAC.
    **{env: {"sac": {"reward_model": {**OFF_POLICY_WINDOW, **MUJOCO_REWARD, **MUJOCO_SAC["reward_model"]},
                     "rl": {**MUJOCO_BUDGET.get(env, {}), **MUJOCO_SAC["rl"]}},
             "ppo": {"reward_model": {**MUJOCO_REWARD, **MUJOCO_PPO.get(env, {}).get("reward_model", {})},
                     "rl": {"normalize_obs": True, "normalize_reward": True, **MUJOCO_BUDGET.get(env, {}),
                            **MUJOCO_PPO.get(env, {}).get("rl", {})}}}
       for env in ("InvertedPendulum-v5", "Swimmer-v5", "Hopper-v5", "HalfCheetah-v5", "Walker2d-v5")},
}

#: GAIL's learner per env when none is given (else the pipeline's first fitting learner, PPO): DQN where it
#: was measured to imitate better (MountainCar-v0: GAIL-PPO ended at -130 after 360k steps on -101
#: demonstrations, GAIL-DQN at -100). Hopper-v5 keeps PPO: both reach 0.95, GAIL-PPO in 170k-210k env steps at
#: ~0.4 ms of CPU each (the MuJoCo table), GAIL-SAC at its MuJoCo defaults in 200k at ~7.8 ms each (seed 2,
#: session 15: ~20x the CPU)
GAIL_DEFAULT_LEARNERS: dict[str, str] = {"MountainCar-v0": "dqn"}


@register_reward_model("gail")
class GailRewardModel(BaseRewardModel):
    """GAIL's discriminator as a reward model (DI-engine's ``GailRewardModel`` API).

    Args:
        config: a mapping with :class:`GailConfig` keys or a ``GailConfig``.
        device: "auto" (CUDA when available), "cpu", "cuda" or a ``torch.device``.
        tb_logger: None or anything with ``add_scalar(tag, value, step)`` (a
            ``SummaryWriter``): discriminator loss and mean D on expert / policy data.
        seed: seeds the discriminator's initial weights and its batch sampling.
        expert_data: an already loaded :class:`DemoDataset` instead of
            ``config["expert_data_path"]``.

    It needs the learner's discount (``gamma``, for the absorbing state's value): the
    pipelines set it unless the config gives one.
    """

    config_class = GailConfig
    needs = frozenset({"gamma"})
    pipeline_defaults = GAIL_PIPELINE_DEFAULTS
    default_learners = GAIL_DEFAULT_LEARNERS

    @classmethod
    def parse_config(cls, config: Any) -> GailConfig:
        return gail_config(config)

    def __init__(self, config: Mapping[str, Any] | GailConfig, device: Any = "auto", tb_logger: Any = None, *,
                 seed: int = 0, expert_data: DemoDataset | None = None) -> None:
        self.cfg = gail_config(config)
        self.device = device if isinstance(device, torch.device) else resolve_device(str(device))
        self.tb_logger = tb_logger
        self.train_iter = 0
        self.last_stats: dict[str, float] = {}
        self._seed = int(seed)
        self._generator = torch.Generator(device=self.device)
        self._generator.manual_seed(derive_seed(seed, "gail", "batches"))
        self._policy_rows = PolicyRows()
        self.reward_scale = 1.0
        self.load_expert_data(expert_data)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(derive_seed(seed, "gail", "init"))
            self.discriminator = Discriminator(self.input_dim, self.cfg.hidden_dims, self.image_inputs)
            if self.image_inputs is not None and self.cfg.normalize_obs:
                self.discriminator.cnn.fit_statistics(self._expert_cols["observations"])
            self.discriminator.to(self.device)
        self.optimizer = make_adam(self.discriminator.parameters(), lr=self.cfg.learning_rate, direct=True)

    # -- expert data and features --------------------------------------------------------

    def load_expert_data(self, data: DemoDataset | None = None) -> None:
        """Load the expert dataset (``config.expert_data_path`` unless ``data`` is given) onto the device."""
        if data is None:
            path = self.cfg.expert_data_path
            if not path:
                raise ConfigError("GAIL needs expert demonstrations: set expert_data_path to a demokit .h5 dataset")
            try:
                data = load_dataset(path)
            except DatasetError as exc:
                if str(path).endswith((".pkl", ".pickle")):
                    raise DatasetError(f"{exc}; DI-engine pickles convert with `demokit convert`") from None
                raise
        if len(data) == 0:
            raise DatasetError(f"expert dataset {data.path} holds no transitions")
        self.expert_dataset = data
        #: expert transitions used: all, or the first ``collect_count``
        self.expert_rows = len(data) if self.cfg.collect_count is None else min(len(data), self.cfg.collect_count)
        self.observation_space = data.observation_space
        self.action_space = data.action_space
        self.obs_dim = flat_dim(self.observation_space)
        self.input_dim = (self.obs_dim * (2 if self.cfg.use_next_obs else 1) + action_features_dim(self.action_space)
                          + (1 if self.cfg.absorbing else 0))
        self.encoder = resolve_encoder(self.cfg.encoder, self.observation_space)
        #: image columns of the feature rows (raw pixel values) for the CNN, None for the MLP on flat features
        self.image_inputs = None if self.encoder != "nature_cnn" else ImageInputs(
            self.observation_space, (0, *([self.obs_dim + action_features_dim(self.action_space)]
                                          if self.cfg.use_next_obs else [])), self.cfg.normalize_obs)
        self._check_input_dims()
        self._expert_cols = self._expert_columns()
        flat_obs = device_tensor(self._expert_cols["observations"], self.device)
        if self.cfg.normalize_obs and self.image_inputs is None:
            self.obs_mean = flat_obs.mean(0)
            std = flat_obs.std(0, unbiased=False)
            self.obs_std = torch.where(std > 1e-6, std, torch.ones_like(std))
        else:
            self.obs_mean = torch.zeros(self.obs_dim, device=self.device)
            self.obs_std = torch.ones(self.obs_dim, device=self.device)
        self.expert_x = self._expert_features()

    def _expert_columns(self) -> dict[str, Any]:
        """The expert transitions (``DemoDataset.read``; observations flat), refused when they hold NaN / inf."""
        data = self.expert_dataset
        cols = data.read(["observations", "actions", "terminated", *(["next_observations"] if self.cfg.use_next_obs
                                                                      else [])])
        if self.expert_rows < len(data):  # collect_count: the first N transitions
            cols = {k: obs_index(v, slice(0, self.expert_rows)) for k, v in cols.items()}
        if self.image_inputs is not None:  # images: flattened, kept uint8 here
            cols["observations"] = np.asarray(cols["observations"]).reshape(len(cols["observations"]), -1)
        else:
            cols["observations"] = flatten_batch(self.observation_space, cols["observations"])
        check_values(data.path, cols["observations"], cols["actions"], self.action_space, "GAIL")
        if "next_observations" in cols:  # final observations too
            check_values(data.path, flatten_batch(self.observation_space, cols["next_observations"]),
                         cols["actions"], self.action_space, "GAIL")
        return cols

    def _expert_features(self) -> torch.Tensor:
        cols = self._expert_cols
        x = self.features(cols["observations"], cols["actions"], cols.get("next_observations"))
        return self._with_absorbing(x, int(np.count_nonzero(cols["terminated"])))

    def absorbing_features(self, n: int = 1) -> torch.Tensor:
        """``n`` discriminator inputs of the absorbing state (zeros, indicator ``absorbing_indicator``)."""
        x = torch.zeros(n, self.input_dim, device=self.device)
        x[:, -1] = float(self.cfg.absorbing_indicator)
        return x

    def _with_absorbing(self, x: torch.Tensor, terminations: int) -> torch.Tensor:
        """Append one absorbing-state row per termination (DAC), when ``absorbing``."""
        if not self.cfg.absorbing or terminations == 0:
            return x
        return torch.cat([x, self.absorbing_features(terminations)])

    def _check_input_dims(self) -> None:
        given = self.cfg.input_dims
        if given is None or given == self.input_dim:
            return
        # DI-engine's width: observation(s) + the action as stored (a raw index for Discrete), no absorbing indicator
        di_engine_width = (self.input_dim - action_features_dim(self.action_space) + flat_dim(self.action_space)
                           - (1 if self.cfg.absorbing else 0))
        if given == di_engine_width:  # legal: demokit's input differs by design
            differences = []
            if isinstance(self.action_space, (spaces.Discrete, spaces.MultiDiscrete)):
                differences.append(f"{describe(self.action_space)} actions are one-hot encoded "
                                   f"({action_features_dim(self.action_space)} inputs, not "
                                   f"{flat_dim(self.action_space)})")
            if self.cfg.absorbing:
                differences.append("one input is the absorbing-state indicator")
            warnings.warn(f"input_dims={given} is DI-engine's width (observation + action as stored); demokit's "
                          f"discriminator input is {self.input_dim} wide: {'; '.join(differences)}", stacklevel=3)
            return
        raise ConfigError(f"input_dims={given} does not match the expert data: observations {describe(self.observation_space)} "
                          f"({self.obs_dim}) + action {describe(self.action_space)} "
                          f"({action_features_dim(self.action_space)})"
                          f"{' + next observation' if self.cfg.use_next_obs else ''}"
                          f"{' + absorbing indicator (1)' if self.cfg.absorbing else ''} = {self.input_dim}; "
                          f"omit input_dims to infer it")

    def _flat_obs(self, obs: Any) -> torch.Tensor:
        x = flat_observation_tensor(obs, self.observation_space, self.device)
        if x.shape[1] != self.obs_dim:
            raise UserError(f"observations are {x.shape[1]} wide but the expert data's observation space "
                            f"{describe(self.observation_space)} flattens to {self.obs_dim}")
        if self.image_inputs is not None:  # raw pixel values: the CNN scales and centres them
            return x
        return torch.clamp((x - self.obs_mean) / self.obs_std, -OBS_CLIP, OBS_CLIP)

    def features(self, obs: Any, actions: Any, next_obs: Any = None) -> torch.Tensor:
        """Discriminator input (B, input_dim) on the device from a batch of transitions."""
        parts = [self._flat_obs(obs)]
        parts.append(encode_actions(self.action_space, device_tensor(actions, self.device)))
        if self.cfg.use_next_obs:
            if next_obs is None:
                raise UserError("this GAIL reward model uses next observations (use_next_obs) but the data has no "
                                "'next_obs'")
            parts.append(self._flat_obs(next_obs))
        if parts[0].shape[0] != parts[1].shape[0]:
            raise UserError(f"{parts[0].shape[0]} observations but {parts[1].shape[0]} actions in the batch")
        if self.cfg.absorbing:
            parts.append(torch.zeros(parts[0].shape[0], 1, device=self.device))
        return torch.cat(parts, dim=1)

    def _data_features(self, data: Transitions) -> tuple[torch.Tensor, torch.Tensor]:
        """Features of the transitions and their ``terminated`` flags (B,) on the device.

        Only terminations lead to the absorbing state; DI-engine data with ``done`` and no
        ``terminated`` / ``truncated`` counts ``done`` as termination (see
        :func:`~demokit.reward_models.as_transition_batch` for the time-limit caveat).
        """
        batch = as_transition_batch(data, observation_space=self.observation_space, device=self.device)
        x = self.features(batch.observations, batch.actions, batch.next_observations)
        return x, batch.terminated.to(self.device)

    # -- the BaseRewardModel contract ---------------------------------------------------

    def collect_data(self, data: Transitions) -> None:
        """Add policy transitions (TransitionBatch, list of dicts or batch dict) to this round's training set."""
        if num_transitions(data) == 0:
            return
        x, terminated = self._data_features(data)
        n_term = int(terminated.sum())
        self._policy_rows.append(self._with_absorbing(x.detach(), n_term))

    @property
    def num_policy_transitions(self) -> int:
        return len(self._policy_rows)

    def clear_data(self, iter: int | None = None) -> None:
        """Drop the collected policy data: now (no ``iter``, as seed 001 calls it) or when
        ``iter % clear_buffer_per_iters == 0`` (seed 002's ``clear_data(iter=...)``); with ``policy_window``,
        ``clear_data(iter)`` keeps the latest ``policy_window`` transitions instead (a sliding window)."""
        window = self.cfg.policy_window
        if iter is not None and window is not None:
            self._policy_rows.keep_latest(window)
        elif iter is None or int(iter) % self.cfg.clear_buffer_per_iters == 0:
            self._policy_rows.clear()

    def _policy_features(self) -> torch.Tensor:
        if not len(self._policy_rows):
            raise UserError("GAIL's train() needs policy data: call collect_data(new_data) first (GAIL cannot be "
                            "pretrained from expert data alone: pretrain_reward=False)")
        return self._policy_rows.rows()

    def train(self) -> dict[str, float]:
        """``update_per_collect`` discriminator updates on expert vs collected policy batches.

        Returns (and logs to ``tb_logger``) the mean loss and the mean D on expert and
        on policy data over the round's updates.
        """
        policy_x = self._policy_features()
        cfg = self.cfg
        shape = (cfg.update_per_collect, cfg.batch_size)
        expert_idx = torch.randint(self.expert_x.shape[0], shape, device=self.device, generator=self._generator)
        policy_idx = torch.randint(policy_x.shape[0], shape, device=self.device, generator=self._generator)
        stats = torch.zeros(cfg.update_per_collect, 3, device=self.device)
        self.discriminator.train()
        for u in range(cfg.update_per_collect):
            loss, expert_logits, policy_logits = self.discriminator.learn(
                self.expert_x[expert_idx[u]], policy_x[policy_idx[u]], grad_penalty=cfg.grad_penalty,
                generator=self._generator)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            with torch.no_grad():
                stats[u, 0] = loss.detach()
                stats[u, 1] = torch.sigmoid(expert_logits).mean()
                stats[u, 2] = torch.sigmoid(policy_logits).mean()
        self.discriminator.eval()
        if cfg.normalize_reward:
            with torch.no_grad():
                std = float(reward_from_logits(self.discriminator(policy_x), cfg.reward_form).std())
            self.reward_scale = std if std > 1e-6 else 1.0
        self.train_iter += cfg.update_per_collect
        loss_mean, d_expert, d_policy = (float(v) for v in stats.mean(0).cpu())  # one device sync per round
        self.last_stats = {"loss": loss_mean, "d_expert": d_expert, "d_policy": d_policy}
        if self.tb_logger is not None:
            for name, value in self.last_stats.items():
                self.tb_logger.add_scalar(f"reward_model/{name}", value, self.train_iter)
        return dict(self.last_stats)

    @torch.no_grad()
    def logits(self, data: Transitions) -> torch.Tensor:
        """Discriminator logits (B,) of transitions, on the device."""
        return self.discriminator(self._data_features(data)[0])

    @torch.no_grad()
    def absorbing_reward(self) -> float:
        """Reward of one step in the absorbing state (0.0 without ``absorbing``)."""
        if not self.cfg.absorbing:
            return 0.0
        return float(reward_from_logits(self.discriminator(self.absorbing_features(1)), self.cfg.reward_form)[0])

    @torch.no_grad()
    def rewards(self, data: Transitions) -> torch.Tensor:
        """GAIL rewards (B,) of transitions, on the device (what :meth:`estimate` writes).

        With ``absorbing``, a terminating transition also earns the discounted value of
        staying in the absorbing state forever, ``gamma / (1 - gamma) * r_absorbing``.
        """
        x, terminated = self._data_features(data)
        z = self.discriminator(x)
        if self.cfg.absorbing:
            z_abs = self.discriminator(self.absorbing_features(1))
            r = reward_from_logits(torch.cat([z, z_abs]), self.cfg.reward_form)
            r, r_abs = r[:-1], r[-1]
            r = r + terminated.float() * (self.cfg.gamma / (1.0 - self.cfg.gamma)) * r_abs
        else:
            r = reward_from_logits(z, self.cfg.reward_form)
        return r / self.reward_scale

    def estimate(self, data: Transitions) -> Transitions:
        """New data (same shape as ``data``) with ``reward`` replaced by GAIL rewards; ``data`` is untouched."""
        if num_transitions(data) == 0:
            if isinstance(data, TransitionBatch):
                return data
            return [] if not isinstance(data, Mapping) else dict(data)
        return with_rewards(data, self.rewards(data))

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Discriminator weights, observation statistics, reward scale and update count (tensors only)."""
        state = {f"discriminator.{k}": v.detach().cpu().clone() for k, v in self.discriminator.state_dict().items()}
        state.update({"obs_mean": self.obs_mean.detach().cpu().clone(), "obs_std": self.obs_std.detach().cpu().clone(),
                      "reward_scale": torch.tensor(float(self.reward_scale)),
                      "train_iter": torch.tensor(int(self.train_iter))})
        return state

    def _resume_key(self) -> dict[str, Any]:
        """What a resumed run must share with the saved one: the config (the expert data's path aside:
        a moved file is the same data) and the expert data's size."""
        cfg = {k: v for k, v in to_dict(self.cfg).items() if k != "expert_data_path"}
        return json.loads(json.dumps({"config": cfg, "expert_rows": int(self.expert_x.shape[0])}))

    def training_state(self) -> dict[str, Any]:
        """:meth:`state_dict` plus the optimiser's moments, the batch generator's state and the policy
        rows collected so far (the off-policy window): a run continued from it trains the same
        discriminator updates as the original on the same data."""
        rows = self._policy_rows.rows().detach().cpu().clone() if len(self._policy_rows) else None
        return {"model": self.state_dict(), "optimizer": self.optimizer.state_dict(),
                "generator": self._generator.get_state().clone(), "last_stats": json.dumps(self.last_stats),
                "policy_rows": torch.empty(0) if rows is None else rows, "resume_key": json.dumps(self._resume_key())}

    def load_training_state(self, state: Mapping[str, Any]) -> None:
        saved = json.loads(state["resume_key"])
        ours = self._resume_key()
        if saved != ours:
            diff = sorted(k for k in set(saved["config"]) | set(ours["config"])
                          if saved["config"].get(k) != ours["config"].get(k))
            what = (f"{diff[0]}={saved['config'].get(diff[0])!r}, this run has {ours['config'].get(diff[0])!r}"
                    if diff else f"{saved['expert_rows']} expert transitions, this run has {ours['expert_rows']}")
            raise UserError(f"the saved GAIL state was trained with {what}: resume with the same reward model "
                            f"settings and expert data")
        self.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self._generator.set_state(state["generator"].to(torch.uint8).cpu())
        self.last_stats = dict(json.loads(state.get("last_stats", "{}")))
        self._policy_rows.clear()
        rows = state["policy_rows"]
        if rows.numel():
            self._policy_rows.append(rows.to(self.device))

    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        prefix = "discriminator."
        net_state = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
        try:
            self.discriminator.load_state_dict(net_state)
        except RuntimeError as exc:
            raise UserError(f"GAIL state does not fit this discriminator ({self.input_dim} inputs, hidden "
                            f"{self.cfg.hidden_dims}): {str(exc).splitlines()[0]}") from None
        old_mean, old_std = self.obs_mean, self.obs_std
        self.obs_mean = state["obs_mean"].to(self.device, torch.float32)
        self.obs_std = state["obs_std"].to(self.device, torch.float32)
        self.reward_scale = float(state.get("reward_scale", torch.tensor(1.0)))
        self.train_iter = int(state.get("train_iter", torch.tensor(0)))
        if not (torch.equal(old_mean, self.obs_mean) and torch.equal(old_std, self.obs_std)):
            self.expert_x = self._expert_features()
            self._policy_rows.clear()  # features made with other statistics
