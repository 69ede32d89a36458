"""``train_expert``: the one-call entry point behind ``demokit train-expert``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from demokit.config import from_mapping, option, required
from demokit.errors import UserError
from demokit.paths import check_output_path
from demokit.rl.common import ProgressFn, TrainResult
from demokit.rl.dqn import DQNConfig, DQNTrainer
from demokit.rl.hyperparams import tuned_config
from demokit.rl.ppo import PPOConfig, PPOTrainer
from demokit.rl.sac import SACConfig, SACTrainer, check_sac_action_space


@dataclass(frozen=True)
class ExpertConfig:
    """Train an expert with the tuned hyperparameters of ``rl.hyperparams`` (None = tuned value)."""

    env_id: str = required("gymnasium env id, e.g. CartPole-v1")
    algo: Literal["ppo", "dqn", "sac"] = option("ppo", "learner: ppo (Discrete or Box actions), dqn (Discrete "
                                                       "only) or sac (Box only)")
    total_timesteps: int | None = option(None, "env-step budget; unset: the tuned budget, stopping as soon as "
                                               "the deterministic evaluation reaches the env's reward threshold")
    seed: int = option(0, "seed of everything")
    num_envs: int | None = option(None, "parallel envs (unset: the tuned number)")
    out: str | None = option(None, "checkpoint path (unset: experts/<env>-<algo>.pt)")
    device: str = option("auto", "auto, cpu or cuda")
    tensorboard: str | None = option(None, "TensorBoard log directory (needs `pip install tensorboard`)")
    stop_at_goal: bool | None = option(None, "stop once the goal is reached (unset: yes unless total_timesteps is set)")


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


def train_expert(config: ExpertConfig | PPOConfig | DQNConfig | SACConfig | Mapping[str, Any], *,
                 progress: ProgressFn | None = None, tb_writer: Any = None) -> TrainResult:
    """Train a PPO, DQN or SAC expert and save its checkpoint; returns the final evaluation figures.

    ``config``: an ``ExpertConfig`` (or a mapping of its keys), whose unset values come
    from the tuned table; or a full ``PPOConfig`` / ``DQNConfig`` / ``SACConfig`` used as is (saved to
    experts/<env>-<algo>.pt, stopping at the goal). ``tb_writer``: anything with
    ``add_scalar(tag, value, step)`` (a :class:`demokit.runs.RunFolder`), used instead of
    opening ``config.tensorboard``.
    """
    if isinstance(config, (PPOConfig, DQNConfig, SACConfig)):
        algo_cfg, out, tb_dir, stop = config, None, None, True
        algo = {PPOConfig: "ppo", DQNConfig: "dqn", SACConfig: "sac"}[type(config)]
    else:
        cfg = config if isinstance(config, ExpertConfig) else from_mapping(ExpertConfig, config)
        algo = cfg.algo
        algo_cfg = tuned_config(algo, cfg.env_id, total_timesteps=cfg.total_timesteps, seed=cfg.seed,
                                num_envs=cfg.num_envs, device=cfg.device)
        out, tb_dir = cfg.out, cfg.tensorboard
        stop = cfg.stop_at_goal if cfg.stop_at_goal is not None else cfg.total_timesteps is None
    out = out or default_out(algo_cfg.env_id, algo)
    check_output_path(out)
    _check_action_space(algo_cfg.env_id, algo)
    writer = tb_writer if tb_writer is not None else tensorboard_writer(tb_dir)
    trainer_cls = {"ppo": PPOTrainer, "dqn": DQNTrainer, "sac": SACTrainer}[algo]
    trainer = trainer_cls(algo_cfg, progress=progress, tb_writer=writer)
    try:
        return trainer.learn(out=out, stop_at_goal=stop)
    finally:
        trainer.close()
        if writer is not None and tb_writer is None:
            writer.close()


def _check_action_space(env_id: str, algo: str) -> None:
    """Refuse a learner that cannot act in the env's action space, before anything is written."""
    if algo == "ppo":
        return
    from gymnasium import spaces

    from demokit.envs import make_env
    from demokit.spaces import describe
    env = make_env(env_id)
    act = env.action_space
    env.close()
    if algo == "sac":
        check_sac_action_space(env_id, act)
    elif not isinstance(act, spaces.Discrete):
        raise UserError(f"--algo dqn needs a Discrete action space; {env_id} has {describe(act)}: "
                        f"use --algo ppo or --algo sac")



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
