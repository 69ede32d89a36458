"""Collecting demonstrations: run a policy in vectorised envs, write whole episodes to one ``.h5``.

``collect_demo_data(policy, env_id, path, n_episodes=10)`` returns a :class:`CollectResult`.
``policy`` is a :class:`~demokit.policies.Policy`, a checkpoint path, ``"random"`` or an
expert name: a registered learner (``"ppo"``, ``"dqn"``, ``"sac"``, ...: the checkpoint
``experts/<env>-<algo>.pt``, trained with
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

import math
import os
import sys
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from gymnasium import spaces

from demokit._version import __version__
from demokit.config import from_mapping, option, required
from demokit.data import format as fmt
from demokit.data.dataset import load_dataset
from demokit.data.writer import DEFAULT_BLOCK_STEPS, DatasetWriter, check_appendable
from demokit.envs import env_spec_json, make_env, make_vec_env
from demokit.errors import DatasetError, UserError
from demokit.evaluation import evaluate_policy
from demokit.policies import NeuralPolicy, Policy, RandomPolicy, load_checkpoint
from demokit.policies.actors import LabelNoiseActor, make_actor
from demokit.results import as_dict
from demokit.rollout import OrderedSink, StopFlag, VecStepper, run_episodes
from demokit.runtime import ProgressFn, torch_threads
from demokit.seeding import derive_seed
from demokit.rl.registry import learner_names
from demokit.spaces import check_same_spaces, describe

#: default folder of datasets written without an explicit path
DATASETS_DIR = "datasets"
#: ``progress(info)`` receives dicts with a ``stage`` key: ``"train"`` (a missing expert is
#: being trained: ``event`` "start" with ``checkpoint``/``algo``/``env_id``, then the trainer's
#: own figures) or ``"collect"`` (first ``event`` "start" with ``path``, ``env_id``, ``policy``,
#: ``num_envs``, ``target_episodes``, ``target_steps``; then ``episodes``, ``steps`` (written
#: so far), ``target_episodes``, ``target_steps``, ``steps_per_s``).


@dataclass(frozen=True)
class CollectConfig:
    """One demonstration collection (shared by :func:`collect_demo_data` and ``demokit collect``)."""

    policy: str = required("random, a registered learner's name such as ppo, dqn or sac (the expert "
                           "experts/<env>-<algo>.pt, trained first when missing) or the path of a demokit policy "
                           "checkpoint (an expert, BC or GAIL policy)")
    env_id: str | None = option(None, "gymnasium env id (default: the checkpoint's env)")
    path: str | None = option(None, "output .h5 dataset (default: datasets/<env>-<policy>.h5)")
    n_episodes: int | None = option(None, "number of episodes to collect (or give a number of steps)")
    n_steps: int | None = option(None, "number of transitions to collect (or give a number of episodes); the "
                                       "episode crossing the budget is cut and stored as truncated")
    seed: int = option(0, "episode k of the collection is reset with seed + k")
    first_episode: int = option(0, "collect episodes first_episode, first_episode + 1, ... of the seed's sequence "
                                   "(a shard of a longer collection: shards written on several machines and "
                                   "combined in order equal the one-process dataset)")
    num_envs: int = option(32, "environments stepped together (batched policy calls); the dataset does not "
                               "depend on it")
    deterministic: bool = option(True, "act greedily (false: sample actions from the policy)")
    mode: Literal["create", "append", "overwrite"] = option(
        "create", "create (refuse an existing file), append (add episodes to it) or overwrite (replace it)")
    compression: str | None = option(None, "HDF5 compression: gzip, lzf, blosc (the blosc extra) or none "
                                           "(default: none; lzf with render_obs)")
    experts_dir: str = option("experts", "folder of the named experts <env>-<algo>.pt")
    train_missing_expert: bool = option(True, "train a named expert (ppo, dqn, sac) when its checkpoint is missing")
    eval_episodes: int = option(5, "episodes of the quick evaluation that records the policy's return in the "
                                   "provenance when its checkpoint has no training figures (0: skip)")
    store_log_probs: bool = option(True, "store the log-probability of each sampled action (extras/log_prob) "
                                         "when a neural policy acts stochastically")
    write_block_steps: int = option(DEFAULT_BLOCK_STEPS, "transitions the writer buffers per HDF5 block")
    render_obs: bool = option(False, "record rendered frames as the observations while the policy acts on the "
                                     "env's state observation (privileged expert, pixel student); the dataset's env "
                                     "is pixels<size>-<gray|rgb>-stack<k>/<env> (demokit.envs.pixels)")
    render_size: int = option(84, "with render_obs: frames are resized to render_size x render_size")
    grayscale: bool = option(False, "with render_obs: store grayscale frames (default: RGB)")
    frame_stack: int = option(1, "with render_obs: observations are the last frame_stack frames")
    render_crop: tuple[int, ...] | None = option(None, "with render_obs: TOP,BOTTOM,LEFT,RIGHT, keep rows [TOP, "
                                                       "BOTTOM) and columns [LEFT, RIGHT) of the rendered frame "
                                                       "before resizing, so that the region where the task happens "
                                                       "spans more pixels (CartPole-v1 renders 400x600; its cart and "
                                                       "pole lie in rows 150-330); part of the dataset's env id")
    label_noise: float = option(0.0, "DART-style data: on each step, with this probability, the env executes a "
                                     "uniformly random action while the policy's own action is recorded as the "
                                     "label (the executed one as extras/executed_action); seeded per episode. "
                                     "The data then shows states off the policy's path with its corrections")
    record_state: bool = option(False, "with render_obs: also store the state observation the policy acted on, "
                                       "per step, as extras/state_observation (privileged information for the "
                                       "student's training, e.g. bc-train --aux-state; the student still acts "
                                       "from frames). Needs a Box state observation")


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
        """The JSON figures (``demokit collect --json``): every field but the provenance."""
        return as_dict(self, exclude=("provenance",))


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
    if cfg.first_episode < 0:
        raise UserError(f"first_episode must be >= 0, got {cfg.first_episode}")
    fmt.check_compression(cfg.compression)


def default_dataset_path(env_id: str, label: str) -> Path:
    """``datasets/<env>-<policy>.h5`` (env id lower-cased), the home of datasets written without a path."""
    safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in label)
    return Path(DATASETS_DIR) / f"{env_id.lower()}-{safe}.h5"


def _check_target(path: Path, mode: str, seeds: range | None, *, against: Mapping[str, Any] | None = None) -> None:
    """Refuse a bad output before collecting (the writer checks again under its lock); ``against``: the
    spaces and env id of the episodes to append (``check_appendable``'s keywords), checked first."""
    if path.is_dir():
        raise DatasetError(f"dataset path {path} is a directory; give a file name such as {path / 'demos.h5'}")
    if mode == "create" and path.exists():
        raise DatasetError(f"dataset {path} already exists; use --append to add episodes to it or --force to "
                           f"replace it (mode='append' / 'overwrite')")
    if mode == "append" and path.is_file() and (seeds is not None or against is not None):
        ds = load_dataset(path)
        if against is not None:  # another env's dataset: refused before any warning about it
            check_appendable(ds, path, extras=None, **against)
        if seeds is None:
            return
        existing = ds.episode_seeds
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
                      append_target: str | os.PathLike[str] | None = None, **config: Any) -> CollectResult:
    """Collect demonstrations of ``policy`` on ``env_id`` into the dataset ``path``.

    ``policy`` is a :class:`~demokit.policies.Policy`, a checkpoint path, ``"random"``,
    a registered learner's name such as ``"ppo"`` (the expert ``experts/<env>-<algo>.pt``, trained
    when missing), or
    a :class:`CollectConfig` / mapping holding every setting. Arguments left ``None`` keep
    the :class:`CollectConfig` defaults (seed 0, 32 envs, deterministic, mode "create");
    other config fields may be passed as keywords. Give exactly one of ``n_episodes`` and
    ``n_steps``. ``provenance`` adds keys to the provenance stored in the dataset. ``append_target``:
    a dataset these episodes will be appended to later (a shard of a sharded ``--append``): refused
    before collecting when its env, spaces or extras differ.
    See the module docstring for reproducibility, budgets and crash safety.

    Raises :class:`~demokit.errors.UserError` (nothing written) for a bad env, policy,
    budget or output; :class:`CollectionInterrupted` after Ctrl-C / SIGTERM.
    """
    overrides = dict(env_id=env_id, path=None if path is None else os.fspath(path), n_episodes=n_episodes,
                     n_steps=n_steps, seed=seed, num_envs=num_envs, deterministic=deterministic, mode=mode,
                     compression=compression, **config)
    policy, cfg = _config(policy, overrides)
    _check_budget(cfg)
    if not cfg.render_obs and (cfg.grayscale or cfg.frame_stack != 1 or cfg.render_size != 84
                               or cfg.render_crop is not None):
        raise UserError("--grayscale, --frame-stack, --render-size and --render-crop apply to rendered frames: add "
                        "--render-obs")
    if cfg.record_state and not cfg.render_obs:
        raise UserError("--record-state stores the state observation next to rendered frames: add --render-obs")
    if not 0.0 <= cfg.label_noise < 1.0:
        raise UserError(f"label_noise must be a probability in [0, 1), got {cfg.label_noise}")
    seeds = range(cfg.seed + cfg.first_episode, cfg.seed + cfg.first_episode + (cfg.n_episodes or 1))
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
    state_env_id = env_id
    if cfg.render_obs:  # the policy acts on env_id's states; the dataset records env_id's frames
        from demokit.envs.pixels import pixel_env_id

        env_id = pixel_env_id(state_env_id, size=cfg.render_size, grayscale=cfg.grayscale,
                              frame_stack=cfg.frame_stack, crop=cfg.render_crop)
        pixel_probe = make_env(env_id)
        pixel_probe.reset(seed=cfg.seed)  # an env that cannot render fails here, before anything is written
        obs_space = pixel_probe.observation_space
        pixel_probe.close()
    state_space = None
    if cfg.render_obs:
        state_probe = make_env(state_env_id)
        state_space = state_probe.observation_space
        state_probe.close()
    if cfg.record_state and not isinstance(state_space, spaces.Box):
        raise UserError(f"--record-state stores a Box state observation; {state_env_id}'s is {describe(state_space)}")
    check_same_spaces(what=f"the policy ({cfg.policy})", expected_obs=res.policy.observation_space,
                      expected_act=res.policy.action_space,
                      actual_obs=state_space if cfg.render_obs else obs_space,
                      actual_act=act_space, against=f"env {state_env_id}")
    if res.env_id is not None and res.env_id != state_env_id:
        warnings.warn(f"the policy was trained on {res.env_id} but collects on {env_id} (same spaces)", stacklevel=2)
    out = Path(cfg.path) if cfg.path is not None else default_dataset_path(env_id, res.label)
    _check_target(out, cfg.mode, seeds, against={"observation_space": obs_space, "action_space": act_space,
                                                 "env_id": env_id})

    cpu_net = isinstance(res.policy, NeuralPolicy) and res.policy.device.type == "cpu"
    compression = cfg.compression if cfg.compression is not None or not cfg.render_obs else "lzf"
    with torch_threads(1 if cpu_net else None):  # small MLPs run fastest on one thread
        policy_return, return_source = _policy_return(res, state_env_id, cfg)
        num_envs = min(cfg.num_envs, cfg.n_episodes or cfg.num_envs, cfg.n_steps or cfg.num_envs)
        prov: dict[str, Any] = {
            "collector": "demokit.pipelines.collect", "policy": cfg.policy, "policy_kind": res.kind,
            "algo": res.algo, "checkpoint": res.checkpoint, "checkpoint_sha256": res.sha256,
            "policy_env_id": res.env_id, "policy_return": policy_return, "policy_return_source": return_source,
            "env_id": env_id, "seed": cfg.seed, "episode_seeds": "episode k of this collection was reset with seed + k",
            "num_envs": num_envs, "deterministic": cfg.deterministic, "n_episodes": cfg.n_episodes,
            "n_steps": cfg.n_steps, "command": list(sys.argv), "demokit_version": __version__,
        }
        if cfg.first_episode:
            prov["first_episode"] = cfg.first_episode
        if cfg.render_obs:
            prov["render_obs"] = {"state_env_id": state_env_id, "size": cfg.render_size, "grayscale": cfg.grayscale,
                                  "frame_stack": cfg.frame_stack,
                                  "crop": None if cfg.render_crop is None else list(cfg.render_crop),
                                  "note": "the policy acted on the state observation; the frames were recorded"}
            if cfg.record_state:
                prov["render_obs"]["state_observation"] = ("extras/state_observation: the state observation the "
                                                           "policy acted on at each step")
        if cfg.label_noise:
            prov["label_noise"] = {"probability": cfg.label_noise,
                                   "note": "actions are the policy's labels; with this probability per step the env "
                                           "executed a uniformly random action instead (extras/executed_action)"}
        prov.update(dict(provenance or {}))
        stepper = VecStepper(make_vec_env(env_id, num_envs, infos=False))
        actor = make_actor(res.policy, random=res.kind == "random", deterministic=cfg.deterministic, seed=cfg.seed,
                           num_envs=num_envs, store_log_probs=cfg.store_log_probs)
        if cfg.label_noise:
            actor = LabelNoiseActor(actor, act_space, cfg.label_noise, seed=cfg.seed, num_envs=num_envs)
        if cfg.render_obs:
            from demokit.envs.pixels import StateObsActor

            actor = StateObsActor(actor, stepper.venv,
                                  record=state_space if cfg.record_state else None)
        if append_target is not None and Path(append_target).exists():
            check_appendable(load_dataset(append_target), append_target, observation_space=obs_space,
                             action_space=act_space, env_id=env_id, extras=actor.extras_spec)
        stop = StopFlag()
        t0 = time.perf_counter()
        try:
            with stop.installed():
                writer = DatasetWriter(out, observation_space=obs_space, action_space=act_space, env_id=env_id,
                                       env_spec=env_spec_json(env_id), provenance=prov, mode=cfg.mode,
                                       compression=compression, extras=actor.extras_spec,
                                       block_steps=cfg.write_block_steps)
                with writer:
                    sink = OrderedSink(writer.add_episode, cfg.n_steps)
                    if progress is not None:
                        progress({"stage": "collect", "event": "start", "path": str(out), "env_id": env_id,
                                  "policy": cfg.policy, "num_envs": num_envs, "target_episodes": cfg.n_episodes,
                                  "target_steps": cfg.n_steps})
                    try:
                        run_episodes(stepper, actor, sink, seed=cfg.seed, n_episodes=cfg.n_episodes,
                                     n_steps=cfg.n_steps, stop=stop, progress=_collect_progress(progress, cfg),
                                     first_episode=cfg.first_episode)
                    except KeyboardInterrupt:  # not in the main thread: no handler, a plain interrupt
                        stop.set = True
                    if stop.set:
                        sink.flush_completed()
                        if writer.num_episodes == 0:
                            writer.abort()
        finally:
            stepper.close()
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


def _collect_progress(progress: ProgressFn | None, cfg: CollectConfig) -> ProgressFn | None:
    """The engine's figures as collection progress (``stage`` "collect" and the targets)."""
    if progress is None:
        return None
    targets = {"stage": "collect", "target_episodes": cfg.n_episodes, "target_steps": cfg.n_steps}
    return lambda info: progress({**targets, **info})


def _existing_totals(path: Path) -> tuple[int, int]:
    """(episodes, steps) of the dataset at ``path`` (0, 0 when absent): one open, not one per figure."""
    if not path.exists():
        return 0, 0
    ds = load_dataset(path)
    return ds.num_episodes, len(ds)
