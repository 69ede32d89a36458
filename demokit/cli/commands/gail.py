"""`demokit gail`: GAIL from an expert dataset, with PPO (on-policy) or DQN (off-policy).

Writes ``policies/<dataset-stem>-gail-<algo>.pt`` unless ``--out`` says otherwise: an
ordinary policy checkpoint (algo ``gail-ppo`` / ``gail-dqn``, the discriminator's state
in ``extra["reward_model"]``) that ``demokit eval`` and ``demokit collect`` accept.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from demokit.config import field_help


def default_gail_out(dataset_path: str, algo: str) -> Path:
    """policies/<dataset-stem>-gail-<algo>.pt"""
    return Path("policies") / f"{Path(dataset_path).stem}-gail-{algo}.pt"


def register(app: typer.Typer) -> None:
    from demokit.pipelines.reward_model import GAILConfig

    @app.command("gail")
    def gail_cmd(
        expert: str = typer.Option(..., "--expert", help=field_help(GAILConfig, "expert_data_path")),
        env: Optional[str] = typer.Option(None, "--env", help=field_help(GAILConfig, "env_id")),
        algo: Optional[str] = typer.Option(None, "--algo", help="learner: ppo (on-policy) or dqn (off-policy) "
                                                                "(default: ppo; dqn on MountainCar-v0)"),
        timesteps: Optional[int] = typer.Option(None, "--timesteps", help=field_help(GAILConfig, "total_timesteps")),
        seed: int = typer.Option(0, "--seed", help="seed of everything (envs, policy, discriminator)",
                                 min=0, max=2**63 - 1),
        device: Optional[str] = typer.Option(None, "--device", help=field_help(GAILConfig, "device")),
        out: Optional[Path] = typer.Option(None, "--out", help="policy checkpoint to write "
                                                               "(default: policies/<dataset>-gail-<algo>.pt)"),
        tensorboard: Optional[str] = typer.Option(None, "--tensorboard", help="TensorBoard log directory "
                                                                              "(needs `pip install tensorboard`)"),
        force: bool = typer.Option(False, "--force", help="replace --out even when it is not a checkpoint"),
        json_out: bool = typer.Option(False, "--json", help="print the result as one JSON object (last stdout line)"),
    ) -> None:
        """GAIL: learn a policy from expert demonstrations with a discriminator as the reward.

        The env's reward is never used for training; its return is shown for monitoring
        and training stops once the deterministic evaluation reaches the env's
        reward_threshold (or the budget is spent).
        """
        from demokit.cli.output import LazyProgress, emit_json, out_console
        from demokit.devices import resolve_device
        from demokit.progress import training_progress_text
        from demokit.config import from_mapping
        from demokit.errors import ConfigError
        from demokit.pipelines.reward_model import default_gail_algo, expert_dataset_and_env, run_gail
        from demokit.paths import check_output_path
        from demokit.rl.expert import tensorboard_writer

        if algo is not None and algo not in ("ppo", "dqn"):
            raise ConfigError(f"--algo must be ppo or dqn, got {algo!r}")
        cfg = from_mapping(GAILConfig, {"expert_data_path": expert}, env_id=env, algo=algo,
                           total_timesteps=timesteps, device=device)
        resolve_device(cfg.device)
        _, env_id = expert_dataset_and_env(cfg)  # a bad dataset or mismatched spaces: error before training
        name = cfg.algo or default_gail_algo(env_id)
        target = str(out if out is not None else default_gail_out(expert, name))
        target = str(check_output_path(target, kind="checkpoint", inputs=[expert], force=force))
        writer = tensorboard_writer(tensorboard)

        def report(info: dict[str, float]) -> None:  # the env's return: GAIL trains on the discriminator's reward
            progress.update(int(info["env_steps"]), total=int(info["total_timesteps"]),
                            info=training_progress_text(info, return_label="env return"))

        try:
            with LazyProgress(f"gail-{name} {env_id}") as progress:
                result = run_gail(cfg, seed, algo=name, tb_logger=writer, out=target, progress=report)
        finally:
            if writer is not None:
                writer.close()
        figures = result.as_dict()
        if json_out:
            emit_json(figures)
        else:
            goal = "reached" if result.converged else "not reached"
            out_console.print(f"{result.algo} {result.env_id}: mean return {result.mean_return:.2f} +/- "
                              f"{result.std_return:.2f} (goal {goal}) after {result.env_steps} env steps in "
                              f"{result.wall_s:.1f} s -> {result.checkpoint}")
