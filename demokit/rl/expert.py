"""``train_expert``: the one-call entry point behind ``demokit train-expert``."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from demokit.config import from_mapping, option, required
from demokit.errors import ConfigError, UserError
from demokit.paths import check_output_path
from demokit.rl.common import STATE_EVERY, ProgressFn, TrainResult, check_state_path
from demokit.rl.hyperparams import tuned_config
from demokit.rl.registry import (LearnerSpec, check_action_space, check_learner_resumable, check_learner_settings,
                                 get_learner, learner_names, learner_of_config)


@dataclass(frozen=True)
class ExpertConfig:
    """Train an expert with the tuned hyperparameters of ``rl.hyperparams`` (None = tuned value)."""

    env_id: str = required("gymnasium env id, e.g. CartPole-v1")
    algo: str = option("ppo", "learner: a registered name (demokit.rl.registry), e.g. ppo (Discrete or Box "
                              "actions), dqn (Discrete only) or sac (Box only)")
    total_timesteps: int | None = option(None, "env-step budget; unset: the tuned budget, stopping as soon as "
                                               "the deterministic evaluation reaches the env's reward threshold")
    seed: int = option(0, "seed of everything")
    num_envs: int | None = option(None, "parallel envs (unset: the tuned number)")
    out: str | None = option(None, "checkpoint path (unset: experts/<env>-<algo>.pt)")
    device: str = option("auto", "auto, cpu or cuda")
    tensorboard: str | None = option(None, "TensorBoard log directory (needs `pip install tensorboard`)")
    stop_at_goal: bool | None = option(None, "stop once the goal is reached (unset: yes unless total_timesteps is set)")
    rl: Mapping[str, Any] | None = option(None, "the learner's own settings over the tuned table, e.g. "
                                                "{'n_steps': 3} for sac (its config class's keys)")

    def __post_init__(self) -> None:
        spec = get_learner(self.algo)  # unknown names: one error listing the registered learners
        if self.rl is not None:
            check_learner_settings("ExpertConfig.rl", self.rl, owned=OWNED_KEYS, spec=spec, env_id=self.env_id,
                                   use=f"use the top-level keys ({', '.join(OWNED_KEYS)})")


#: the learner config's keys that ExpertConfig sets itself (the same names at its top level)
OWNED_KEYS = ("env_id", "seed", "total_timesteps", "num_envs", "device")


def default_out(env_id: str, algo: str) -> str:
    """experts/<env>-<algo>.pt (a '/' in namespaced ids becomes '_')."""
    return f"experts/{env_id.replace('/', '_')}-{algo}.pt"


def tensorboard_writer(log_dir: str | None) -> Any:
    """A ``SummaryWriter`` for ``log_dir`` (None: None); UserError when tensorboard is missing."""
    if log_dir is None:
        return None
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise UserError(f"--tensorboard {log_dir}: the tensorboard package is not installed; "
                        f"run `pip install tensorboard` (or `pip install demokit[tensorboard]`), "
                        f"or leave out --tensorboard") from None
    return SummaryWriter(log_dir=str(log_dir))


def train_expert(config: ExpertConfig | Mapping[str, Any] | Any, *, progress: ProgressFn | None = None,
                 tb_writer: Any = None, state_path: str | os.PathLike[str] | None = None,
                 state_every: int = STATE_EVERY) -> TrainResult:
    """Train an expert with any registered learner and save its checkpoint; returns the final evaluation figures.

    ``config``: an ``ExpertConfig`` (or a mapping of its keys), whose unset values come
    from the tuned table; or a full learner config (a ``PPOConfig``, ``DQNConfig``,
    ``SACConfig``, ...: the config class of a registered learner) used as is (saved to
    experts/<env>-<algo>.pt, stopping at the goal). ``tb_writer``: anything with
    ``add_scalar(tag, value, step)`` (a :class:`demokit.runs.RunFolder`), used instead of
    opening ``config.tensorboard``. ``state_path`` / ``state_every``: a long run that survives being
    stopped (learners with a training state, e.g. SAC): see :meth:`BaseTrainer.learn`.
    """
    spec = learner_of_config(config)
    if spec is not None:
        algo_cfg, out, tb_dir, stop = config, None, None, True
    else:
        cfg = config if isinstance(config, ExpertConfig) else from_mapping(ExpertConfig, config)
        spec = get_learner(cfg.algo)
        algo_cfg = tuned_config(spec.name, cfg.env_id, **dict(cfg.rl or {}), total_timesteps=cfg.total_timesteps,
                                seed=cfg.seed, num_envs=cfg.num_envs, device=cfg.device)
        out, tb_dir = cfg.out, cfg.tensorboard
        stop = cfg.stop_at_goal if cfg.stop_at_goal is not None else cfg.total_timesteps is None
    out = out or default_out(algo_cfg.env_id, spec.name)
    check_output_path(out)
    check_env_fits(spec, algo_cfg.env_id)
    resume = {}
    if state_path is not None:  # before any work: a learner without one, the checkpoint's own path
        check_learner_resumable(spec)
        check_state_path(state_path, state_every, out=out)
        resume = {"state_path": state_path, "state_every": state_every}
    writer = tb_writer if tb_writer is not None else tensorboard_writer(tb_dir)
    trainer = spec.trainer(algo_cfg, progress=progress, tb_writer=writer)
    try:
        return trainer.learn(out=out, stop_at_goal=stop, **resume)
    finally:
        trainer.close()
        if writer is not None and tb_writer is None:
            writer.close()


def check_env_fits(spec: LearnerSpec, env_id: str) -> None:
    """One UserError naming the learners that fit when ``spec`` cannot act in ``env_id``'s action space."""
    from demokit.envs import make_env

    env = make_env(env_id)
    act = env.action_space
    env.close()
    check_action_space(spec.name, act, env_id)


@dataclass(frozen=True)
class EvalConfig:
    """Evaluate a policy checkpoint on its (or another) env."""

    policy: str = required("policy checkpoint (.pt) written by train-expert, bc, dagger or gail")
    env_id: str | None = option(None, "env id (unset: the checkpoint's env)")
    episodes: int = option(20, "number of evaluation episodes")
    seed: int = option(0, "episode i is reset with seed + i")
    deterministic: bool = option(True, "act deterministically (greedy / mean action)")
    dataset: str | None = option(None, "expert dataset whose mean episode return is the expert return of the "
                                       "normalised score (unset: the checkpoint's expert dataset or training "
                                       "figures)")
    expert_return: float | None = option(None, "the expert return of the normalised score (overrides dataset)")
    random_return: float | None = option(None, "the random policy's return of the normalised score (unset: "
                                               "measured on the same episode seeds)")

    def __post_init__(self) -> None:
        if self.episodes < 1:
            raise ConfigError(f"EvalConfig.episodes must be >= 1, got {self.episodes}")
        for name in ("expert_return", "random_return"):
            value = getattr(self, name)
            if value is not None and not math.isfinite(value):
                raise ConfigError(f"EvalConfig.{name} must be a finite number, got {value}")


def normalised_score(mean_return: float, random_return: float, expert_return: float) -> float | None:
    """``(return - random) / (expert - random)``: 0 at the random policy, 1 at the expert; None when the
    expert is no better than random (the score is undefined)."""
    if not expert_return > random_return:
        return None
    return (float(mean_return) - float(random_return)) / (float(expert_return) - float(random_return))


def _dataset_return(path: str, env_id: str) -> float:
    from demokit.data import load_dataset

    dataset = load_dataset(path)
    dataset.check_env(env_id)
    returns = dataset.episode_returns
    if len(returns) == 0:
        raise UserError(f"{path}: the dataset has no complete episode, so no expert return")
    return float(returns.mean())


def expert_return_of(cfg: EvalConfig, training: Mapping[str, Any], algo: str, env_id: str) -> tuple[float, str] | None:
    """The expert return for the normalised score and where it comes from: the config's number, its
    dataset, the checkpoint's expert dataset (BC: ``dataset``; GAIL: ``irl.expert_data_path``) when that
    file still exists, or an expert checkpoint's own training evaluation; None when unknown."""
    if cfg.expert_return is not None:
        return float(cfg.expert_return), "given"
    if cfg.dataset is not None:
        return _dataset_return(cfg.dataset, env_id), f"dataset {cfg.dataset}"
    irl = training.get("irl")
    recorded = training.get("dataset") or (irl.get("expert_data_path") if isinstance(irl, Mapping) else None)
    if recorded:
        if os.path.isfile(str(recorded)):
            return _dataset_return(str(recorded), env_id), f"the checkpoint's expert dataset {recorded}"
        return None
    value = training.get("mean_return")
    if algo in learner_names() and isinstance(value, (int, float)) and math.isfinite(value):
        return float(value), "the expert checkpoint's training evaluation"
    return None


def evaluate_checkpoint(config: EvalConfig | Mapping[str, Any]) -> dict[str, Any]:
    """Load a checkpoint (CheckpointError if missing/foreign/damaged), check its spaces
    against the env (SpaceMismatchError) and return mean_return, std_return, episodes, ...

    When the expert return is known (:func:`expert_return_of`), also ``normalised_score``
    (:func:`normalised_score`; None when the expert is no better than random), ``expert_return``
    (+ ``expert_return_source``) and ``random_return`` (a uniformly random policy on the same
    episode seeds, unless given)."""
    from demokit.envs import make_env
    from demokit.evaluation import evaluate_policy
    from demokit.policies import load_checkpoint
    from demokit.policies.random import RandomPolicy

    cfg = config if isinstance(config, EvalConfig) else from_mapping(EvalConfig, config)
    ckpt = load_checkpoint(cfg.policy)
    env_id = cfg.env_id or ckpt.env_id
    if not env_id:
        raise UserError(f"{cfg.policy}: the checkpoint names no env; pass --env ENV")
    expert = expert_return_of(cfg, dict(ckpt.training), ckpt.algo or "", env_id)  # a bad dataset fails first
    result = evaluate_policy(ckpt.policy, env_id, episodes=cfg.episodes, seed=cfg.seed,
                             deterministic=cfg.deterministic)
    figures = {**result.as_dict(), "env_id": env_id, "policy": str(cfg.policy), "algo": ckpt.algo,
               "deterministic": cfg.deterministic}
    if expert is None:
        return figures
    random_return = cfg.random_return
    if random_return is None:
        env = make_env(env_id)
        try:
            random_policy = RandomPolicy(env.observation_space, env.action_space, seed=cfg.seed)
        finally:
            env.close()
        random_return = evaluate_policy(random_policy, env_id, episodes=cfg.episodes, seed=cfg.seed).mean_return
    figures.update(expert_return=expert[0], expert_return_source=expert[1], random_return=float(random_return),
                   normalised_score=normalised_score(result.mean_return, float(random_return), expert[0]))
    return figures
