"""``train_expert``: the one-call entry point behind ``demokit train-expert``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from demokit.config import from_mapping, option, required
from demokit.errors import UserError
from demokit.paths import check_output_path
from demokit.rl.common import ProgressFn, TrainResult
from demokit.rl.hyperparams import tuned_config
from demokit.rl.registry import LearnerSpec, check_action_space, get_learner, learner_of_config


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

    def __post_init__(self) -> None:
        get_learner(self.algo)  # unknown names: one error listing the registered learners


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
                 tb_writer: Any = None) -> TrainResult:
    """Train an expert with any registered learner and save its checkpoint; returns the final evaluation figures.

    ``config``: an ``ExpertConfig`` (or a mapping of its keys), whose unset values come
    from the tuned table; or a full learner config (a ``PPOConfig``, ``DQNConfig``,
    ``SACConfig``, ...: the config class of a registered learner) used as is (saved to
    experts/<env>-<algo>.pt, stopping at the goal). ``tb_writer``: anything with
    ``add_scalar(tag, value, step)`` (a :class:`demokit.runs.RunFolder`), used instead of
    opening ``config.tensorboard``.
    """
    spec = learner_of_config(config)
    if spec is not None:
        algo_cfg, out, tb_dir, stop = config, None, None, True
    else:
        cfg = config if isinstance(config, ExpertConfig) else from_mapping(ExpertConfig, config)
        spec = get_learner(cfg.algo)
        algo_cfg = tuned_config(spec.name, cfg.env_id, total_timesteps=cfg.total_timesteps, seed=cfg.seed,
                                num_envs=cfg.num_envs, device=cfg.device)
        out, tb_dir = cfg.out, cfg.tensorboard
        stop = cfg.stop_at_goal if cfg.stop_at_goal is not None else cfg.total_timesteps is None
    out = out or default_out(algo_cfg.env_id, spec.name)
    check_output_path(out)
    check_env_fits(spec, algo_cfg.env_id)
    writer = tb_writer if tb_writer is not None else tensorboard_writer(tb_dir)
    trainer = spec.trainer(algo_cfg, progress=progress, tb_writer=writer)
    try:
        return trainer.learn(out=out, stop_at_goal=stop)
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


def evaluate_checkpoint(config: EvalConfig | Mapping[str, Any]) -> dict[str, Any]:
    """Load a checkpoint (CheckpointError if missing/foreign/damaged), check its spaces
    against the env (SpaceMismatchError) and return mean_return, std_return, episodes, ..."""
    from demokit.evaluation import evaluate_policy
    from demokit.policies import load_checkpoint

    cfg = config if isinstance(config, EvalConfig) else from_mapping(EvalConfig, config)
    ckpt = load_checkpoint(cfg.policy)
    env_id = cfg.env_id or ckpt.env_id
    if not env_id:
        raise UserError(f"{cfg.policy}: the checkpoint names no env; pass --env ENV")
    result = evaluate_policy(ckpt.policy, env_id, episodes=cfg.episodes, seed=cfg.seed,
                             deterministic=cfg.deterministic)
    return {**result.as_dict(), "env_id": env_id, "policy": str(cfg.policy), "algo": ckpt.algo,
            "deterministic": cfg.deterministic}
