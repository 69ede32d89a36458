"""The whole path in one call (the README's main job).

expert (trained, or reused from ``experts/<env>-<algo>.pt``) -> N expert episodes
(an HDF5 dataset) -> behavioral cloning and GAIL on that dataset -> one table of the
expert's, BC's, GAIL's and a random policy's returns, all evaluated the same way
(deterministic, ``eval_episodes`` episodes with the same seeds), with their times.

Where the demonstrations come from (``expert_source``): ``expert`` collects them from the
expert checkpoint (reused when present, trained otherwise); ``reference`` takes the first N
episodes of the env's committed reference dataset (``datasets/<env id, lower case>-expert.h5``,
e.g. the 25 Hopper-v5 SAC episodes), without an expert checkpoint: the expert row then shows
the dataset's returns; ``auto`` (default) reuses the checkpoint when present, else uses the
reference dataset when training the expert could take long (a tuned budget above
:data:`LONG_EXPERT_BUDGET` env steps, e.g. Hopper-v5's 1M SAC steps, hours on a CPU) and no
expert budget was given, else trains the expert.

Outputs go to ``<workdir>/<env>/`` (dataset, BC and GAIL checkpoints, summary.json, a run
folder per training stage under ``runs/`` and the plots ``dataset.png``, ``bc-train.png``,
``gail.png`` (and ``train-expert.png``) beside summary.json when matplotlib is installed),
which belongs to the pipeline and is replaced on every run; the expert is kept in
``experts/`` and reused.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from demokit.config import from_mapping, option, required, to_dict
from demokit.envs import make_env, reward_threshold
from demokit.errors import CheckpointError, ConfigError, UserError
from demokit.evaluation import evaluate_policy
from demokit.policies import Checkpoint, RandomPolicy, load_checkpoint
from demokit.paths import atomic_write_bytes
from demokit.rl.registry import get_learner
from demokit.spaces import same_space

#: ``on_stage(name, message)`` announces a stage; ``progress(stage, completed, total, info)``
#: reports progress inside it.
StageFn = Callable[[str, str], None]
ProgressFn = Callable[[str, float, "float | None", str], None]

#: Evaluation episodes of every row use seeds EVAL_SEED, EVAL_SEED + 1, ... (unseen in training).
EVAL_SEED = 100_000
#: the committed reference datasets of a checkout: <REFERENCE_DIR>/<env id, lower case>-expert.h5
REFERENCE_DIR = Path(__file__).resolve().parents[2] / "datasets"
#: ``expert_source`` auto: an expert whose tuned budget exceeds this many env steps is not trained when the env
#: has a reference dataset (CartPole-v1's 100k PPO steps train in seconds; Hopper-v5's 1M SAC steps take hours)
LONG_EXPERT_BUDGET = 300_000


@dataclass(frozen=True)
class PipelineConfig:
    """Settings of ``demokit pipeline`` / :func:`run_pipeline`."""

    env_id: str = required("gymnasium env id, e.g. CartPole-v1")
    episodes: int = option(10, "expert episodes to collect and learn from")
    seed: int = option(0, "seed of every stage")
    expert_algo: str | None = option(None, "learner of the expert (a registered name: ppo, dqn, sac, ...; default: "
                                           "ppo, or the tuned table's learner for envs without a ppo row, e.g. "
                                           "sac on Hopper-v5)")
    gail_algo: str | None = option(None, "learner inside GAIL (default: GAIL's for the env: ppo, dqn on "
                                         "MountainCar-v0)")
    experts_dir: str = option("experts", "where experts live (<env>-<algo>.pt is reused when present)")
    workdir: str = option("runs", "the pipeline writes <workdir>/<env>/ (replaced on every run)")
    eval_episodes: int = option(20, "deterministic evaluation episodes per row of the table")
    gail: bool = option(True, "run GAIL (false: expert, BC and random only)")
    device: str = option("auto", "auto, cpu or cuda (BC and GAIL)")
    expert_timesteps: int | None = option(None, "env-step budget of a newly trained expert (default: the tuned "
                                                "table's; a reused expert is not retrained)")
    bc_epochs: int | None = option(None, "BC's maximum passes over the data (default: BC's)")
    gail_timesteps: int | None = option(None, "GAIL's env-step budget (default: 3x the tuned RL budget)")
    expert_source: Literal["auto", "expert", "reference"] = option(
        "auto", "where the demonstrations come from: expert (collect them from experts/<env>-<algo>.pt, trained "
                "first when missing), reference (the first episodes of the committed reference dataset "
                "<reference_dir>/<env>-expert.h5, no expert needed), auto (the checkpoint when present, else the "
                f"reference dataset when the expert's tuned budget exceeds {LONG_EXPERT_BUDGET:,} env steps and no "
                "--expert-timesteps is given, else train the expert)")
    reference_dir: str = option(str(REFERENCE_DIR), "where the reference datasets <env id, lower case>-expert.h5 are")

    def __post_init__(self) -> None:
        if self.expert_algo is not None:
            get_learner(self.expert_algo)  # unknown names: one error listing the registered learners
        for name in ("expert_timesteps", "bc_epochs", "gail_timesteps"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"PipelineConfig.{name} must be >= 1, got {value}")
        if self.gail_algo is not None:
            get_learner(self.gail_algo)
        if self.expert_source not in ("auto", "expert", "reference"):
            raise ConfigError(f"PipelineConfig.expert_source must be auto, expert or reference, got "
                              f"{self.expert_source!r}")


@dataclass(frozen=True)
class Row:
    """One line of the final table."""

    policy: str
    mean_return: float
    std_return: float
    train_s: float | None
    detail: str = ""
    checkpoint: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"policy": self.policy, "mean_return": self.mean_return, "std_return": self.std_return,
                "train_s": self.train_s, "detail": self.detail, "checkpoint": self.checkpoint}


@dataclass(frozen=True)
class PipelineResult:
    env_id: str
    dataset: str
    rows: tuple[Row, ...]
    wall_s: float
    summary_path: str
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"env_id": self.env_id, "dataset": self.dataset, "wall_s": self.wall_s,
                               "summary": self.summary_path}
        for row in self.rows:
            key = row.policy.split(" ")[0].lower()
            out[f"{key}_return"] = row.mean_return
            out[f"{key}_std"] = row.std_return
            out[f"{key}_train_s"] = row.train_s
        out["rows"] = [r.as_dict() for r in self.rows]
        return out


def _set(config: dict[str, Any]) -> dict[str, Any]:
    """``config`` without its unset (None) entries (a stage's own defaults apply)."""
    return {k: v for k, v in config.items() if v is not None}


def expert_learner(cfg: PipelineConfig) -> str:
    """The expert's learner: the configured one, else ppo, else the first learner with a tuned row for the env."""
    from demokit.rl.hyperparams import learner_rows

    if cfg.expert_algo is not None:
        return cfg.expert_algo
    rows = learner_rows(cfg.env_id)
    return "ppo" if "ppo" in rows or not rows else next(iter(rows))


def reference_dataset(cfg: PipelineConfig) -> Path:
    """The env's reference dataset path (which may not exist): <reference_dir>/<env id, lower case>-expert.h5."""
    return Path(cfg.reference_dir) / f"{cfg.env_id.replace('/', '_').lower()}-expert.h5"


def use_reference(cfg: PipelineConfig, expert_algo: str, expert_path: Path) -> bool:
    """Whether the demonstrations come from the reference dataset (``expert_source``; see the module docstring).
    ``reference`` without a reference dataset is a UserError."""
    ref = reference_dataset(cfg)
    if cfg.expert_source == "reference":
        if not ref.is_file():
            raise UserError(f"--expert-source reference: {cfg.env_id} has no reference dataset ({ref} does not "
                            f"exist); use --expert-source expert to train or reuse an expert")
        return True
    if cfg.expert_source == "expert" or expert_path.exists() or cfg.expert_timesteps is not None:
        return False
    from demokit.rl.hyperparams import tuned_config

    return ref.is_file() and int(tuned_config(expert_algo, cfg.env_id).total_timesteps) > LONG_EXPERT_BUDGET


def _reusable_expert(path: Path, env_id: str) -> Checkpoint | None:
    """The checkpoint at ``path`` when it loads and matches ``env_id``'s spaces, else None."""
    if not path.exists():
        return None
    try:
        ck = load_checkpoint(path)
    except CheckpointError:
        return None
    env = make_env(env_id)
    ok = same_space(ck.policy.observation_space, env.observation_space) and same_space(
        ck.policy.action_space, env.action_space)
    env.close()
    return ck if ok else None


def run_pipeline(config: PipelineConfig | dict[str, Any], *, on_stage: StageFn | None = None,
                 progress: ProgressFn | None = None) -> PipelineResult:
    """Expert -> demonstrations -> BC and GAIL -> evaluation table (see the module docstring)."""
    from demokit.progress import bc_progress_text, training_progress_text
    from demokit.il.bc import train_bc
    from demokit.pipelines.collect import collect_demo_data
    from demokit.pipelines.reward_model import default_learner, run_irl
    from demokit.rl.expert import train_expert
    from demokit.runs import RunFolder, epoch_row, final_row

    cfg = config if isinstance(config, PipelineConfig) else from_mapping(PipelineConfig, config)
    if cfg.episodes < 1:
        raise UserError(f"--episodes must be >= 1, got {cfg.episodes}")
    if cfg.eval_episodes < 1:
        raise UserError(f"--eval-episodes must be >= 1, got {cfg.eval_episodes}")
    env = make_env(cfg.env_id)  # unknown env ids fail here, before anything is written
    obs_space, act_space = env.observation_space, env.action_space
    env.close()
    stage = on_stage or (lambda name, msg: None)
    prog = progress or (lambda *a: None)
    start = time.perf_counter()
    run_dir = Path(cfg.workdir) / cfg.env_id.replace("/", "_")
    run_dir.mkdir(parents=True, exist_ok=True)
    runs: dict[str, Path] = {}
    expert_algo = expert_learner(cfg)

    def stage_run(command: str, config: dict[str, Any], info: dict[str, Any]) -> RunFolder:
        """The run folder of one stage: <workdir>/<env>/runs/<command>/<env>/seed<seed> (replaced on a rerun)."""
        run = RunFolder(command, cfg.env_id, config=config, root=run_dir / "runs", name=f"seed{cfg.seed}",
                        overwrite=True, info={"reward_threshold": reward_threshold(cfg.env_id), **info})
        runs[command] = run.path
        return run

    # 1. the expert and 2. the demonstrations
    expert_path = Path(cfg.experts_dir) / f"{cfg.env_id.replace('/', '_')}-{expert_algo}.pt"
    dataset = run_dir / f"expert-{cfg.episodes}.h5"
    expert: Checkpoint | None = None
    if use_reference(cfg, expert_algo, expert_path):
        from demokit.data import load_dataset
        from demokit.data.filter import filter_dataset

        ref = reference_dataset(cfg)
        stage("expert", f"no expert checkpoint used: learning from the reference dataset {ref} (--expert-source "
                        f"expert trains or reuses {expert_path} instead)")
        available = load_dataset(ref).num_episodes
        if cfg.episodes > available:
            raise UserError(f"--episodes {cfg.episodes}: the reference dataset {ref} holds {available} episodes")
        filter_dataset(ref, dataset, episodes=tuple(range(cfg.episodes)), force=True)
        returns = load_dataset(dataset).episode_returns
        stage("collect", f"first {cfg.episodes} episodes of {ref.name} -> {dataset} (mean return "
                         f"{float(returns.mean()):.1f})")
        expert_return, expert_std = float(returns.mean()), float(returns.std())
        expert_train_s: float | None = None
        expert_detail = f"reference data: {cfg.episodes} episodes of {ref.name} (dataset returns)"
    else:
        expert = _reusable_expert(expert_path, cfg.env_id)
        if expert is not None:
            stage("expert", f"reusing the expert {expert_path}")
            expert_train_s = None
            expert_detail = f"reused ({expert.training.get('env_steps', '?')} env steps)"
        else:
            stage("expert", f"training a {expert_algo} expert for {cfg.env_id} -> {expert_path}")
            expert_cfg = _set({"env_id": cfg.env_id, "algo": expert_algo, "seed": cfg.seed, "out": str(expert_path),
                               "total_timesteps": cfg.expert_timesteps})
            with stage_run("train-expert", expert_cfg, {"algo": expert_algo}) as run:
                res = train_expert(expert_cfg, progress=run.tee(lambda i: prog("expert", i["env_steps"],
                                                                                  i["total_timesteps"],
                                                                                  training_progress_text(i))),
                                   tb_writer=run)
                run.finish(res.as_dict(), checkpoint=expert_path,
                           final_row=final_row(res.env_steps, res.mean_return, res.std_return))
            expert_train_s = res.wall_s
            expert_detail = f"{res.env_steps} env steps"
            expert = load_checkpoint(expert_path)
        stage("collect", f"collecting {cfg.episodes} expert episodes -> {dataset}")
        col = collect_demo_data(str(expert_path), cfg.env_id, dataset, n_episodes=cfg.episodes, seed=cfg.seed,
                                mode="overwrite", provenance={"pipeline": "demokit pipeline"})
        stage("collect", f"{col.episodes} episodes, {col.steps} steps, mean return {col.mean_return:.1f} "
                         f"({col.steps_per_s:,.0f} steps/s)")
        expert_return = col.mean_return

    # 3. behavioral cloning
    stage("bc", "behavioral cloning on the demonstrations")
    bc_cfg = _set({"seed": cfg.seed, "out": str(run_dir / "bc.pt"), "device": cfg.device, "epochs": cfg.bc_epochs})
    with stage_run("bc-train", bc_cfg, {"algo": "bc", "expert_return": expert_return}) as bc_run:

        def on_epoch(rec: dict[str, Any]) -> None:
            bc_run.log_row(epoch_row(rec))
            prog("bc", rec["epoch"], None, bc_progress_text(rec))

        bc = train_bc(dataset, bc_cfg, callback=on_epoch)
        bc_run.finish({"mean_return": bc.mean_return, "epochs": bc.epochs}, checkpoint=bc.checkpoint)

    # 4. GAIL
    gail = None
    if cfg.gail:
        gail_algo = cfg.gail_algo or default_learner(cfg.env_id, act_space)
        stage("gail", f"GAIL ({gail_algo}) on the demonstrations")
        gail_cfg = _set({"expert_data_path": str(dataset), "env_id": cfg.env_id, "device": cfg.device,
                         "total_timesteps": cfg.gail_timesteps})
        with stage_run("gail", gail_cfg, {"algo": f"gail-{gail_algo}", "expert_return": expert_return}) as gail_run:
            gail = run_irl(gail_cfg, cfg.seed, algo=gail_algo, out=run_dir / f"gail-{gail_algo}.pt", tb_logger=gail_run,
                            progress=gail_run.tee(lambda i: prog("gail", i["env_steps"], i["total_timesteps"],
                                                                 training_progress_text(i, return_label="env return"))))
            gail_run.finish(gail.as_dict(), checkpoint=gail.checkpoint,
                            final_row=final_row(gail.env_steps, gail.mean_return, gail.std_return))

    # 5. one evaluation protocol for every row
    stage("eval", f"evaluating every policy on {cfg.eval_episodes} episodes (seeds {EVAL_SEED}+)")
    rows_spec: list[tuple[str, Any, float | None, str, str | None]] = []
    if expert is not None:
        rows_spec.append((f"expert ({expert_algo})", expert.policy, expert_train_s, expert_detail, str(expert_path)))
    rows_spec.append(("BC", bc.policy, bc.wall_s, f"{bc.epochs} epochs, {bc.samples_per_s:,.0f} samples/s",
                      bc.checkpoint))
    if gail is not None:
        rows_spec.append((f"GAIL ({gail_algo})", gail.policy, gail.wall_s, f"{gail.env_steps} env steps",
                          gail.checkpoint))
    rows_spec.append(("random", RandomPolicy(obs_space, act_space, seed=cfg.seed), None, "", None))
    rows = [] if expert is not None else [Row(policy="expert (reference data)", mean_return=expert_return,
                                              std_return=expert_std, train_s=None, detail=expert_detail)]
    for name, policy, train_s, detail, ckpt in rows_spec:
        ev = evaluate_policy(policy, cfg.env_id, episodes=cfg.eval_episodes, seed=EVAL_SEED)
        rows.append(Row(policy=name, mean_return=ev.mean_return, std_return=ev.std_return, train_s=train_s,
                        detail=detail, checkpoint=ckpt))
    wall = time.perf_counter() - start
    summary_path = run_dir / "summary.json"
    result = PipelineResult(env_id=cfg.env_id, dataset=str(dataset), rows=tuple(rows), wall_s=wall,
                            summary_path=str(summary_path), extra={"config": to_dict(cfg)})
    atomic_write_bytes(summary_path, json.dumps({**result.as_dict(), "config": to_dict(cfg)}, indent=2).encode())
    _plots(run_dir, dataset, runs, stage)
    return result


def _plots(run_dir: Path, dataset: Path, runs: dict[str, Path], stage: StageFn) -> None:
    """dataset.png (return / length histograms) and one learning-curve PNG per training stage, beside summary.json."""
    from demokit.plot import plot

    try:
        written = [plot([dataset], run_dir / "dataset.png")]
        written += [plot([path], run_dir / f"{name}.png") for name, path in runs.items()]
    except UserError as exc:  # matplotlib missing, or a stage without rows
        stage("plot", f"skipped: {exc}")
        return
    stage("plot", ", ".join(str(p) for p in written))
