"""DAgger (Ross et al. 2011): behavioral cloning on the states the learner itself visits.

Round 0 rolls out the expert alone (beta = 1). Round i >= 1 rolls out the mixture
of the expert and the BC policy of round i - 1: **at every step**, independently,
the expert's action is executed with probability ``beta_i`` and the learner's
otherwise (the per-step mixture ``beta pi* + (1 - beta) pi`` of the paper). Every
visited state is labelled with the expert's (deterministic) action whatever was
executed. All rounds are aggregated into one demokit dataset (``dataset_out``,
written with ``DatasetWriter``: the label is the ``actions`` field; extras
``executed_action``, ``expert_executed`` and ``round`` record what happened), and
after each round a BC policy is trained **from scratch** on the whole aggregate
(``train_bc`` with a per-round seed), as in the paper: no state carries over from
round to round except the data, so each round's policy depends only on the data
and the seed. The result is the last round's policy (as in imitation's DAgger), or with
``keep_best`` the policy of the round whose evaluation was best: the paper's "return the
best policy on validation" (its evaluation episodes are then part of the algorithm's env
interaction, and the chosen policy needs a fresh evaluation to report).

Beta schedules (``beta_schedule``), for rounds i >= 1 (round 0 always has beta 1):

* ``linear[:R]``: ``max(0, 1 - i / R)``; R defaults to ``rounds - 1`` (the last round
  runs the learner alone);
* ``exponential[:p]``: ``p ** i`` (p defaults to 0.5);
* ``constant[:b]``: ``b`` (defaults to 0: after round 0 only the learner acts, the
  variant the paper recommends in practice).

Privileged expert (pixel student). When ``env_id`` is a rendered-frame env
(``pixels<size>-...-stack<k>/<base>``, :mod:`demokit.envs.pixels`) and the expert was made for the
base env's state observations, the expert labels (and, when executed, acts) from each env's
state (``state_obs``) while the learner acts on, and is trained on, the frames: DAgger from pixels
with a state expert as the oracle. The provenance and the result say ``privileged_expert``.

``demonstrations``: a dataset of expert demonstrations (it may be reward-free: teleoperation, robot
logs) that replaces round 0's expert rollouts: the aggregate starts with its episodes (labels = its
actions, ``expert_executed`` true, ``round`` 0; its own extras are not carried) and round 0's policy is
BC on it. When it is reward-free the whole aggregate is written without rewards (the rollouts' env
rewards are left out, with a warning saying so; the evaluations still measure returns live).
"""

from __future__ import annotations

import contextlib
import dataclasses
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from gymnasium import spaces

from demokit.config import from_mapping, option, to_dict
from demokit.data import format as fmt
from demokit.data.dataset import DemoDataset, load_dataset
from demokit.data.episode import Episode
from demokit.data.writer import DatasetWriter
from demokit.envs import env_spec_json, make_env, make_vec_env
from demokit.errors import ConfigError, UserError
from demokit.il.bc import BCConfig, resolve_bc_config, train_bc
from demokit.policies import NeuralPolicy, Policy, default_head, file_sha256, load_checkpoint, save_checkpoint
from demokit.paths import check_input_path, check_output_path, resolve_output
from demokit.rollout import EpisodeTable, VecStepper, run_episodes
from demokit.seeding import derive_seed
from demokit.spaces import check_same_spaces


@dataclass(frozen=True)
class DAggerConfig:
    """DAgger settings (CLI: ``demokit dagger``)."""

    expert: str | None = option(None, "expert policy checkpoint (required unless a Policy is passed in Python)")
    env_id: str | None = option(None, "env (default: the expert checkpoint's env)")
    rounds: int = option(5, "rounds, round 0 (the expert alone) included")
    episodes_per_round: int = option(5, "episodes rolled out per round")
    beta_schedule: str = option("linear", "probability of executing the expert's action in round i >= 1: "
                                          "linear[:R], exponential[:p] or constant[:b]")
    epochs: int | None = option(None, "BC epochs per round, from scratch on all data so far (default: BC's, "
                                      "enough for 10,000 gradient steps)")
    batch_size: int = option(256, "BC batch size")
    lr: float | None = option(None, "BC Adam learning rate (default: BC's for the env: its tuned BC row, else 1e-3)")
    hidden_sizes: tuple[int, ...] | None = option(None, "hidden layer widths of the learner (default: BC's for the "
                                                        "env: its tuned BC row, else 64,64)")
    loss: Literal["nll", "mse"] | None = option(None, "continuous actions: nll or mse (default: BC's for the env: "
                                                       "its tuned BC row, else nll)")
    ensemble: int | None = option(None, "members of the learner's ensemble policy (BC's ensemble: trained together, "
                                        "acting with their mean action); continuous actions only (default: BC's "
                                        "for the env: its tuned BC row, else 1: one network)")
    eval_episodes: int = option(20, "deterministic evaluation episodes of each round's policy (0: none)")
    keep_best: bool = option(False, "end with the policy of the round whose evaluation was best (highest mean return "
                                    "over eval_episodes; the earliest of equal ones) instead of the last round's: "
                                    "the paper's 'best policy on validation'; the evaluations then choose the "
                                    "policy, so report a fresh evaluation of it")
    seed: int = option(0, "seed of the rollouts, the mixtures, BC and the evaluations")
    device: str = option("auto", "auto, cpu or cuda (BC training)")
    out: str | None = option(None, "checkpoint of the final policy (Python: none when unset; the CLI writes "
                                   "policies/<env>-dagger.pt)")
    dataset_out: str | None = option(None, "aggregated dataset (Python: a temporary file when unset; the CLI "
                                           "writes datasets/<env>-dagger.h5)")
    encoder: str = option("auto", "the learner's observation encoder: mlp, nature_cnn, nature_cnn_diff or another "
                                  "registered one (auto: nature_cnn for uint8 image observations, else mlp)")
    demonstrations: str | None = option(None, "a dataset of expert demonstrations (may be reward-free) that "
                                              "replaces round 0's expert rollouts")
    overwrite: bool = option(False, "replace an existing dataset_out, and an out / dataset_out that is a file of "
                                    "another kind (the CLI's --force); an input is never replaced")


@dataclass(frozen=True)
class DAggerResult:
    """Per-round figures (``rounds``: one dict per round) and the resulting policy: the last round's, or with
    ``keep_best`` the best-evaluated round's (``chosen_round``)."""

    policy: NeuralPolicy
    checkpoint: str | None
    dataset: str | None
    rounds: tuple[dict[str, Any], ...]
    wall_s: float
    chosen_round: int  #: the round whose policy is ``policy`` (the last unless ``keep_best``)

    @property
    def returns(self) -> list[float | None]:
        """Evaluation mean return of each round's BC policy."""
        return [r["mean_return"] for r in self.rounds]

    @property
    def mean_return(self) -> float | None:
        """The resulting policy's evaluation mean return (its round's)."""
        return self.rounds[self.chosen_round]["mean_return"] if self.rounds else None

    @property
    def std_return(self) -> float | None:
        return self.rounds[self.chosen_round]["std_return"] if self.rounds else None

    def summary(self) -> dict[str, Any]:
        return {"checkpoint": self.checkpoint, "dataset": self.dataset, "mean_return": self.mean_return,
                "std_return": self.std_return, "returns": self.returns,
                "betas": [r["beta"] for r in self.rounds],
                "chosen_round": self.chosen_round, "wall_s": self.wall_s}


def best_round(returns: Sequence[float | None]) -> int:
    """The round with the highest evaluation mean return, the earliest of equal ones (``keep_best``)."""
    if not returns or any(r is None or not np.isfinite(r) for r in returns):
        raise ValueError(f"best_round needs every round's finite evaluation return, got {list(returns)}")
    return int(np.argmax(np.asarray(returns, dtype=np.float64)))  # argmax: the first of equal maxima


def default_dagger_paths(env_id: str) -> tuple[Path, Path]:
    """The CLI's defaults: ``policies/<env>-dagger.pt`` and ``datasets/<env>-dagger.h5`` (env id lower-cased)."""
    stem = env_id.lower().replace("/", "-")
    return Path("policies") / f"{stem}-dagger.pt", Path("datasets") / f"{stem}-dagger.h5"


def beta_schedule(spec: str, rounds: int) -> list[float]:
    """The beta of every round (round 0 is 1) for a schedule spec (see the module docstring)."""
    name, _, arg = str(spec).strip().partition(":")
    defaults = {"linear": float(max(rounds - 1, 1)), "exponential": 0.5, "constant": 0.0}
    if name not in defaults:
        raise ConfigError(f"unknown beta schedule {spec!r}; use linear[:R], exponential[:p] or constant[:b]")
    try:
        value = float(arg) if arg else defaults[name]
    except ValueError:
        raise ConfigError(f"beta schedule {spec!r}: {arg!r} is not a number") from None
    if name == "linear" and value <= 0:
        raise ConfigError(f"beta schedule {spec!r}: the ramp length must be > 0")
    if name != "linear" and not 0 <= value <= 1:
        raise ConfigError(f"beta schedule {spec!r}: {value} must be in [0, 1]")
    betas = [1.0]
    for i in range(1, rounds):
        if name == "linear":
            betas.append(max(0.0, 1.0 - i / value))
        elif name == "exponential":
            betas.append(value ** i)
        else:
            betas.append(value)
    return betas


class _MixtureActor:
    """Labels every state with the expert's deterministic action and executes, per step and row,
    the expert's action with probability ``beta`` (else the learner's); the dataset's actions
    are the labels, extras record what was executed."""

    def __init__(self, expert: Policy, learner: Policy | None, beta: float, rng: np.random.Generator,
                 action_space: spaces.Space, expert_obs: Callable[[Any, np.ndarray], Any] | None = None) -> None:
        self.expert, self.learner, self.beta, self.rng = expert, learner, beta, rng
        self.expert_obs = expert_obs  # privileged: what the expert sees instead of the learner's observations
        self.expert_only = learner is None or beta >= 1.0
        _, dtype, shape = fmt.leaf_specs(action_space)[0]  # Discrete or Box: one leaf
        self.extras_spec = {"label": (tuple(shape), np.dtype(dtype)), "expert_executed": ((), np.dtype(bool))}

    def start(self, slot: int, episode: int) -> None:
        pass

    def act(self, obs: Any, slots: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        seen = obs if self.expert_obs is None else self.expert_obs(obs, slots)
        labels = np.asarray(self.expert.act(seen, deterministic=True))
        if self.expert_only:
            executed, coin = labels, np.ones(len(slots), dtype=bool)
        else:
            assert self.learner is not None
            mine = np.asarray(self.learner.act(obs, deterministic=True))
            coin = self.rng.random(len(slots)) < self.beta
            executed = np.where(coin.reshape((-1,) + (1,) * (labels.ndim - 1)), labels, mine)
        return executed, {"label": labels, "expert_executed": coin}


def rollout_mixture(env_id: str, *, expert: Policy, learner: Policy | None, beta: float, episodes: int, seed: int,
                    rng: np.random.Generator, max_parallel: int = 32, privileged: bool = False) -> list[Episode]:
    """Roll out the per-step mixture of ``expert`` and ``learner``; label states with the expert's action.

    Episode i resets with seed ``seed + i``. ``actions`` hold the expert's labels;
    extras ``executed_action`` (what the env received) and ``expert_executed``.
    ``learner=None`` or ``beta >= 1`` runs the expert alone. ``privileged``: ``env_id`` is a
    rendered-frame env and the expert acts on each env's ``state_obs`` (the learner on the frames).
    """
    stepper = VecStepper(make_vec_env(env_id, min(max_parallel, episodes), infos=False))
    from demokit.envs.pixels import state_batch

    def states(obs: Any, slots: np.ndarray) -> np.ndarray:  # the running envs' state observations
        return state_batch(stepper.venv, slots)

    actor = _MixtureActor(expert, learner, beta, rng, stepper.action_space, states if privileged else None)
    table = EpisodeTable(episodes)
    try:
        run_episodes(stepper, actor, table, seed=seed, n_episodes=episodes)
    finally:
        stepper.close()
    return [Episode(observations=ep.observations, actions=ep.extras["label"], rewards=ep.rewards,
                    terminated=ep.terminated, truncated=ep.truncated, final_observation=ep.final_observation,
                    extras={"executed_action": ep.actions, "expert_executed": ep.extras["expert_executed"]},
                    seed=ep.seed) for ep in table.in_order()]


def _privileged(expert: Policy, env_id: str, obs_space: spaces.Space) -> tuple[str, spaces.Space] | None:
    """The state env id and its observation space when ``env_id`` is a rendered-frame env and ``expert``
    was made for its base env's state observations (it then acts on ``state_obs``); None otherwise."""
    from demokit.envs.pixels import parse_pixel_env_id

    parsed = parse_pixel_env_id(env_id)
    if parsed is None or expert.observation_space == obs_space:
        return None
    probe = make_env(parsed["base"])
    state_space = probe.observation_space
    probe.close()
    return (parsed["base"], state_space) if expert.observation_space == state_space else None


def _demonstrations(cfg: DAggerConfig, env_id: str) -> DemoDataset | None:
    """The demonstrations that replace round 0's rollouts (checked against the env), or None."""
    if cfg.demonstrations is None:
        return None
    demos = load_dataset(check_input_path(cfg.demonstrations, what="demonstrations"))
    demos.check_env(env_id)
    if len(demos) == 0:
        raise UserError(f"demonstrations {demos.path} hold no transitions; collect episodes into them first")
    return demos


def _add_demonstrations(w: DatasetWriter, demos: DemoDataset) -> None:
    """The demonstrations as round 0 of the aggregate: labels = their actions, executed by the expert."""
    n = len(demos)
    w.add_columns(observations=demos.observations, actions=demos.actions, rewards=demos.rewards,
                  terminated=demos.terminated, truncated=demos.truncated,
                  final_observations=demos.final_observations, episode_lengths=demos.episode_lengths,
                  seeds=demos.episode_seeds,
                  extras={"executed_action": demos.actions, "expert_executed": np.ones(n, dtype=bool),
                          "round": np.zeros(n, dtype=np.int64)})


def _with_round(ep: Episode, r: int, *, rewards: bool = True) -> Episode:
    return Episode(observations=ep.observations, actions=ep.actions, rewards=ep.rewards if rewards else None,
                   terminated=ep.terminated,
                   truncated=ep.truncated, final_observation=ep.final_observation,
                   extras={**ep.extras, "round": np.full(len(ep), r, dtype=np.int64)}, seed=ep.seed)


@contextlib.contextmanager
def _dataset_path(cfg: DAggerConfig) -> Iterator[Path]:
    if cfg.dataset_out is not None:
        yield Path(cfg.dataset_out)
        return
    with tempfile.TemporaryDirectory(prefix="demokit-dagger-") as tmp:
        yield Path(tmp) / "dagger.h5"


def _check(cfg: DAggerConfig) -> None:
    for name in ("rounds", "episodes_per_round", "epochs", "batch_size"):
        if getattr(cfg, name) is not None and getattr(cfg, name) < 1:
            raise ConfigError(f"DAggerConfig.{name} must be >= 1, got {getattr(cfg, name)}")
    if cfg.eval_episodes < 0:
        raise ConfigError(f"DAggerConfig.eval_episodes must be >= 0, got {cfg.eval_episodes}")
    if cfg.keep_best and cfg.eval_episodes == 0:
        raise ConfigError("DAggerConfig.keep_best keeps the best-evaluated round's policy, but eval_episodes is 0 "
                          "(no round is evaluated): give eval_episodes > 0, or leave keep_best off")
    if cfg.ensemble is not None and (isinstance(cfg.ensemble, bool) or not isinstance(cfg.ensemble, int)
                                     or cfg.ensemble < 1):
        raise ConfigError(f"DAggerConfig.ensemble must be an integer >= 1 (members; 1: one network), "
                          f"got {cfg.ensemble!r}")
    if cfg.dataset_out is not None:
        p = Path(cfg.dataset_out)
        if p.is_dir():
            raise UserError(f"--dataset-out {p}: is a directory; give a file path such as {p / 'dagger.h5'}")
        if p.exists() and not cfg.overwrite:
            raise UserError(f"--dataset-out {p} already exists; pass --force to replace it or choose another path")
    if cfg.out is not None and cfg.dataset_out is not None and resolve_output(cfg.out) == resolve_output(
            cfg.dataset_out):
        raise UserError(f"out and dataset_out are the same file ({cfg.out}); give them different paths")
    # the CLI's rules: never an input, another kind of file only with overwrite (--force)
    check_output_path(cfg.out, kind="checkpoint", inputs=[cfg.expert, cfg.dataset_out, cfg.demonstrations],
                      force=cfg.overwrite)
    check_output_path(cfg.dataset_out, kind="dataset", inputs=[cfg.expert, cfg.out, cfg.demonstrations],
                      force=cfg.overwrite, what="--dataset-out")


def train_dagger(config: DAggerConfig | Mapping[str, Any] | None = None, *, expert_policy: Policy | None = None,
                 callback: Callable[[dict[str, Any]], None] | None = None, **overrides: Any) -> DAggerResult:
    """Run DAgger (see the module docstring); ``callback(record)`` after every round.

    The expert is the checkpoint ``config["expert"]`` or, in Python, any
    :class:`~demokit.policies.Policy` passed as ``expert_policy`` (then ``env_id`` is required).
    """
    t0 = time.perf_counter()
    cfg = from_mapping(DAggerConfig, config, **overrides)
    _check(cfg)
    expert_info: dict[str, Any] = {}
    expert = expert_policy
    if expert is None:
        if not cfg.expert:
            raise ConfigError("DAgger needs an expert: pass --expert CHECKPOINT (expert=... in Python)")
        ckpt = load_checkpoint(cfg.expert)
        expert = ckpt.policy
        expert_info = {"expert": str(cfg.expert), "expert_sha256": ckpt.sha256, "expert_algo": ckpt.algo}
        env_id = cfg.env_id or ckpt.env_id
    else:
        env_id = cfg.env_id
    if not env_id:
        raise ConfigError("DAgger needs an env: pass --env ENV (env_id=...)")
    probe = make_env(env_id)
    obs_space, act_space = probe.observation_space, probe.action_space
    probe.close()
    state = _privileged(expert, env_id, obs_space)  # (state env id, its observation space) or None
    privileged = state[0] if state else None
    check_same_spaces(what="the expert", expected_obs=expert.observation_space, expected_act=expert.action_space,
                      actual_obs=state[1] if state else obs_space, actual_act=act_space,
                      against=f"env {privileged or env_id}")
    default_head(act_space)
    betas = beta_schedule(cfg.beta_schedule, cfg.rounds)
    rng = np.random.default_rng(derive_seed(cfg.seed, "dagger-mixture"))
    bc_base, _ = resolve_bc_config(BCConfig(env_id=env_id, epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr,
                                            hidden_sizes=cfg.hidden_sizes, loss=cfg.loss, encoder=cfg.encoder,
                                            ensemble=cfg.ensemble,
                                            val_fraction=0.0, eval_every=0, eval_episodes=cfg.eval_episodes,
                                            device=cfg.device), env_id, row_name="dagger")
    if bc_base.ensemble > 1 and not isinstance(act_space, spaces.Box):
        raise ConfigError(f"DAggerConfig.ensemble averages continuous actions; {env_id} has {act_space} actions: "
                          f"leave ensemble at 1")
    cfg = dataclasses.replace(cfg, hidden_sizes=bc_base.hidden_sizes, loss=bc_base.loss, lr=bc_base.lr,
                              ensemble=bc_base.ensemble)  # as trained
    provenance = {"algo": "dagger", "env_id": env_id, "seed": cfg.seed, "beta_schedule": cfg.beta_schedule,
                  **expert_info}
    if privileged:
        provenance["privileged_expert"] = {"state_env_id": privileged, "note": "the expert labelled (and acted) "
                                           "from the state observation; the learner sees the frames"}
    demos = _demonstrations(cfg, env_id)
    if demos is not None:
        provenance["demonstrations"] = str(demos.path)
    reward_free = demos is not None and not demos.has_rewards
    if reward_free:
        warnings.warn(f"demonstrations {demos.path} are reward-free: the aggregated dataset is written without "  # type: ignore[union-attr]
                      f"rewards (the rollouts' env rewards are left out); evaluation returns are measured live",
                      stacklevel=2)
    learner: NeuralPolicy | None = None
    kept: tuple[int, NeuralPolicy] | None = None  # keep_best: (round, policy) of the best evaluation so far
    records: list[dict[str, Any]] = []
    with _dataset_path(cfg) as data_path:
        for r, beta in enumerate(betas):
            eps: list[Episode] = []
            if r > 0 or demos is None:
                eps = rollout_mixture(env_id, expert=expert, learner=learner, beta=beta,
                                      episodes=cfg.episodes_per_round,
                                      seed=derive_seed(cfg.seed, "dagger-rollout", r) % (2**31), rng=rng,
                                      privileged=bool(privileged))
            mode = "append" if r > 0 else ("overwrite" if cfg.overwrite else "create")
            with DatasetWriter(data_path, observation_space=obs_space, action_space=act_space, env_id=env_id,
                               env_spec=env_spec_json(env_id), provenance={**provenance, "round": r, "beta": beta},
                               mode=mode) as w:
                if eps:
                    w.add_episodes(_with_round(ep, r, rewards=not reward_free) for ep in eps)
                else:
                    _add_demonstrations(w, demos)  # type: ignore[arg-type]
                total_episodes, total_steps = w.total_episodes, w.total_steps
            res = train_bc(data_path, bc_base, seed=derive_seed(cfg.seed, "dagger-bc", r) % (2**31))
            learner = res.policy
            if eps:
                rollout_return = float(np.mean([ep.episode_return for ep in eps]))
                expert_fraction = float(np.mean(np.concatenate([ep.extras["expert_executed"] for ep in eps])))
            else:  # the demonstrations' round: their returns when they have rewards
                rollout_return = float(np.mean(demos.episode_returns)) if demos.has_rewards else float("nan")  # type: ignore[union-attr]
                expert_fraction = 1.0
            rec = {"round": r, "beta": beta, "rollout_return": rollout_return, "expert_fraction": expert_fraction,
                   "dataset_episodes": total_episodes, "dataset_steps": total_steps,
                   "mean_return": res.mean_return, "std_return": res.std_return, "bc_wall_s": res.wall_s}
            records.append(rec)
            if cfg.keep_best and best_round([x["mean_return"] for x in records]) == r:
                kept = (r, learner)
            if callback is not None:
                callback(rec)
        assert learner is not None
        chosen, policy = kept if kept is not None else (len(records) - 1, learner)
        dataset_file = str(data_path) if cfg.dataset_out is not None else None
        checkpoint = None
        wall_s = time.perf_counter() - t0
        if cfg.out is not None:
            training = {"config": to_dict(cfg), "env_id": env_id, "rounds": records, **expert_info,
                        "dataset": dataset_file, "dataset_sha256": file_sha256(data_path),
                        "mean_return": records[chosen]["mean_return"], "std_return": records[chosen]["std_return"],
                        "chosen_round": chosen, "wall_s": wall_s}
            save_checkpoint(cfg.out, policy, algo="dagger", env_id=env_id, env_spec=env_spec_json(env_id),
                            training=training)
            checkpoint = str(cfg.out)
    return DAggerResult(policy=policy, checkpoint=checkpoint, dataset=dataset_file, rounds=tuple(records),
                        wall_s=wall_s, chosen_round=chosen)
