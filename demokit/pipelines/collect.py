"""Collecting demonstrations: run a policy in vectorised envs, write whole episodes to one ``.h5``.

``collect_demo_data(policy, env_id, path, n_episodes=10)`` returns a :class:`CollectResult`.
``policy`` is a :class:`~demokit.policies.Policy`, a checkpoint path, ``"random"`` or an
expert name ``"ppo"`` / ``"dqn"`` (the checkpoint ``experts/<env>-<algo>.pt``, trained with
:func:`demokit.rl.train_expert` first when it is missing).

Speed. One gymnasium ``SyncVectorEnv`` (:func:`demokit.envs.make_vec_env`) and one batched
``policy.act`` per vector step; every sub-env fills its own preallocated numpy episode
buffers; a finished episode is copied out once and handed to the
:class:`~demokit.data.DatasetWriter`, which writes large blocks (no per-step HDF5 call).
A finished sub-env is reset explicitly (``reset_mask``) with its next episode's seed, so the
NEXT_STEP autoreset step (reset observation, ignored action, reward 0: not a transition)
never occurs for a running episode.

Reproducibility. Episode ``k`` of a collection is reset with seed ``seed + k`` and, when
actions are sampled (``"random"``, or a neural policy with ``deterministic=False``), draws
them from its own generator derived from ``(seed, k)``. Episodes are written in index
order, whatever order they finish in (after an interrupt, the finished episodes that came
after a still-running one are kept too, still in index order: their seeds tell which).
The dataset therefore depends on the policy, env, seed, budget and ``deterministic`` but
not on ``num_envs``. Neural policies on CPU see batches padded to at least 16 rows, the
size from which torch's matrix products round every row the same whatever the batch size
(see :func:`demokit.policies.neural.pad_rows`), so their actions and log-probabilities are
bitwise independent of ``num_envs`` too. A user-defined
:class:`~demokit.policies.Policy` (or a policy on a GPU) is called on ``num_envs`` rows as
is: reproducible for the same ``num_envs``; if it samples, it is seeded once
(``policy.seed``) and its draws depend on the batch layout.

Budgets. ``n_episodes``: episodes ``0 .. n-1``. ``n_steps``: exactly the first ``n_steps``
transitions of the sequence of episodes ``0, 1, 2, ...``; the episode that crosses the
budget is cut there and stored with ``truncated=True`` on its last kept step (a cut that
bootstraps, like a time limit, never presented as a finished episode);
:attr:`CollectResult.cut_episodes` counts it and the provenance records ``n_steps``.

Crash safety. SIGINT / SIGTERM during the loop stop it at the next vector step: every
episode completed so far is committed, running episodes are dropped, and
:class:`CollectionInterrupted` (a ``KeyboardInterrupt``) carries the result. A ``kill -9``
leaves an appended-to dataset untouched and a new one absent (the writer's temp file +
atomic rename). The env, the policy/env spaces, the output path and an append target are
checked before anything is created, so a failed collection leaves no file behind.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from gymnasium import spaces
from gymnasium.vector.utils import batch_space

from demokit._version import __version__
from demokit.config import from_mapping, option, required
from demokit.data import format as fmt
from demokit.data.dataset import load_dataset
from demokit.data.episode import Episode, obs_index
from demokit.data.writer import DEFAULT_BLOCK_STEPS, DatasetWriter
from demokit.envs import env_spec_json, make_env, make_vec_env
from demokit.errors import DatasetError, UserError
from demokit.evaluation import evaluate_policy
from demokit.policies import NeuralPolicy, Policy, RandomPolicy, load_checkpoint
from demokit.policies.neural import ROW_INVARIANT_BATCH
from demokit.seeding import derive_seed
from demokit.rl.common import torch_threads
from demokit.rl.registry import learner_names
from demokit.spaces import check_same_spaces

#: default folder of datasets written without an explicit path
DATASETS_DIR = "datasets"
#: episode buffers start with this many rows (or the env's time limit, if smaller) and double when full
INITIAL_CAPACITY = 1024
#: seconds between progress reports
PROGRESS_EVERY_S = 0.25

#: ``progress(info)`` receives dicts with a ``stage`` key: ``"train"`` (a missing expert is
#: being trained: ``event`` "start" with ``checkpoint``/``algo``/``env_id``, then the trainer's
#: own figures) or ``"collect"`` (first ``event`` "start" with ``path``, ``env_id``, ``policy``,
#: ``num_envs``, ``target_episodes``, ``target_steps``; then ``episodes``, ``steps`` (written
#: so far), ``target_episodes``, ``target_steps``, ``steps_per_s``).
ProgressFn = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class CollectConfig:
    """One demonstration collection (shared by :func:`collect_demo_data` and ``demokit collect``)."""

    policy: str = required("random, a registered learner's name such as ppo or dqn (the expert "
                           "experts/<env>-<algo>.pt, trained first when missing) or the path of a demokit policy checkpoint (an expert, BC or GAIL policy)")
    env_id: str | None = option(None, "gymnasium env id (default: the checkpoint's env)")
    path: str | None = option(None, "output .h5 dataset (default: datasets/<env>-<policy>.h5)")
    n_episodes: int | None = option(None, "number of episodes to collect (or give a number of steps)")
    n_steps: int | None = option(None, "number of transitions to collect (or give a number of episodes); the "
                                       "episode crossing the budget is cut and stored as truncated")
    seed: int = option(0, "episode k of the collection is reset with seed + k")
    num_envs: int = option(32, "environments stepped together (batched policy calls); the dataset does not "
                               "depend on it")
    deterministic: bool = option(True, "act greedily (false: sample actions from the policy)")
    mode: Literal["create", "append", "overwrite"] = option(
        "create", "create (refuse an existing file), append (add episodes to it) or overwrite (replace it)")
    compression: str | None = option(None, "HDF5 compression: gzip, lzf or none")
    experts_dir: str = option("experts", "folder of the named experts <env>-<algo>.pt")
    train_missing_expert: bool = option(True, "train a named expert (ppo, dqn) when its checkpoint is missing")
    eval_episodes: int = option(5, "episodes of the quick evaluation that records the policy's return in the "
                                   "provenance when its checkpoint has no training figures (0: skip)")
    store_log_probs: bool = option(True, "store the log-probability of each sampled action (extras/log_prob) "
                                         "when a neural policy acts stochastically")
    write_block_steps: int = option(DEFAULT_BLOCK_STEPS, "transitions the writer buffers per HDF5 block")


@dataclass(frozen=True)
class CollectResult:
    """What one collection wrote (figures over the episodes it added)."""

    path: str
    env_id: str
    episodes: int
    steps: int
    mean_return: float
    std_return: float
    wall_s: float
    steps_per_s: float
    cut_episodes: int = 0
    interrupted: bool = False
    total_episodes: int = 0
    total_steps: int = 0
    policy: str = ""
    policy_return: float | None = None
    provenance: Mapping[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """The JSON figures (``demokit collect --json``)."""
        return {"path": self.path, "episodes": self.episodes, "steps": self.steps,
                "mean_return": self.mean_return, "std_return": self.std_return,
                "steps_per_s": self.steps_per_s, "wall_s": self.wall_s, "env_id": self.env_id,
                "policy": self.policy, "policy_return": self.policy_return, "cut_episodes": self.cut_episodes,
                "interrupted": self.interrupted, "total_episodes": self.total_episodes,
                "total_steps": self.total_steps}


class CollectionInterrupted(KeyboardInterrupt):
    """Ctrl-C / SIGTERM stopped a collection; ``result`` describes the episodes that were kept."""

    def __init__(self, result: CollectResult) -> None:
        super().__init__(f"collection interrupted: kept {result.episodes} complete episodes in {result.path}")
        self.result = result


# ------------------------------------------------------------------------------------------
# resolving the policy


@dataclass(frozen=True)
class _Resolved:
    policy: Policy
    label: str                      # what the provenance and default file name call it
    kind: str                       # random | expert | checkpoint | object
    env_id: str | None = None       # the checkpoint's env
    algo: str | None = None
    checkpoint: str | None = None
    sha256: str | None = None
    training: Mapping[str, Any] = field(default_factory=dict)


def expert_checkpoint_path(env_id: str, algo: str, experts_dir: str | os.PathLike[str] = "experts") -> Path:
    """Where the named expert of ``env_id`` lives: ``<experts_dir>/<env_id>-<algo>.pt`` (as train-expert saves it)."""
    from demokit.rl import default_out

    return Path(experts_dir) / Path(default_out(env_id, algo)).name


def _train_expert(env_id: str, algo: str, ckpt: Path, progress: ProgressFn | None) -> None:
    from demokit.rl import train_expert

    if progress is not None:
        progress({"stage": "train", "event": "start", "checkpoint": str(ckpt), "algo": algo, "env_id": env_id})

    def report(info: Mapping[str, Any]) -> None:
        if progress is not None:
            progress({"stage": "train", **info})

    result = train_expert({"env_id": env_id, "algo": algo, "out": str(ckpt)}, progress=report)
    if not getattr(result, "reached_threshold", True):
        warnings.warn(f"the {algo} expert for {env_id} reached a mean return of {result.mean_return:.1f}, below the "
                      f"env's threshold {getattr(result, 'stop_value', None)}; its demonstrations may be poor "
                      f"(retrain it with `demokit train-expert`)", stacklevel=4)


def _resolve_policy(policy: Any, cfg: CollectConfig, progress: ProgressFn | None) -> _Resolved:
    if isinstance(policy, RandomPolicy):
        return _Resolved(policy=policy, label="random", kind="random")
    if isinstance(policy, Policy):
        return _Resolved(policy=policy, label=type(policy).__name__, kind="object")
    spec = str(policy)
    if spec == "random":
        if cfg.env_id is None:
            raise UserError("--policy random needs --env (e.g. --env CartPole-v1)")
        probe = make_env(cfg.env_id)
        probe.close()
        return _Resolved(policy=RandomPolicy(probe.observation_space, probe.action_space), label="random",
                         kind="random")
    if spec in learner_names():  # a registered learner's expert
        if cfg.env_id is None:
            raise UserError(f"--policy {spec} needs --env to name the expert's env (e.g. --env CartPole-v1)")
        ckpt = expert_checkpoint_path(cfg.env_id, spec, cfg.experts_dir)
        if not ckpt.exists():
            if not cfg.train_missing_expert:
                raise UserError(f"no {spec} expert for {cfg.env_id} at {ckpt}; train it with "
                                f"`demokit train-expert --env {cfg.env_id} --algo {spec}`")
            _train_expert(cfg.env_id, spec, ckpt, progress)
        return _from_checkpoint(ckpt, label=spec, kind="expert")
    if not Path(spec).exists():
        raise UserError(f"--policy {spec!r}: no such checkpoint file; use random, a learner's expert "
                        f"({', '.join(learner_names())}) or the path of a demokit policy checkpoint (.pt)")
    return _from_checkpoint(Path(spec), label=None, kind="checkpoint")


def _from_checkpoint(path: Path, *, label: str | None, kind: str) -> _Resolved:
    ck = load_checkpoint(path)
    return _Resolved(policy=ck.policy, label=label or ck.algo or "policy", kind=kind, env_id=ck.env_id,
                     algo=ck.algo or None, checkpoint=str(path), sha256=ck.sha256, training=dict(ck.training))


def _policy_return(res: _Resolved, env_id: str, cfg: CollectConfig) -> tuple[float | None, str | None]:
    """The policy's return for the provenance: its training figures, else a quick evaluation."""
    for key in ("mean_return", "eval_mean_return", "final_mean_return"):
        value = res.training.get(key)
        if isinstance(value, (int, float)) and math.isfinite(value):
            return float(value), "checkpoint"
    if res.kind == "random" or cfg.eval_episodes < 1:
        return None, None
    ev = evaluate_policy(res.policy, env_id, episodes=int(cfg.eval_episodes),
                         seed=derive_seed(cfg.seed, "provenance-eval") % (2**31), deterministic=True)
    return ev.mean_return, f"evaluated ({ev.episodes} deterministic episodes)"


# ------------------------------------------------------------------------------------------
# acting: one batched call per vector step; per-episode generators where actions are sampled


class _Actor:
    """Batched acting. ``start(slot, k)`` tells it that env ``slot`` begins dataset episode ``k``."""

    extras_spec: dict[str, tuple[tuple[int, ...], np.dtype]] = {}

    def start(self, slot: int, episode: int) -> None:
        pass

    def act(self, obs: Any) -> tuple[Any, dict[str, np.ndarray] | None]:  # pragma: no cover - abstract
        raise NotImplementedError


class _BatchActor(_Actor):
    """Any policy, one ``policy.act`` per step (deterministic, or seeded once when sampling).

    A greedy NeuralPolicy on the CPU acts on batches padded to ``ROW_INVARIANT_BATCH`` rows.
    """

    def __init__(self, policy: Policy, deterministic: bool, seed: int) -> None:
        self.policy = policy
        self.deterministic = deterministic
        if not deterministic:
            policy.seed(derive_seed(seed, "actions"))
        greedy_cpu_net = deterministic and isinstance(policy, NeuralPolicy) and policy.device.type == "cpu"
        self.pad_to = ROW_INVARIANT_BATCH if greedy_cpu_net else 0

    def act(self, obs: Any) -> tuple[Any, None]:
        with torch.inference_mode():
            if self.pad_to:
                return self.policy.act(obs, deterministic=True, pad_to=self.pad_to), None
            return self.policy.act(obs, deterministic=self.deterministic), None


class _RandomActor(_Actor):
    """Uniform actions drawn per episode: episode k samples blocks of actions from its own batched
    copy of the action space, seeded from (seed, k); a vector step gathers one row per env."""

    BLOCK = 128

    def __init__(self, action_space: spaces.Space, seed: int, num_envs: int) -> None:
        self.seed = seed
        self.space = action_space
        self.batched = [batch_space(action_space, self.BLOCK) for _ in range(num_envs)]
        self.blocks = [np.zeros((num_envs, self.BLOCK, *shape), dtype)
                       for _, dtype, shape in fmt.leaf_specs(action_space)]
        self.pos = np.zeros(num_envs, np.int64)
        self.rows = np.arange(num_envs)

    def _refill(self, slot: int) -> None:
        for buf, leaf in zip(self.blocks, fmt.leaves_of(self.space, self.batched[slot].sample(), "actions")):
            buf[slot] = leaf
        self.pos[slot] = 0

    def start(self, slot: int, episode: int) -> None:
        self.batched[slot].seed(derive_seed(self.seed, "actions", episode))
        self._refill(slot)

    def act(self, obs: Any) -> tuple[Any, None]:
        for i in np.flatnonzero(self.pos >= self.BLOCK):  # an episode used its block up: draw the next one
            self._refill(int(i))
        actions = fmt.assemble(self.space, [buf[self.rows, self.pos] for buf in self.blocks])
        self.pos += 1
        return actions, None


class _SamplingActor(_Actor):
    """A NeuralPolicy sampling from its action distribution with one generator per episode.

    ``NeuralPolicy.sample_rows`` draws each row from its own generator on a padded batch,
    so each row's action depends only on its own episode's generator (not on the batch).
    ``log_prob`` of each sampled action is kept as a per-step extra when ``store_log_probs``.
    """

    def __init__(self, policy: NeuralPolicy, seed: int, num_envs: int, store_log_probs: bool) -> None:
        self.policy = policy
        self.seed = seed
        self.gens = [np.random.default_rng(derive_seed(seed, "idle", i)) for i in range(num_envs)]
        self.store = store_log_probs
        self.extras_spec = {"log_prob": ((), np.dtype(np.float32))} if store_log_probs else {}

    def start(self, slot: int, episode: int) -> None:
        self.gens[slot] = np.random.default_rng(derive_seed(self.seed, "actions", episode))

    def act(self, obs: Any) -> tuple[Any, dict[str, np.ndarray] | None]:
        with torch.inference_mode():
            actions, log_prob = self.policy.sample_rows(obs, self.gens, pad_to=ROW_INVARIANT_BATCH,
                                                        log_prob=self.store)
        return actions, ({"log_prob": log_prob} if self.store else None)


def _make_actor(res: _Resolved, cfg: CollectConfig, num_envs: int, action_space: spaces.Space) -> _Actor:
    if res.kind == "random":
        return _RandomActor(action_space, cfg.seed, num_envs)
    if not cfg.deterministic and isinstance(res.policy, NeuralPolicy) and res.policy.arch.head != "qvalue":
        return _SamplingActor(res.policy, cfg.seed, num_envs, cfg.store_log_probs)
    return _BatchActor(res.policy, cfg.deterministic, cfg.seed)


# ------------------------------------------------------------------------------------------
# per-env episode buffers and the ordered, budgeted hand-over to the writer


class _SlotBuffers:
    """Preallocated (num_envs, capacity, ...) arrays; row ``t`` of env ``i`` is step t of its episode."""

    def __init__(self, obs_space: spaces.Space, act_space: spaces.Space, num_envs: int, capacity: int,
                 extras_spec: Mapping[str, tuple[tuple[int, ...], np.dtype]]) -> None:
        self.obs_space, self.act_space = obs_space, act_space
        self.n, self.capacity = num_envs, capacity
        self.obs = [np.zeros((num_envs, capacity, *shape), dtype) for _, dtype, shape in fmt.leaf_specs(obs_space)]
        self.act = [np.zeros((num_envs, capacity, *shape), dtype) for _, dtype, shape in fmt.leaf_specs(act_space)]
        self.rewards = np.zeros((num_envs, capacity), np.float64)
        self.extras = {k: np.zeros((num_envs, capacity, *shape), dtype) for k, (shape, dtype) in extras_spec.items()}
        self.rows = np.arange(num_envs)

    def record(self, t: np.ndarray, obs: Any, actions: Any, extras: Mapping[str, np.ndarray] | None) -> None:
        rows = self.rows
        for buf, leaf in zip(self.obs, fmt.leaves_of(self.obs_space, obs)):
            buf[rows, t] = leaf
        for buf, leaf in zip(self.act, fmt.leaves_of(self.act_space, actions, "actions")):
            buf[rows, t] = leaf
        if extras:
            for name, values in extras.items():
                self.extras[name][rows, t] = values

    def grow(self) -> None:
        def double(a: np.ndarray) -> np.ndarray:
            out = np.zeros((a.shape[0], 2 * a.shape[1], *a.shape[2:]), a.dtype)
            out[:, : a.shape[1]] = a
            return out
        self.obs = [double(a) for a in self.obs]
        self.act = [double(a) for a in self.act]
        self.rewards = double(self.rewards)
        self.extras = {k: double(a) for k, a in self.extras.items()}
        self.capacity *= 2

    def episode(self, i: int, length: int, final_obs: Any, *, terminated: bool, truncated: bool, seed: int) -> Episode:
        flags = np.zeros((2, length), bool)
        flags[0, -1], flags[1, -1] = terminated, truncated
        return Episode(observations=fmt.assemble(self.obs_space, [a[i, :length].copy() for a in self.obs]),
                       actions=fmt.assemble(self.act_space, [a[i, :length].copy() for a in self.act]),
                       rewards=self.rewards[i, :length].copy(), terminated=flags[0], truncated=flags[1],
                       final_observation=final_obs,
                       extras={k: a[i, :length].copy() for k, a in self.extras.items()}, seed=seed)


def _head(ep: Episode, n: int) -> Episode:
    """The first ``n`` steps of ``ep`` as an episode cut by the budget (truncated on its last step)."""
    truncated = np.zeros(n, bool)
    truncated[-1] = True
    return Episode(observations=obs_index(ep.observations, slice(0, n)), actions=obs_index(ep.actions, slice(0, n)),
                   rewards=ep.rewards[:n], terminated=np.zeros(n, bool), truncated=truncated,
                   final_observation=obs_index(ep.observations, slice(n, n + 1)),
                   extras={k: v[:n] for k, v in ep.extras.items()}, seed=ep.seed)


class _OrderedSink:
    """Hands finished episodes to the writer in episode-index order, applying the step budget."""

    def __init__(self, writer: DatasetWriter, n_steps: int | None) -> None:
        self.writer = writer
        self.n_steps = n_steps
        self.pending: dict[int, tuple[Episode, bool]] = {}
        self.next_index = 0
        self.steps = 0
        self.returns: list[float] = []
        self.cut = 0
        self.full = False

    def add(self, k: int, ep: Episode, cut: bool) -> None:
        self.pending[k] = (ep, cut)
        while self.next_index in self.pending:
            self._write(*self.pending.pop(self.next_index))
            self.next_index += 1

    def _write(self, ep: Episode, cut: bool) -> None:
        if self.full:
            return
        if self.n_steps is not None:
            room = self.n_steps - self.steps
            if len(ep) > room:
                ep, cut = _head(ep, room), True
            self.full = self.steps + len(ep) >= self.n_steps
        self.writer.add_episode(ep)
        self.steps += len(ep)
        self.returns.append(ep.episode_return)
        self.cut += int(cut)

    def steps_before(self, k: int) -> int:
        """Transitions known to precede dataset episode ``k`` (written + finished earlier episodes)."""
        return self.steps + sum(len(ep) for j, (ep, _) in self.pending.items() if j < k)

    def flush_completed(self) -> None:
        """On interrupt: write the finished episodes still waiting for an earlier one, in index order."""
        for k in sorted(self.pending):
            self._write(*self.pending.pop(k))


# ------------------------------------------------------------------------------------------
# signals: stop at the next vector step instead of raising in the middle of a write


class _StopFlag:
    """While active (main thread only), SIGINT and SIGTERM set ``self.set`` instead of raising.

    A second signal raises ``KeyboardInterrupt`` at once (an env stuck in ``step`` can
    still be left); the collector then keeps the finished episodes all the same.
    """

    def __init__(self) -> None:
        self.set = False
        self._old: dict[int, Any] = {}

    def _handler(self, signum: int, frame: Any) -> None:
        if self.set:
            raise KeyboardInterrupt(f"signal {signum} received twice")
        self.set = True

    @contextlib.contextmanager
    def installed(self) -> Iterator[_StopFlag]:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handler)
        try:
            yield self
        finally:
            for sig, old in self._old.items():
                signal.signal(sig, old)
            self._old.clear()


# ------------------------------------------------------------------------------------------
# the loop


def _run(venv: Any, actor: _Actor, sink: _OrderedSink, *, seed: int, n_episodes: int | None, n_steps: int | None,
         stop: _StopFlag, progress: ProgressFn | None) -> int:
    """Step ``venv`` until the budget is met (or ``stop`` is set); returns transitions stepped."""
    n = int(venv.num_envs)
    limit = venv.envs[0].spec.max_episode_steps if getattr(venv.envs[0], "spec", None) else None
    capacity = min(INITIAL_CAPACITY, limit or INITIAL_CAPACITY, n_steps or INITIAL_CAPACITY)
    bufs = _SlotBuffers(venv.single_observation_space, venv.single_action_space, n, capacity, actor.extras_spec)
    slot_ep = np.full(n, -1, np.int64)   # dataset episode index running in each env (-1: idle)
    t = np.zeros(n, np.int64)            # steps taken so far by each env's episode
    next_k = 0
    stepped = 0

    def may_start() -> bool:
        return next_k < n_episodes if n_episodes is not None else stepped < n_steps  # type: ignore[operator]

    seeds: list[int | None] = [None] * n
    for i in range(n):
        if may_start():
            slot_ep[i], seeds[i] = next_k, seed + next_k
            actor.start(i, next_k)
            next_k += 1
    obs, _ = venv.reset(seed=seeds)
    active = slot_ep >= 0                # kept up to date only when episodes end (cheap steps)
    n_active = int(active.sum())
    longest = 0                          # an upper bound of t.max()
    last_report = t0 = time.perf_counter()
    while n_active and not stop.set:
        actions, extras = actor.act(obs)
        bufs.record(t, obs, actions, extras)
        obs, rewards, terminated, truncated, _ = venv.step(actions)
        bufs.rewards[bufs.rows, t] = rewards
        t += active
        stepped += n_active
        longest += 1
        done = terminated | truncated
        over_budget = n_steps is not None and stepped >= n_steps
        if over_budget or done.any():
            ended = done & active
            cut = _budget_cuts(slot_ep, t, sink, n_steps) & ~ended if over_budget else np.zeros(n, bool)
            finishing = np.flatnonzero(ended | cut)
            if len(finishing):
                reset_mask = np.zeros(n, bool)
                seeds = [None] * n
                for i in finishing:
                    k = int(slot_ep[i])
                    ep = bufs.episode(i, int(t[i]), obs_index(obs, slice(i, i + 1)), terminated=bool(terminated[i]),
                                      truncated=bool(truncated[i] or cut[i]), seed=seed + k)
                    sink.add(k, ep, bool(cut[i]))
                    t[i] = 0
                    if may_start():
                        slot_ep[i], seeds[i], reset_mask[i] = next_k, seed + next_k, True
                        actor.start(int(i), next_k)
                        next_k += 1
                    else:
                        slot_ep[i] = -1
                if reset_mask.any():
                    obs, _ = venv.reset(seed=seeds, options={"reset_mask": reset_mask})
                active = slot_ep >= 0
                n_active = int(active.sum())
                longest = int(t.max())
        if longest >= bufs.capacity:
            bufs.grow()
        if progress is not None and (now := time.perf_counter()) - last_report >= PROGRESS_EVERY_S:
            last_report = now
            progress({"stage": "collect", "episodes": len(sink.returns), "steps": sink.steps,
                      "target_episodes": n_episodes, "target_steps": n_steps,
                      "steps_per_s": stepped / max(1e-9, now - t0)})
    return stepped


def _budget_cuts(slot_ep: np.ndarray, t: np.ndarray, sink: _OrderedSink, n_steps: int) -> np.ndarray:
    """Envs whose episode can no longer be needed beyond its current length.

    Episode k keeps at most ``n_steps - S`` steps, S = the transitions of episodes before
    it. S is at least the known steps of earlier episodes (finished ones in full, running
    ones so far), so once ``t_k >= n_steps - that bound`` the episode is done for the dataset.
    """
    cut = np.zeros(len(slot_ep), bool)
    running = slot_ep >= 0
    for i in np.flatnonzero(running):
        k = slot_ep[i]
        before = sink.steps_before(int(k)) + int(t[running & (slot_ep < k)].sum())
        cut[i] = t[i] >= n_steps - before
    return cut


# ------------------------------------------------------------------------------------------
# the entry point


def _config(policy: Any, overrides: Mapping[str, Any]) -> tuple[Any, CollectConfig]:
    if isinstance(policy, (CollectConfig, Mapping)):
        cfg = from_mapping(CollectConfig, policy, **overrides)
        return cfg.policy, cfg
    if isinstance(policy, Policy):
        return policy, from_mapping(CollectConfig, {"policy": type(policy).__name__}, **overrides)
    if isinstance(policy, (str, os.PathLike)):
        return os.fspath(policy), from_mapping(CollectConfig, {"policy": os.fspath(policy)}, **overrides)
    raise UserError(f"policy must be a demokit Policy, a checkpoint path, 'random' or a learner's name "
                    f"({', '.join(learner_names())}), got {type(policy).__name__}")


def _check_budget(cfg: CollectConfig) -> None:
    if (cfg.n_episodes is None) == (cfg.n_steps is None):
        raise UserError("give exactly one budget: a number of episodes (--episodes / n_episodes) or of "
                        "transitions (--steps / n_steps)")
    for name, value in (("n_episodes", cfg.n_episodes), ("n_steps", cfg.n_steps)):
        if value is not None and value < 1:
            raise UserError(f"{name} must be >= 1, got {value}")
    if cfg.num_envs < 1:
        raise UserError(f"num_envs must be >= 1, got {cfg.num_envs}")
    if cfg.seed < 0:
        raise UserError(f"seed must be a non-negative integer, got {cfg.seed}")
    fmt.check_compression(cfg.compression)


def default_dataset_path(env_id: str, label: str) -> Path:
    """``datasets/<env>-<policy>.h5`` (env id lower-cased), the home of datasets written without a path."""
    safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in label)
    return Path(DATASETS_DIR) / f"{env_id.lower()}-{safe}.h5"


def _check_target(path: Path, mode: str, seeds: range | None) -> None:
    """Refuse a bad output before collecting (the writer checks again under its lock)."""
    if path.is_dir():
        raise DatasetError(f"dataset path {path} is a directory; give a file name such as {path / 'demos.h5'}")
    if mode == "create" and path.exists():
        raise DatasetError(f"dataset {path} already exists; use --append to add episodes to it or --force to "
                           f"replace it (mode='append' / 'overwrite')")
    if mode == "append" and path.exists() and seeds is not None:
        existing = load_dataset(path).episode_seeds
        repeated = np.unique(existing[(existing >= seeds.start) & (existing < seeds.stop)])
        if len(repeated):
            warnings.warn(f"dataset {path} already holds episodes reset with seeds {int(repeated[0])}.."
                          f"{int(repeated[-1])}: with the same policy they repeat; use --seed "
                          f"{int(existing.max()) + 1} for new episodes", stacklevel=3)


def collect_demo_data(policy: Policy | str | os.PathLike[str] | Mapping[str, Any] | CollectConfig,
                      env_id: str | None = None, path: str | os.PathLike[str] | None = None,
                      n_episodes: int | None = None, n_steps: int | None = None, seed: int | None = None, *,
                      num_envs: int | None = None, deterministic: bool | None = None,
                      mode: Literal["create", "append", "overwrite"] | None = None, compression: str | None = None,
                      provenance: Mapping[str, Any] | None = None, progress: ProgressFn | None = None,
                      **config: Any) -> CollectResult:
    """Collect demonstrations of ``policy`` on ``env_id`` into the dataset ``path``.

    ``policy`` is a :class:`~demokit.policies.Policy`, a checkpoint path, ``"random"``,
    ``"ppo"`` / ``"dqn"`` (the expert ``experts/<env>-<algo>.pt``, trained when missing), or
    a :class:`CollectConfig` / mapping holding every setting. Arguments left ``None`` keep
    the :class:`CollectConfig` defaults (seed 0, 32 envs, deterministic, mode "create");
    other config fields may be passed as keywords. Give exactly one of ``n_episodes`` and
    ``n_steps``. ``provenance`` adds keys to the provenance stored in the dataset.
    See the module docstring for reproducibility, budgets and crash safety.

    Raises :class:`~demokit.errors.UserError` (nothing written) for a bad env, policy,
    budget or output; :class:`CollectionInterrupted` after Ctrl-C / SIGTERM.
    """
    overrides = dict(env_id=env_id, path=None if path is None else os.fspath(path), n_episodes=n_episodes,
                     n_steps=n_steps, seed=seed, num_envs=num_envs, deterministic=deterministic, mode=mode,
                     compression=compression, **config)
    policy, cfg = _config(policy, overrides)
    _check_budget(cfg)
    seeds = range(cfg.seed, cfg.seed + (cfg.n_episodes or 1))
    if cfg.env_id is not None:
        make_env(cfg.env_id).close()  # an unknown env fails before anything else
        if policy in learner_names():  # refuse a bad output before training a missing expert
            _check_target(Path(cfg.path) if cfg.path else default_dataset_path(cfg.env_id, policy), cfg.mode, None)
    res = _resolve_policy(policy, cfg, progress)
    env_id = cfg.env_id or res.env_id
    if env_id is None:
        raise UserError(f"--policy {cfg.policy}: the checkpoint names no env; give --env")
    probe = make_env(env_id)
    obs_space, act_space = probe.observation_space, probe.action_space
    probe.close()
    check_same_spaces(what=f"the policy ({cfg.policy})", expected_obs=res.policy.observation_space,
                      expected_act=res.policy.action_space, actual_obs=obs_space, actual_act=act_space,
                      against=f"env {env_id}")
    if res.env_id is not None and res.env_id != env_id:
        warnings.warn(f"the policy was trained on {res.env_id} but collects on {env_id} (same spaces)", stacklevel=2)
    out = Path(cfg.path) if cfg.path is not None else default_dataset_path(env_id, res.label)
    _check_target(out, cfg.mode, seeds)

    cpu_net = isinstance(res.policy, NeuralPolicy) and res.policy.device.type == "cpu"
    with torch_threads(1 if cpu_net else None):  # small MLPs run fastest on one thread
        policy_return, return_source = _policy_return(res, env_id, cfg)
        num_envs = min(cfg.num_envs, cfg.n_episodes or cfg.num_envs, cfg.n_steps or cfg.num_envs)
        prov: dict[str, Any] = {
            "collector": "demokit.pipelines.collect", "policy": cfg.policy, "policy_kind": res.kind,
            "algo": res.algo, "checkpoint": res.checkpoint, "checkpoint_sha256": res.sha256,
            "policy_env_id": res.env_id, "policy_return": policy_return, "policy_return_source": return_source,
            "env_id": env_id, "seed": cfg.seed, "episode_seeds": "episode k of this collection was reset with seed + k",
            "num_envs": num_envs, "deterministic": cfg.deterministic, "n_episodes": cfg.n_episodes,
            "n_steps": cfg.n_steps, "command": list(sys.argv), "demokit_version": __version__,
        }
        prov.update(dict(provenance or {}))
        venv = make_vec_env(env_id, num_envs)
        actor = _make_actor(res, cfg, num_envs, act_space)
        stop = _StopFlag()
        t0 = time.perf_counter()
        try:
            with stop.installed():
                writer = DatasetWriter(out, observation_space=obs_space, action_space=act_space, env_id=env_id,
                                       env_spec=env_spec_json(env_id), provenance=prov, mode=cfg.mode,
                                       compression=cfg.compression, extras=actor.extras_spec,
                                       block_steps=cfg.write_block_steps)
                with writer:
                    sink = _OrderedSink(writer, cfg.n_steps)
                    if progress is not None:
                        progress({"stage": "collect", "event": "start", "path": str(out), "env_id": env_id,
                                  "policy": cfg.policy, "num_envs": num_envs, "target_episodes": cfg.n_episodes,
                                  "target_steps": cfg.n_steps})
                    try:
                        _run(venv, actor, sink, seed=cfg.seed, n_episodes=cfg.n_episodes, n_steps=cfg.n_steps,
                             stop=stop, progress=progress)
                    except KeyboardInterrupt:  # not in the main thread: no handler, a plain interrupt
                        stop.set = True
                    if stop.set:
                        sink.flush_completed()
                        if writer.num_episodes == 0:
                            writer.abort()
        finally:
            venv.close()
    wall = time.perf_counter() - t0
    returns = np.asarray(sink.returns, np.float64)
    totals = (writer.total_episodes, writer.total_steps) if writer.num_episodes else _existing_totals(out)
    result = CollectResult(
        path=str(out), env_id=env_id, episodes=len(returns), steps=sink.steps,
        mean_return=float(returns.mean()) if len(returns) else math.nan,
        std_return=float(returns.std()) if len(returns) else math.nan, wall_s=wall,
        steps_per_s=sink.steps / max(wall, 1e-9), cut_episodes=sink.cut, interrupted=stop.set,
        total_episodes=totals[0], total_steps=totals[1],
        policy=cfg.policy, policy_return=policy_return, provenance=prov)
    if stop.set:
        raise CollectionInterrupted(result)
    return result


def _existing_totals(path: Path) -> tuple[int, int]:
    """(episodes, steps) of the dataset at ``path`` (0, 0 when absent): one open, not one per figure."""
    if not path.exists():
        return 0, 0
    ds = load_dataset(path)
    return ds.num_episodes, len(ds)
