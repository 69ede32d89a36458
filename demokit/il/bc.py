"""Behavioral cloning: supervised learning of the expert's actions from a demokit dataset.

``train_bc(dataset, config)`` fits a :class:`~demokit.policies.NeuralPolicy` to the
(observation, action) pairs of a ``.h5`` dataset:

* discrete actions: cross-entropy of the categorical head's logits;
* continuous actions: Gaussian negative log-likelihood of the action under the
  gaussian head (mean and a state-independent log std are learned; ``loss="nll"``,
  the default) or the mean squared error of the mean (``loss="mse"``; the log std
  then stays at its initial value);
* Dict / Tuple observations are flattened (``DemoDataset.flat_observations``);
  observations are normalised with the training split's mean and variance
  (``ObsNormalizer.set_from_data``), which travel in the checkpoint;
* the train / validation split is by whole episodes (no episode in both); a
  one-episode dataset trains on everything, without validation (with a warning).

Speed: the whole training split lives in memory as tensors (moved to the GPU once
when training there); each epoch draws one ``torch.randperm``, gathers the shuffled
rows once, and splits them into batch views: no per-sample Python. A step is the
forward pass, the summed per-sample loss, ``backward`` seeded with the batch's
``1 / rows`` (no multiplication node), and Adam as one fused kernel call with one shared
step counter (``make_adam(direct=True)``, :class:`~demokit.policies.networks.FusedAdam`);
the epoch's loss is read back once, at its end. For the common case (an MLP of tanh layers,
a categorical head, one process) the step skips the autograd engine: the same backward
formulas written out (:mod:`demokit.il.mlp_grad`). Small networks on the CPU train with one
torch thread (faster than several on small matrices; the old setting is restored).
Environment evaluations run only every ``eval_every`` epochs. These changes keep the
weights and losses bit-identical to the plain ``(loss * scale).backward()`` loop (tested).
The default batch size, 256, is the knee of the speed curve for small MLPs: the
per-step overhead (Python, autograd, optimizer) is paid once per batch, so samples/s
grows steeply with the batch up to ~256 (4.4x from 32 to 256 for a 2x64 MLP) and
slowly after (1.4x more at 512), while a CartPole dataset of 10 episodes (5000 steps)
still gives ~18 updates per epoch (docs/benchmarks.md).

Training length: by default as many epochs as make 10,000 gradient steps (at least
20 epochs), with an evaluation about every 250 steps, so that a one-episode dataset
(two batches per epoch) gets as many updates as a large one; both can be set in
epochs (``epochs``, ``eval_every``). Training stops early once an evaluation
(``eval_episodes`` deterministic episodes) reaches ``stop_value`` (default: the env's
``reward_threshold``); ``converged`` says whether it did. Same seed, same weights.

Regularisation (all off by default, so that same seed still gives the same weights): ``obs_noise``
(Gaussian noise on each batch's normalised inputs, its own seeded stream), ``weight_decay`` (decoupled,
weight matrices only) and ``lr_schedule="linear"``; measured on the MuJoCo table without a gain in
every cell (docs/benchmarks.md, "The MuJoCo table"), so no tuned row sets them.

Ensembles (``ensemble = N > 1``, continuous actions): N members of the same network trained in one run on the
same split, as one stacked network (:class:`~demokit.policies.EnsemblePolicy`: every step computes the N members'
outputs at once and the sum of their losses, whose gradient is each member's own), each from its own initial
weights (member 0: the one-network run's) and, in memory, its own batch order (member 0: the one-network run's;
member i's from ``derive_seed(seed, "bc-order", i)``); the policy acts with the mean of the members' actions and
one checkpoint holds them all. The epoch's ``loss`` and ``val_loss`` are the members' mean, ``val_error`` that
of the mean action. ``ensemble = 1`` (the generic default) builds and trains the one network as before: no
extra draws. One process only (not under torchrun); not with ``aux_state``.

Data larger than memory: ``max_memory_mb`` (default: half the available RAM) bounds what the
training data may take (:func:`plan_memory`). When the in-memory split would not fit (or with
``stream=True``) batches are streamed from the file instead (``DemoDataset.iter_batches``:
chunk-aligned reads, a seeded shuffle buffer sized to the budget; optionally through a
``DataLoader`` with ``workers`` processes, :class:`demokit.data.loader.StreamingBatches`): one
first pass computes the normalisation statistics and checks the values, validation uses a
seeded sample of at most ``STREAM_VAL_ROWS`` rows. A budget too small for one batch is refused.

History (``history = K > 1``): each sample is the window of the last K observations ending at
the step (``DemoDataset`` windows, edge-padded at an episode's start), stacked; the policy's
``arch.history`` records K and acting keeps a per-env history (``HistoryActor``).

Images: ``encoder="auto"`` builds ``nature_cnn`` for uint8 image observations; their batches
stay uint8 (no float copy: the encoder scales by 1/255); ``normalize_obs`` (default: yes) makes the
encoder subtract the training frames' mean frame (see :mod:`demokit.policies.encoders.cnn`).

Privileged state supervision (``aux_state = W > 0``): datasets of rendered frames recorded with the
expert's state (``collect --render-obs --record-state``: ``extras/state_observation``) add an auxiliary
loss, W times the mean squared error of a linear regressor from the encoder's features to the state
(standardised with the training split's mean and std), to the BC loss. The regressor is trained with the
policy and dropped afterwards (the checkpoint is the plain policy, acting from its observations); the
epoch records add ``aux_state_loss`` and ``val_state_mse``. ``state_head`` ("state" or "features+state")
keeps the regressor in the policy instead: the head acts through an MLP on the predicted standardised
state (and the features), :mod:`demokit.policies.predicted_state`; still acting from observations only. On CartPole-v1 frames it teaches the CNN the
velocities the expert's decision depends on (docs/benchmarks.md, "BC from pixels", session 6). In-memory
training in one process only (refused with streaming or under torchrun); ``aux_state = 0`` trains
exactly as without the option.

Data: each rank reads its shard of the training rows with ``DemoDataset.read`` (one
rank: all of them), the same code for one and for many processes. With
``distributed=True`` (``demokit bc-train`` sets it under ``torchrun``) the same
function trains with DistributedDataParallel; see :mod:`demokit.il.distributed`.
Nothing switches to distributed training by itself (``WORLD_SIZE`` is not read here).
"""

from __future__ import annotations

import math
import os
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from gymnasium import spaces

from demokit.config import from_mapping, option, to_dict
from demokit.data.checks import bad_value_counts, bad_values_error
from demokit.data.dataset import DemoDataset, load_dataset
from demokit.data.storage.base import RowRuns
from demokit.devices import resolve_device
from demokit.envs import env_spec_json
from demokit.errors import ConfigError, DatasetError, UserError
from demokit.evaluation import evaluate_policy
from demokit.il.distributed import Comm, communicator, rank_device, shard_bounds
from demokit.il.mlp_grad import hand_written_grad
from demokit.policies import NeuralPolicy, default_head, file_sha256, make_policy, save_checkpoint
from demokit.policies.networks import make_adam, set_learning_rate
from demokit.policies.encoders import encoder_class, resolve_encoder as pick_encoder
from demokit.policies.neural import stack_space
from demokit.paths import check_output_path
from demokit.rl.common import resolve_stop_value
from demokit.rl.hyperparams import tuned_overrides
from demokit.runtime import torch_threads
from demokit.seeding import derive_seed
from demokit.spaces import flat_dim, flatten_batch

#: default training length (gradient steps) and evaluation period (gradient steps), see ``BCConfig``
DEFAULT_STEPS = 10_000
DEFAULT_MIN_EPOCHS = 20
DEFAULT_EVAL_STEPS = 250
#: networks with fewer parameters than this train with one torch thread on the CPU
SMALL_NET_PARAMS = 1_000_000
#: validation rows kept in memory when streaming (a seeded sample of the validation episodes' rows)
STREAM_VAL_ROWS = 8192
#: the dataset field ``aux_state`` regresses (``collect --record-state``)
STATE_FIELD = "extras/state_observation"


@dataclass(frozen=True)
class BCConfig:
    """Behavioral cloning settings (the keys of ``serial_pipeline_il``'s config)."""

    env_id: str | None = option(None, "env to evaluate on; must match the dataset's spaces (default: the dataset's env)")
    epochs: int | None = option(None, "maximum passes over the training split; training stops early at the stop "
                                      "value (default: enough for 10,000 gradient steps, at least 20)")
    batch_size: int = option(256, "samples per gradient step (per rank under torchrun)")
    lr: float | None = option(None, "Adam learning rate (default: the env's tuned BC row, else 1e-3)")
    hidden_sizes: tuple[int, ...] | None = option(None, "hidden layer widths, e.g. 64,64 (default: the env's "
                                                        "tuned BC row, else 64,64)")
    activation: str | None = option(None, "hidden activation: tanh, relu, elu or gelu (default: the env's tuned BC "
                                          "row, else tanh)")
    loss: Literal["nll", "mse"] | None = option(None, "continuous actions: Gaussian negative log-likelihood (nll) or "
                                                       "mean squared error (mse); discrete actions always use "
                                                       "cross-entropy (default: the env's tuned BC row, else nll)")
    normalize_obs: bool | None = option(None, "normalise observations with the training data's statistics "
                                              "(default: yes; flat-input encoders such as mlp: mean and std; "
                                              "nature_cnn: subtract the mean frame after scaling by 1/255)")
    encoder: str = option("auto", "observation encoder: mlp, nature_cnn or another registered one (auto: "
                                  "nature_cnn for uint8 image observations of at least 36x36, else mlp)")
    val_fraction: float | None = option(None, "fraction of episodes held out for validation (whole episodes; the "
                                              "validation loss is reported, never used to choose weights) "
                                              "(default: the env's tuned BC row, else 0.1)")
    eval_every: int | None = option(None, "evaluate in the env every N epochs (default: the env's tuned BC row, "
                                          "else about every 250 gradient steps, at most every epoch; 0: only after "
                                          "training)")
    eval_episodes: int = option(20, "deterministic episodes per evaluation (0: never evaluate)")
    stop_value: float | None = option(None, "stop once the evaluation's mean return reaches this "
                                            "(default: the env's reward_threshold)")
    keep_best: bool = option(False, "end with the weights of the best evaluation during training (highest mean "
                                    "return over eval_episodes; the earliest of equal ones) instead of the last "
                                    "epoch's; the evaluations then choose the checkpoint, so report a fresh "
                                    "evaluation of it")
    seed: int = option(0, "seed of the split, the initial weights, the batch order and the evaluations")
    device: str = option("auto", "auto, cpu or cuda (auto: cuda when available)")
    out: str | None = option(None, "checkpoint path (Python: none written when unset; the CLI writes "
                                   "policies/<dataset-stem>-bc.pt)")
    force: bool = option(False, "replace out even when it is not a checkpoint (a dataset, a file demokit did not "
                                "write); an input, a special or a read-only file is never replaced")
    num_threads: int | None = option(None, "torch CPU threads (default: 1 for small networks, else unchanged)")
    stream: bool | None = option(None, "train from batches streamed from the file (DemoDataset.iter_batches) "
                                       "instead of loading the training split into memory (default: stream "
                                       "only when the split would not fit max_memory_mb)")
    max_memory_mb: float | None = option(None, "memory the training data may take, in MB (default: half of the "
                                             "machine's available RAM); decides streaming and the shuffle buffer")
    workers: int = option(0, "DataLoader worker processes reading streamed batches (0: read in this process)")
    history: int = option(1, "observations the policy sees per decision: the last K, oldest first, edge-padded "
                             "at an episode's start (windows of the dataset; acting keeps a per-env history)")
    aux_state: float = option(0.0, "weight of an auxiliary loss (privileged state supervision): a linear layer "
                                   "on the encoder's features regresses the state observation the expert acted on "
                                   "(extras/state_observation, collect --record-state; standardised with the "
                                   "training split's mean and std), mean squared error times this weight added to "
                                   "the BC loss; the layer is dropped after training, the policy acts from its own "
                                   "observations (0: off)")
    state_head: Literal["none", "state", "features+state"] = option(
        "none", "with aux_state: where the policy's head looks. none: at the encoder's features (the state "
                "regressor is dropped after training); state: the regressor becomes part of the policy, and an MLP "
                "of hidden_sizes on its predicted standardised state gives the action; features+state: that MLP "
                "sees the features and the predicted state. The policy still acts from its own observations")
    state_head_fit: Literal["end_to_end", "recorded", "estimated"] = option(
        "end_to_end", "with state_head state: how its MLP and the prediction are trained. end_to_end: the MLP on "
                      "the predicted state, the action loss also shapes the prediction; recorded: the MLP on the "
                      "recorded states (the expert's decision as a function of the state); estimated: the MLP on "
                      "the predicted state held fixed (the decision given the estimate, errors included). With "
                      "recorded and estimated the prediction learns from the auxiliary loss alone (a state "
                      "estimator and a controller). Acting always uses the predicted state")
    lr_schedule: Literal["constant", "linear"] | None = option(None, "learning rate over the epochs: constant, or "
                                                                     "linear: lr * (1 - (epoch - 1) / epochs), from "
                                                                     "lr down to lr / epochs in the last (default: "
                                                                     "the env's tuned BC row, else constant)")
    weight_decay: float | None = option(None, "decoupled weight decay (AdamW) of the weight matrices per gradient "
                                              "step: each is multiplied by 1 - lr * weight_decay after Adam's "
                                              "update; biases are not decayed (default: the env's tuned BC row, "
                                              "else 0: none)")
    obs_noise: float | None = option(None, "std of the Gaussian noise added to each training batch's network "
                                           "inputs (after normalisation: in units of each feature's std), a fresh "
                                           "draw per batch; input augmentation against drifting off the expert's "
                                           "states; flat-input encoders only (default: the env's tuned BC row, "
                                           "else 0: none)")
    ensemble: int | None = option(None, "members of an ensemble policy trained together on the same split, each "
                                        "from its own initial weights and batch order, acting with the mean of "
                                        "their actions (one checkpoint); continuous actions only (default: the "
                                        "env's tuned BC row, else 1: one network)")


@dataclass(frozen=True)
class BCResult:
    """What ``train_bc`` produced. ``mean_return`` / ``std_return`` are those of the last
    evaluation (with ``keep_best``: of the kept one; None when ``eval_episodes`` is 0); ``history`` has one
    dict per epoch (with ``keep_best``, the last one names the epoch kept when it is an earlier one:
    ``kept_epoch``)."""

    policy: NeuralPolicy
    checkpoint: str | None
    mean_return: float | None
    std_return: float | None
    epochs: int
    samples_per_s: float
    converged: bool
    wall_s: float
    history: tuple[dict[str, Any], ...] = ()
    #: the settings taken from the env's tuned BC row (:func:`resolve_bc_config`), JSON-friendly; empty: none
    tuned_defaults: Mapping[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """The figures ``bc-train --json`` prints."""
        return {"checkpoint": self.checkpoint, "mean_return": self.mean_return, "std_return": self.std_return,
                "epochs": self.epochs, "samples_per_s": self.samples_per_s, "converged": self.converged,
                "wall_s": self.wall_s, "tuned_defaults": dict(self.tuned_defaults)}


#: the defaults of BCConfig's per-env fields for an env without a tuned BC row (``None`` fields not listed
#: here, such as ``epochs``, keep their own meaning: "follow the data")
GENERIC_DEFAULTS: dict[str, Any] = {"lr": 1e-3, "loss": "nll", "hidden_sizes": (64, 64), "activation": "tanh",
                                     "obs_noise": 0.0, "weight_decay": 0.0, "lr_schedule": "constant",
                                     "ensemble": 1, "val_fraction": 0.1}


def resolve_bc_config(cfg: BCConfig, env_id: str, *, row_name: str = "bc") -> tuple[BCConfig, dict[str, Any]]:
    """``cfg`` with the fields it leaves unset (None) filled for ``env_id``: first from the env's tuned BC
    row (:data:`demokit.rl.hyperparams.TUNED`, ``"bc"``), then from :data:`GENERIC_DEFAULTS`; and the
    values taken from the tuned row (empty when the env has none or the caller set them all).
    ``row_name``: another imitation row (DAgger's ``"dagger"``) taken instead where the env has one.

    A value the caller gave is never replaced."""
    tuned = tuned_overrides(row_name, env_id) or tuned_overrides("bc", env_id)
    row = {k: v for k, v in tuned.items() if getattr(cfg, k) is None}
    fill = {**{k: v for k, v in GENERIC_DEFAULTS.items() if getattr(cfg, k) is None}, **row}
    return (from_mapping(BCConfig, cfg, **fill) if fill else cfg), row


def describe_defaults(env_id: str, taken: Mapping[str, Any]) -> str:
    """One line saying which defaults came from the env's tuned BC row (for the CLI)."""
    if not tuned_overrides("bc", env_id):
        return f"BC defaults for {env_id}: the generic ones (no tuned BC row in demokit.rl.hyperparams)"
    if not taken:
        return f"BC defaults for {env_id}: every setting of its tuned BC row was given explicitly"
    parts = ", ".join(f"{k}={','.join(map(str, v)) if isinstance(v, (tuple, list)) else v}" for k, v in taken.items())
    return f"BC defaults for {env_id} from its tuned row (demokit.rl.hyperparams): {parts}"


def default_bc_out(dataset_path: str | os.PathLike[str]) -> Path:
    """Where ``demokit bc-train`` writes by default: ``policies/<dataset-stem>-bc.pt``."""
    return Path("policies") / f"{Path(dataset_path).stem}-bc.pt"


# ---------------------------------------------------------------------------------------
# losses


def bc_loss(policy: NeuralPolicy, out: torch.Tensor, target: torch.Tensor, *, loss: str = "nll") -> torch.Tensor:
    """Per-sample BC losses (shape (B,)) of the policy's head output ``out`` for policy-space ``target``.

    ``loss="nll"``: the head's negative log-likelihood (categorical: the cross-entropy of the
    logits; gaussian: ``-log N(target; out, exp(log_std)^2)`` summed over action dims).
    ``loss="mse"`` (continuous actions): squared error of the mean, averaged over action dims.
    """
    if loss == "mse" and not isinstance(policy.action_space, spaces.Discrete):
        return (out - target).pow(2).mean(-1)
    return policy.nll(out, target)


# ---------------------------------------------------------------------------------------
# data


def split_episodes(num_episodes: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Episode indices (sorted) of the training and validation splits.

    ``round(val_fraction * E)`` episodes (at least 1, at most E - 1) are held out;
    with one episode (or ``val_fraction == 0``) everything is training data.
    """
    if num_episodes < 2 or val_fraction <= 0:
        return np.arange(num_episodes), np.arange(0)
    n_val = min(num_episodes - 1, max(1, int(round(val_fraction * num_episodes))))
    order = np.random.default_rng(derive_seed(seed, "bc-split")).permutation(num_episodes)
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def episode_rows(starts: np.ndarray, lengths: np.ndarray, episodes: np.ndarray) -> RowRuns:
    """The transition rows of ``episodes`` (sorted), as runs: O(episodes) memory, not O(rows)
    (``np.asarray`` gives the index array)."""
    return RowRuns.of_episodes(starts, lengths, episodes)


def _targets(actions: np.ndarray, action_space: spaces.Space) -> torch.Tensor:
    if isinstance(action_space, spaces.Discrete):
        return torch.from_numpy(np.asarray(actions).reshape(-1).astype(np.int64) - int(action_space.start))
    a = np.asarray(actions, dtype=np.float32)
    return torch.from_numpy(a.reshape(a.shape[0], -1))


def _check_config(cfg: BCConfig) -> None:
    for name in ("epochs", "batch_size"):
        if getattr(cfg, name) is not None and getattr(cfg, name) < 1:
            raise ConfigError(f"BCConfig.{name} must be >= 1, got {getattr(cfg, name)}")
    for name in ("eval_every", "eval_episodes"):
        if getattr(cfg, name) is not None and getattr(cfg, name) < 0:
            raise ConfigError(f"BCConfig.{name} must be >= 0, got {getattr(cfg, name)}")
    if cfg.lr is not None and not (math.isfinite(cfg.lr) and cfg.lr > 0):
        raise ConfigError(f"BCConfig.lr must be > 0, got {cfg.lr}")
    if cfg.val_fraction is not None and not 0 <= cfg.val_fraction < 1:
        raise ConfigError(f"BCConfig.val_fraction must be in [0, 1), got {cfg.val_fraction}")
    if cfg.hidden_sizes is not None and (not cfg.hidden_sizes or any(h < 1 for h in cfg.hidden_sizes)):
        raise ConfigError(f"BCConfig.hidden_sizes must be positive widths like 64,64, got {cfg.hidden_sizes}")
    if cfg.seed < 0:
        raise ConfigError(f"BCConfig.seed must be >= 0, got {cfg.seed}")
    if cfg.max_memory_mb is not None and not cfg.max_memory_mb > 0:
        raise ConfigError(f"BCConfig.max_memory_mb must be > 0, got {cfg.max_memory_mb}")
    if cfg.workers < 0:
        raise ConfigError(f"BCConfig.workers must be >= 0, got {cfg.workers}")
    if cfg.history < 1:
        raise ConfigError(f"BCConfig.history must be >= 1, got {cfg.history}")
    if not (cfg.aux_state >= 0 and math.isfinite(cfg.aux_state)):
        raise ConfigError(f"BCConfig.aux_state must be a finite weight >= 0, got {cfg.aux_state}")
    if cfg.aux_state > 0 and cfg.stream:
        raise ConfigError("BCConfig.aux_state trains from the split in memory: leave stream off")
    if cfg.state_head_fit != "end_to_end" and cfg.state_head != "state":
        raise ConfigError(f"BCConfig.state_head_fit {cfg.state_head_fit!r} separates the estimator and the MLP of "
                          f"state_head 'state': set state_head to state, or leave state_head_fit at end_to_end")
    if cfg.keep_best and cfg.eval_episodes == 0:
        raise ConfigError("BCConfig.keep_best keeps the best evaluation's weights, but eval_episodes is 0 (never "
                          "evaluate): give eval_episodes > 0, or leave keep_best off")
    if cfg.state_head != "none" and not cfg.aux_state > 0:
        raise ConfigError(f"BCConfig.state_head {cfg.state_head!r} trains the policy's predicted state with the "
                          f"auxiliary state loss: set aux_state > 0 (e.g. --aux-state 1) or leave state_head at none")
    if cfg.weight_decay is not None and not (math.isfinite(cfg.weight_decay) and cfg.weight_decay >= 0
                                             and (cfg.lr is None or cfg.lr * cfg.weight_decay < 1)):
        raise ConfigError(f"BCConfig.weight_decay must be >= 0 with lr * weight_decay < 1 (0: no decay), "
                          f"got {cfg.weight_decay} (lr {cfg.lr})")
    if cfg.obs_noise is not None and not (math.isfinite(cfg.obs_noise) and cfg.obs_noise >= 0):
        raise ConfigError(f"BCConfig.obs_noise must be a finite std >= 0 (0: no input noise), got {cfg.obs_noise}")
    if cfg.ensemble is not None and (isinstance(cfg.ensemble, bool) or not isinstance(cfg.ensemble, int)
                                     or cfg.ensemble < 1):
        raise ConfigError(f"BCConfig.ensemble must be an integer >= 1 (members; 1: one network), got {cfg.ensemble!r}")
    if (cfg.ensemble or 1) > 1 and (cfg.aux_state > 0 or cfg.state_head != "none"):
        raise ConfigError("BCConfig.ensemble > 1 trains plain policies: leave aux_state at 0 and state_head at none, "
                          "or ensemble at 1")
    if cfg.history > 1 and cfg.workers > 0:
        raise ConfigError("BCConfig.workers > 0 streams plain batches; with history > 1 leave workers at 0 "
                          "(windows are streamed in this process)")


def resolve_schedule(cfg: BCConfig, n_train: int, world_size: int = 1) -> tuple[int, int]:
    """(maximum epochs, evaluation period in epochs) for ``n_train`` training rows.

    Unset values follow the number of gradient steps per epoch, so that a one-episode
    dataset gets as many updates as a large one: ``epochs`` defaults to enough epochs
    for ``DEFAULT_STEPS`` steps (at least ``DEFAULT_MIN_EPOCHS``), ``eval_every`` to
    about ``DEFAULT_EVAL_STEPS`` steps (at least 1 epoch).
    """
    steps_per_epoch = max(1, math.ceil(n_train / (cfg.batch_size * world_size)))
    epochs = cfg.epochs if cfg.epochs is not None else max(DEFAULT_MIN_EPOCHS, math.ceil(DEFAULT_STEPS / steps_per_epoch))
    every = cfg.eval_every if cfg.eval_every is not None else max(1, round(DEFAULT_EVAL_STEPS / steps_per_epoch))
    return int(epochs), int(every)


@dataclass(frozen=True)
class MemoryPlan:
    """How BC holds its data: in memory, or streamed with a shuffle buffer of ``buffer_rows`` rows.

    ``in_ram_bytes``: estimated bytes of the in-memory path (flat float32 observations and
    actions, held three times: the read arrays, the normalised tensors and one epoch's
    shuffled copy); ``stream_bytes``: the streaming bound (``iter_batches``: buffer + one
    block + one batch, twice: stored rows and their float copies); ``budget_bytes``: the
    memory allowed (``max_memory_mb``, default half the available RAM)."""

    stream: bool
    buffer_rows: int | None
    budget_bytes: int
    in_ram_bytes: int
    stream_bytes: int

    def as_dict(self) -> dict[str, Any]:
        return {"stream": self.stream, "buffer_rows": self.buffer_rows, "budget_bytes": self.budget_bytes,
                "in_ram_bytes": self.in_ram_bytes, "stream_bytes": self.stream_bytes}


def available_memory_bytes() -> int:
    """The machine's available RAM (``MemAvailable`` of /proc/meminfo, else the physical RAM)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


def resolve_encoder(ds: DemoDataset, cfg: BCConfig) -> str:
    """The encoder BC builds: ``cfg.encoder``, or for "auto" nature_cnn on uint8 images, else mlp."""
    return pick_encoder(cfg.encoder, ds.observation_space)


def _obs_row_bytes(ds: DemoDataset, cfg: BCConfig) -> int:
    """Bytes of one network input row: flat float32 for flat encoders, the stored dtype for image encoders."""
    space = ds.observation_space
    if encoder_class(resolve_encoder(ds, cfg)).normalizable or not isinstance(space, spaces.Box):
        return 4 * cfg.history * flat_dim(space)
    return cfg.history * int(np.prod(space.shape, dtype=np.int64)) * space.dtype.itemsize


def plan_memory(ds: DemoDataset, cfg: BCConfig, n_train: int, n_val: int) -> MemoryPlan:
    """Stream or not, and the shuffle buffer (see :class:`MemoryPlan`). ``cfg.stream`` None: stream when the
    in-memory estimate exceeds the budget. Raises :class:`ConfigError` when streaming cannot hold one batch."""
    budget = int(cfg.max_memory_mb * 2**20) if cfg.max_memory_mb is not None else available_memory_bytes() // 2
    act = np.dtype(_target_dtype(ds.action_space))
    row = _obs_row_bytes(ds, cfg) + act.itemsize * max(1, int(np.prod(ds.action_space.shape or (1,))))
    in_ram = 3 * row * n_train + 2 * row * n_val
    n_val = min(n_val, STREAM_VAL_ROWS)
    stream = cfg.stream if cfg.stream is not None else in_ram > budget
    block = min(ds.block_rows(), max(n_train, 1))  # a read block never holds more than the selected rows
    default_buffer = max(8 * block, 16 * cfg.batch_size)
    if not stream:
        return MemoryPlan(False, None, int(budget), int(in_ram), int(2 * row * (default_buffer + block + cfg.batch_size)))
    fit = budget // (2 * row) - block - cfg.batch_size - n_val
    buffer_rows = int(min(default_buffer, fit))
    if buffer_rows < cfg.batch_size:
        need = (2 * row * (block + 2 * cfg.batch_size + n_val)) / 2**20
        given = f"max_memory_mb {cfg.max_memory_mb:g}" if cfg.max_memory_mb is not None else \
            f"the default memory budget ({budget / 2**20:.0f} MB, half the available RAM)"
        raise ConfigError(f"{given} is too small to stream batches of {cfg.batch_size} rows from {ds.path}: it needs at least "
                          f"{need:.2f} MB (one {block}-row read block, a shuffle buffer of one batch, one batch "
                          f"and the validation sample)")
    return MemoryPlan(True, buffer_rows, int(budget), int(in_ram),
                      int(2 * row * (buffer_rows + block + cfg.batch_size + n_val)))


def _target_dtype(action_space: spaces.Space) -> np.dtype:
    """The dtype BC's targets take per action value (int64 for Discrete, float32 otherwise)."""
    return np.dtype(np.int64) if isinstance(action_space, spaces.Discrete) else np.dtype(np.float32)


def _read_xy(ds: DemoDataset, rows: np.ndarray, history: int = 1, flat: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Flat float32 observations (B, D) (with a history: the last ``history`` observations of each row,
    (B, history * D)) and stored actions of the transition rows ``rows``. ``flat=False`` (image
    encoders): observations as stored ((B, ...) or (B, history, ...), uint8 images stay uint8)."""
    if history == 1:
        got = ds.read(["observations", "actions"], rows)
        obs = flatten_batch(ds.observation_space, got["observations"]) if flat else np.asarray(got["observations"])
        return obs, np.asarray(got["actions"])
    from demokit.data.windows import windows_at

    w = windows_at(ds, np.asarray(rows), history, before=history - 1)
    obs = _flat_windows(ds, w, history) if flat else np.asarray(w["observations"])
    return obs, np.asarray(w["actions"][:, -1])


def _flat_windows(ds: DemoDataset, w: dict[str, Any], history: int) -> np.ndarray:
    return flatten_batch(stack_space(ds.observation_space, history), w["observations"])


def _dataset_sha256(ds: DemoDataset) -> str | None:
    """sha256 of a dataset file (None for a dataset that is not a local file)."""
    return file_sha256(ds.path) if isinstance(ds.path, Path) else None


def _open(dataset: DemoDataset | str | os.PathLike[str]) -> DemoDataset:
    if isinstance(dataset, DemoDataset):
        return dataset
    if not isinstance(dataset, (str, os.PathLike)):
        raise UserError(f"dataset must be a path or a DemoDataset, got {type(dataset).__name__}")
    return load_dataset(dataset)


def _as_is(batch: Any) -> Any:
    """DataLoader collate function for whole streamed batches (kept as numpy)."""
    return batch


# ---------------------------------------------------------------------------------------
# training


def train_bc(dataset: DemoDataset | str | os.PathLike[str], config: BCConfig | Mapping[str, Any] | None = None, *,
             callback: Callable[[dict[str, Any]], None] | None = None, distributed: bool = False,
             **overrides: Any) -> BCResult:
    """Behavioral cloning on ``dataset`` (a path or a :class:`DemoDataset`).

    ``config`` is a :class:`BCConfig` or a mapping of its keys; ``overrides`` replace
    single keys (None values are ignored). ``callback(record)`` is called after every
    epoch with that epoch's history record (on rank 0 only under torchrun).
    ``distributed``: join the process group (an initialised one, else torchrun's
    environment) and train with DistributedDataParallel; False trains in this process
    alone whatever the environment says.

    Raises :class:`~demokit.errors.UserError` subclasses, before anything is written,
    for an empty dataset, NaN/inf values, spaces that do not match ``env_id``, or a
    bad config.
    """
    start = time.perf_counter()
    cfg = from_mapping(BCConfig, config, **overrides)
    _check_config(cfg)
    ds = _open(dataset)
    env_id = cfg.env_id or ds.env_id
    if not env_id:
        raise ConfigError(f"dataset {ds.path} does not name its env; pass the env id (--env / env_id)")
    cfg, taken = resolve_bc_config(cfg, env_id)
    _check_config(cfg)
    tuned = {k: v for k, v in to_dict(cfg).items() if k in taken}
    ds.check_env(env_id)
    if len(ds) == 0:
        raise DatasetError(f"dataset {ds.path} is empty (0 transitions); collect episodes into it first "
                           f"(demokit collect)")
    head = default_head(ds.action_space)
    if cfg.ensemble > 1 and head != "gaussian":
        raise ConfigError(f"BCConfig.ensemble averages continuous actions; dataset {ds.path} has "
                          f"{ds.action_space} actions: leave ensemble at 1")
    if cfg.ensemble > 1 and distributed:
        raise ConfigError("BCConfig.ensemble > 1 trains in one process; run it without torchrun, or ensemble 1")
    encoder = resolve_encoder(ds, cfg)
    if cfg.aux_state > 0:
        _check_aux_state(ds, distributed)
    if cfg.obs_noise and not encoder_class(encoder).normalizable:
        raise ConfigError(f"BCConfig.obs_noise adds noise to flat network inputs; encoder {encoder!r} takes the "
                          f"observations as stored: leave obs_noise at 0 with it")
    check_output_path(cfg.out, kind="checkpoint", inputs=[ds.path], force=cfg.force)  # the CLI's rules
    stop_value = resolve_stop_value(env_id, cfg.stop_value)
    device = rank_device(resolve_device(cfg.device), distributed)

    train_eps, val_eps = split_episodes(ds.num_episodes, cfg.val_fraction, cfg.seed)
    if ds.num_episodes == 1 and cfg.val_fraction > 0:
        warnings.warn(f"dataset {ds.path} holds a single episode: training on all of it, without a validation split",
                      stacklevel=2)
    train_rows = episode_rows(ds.episode_starts, ds.episode_lengths, train_eps)
    val_rows = episode_rows(ds.episode_starts, ds.episode_lengths, val_eps)

    plan = plan_memory(ds, cfg, len(train_rows), len(val_rows))
    if cfg.aux_state > 0 and plan.stream:
        raise ConfigError(f"BCConfig.aux_state trains from the split in memory, which would not fit the memory budget "
                          f"({plan.budget_bytes / 2**20:.0f} MB); raise max_memory_mb or leave aux_state at 0")
    policy = _init_policy(ds, cfg, head, encoder, _state_dim(ds) if cfg.state_head != "none" else 0)
    threads = cfg.num_threads
    if threads is None and device.type == "cpu" and sum(p.numel() for p in policy.parameters()) < SMALL_NET_PARAMS:
        threads = 1
    with torch_threads(threads), communicator(device, distributed) as comm:
        trainer = _Trainer(ds, cfg, policy, comm, device, env_id=env_id, stop_value=stop_value,
                           train_rows=train_rows, val_rows=val_rows, plan=plan)
        history, epochs_done, samples_per_s, eval_result = trainer.run(callback)
    policy.to("cpu").eval()
    mean_return, std_return = eval_result if eval_result is not None else (None, None)
    converged = stop_value is not None and mean_return is not None and mean_return >= stop_value
    wall_s = time.perf_counter() - start
    checkpoint = None
    if cfg.out is not None and comm.is_main:
        training = {"dataset": str(ds.path), "dataset_sha256": _dataset_sha256(ds), "config": to_dict(cfg),
                    "env_id": env_id, "mean_return": mean_return, "std_return": std_return, "epochs": epochs_done,
                    "samples_per_s": samples_per_s, "converged": converged, "stop_value": stop_value,
                    "max_epochs": trainer.max_epochs, "eval_every": trainer.eval_every,
                    "wall_s": wall_s, "train_episodes": int(len(train_eps)), "val_episodes": int(len(val_eps)),
                    "train_samples": int(len(train_rows)), "world_size": comm.world_size,
                    "data": plan.as_dict(), "tuned_defaults": tuned, "history": history}
        save_checkpoint(cfg.out, policy, algo="bc", env_id=env_id, env_spec=env_spec_json(env_id), training=training)
        checkpoint = str(cfg.out)
    return BCResult(policy=policy, checkpoint=checkpoint, mean_return=mean_return, std_return=std_return,
                    epochs=epochs_done, samples_per_s=samples_per_s, converged=converged, wall_s=wall_s,
                    history=tuple(history), tuned_defaults=tuned)


def _check_aux_state(ds: DemoDataset, distributed: bool) -> None:
    """``aux_state`` needs the dataset's per-step state observations, in one process."""
    if STATE_FIELD not in ds.field_names():
        raise DatasetError(f"--aux-state regresses the expert's state observations, but dataset {ds.path} has no "
                           f"{STATE_FIELD}: collect the frames with --render-obs --record-state")
    if distributed:
        raise ConfigError("BCConfig.aux_state trains in one process; run it without torchrun")


def _init_aux(cfg: BCConfig, in_dim: int, state_dim: int) -> torch.nn.Linear:
    """The auxiliary state regressor (features -> standardised state); initial weights from the seed only."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(cfg.seed, "bc-aux-state"))
        return torch.nn.Linear(in_dim, state_dim)


def _state_dim(ds: DemoDataset) -> int:
    """Components of the dataset's per-step state observation (``STATE_FIELD``)."""
    return int(np.prod(ds.read([STATE_FIELD], np.arange(1))[STATE_FIELD].shape[1:], dtype=np.int64))


def _init_policy(ds: DemoDataset, cfg: BCConfig, head: str, encoder: str = "mlp", state_dim: int = 0
                 ) -> NeuralPolicy:
    """A fresh policy whose initial weights depend on the seed only (``state_dim``: the trunk through a
    predicted state of that many components, ``cfg.state_head``)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(cfg.seed, "bc-init"))
        return make_policy(ds.observation_space, ds.action_space, head=head, hidden_sizes=cfg.hidden_sizes,
                           activation=cfg.activation, history=cfg.history, encoder=encoder,
                           normalize_obs=cfg.normalize_obs if cfg.normalize_obs is not None
                           else _normalizes_by_default(encoder), state_dim=state_dim,
                           state_input=cfg.state_head if state_dim else "state", ensemble=cfg.ensemble)


def _normalizes_by_default(encoder: str) -> bool:
    """BC's ``normalize_obs`` when not given: yes for encoders that take statistics (flat or their own)."""
    cls = encoder_class(encoder)
    return cls.normalizable or cls.normalizes_itself


class _Trainer:
    """One BC run on one rank (see the module docstrings of bc and distributed)."""

    def __init__(self, ds: DemoDataset, cfg: BCConfig, policy: NeuralPolicy, comm: Comm, device: torch.device, *,
                 env_id: str, stop_value: float | None, train_rows: np.ndarray, val_rows: np.ndarray,
                 plan: MemoryPlan | None = None) -> None:
        self.ds, self.cfg, self.policy, self.comm, self.device = ds, cfg, policy, comm, device
        self.env_id, self.stop_value = env_id, stop_value
        self.n_train = len(train_rows)
        self.lo, self.hi = shard_bounds(self.n_train, comm.rank, comm.world_size)
        self.max_epochs, self.eval_every = resolve_schedule(cfg, self.n_train, comm.world_size)
        self.stream = plan is not None and plan.stream
        if self.stream:
            assert plan is not None
            xv, av = self._init_stream(train_rows, val_rows, plan)
        else:
            x, a, xv, av = self._load(train_rows, val_rows)
            self._fit_normalizer(x)
        policy.to(device)
        with torch.no_grad():
            if not self.stream:
                self.x = policy.normalize(torch.from_numpy(x).to(device))
                self.y = _targets(a, ds.action_space).to(device)
            self.xv = policy.normalize(torch.from_numpy(xv).to(device)) if xv is not None else None
            self.yv = _targets(av, ds.action_space).to(device) if av is not None else None
        self.discrete = isinstance(ds.action_space, spaces.Discrete)
        #: the separate state regressor (aux_state with state_head "none"; the policy's own state_head otherwise)
        self.aux: torch.nn.Linear | None = None
        self.s = self.sv = None
        if cfg.aux_state > 0:
            self._load_states(train_rows, val_rows)
        if not self.discrete and cfg.loss == "mse":
            policy.freeze_action_std()  # MSE fits the mean only
        self.model = comm.wrap(policy)
        #: ensemble members (1: one network); members 1..N-1 draw their batch orders from their own generators
        self.members = policy.arch.ensemble
        self.member_gens = [torch.Generator().manual_seed(derive_seed(cfg.seed, "bc-order", i))
                            for i in range(1, self.members)]
        self._seeds: dict[tuple[int, bool], torch.Tensor] = {}
        trainable = [p for p in policy.parameters() if p.requires_grad]
        if self.aux is not None:
            trainable += list(self.aux.parameters())
        self.opt = make_adam(trainable, cfg.lr, direct=True)
        #: the gradient without the autograd engine where the policy is the common case (None: autograd)
        self.grad = None if self.s is not None else \
            hand_written_grad(policy, trainable, loss=cfg.loss, world_size=comm.world_size)
        #: the weight matrices decayed after each step (an ensemble's carry a member axis), and their factor
        #: (None: no decay)
        self.decayed = [p for p in trainable if p.dim() > (2 if self.members > 1 else 1)] if cfg.weight_decay else None
        self.decay = 1.0 - cfg.lr * cfg.weight_decay if cfg.weight_decay else 1.0
        #: the input noise's own random stream (one per rank); None without noise (no draws: same weights as before)
        self.noise_gen = torch.Generator().manual_seed(derive_seed(cfg.seed, "bc-obs-noise", comm.rank)) \
            if cfg.obs_noise else None

    def _load_states(self, train_rows: np.ndarray, val_rows: np.ndarray) -> None:
        """``aux_state``: the training (and validation) rows' state observations, standardised with the
        training split's mean and std (a constant component: std 1), and the regressor."""
        ds = self.ds

        def states(rows: np.ndarray) -> np.ndarray:
            got = np.asarray(ds.read([STATE_FIELD], rows)[STATE_FIELD], dtype=np.float64)
            return got.reshape(len(got), -1)

        s = states(train_rows[self.lo:self.hi])
        sv = states(val_rows) if len(val_rows) else None
        if not np.isfinite(s).all() or (sv is not None and not np.isfinite(sv).all()):
            raise DatasetError(f"dataset {ds.path}: {STATE_FIELD} holds NaN or inf values")
        mean, std = s.mean(0), s.std(0)
        std[std < 1e-8] = 1.0
        self.s = torch.from_numpy(((s - mean) / std).astype(np.float32)).to(self.device)
        if sv is not None:
            self.sv = torch.from_numpy(((sv - mean) / std).astype(np.float32)).to(self.device)
        if self.policy.state_head is None:
            self.aux = _init_aux(self.cfg, self.policy.encoder.out_dim, s.shape[1]).to(self.device)

    def _noisy(self, x: torch.Tensor) -> torch.Tensor:
        """The batch's inputs plus ``obs_noise`` times standard Gaussian noise (drawn on the CPU: the same
        draws on every device); ``x`` itself without noise."""
        if self.noise_gen is None:
            return x
        noise = torch.randn(x.shape, generator=self.noise_gen, dtype=x.dtype).to(x.device)
        return x + self.cfg.obs_noise * noise

    def _load(self, train_rows: np.ndarray, val_rows: np.ndarray) -> tuple[np.ndarray, Any, Any, Any]:
        """This rank's training shard (and, on rank 0, the validation rows); checked for bad values.

        Only those rows are read (``DemoDataset.read``): one rank reads all training rows."""
        ds, comm = self.ds, self.comm
        k = self.cfg.history
        flat = self.policy.encoder.normalizable
        x, a = _read_xy(ds, train_rows[self.lo:self.hi], k, flat)
        xv, av = _read_xy(ds, val_rows, k, flat) if comm.is_main and len(val_rows) else (None, None)
        counts = np.array(bad_value_counts(x, a, ds.action_space))
        if xv is not None:
            counts += np.array(bad_value_counts(xv, av, ds.action_space))
        total = comm.all_reduce_sum(torch.as_tensor(counts, dtype=torch.float64)).long().tolist()
        if any(total):
            raise bad_values_error(ds.path, total, ds.action_space, "BC")
        return x, a, xv, av

    def _init_stream(self, train_rows: np.ndarray, val_rows: np.ndarray, plan: MemoryPlan) -> tuple[Any, Any]:
        """Streaming: one pass over this rank's training rows (bad values, normalisation statistics:
        sums around the first batch's mean, merged across ranks), a seeded sample of at most
        ``STREAM_VAL_ROWS`` validation rows, and the batch stream."""
        ds, comm, cfg = self.ds, self.comm, self.cfg
        shard = train_rows[self.lo:self.hi]
        counts = np.zeros(3, dtype=np.int64)
        shift = total = sq = None
        for batch in self._stream(shard, cfg.batch_size, plan.buffer_rows, None):
            x = self._flat(batch["observations"])
            counts += np.array(bad_value_counts(x, batch["actions"], ds.action_space))
            if not self.policy.normalizes_obs:
                continue
            x = x.reshape(len(x), -1).astype(np.float64)
            if shift is None:
                shift = x.mean(0)
                total, sq = np.zeros_like(shift), np.zeros_like(shift)
            d = x - shift
            total += d.sum(0)
            sq += (d * d).sum(0)
        xv = av = None
        if comm.is_main and len(val_rows):
            keep = val_rows
            if len(val_rows) > STREAM_VAL_ROWS:
                pick = np.random.default_rng(derive_seed(cfg.seed, "bc-val-sample"))
                keep = np.sort(val_rows.take(pick.choice(len(val_rows), STREAM_VAL_ROWS, replace=False)))
            xv, av = _read_xy(ds, keep, cfg.history, self.policy.encoder.normalizable)
            counts += np.array(bad_value_counts(xv, av, ds.action_space))
        bad = comm.all_reduce_sum(torch.as_tensor(counts, dtype=torch.float64)).long().tolist()
        if any(bad):
            raise bad_values_error(ds.path, bad, ds.action_space, "BC")
        if self.policy.normalizes_obs:
            dim = cfg.history * flat_dim(ds.observation_space)
            local_shift = torch.from_numpy(shift if shift is not None else np.zeros(dim))
            n_local = float(len(shard))
            # global mean from shifted sums, then the variance around it (shift-corrected per rank)
            s = torch.from_numpy(total if total is not None else np.zeros(dim))
            q = torch.from_numpy(sq if sq is not None else np.zeros(dim))
            sums = comm.all_reduce_sum(torch.cat([s + n_local * local_shift, torch.tensor([n_local])]))
            n = sums[-1]
            mean = sums[:-1] / n
            # sum (x - mean)^2 = sum (d + shift - mean)^2 = q + 2 (shift - mean) s + n_local (shift - mean)^2
            c = local_shift - mean
            var = comm.all_reduce_sum(q + 2 * c * s + n_local * c * c) / n
            self.policy.set_obs_statistics(mean, var.clamp_min(0.0), float(n))
        world = comm.world_size
        if world > 1:  # equal step counts on every rank (DDP): whole batches of the smallest shard
            self.stream_steps = (self.n_train // world) // cfg.batch_size
            if self.stream_steps < 1:
                raise ConfigError(f"streaming BC on {world} processes needs at least one batch of {cfg.batch_size} "
                                  f"rows per process; the training split has {self.n_train} rows")
        else:
            self.stream_steps = math.ceil(len(shard) / cfg.batch_size)
        from demokit.data.loader import StreamingBatches

        self.batches = StreamingBatches(ds, cfg.batch_size, seed=derive_seed(cfg.seed, "bc-stream"), rows=shard,
                                        buffer_rows=plan.buffer_rows, drop_last=world > 1)
        return xv, av

    def _stream(self, rows: np.ndarray, batch_size: int, buffer_rows: int | None, seed: int | None) -> Any:
        """Streamed ``{observations, actions}`` batches of ``rows`` (shuffled when ``seed`` is given); with a
        history, observations are windows (B, K, ...) and actions those of each window's last step."""
        ds, k = self.ds, self.cfg.history
        if k == 1:
            return ds.iter_batches(batch_size, rows=rows, buffer_rows=buffer_rows, shuffle=seed is not None,
                                   seed=seed, drop_last=self.comm.world_size > 1 and seed is not None)
        wins = ds.iter_windows(batch_size, k, before=k - 1, rows=rows, shuffle=seed is not None, seed=seed,
                               drop_last=self.comm.world_size > 1 and seed is not None)
        return ({"observations": w["observations"], "actions": w["actions"][:, -1]} for w in wins)

    def _flat(self, obs: Any) -> np.ndarray:
        """Network inputs of a batch: flat float32 for flat encoders, the stored arrays for image encoders."""
        if not self.policy.encoder.normalizable:
            return np.asarray(obs)
        return flatten_batch(stack_space(self.ds.observation_space, self.cfg.history), obs)

    def _stream_epoch(self, epoch: int) -> tuple[float, float]:
        """One pass over streamed batches (``stream_steps`` of them); (mean training loss, seconds)."""
        t0 = time.perf_counter()
        ds, device = self.ds, self.device
        self.batches.set_epoch(epoch)
        source: Any = self.batches
        if self.cfg.history > 1:
            source = self._stream(self.batches.rows, self.cfg.batch_size, self.batches.buffer_rows,
                                  derive_seed(self.batches.seed, "stream", epoch, 0))
        elif self.cfg.workers > 0:
            source = torch.utils.data.DataLoader(self.batches, batch_size=None, num_workers=self.cfg.workers,
                                                 collate_fn=_as_is)
        total = torch.zeros((), device=device)
        seen = 0
        for step, batch in enumerate(source):
            if step >= self.stream_steps:
                break
            x = torch.from_numpy(self._flat(batch["observations"]))
            with torch.no_grad():
                x = self.policy.normalize(x.to(device))
            y = _targets(batch["actions"], ds.action_space).to(device)
            total += self._step(self._noisy(x), y, self._seed(len(y), divide=True))  # the batch's mean loss
            seen += len(y)
        sums = self.comm.all_reduce_sum(torch.stack([total.double(), torch.tensor(float(seen), device=device,
                                                                                  dtype=torch.float64)]))
        return float(sums[0] / sums[1].clamp_min(1)), time.perf_counter() - t0

    def _fit_normalizer(self, x: np.ndarray) -> None:
        if not self.policy.normalizes_obs:
            return
        if self.comm.world_size == 1:
            self.policy.fit_obs_statistics(x)
            return
        # merge the shards' statistics: global mean first, then the global variance around it
        if not self.policy.encoder.normalizable:  # an encoder with its own statistics (a mean frame): the mean
            flat = torch.from_numpy(np.ascontiguousarray(x)).reshape(len(x), -1)
            total = torch.zeros(flat.shape[1], dtype=torch.float64)
            for lo in range(0, len(flat), 1024):
                total += flat[lo:lo + 1024].double().sum(0)
            sums = self.comm.all_reduce_sum(torch.cat([total, torch.tensor([float(len(flat))], dtype=torch.float64)]))
            self.policy.set_obs_statistics(sums[:-1] / sums[-1], None, float(sums[-1]))
            return
        x64 = torch.from_numpy(x).double()
        sums = self.comm.all_reduce_sum(torch.cat([x64.sum(0), torch.tensor([float(len(x64))], dtype=torch.float64)]))
        n = sums[-1]
        mean = sums[:-1] / n
        var = self.comm.all_reduce_sum(((x64 - mean) ** 2).sum(0)) / n
        self.policy.set_obs_statistics(mean, var, float(n))

    # -- the loop --------------------------------------------------------------------

    def _losses(self, out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return bc_loss(self.policy, out, target, loss=self.cfg.loss)

    def _outputs(self, x: torch.Tensor) -> torch.Tensor:
        """The model's outputs on a training batch: (B, A), or an ensemble's members' (N, B, A) (in memory each
        member has its own batch (N, B, ...), streamed batches are shared)."""
        if self.members > 1:
            return self.policy.member_outputs(x, per_member=not self.stream)
        return self.model(x)

    def _seed(self, rows: int, *, divide: bool = False) -> torch.Tensor:
        """The gradient seed of a batch's summed loss (float32 0-d, on the device; made once per kind).

        ``divide=False``: ``world / rows`` as ``summed * (world / rows)`` rounds it (the float64
        ratio to float32); ``divide=True``: ``1 / rows`` as ``summed / rows`` computes it (in float32).
        """
        key = (rows, divide)
        seed = self._seeds.get(key)
        if seed is None:
            value = torch.ones((), dtype=torch.float32) / rows if divide else \
                torch.tensor(self.comm.world_size / rows, dtype=torch.float32)
            seed = self._seeds[key] = value.to(self.device)
        return seed

    def _step(self, x: torch.Tensor, y: torch.Tensor, seed: torch.Tensor, s: torch.Tensor | None = None
              ) -> torch.Tensor:
        """One gradient step on the batch (x, y); returns the batch's summed loss (detached).

        The gradient is that of ``summed * seed``, seeded directly (``backward(seed)``: no
        multiplication node, no ones tensor): the same gradients, bit for bit, as the
        ``(summed * scale).backward()`` it replaces, one autograd node and two ops fewer. For
        an MLP of tanh layers with a categorical head, :mod:`demokit.il.mlp_grad` computes the
        same gradients bit for bit without the autograd engine. ``s`` (``aux_state``): the batch's
        standardised states; the loss adds ``aux_state`` times the regressor's summed per-sample MSE
        (the returned sum is the BC loss alone)."""
        if s is not None:
            feats = self.policy.encoder(x)
            if self.aux is not None:  # the separate regressor on the features
                summed = self._losses(self.policy.head(feats), y).sum()
                s_hat = self.aux(feats)
            else:  # state_head: the policy's own predicted state
                s_hat = self.policy.state_head.linear(feats)
                fit = self.cfg.state_head_fit  # recorded: the controller learns on the recorded states; estimated:
                s_in = s if fit == "recorded" else s_hat.detach() if fit == "estimated" else s_hat  # on the estimates
                summed = self._losses(self.policy.head(self.policy.state_head.trunk(feats, s_in)), y).sum()
            aux = (s_hat - s).pow(2).mean(-1).sum()
            self.opt.zero_grad()
            (summed + self.cfg.aux_state * aux).backward(seed)
            self.opt.step()
            self._decay()
            self._aux_total += aux.detach()
            return summed.detach()
        if self.grad is not None:
            summed, grads = self.grad(x, y, seed)
            for p, g in zip(self.grad.params, grads):
                p.grad = g
            self.opt.step()
            self._decay()
            return summed
        summed = self._losses(self._outputs(x), y).sum()  # an ensemble's: every member's (independent gradients)
        self.opt.zero_grad()
        summed.backward(seed)
        self.opt.step()
        self._decay()
        return summed.detach()

    @torch.no_grad()
    def _decay(self) -> None:
        if self.decayed:
            torch._foreach_mul_(self.decayed, self.decay)

    def _epoch(self, gen: torch.Generator) -> tuple[float, float]:
        """One pass over the training split; returns (mean training loss, seconds).

        The epoch's permutation gathers this rank's rows once (one ``index_select``);
        batches are then views of that shuffled copy (one ``split``). Each batch's gradient is
        that of its summed loss times ``world / global batch rows`` (DDP averages over ranks):
        the mean over the global batch. Nothing is read back to Python until the epoch ends.
        """
        t0 = time.perf_counter()
        world, n = self.comm.world_size, self.n_train
        gb = self.cfg.batch_size * world
        perm = torch.randperm(n, generator=gen)
        starts = range(0, n, gb)
        if world == 1:
            sizes = [min(gb, n - k) for k in starts]
        else:  # this rank's rows in the global order, and its share of each global batch
            local = perm - self.lo
            owned = (local >= 0) & (local < self.hi - self.lo)
            perm = local[owned]
            edges = torch.cat([torch.zeros(1, dtype=torch.long), owned.cumsum(0)])[[*starts, n]]
            sizes = edges.diff().tolist()
        perm = perm.to(self.device)
        if self.member_gens:  # one order per member (N, n): member i's batches (N, B, ...)
            perm = torch.stack([perm, *(torch.randperm(n, generator=g).to(self.device) for g in self.member_gens)])
            xs, ys = self.x[perm].split(sizes, 1), self.y[perm].split(sizes, 1)
        else:
            xs, ys = self.x.index_select(0, perm).split(sizes), self.y.index_select(0, perm).split(sizes)
        ss = self.s.index_select(0, perm).split(sizes) if self.s is not None else [None] * len(sizes)
        total = torch.zeros((), device=self.device)
        self._aux_total = torch.zeros((), device=self.device)
        for x, y, s, k in zip(xs, ys, ss, starts):
            total += self._step(self._noisy(x), y, self._seed(min(gb, n - k)), s)
        mean_loss = float(self.comm.all_reduce_sum(total.reshape(1).double())[0]) / n
        return mean_loss, time.perf_counter() - t0

    @torch.no_grad()
    def _validate(self) -> dict[str, float]:
        if self.xv is None or not self.comm.is_main:
            return {}
        if self.members > 1:  # the members' mean loss; the error of the ensemble's (mean) action
            outs = self.policy.member_outputs(self.xv)
            return {"val_loss": float(self._losses(outs, self.yv).mean()),
                    "val_error": float((outs.mean(0) - self.yv).pow(2).mean().sqrt())}
        feats = self.policy.encoder(self.xv)
        s_hat = None
        if self.policy.state_head is not None:
            feats, s_hat = self.policy.state_head(feats)
        elif self.aux is not None:
            s_hat = self.aux(feats)
        out = self.policy.head(feats)
        rec = {"val_loss": float(self._losses(out, self.yv).mean())}
        if s_hat is not None and self.sv is not None:  # mean squared error of the standardised state
            rec["val_state_mse"] = float((s_hat - self.sv).pow(2).mean())
        if self.discrete:
            rec["val_accuracy"] = float((out.argmax(-1) == self.yv).float().mean())
        else:
            rec["val_error"] = float((out - self.yv).pow(2).mean().sqrt())
        return rec

    def _evaluate(self) -> tuple[float, float]:
        """Rank 0 evaluates; every rank gets (mean, std)."""
        res = torch.zeros(2, dtype=torch.float64)
        if self.comm.is_main:
            ev = evaluate_policy(self.policy, self.env_id, episodes=self.cfg.eval_episodes,
                                 seed=derive_seed(self.cfg.seed, "bc-eval") % (2**31), deterministic=True)
            res = torch.tensor([ev.mean_return, ev.std_return], dtype=torch.float64)
        res = self.comm.broadcast(res)
        return float(res[0]), float(res[1])

    def run(self, callback: Callable[[dict[str, Any]], None] | None
            ) -> tuple[list[dict[str, Any]], int, float, tuple[float, float] | None]:
        cfg = self.cfg
        gen = torch.Generator().manual_seed(derive_seed(cfg.seed, "bc-order"))
        history: list[dict[str, Any]] = []
        train_time = 0.0
        last_eval: tuple[float, float] | None = None
        best: tuple[tuple[float, float], int, dict[str, torch.Tensor]] | None = None  # keep_best: eval, epoch, weights
        epoch = 0
        t_start = time.perf_counter()
        for epoch in range(1, self.max_epochs + 1):
            self.policy.train()
            lr = cfg.lr * (1 - (epoch - 1) / self.max_epochs) if cfg.lr_schedule == "linear" else None
            if lr is not None:
                set_learning_rate(self.opt, lr)
            loss, secs = self._stream_epoch(epoch) if self.stream else self._epoch(gen)
            loss /= self.members  # an ensemble's: the members' mean
            train_time += secs
            rec: dict[str, Any] = {"epoch": epoch, "max_epochs": self.max_epochs, "loss": loss, **self._validate()}
            if self.s is not None:
                rec["aux_state_loss"] = float(self._aux_total) / self.n_train
            if lr is not None:
                rec["lr"] = lr
            evaluated = cfg.eval_episodes > 0 and self.eval_every > 0 and epoch % self.eval_every == 0
            if evaluated or (epoch == self.max_epochs and cfg.eval_episodes > 0):
                self.policy.eval()
                last_eval = self._evaluate()
                rec["eval_mean"], rec["eval_std"] = last_eval
                if cfg.keep_best and (best is None or last_eval[0] > best[0][0]):
                    best = (last_eval, epoch, {k: v.detach().clone() for k, v in self.policy.state_dict().items()})
            rec["time_s"] = time.perf_counter() - t_start
            history.append(rec)
            if callback is not None and self.comm.is_main:
                callback(rec)
            if last_eval is not None and "eval_mean" in rec and self.stop_value is not None \
                    and last_eval[0] >= self.stop_value:
                break
        samples_per_s = self.n_train * epoch / train_time if train_time > 0 else 0.0
        if best is not None and best[1] != epoch:  # back to the best evaluation's weights
            self.policy.load_state_dict(best[2])
            last_eval = best[0]
            history[-1]["kept_epoch"] = best[1]
        return history, epoch, samples_per_s, last_eval
