"""`demokit gail`: GAIL from an expert dataset, with any registered learner (PPO on-policy, DQN off-policy, ...).

Writes ``policies/<dataset-stem>-gail-<algo>.pt`` unless ``--out`` says otherwise: an
ordinary policy checkpoint (algo ``gail-ppo`` / ``gail-dqn``, the discriminator's state
in ``extra["reward_model"]``) that ``demokit eval`` and ``demokit collect`` accept.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from demokit.config import field_help
from demokit.runs import OVERWRITE_HELP, RUN_DIR_HELP, RUN_NAME_HELP


def default_gail_out(dataset_path: str, algo: str) -> Path:
    """policies/<dataset-stem>-gail-<algo>.pt"""
    return Path("policies") / f"{Path(dataset_path).stem}-gail-{algo}.pt"


def register(app: typer.Typer) -> None:
    from demokit.pipelines.reward_model import IRLConfig
    from demokit.rl.registry import learner_help

    @app.command("gail")
    def gail_cmd(
        expert: str = typer.Option(..., "--expert", help=field_help(IRLConfig, "expert_data_path")),
        env: Optional[str] = typer.Option(None, "--env", help=field_help(IRLConfig, "env_id")),
        algo: Optional[str] = typer.Option(None, "--algo", help=learner_help() + " (default: ppo; dqn on "
                                                                                 "MountainCar-v0)"),
        timesteps: Optional[int] = typer.Option(None, "--timesteps", help=field_help(IRLConfig, "total_timesteps")),
        seed: int = typer.Option(0, "--seed", help="seed of everything (envs, policy, discriminator)",
                                 min=0, max=2**63 - 1),
        device: Optional[str] = typer.Option(None, "--device", help=field_help(IRLConfig, "device")),
        out: Optional[Path] = typer.Option(None, "--out", help="policy checkpoint to write "
                                                               "(default: policies/<dataset>-gail-<algo>.pt)"),
        tensorboard: Optional[str] = typer.Option(None, "--tensorboard", help="TensorBoard log directory "
                                                                              "(needs `pip install tensorboard`)"),
        force: bool = typer.Option(False, "--force", help="replace --out even when it is not a checkpoint"),
        run_dir: Optional[str] = typer.Option(None, "--run-dir", help=RUN_DIR_HELP),
        run_name: Optional[str] = typer.Option(None, "--run-name", help=RUN_NAME_HELP),
        overwrite: bool = typer.Option(False, "--overwrite", help=OVERWRITE_HELP),
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
        from demokit.pipelines.reward_model import expert_dataset_and_env, resolve_learner, run_irl
        from demokit.paths import check_output_path
        from demokit.config import to_dict
        from demokit.envs import reward_threshold
        from demokit.runs import RunFolder

        cfg = from_mapping(IRLConfig, {"expert_data_path": expert}, env_id=env, algo=algo,
                           total_timesteps=timesteps, device=device)  # an unknown --algo lists the learners
        resolve_device(cfg.device)
        dataset, env_id = expert_dataset_and_env(cfg)  # a bad dataset or mismatched spaces: error before training
        name = resolve_learner(cfg, dataset, env_id).name  # a learner that does not fit: error before training
        target = str(out if out is not None else default_gail_out(expert, name))
        target = str(check_output_path(target, kind="checkpoint", inputs=[expert], force=force))
        returns = dataset.episode_returns
        run = RunFolder("gail", env_id, config={**to_dict(cfg), "seed": seed, "out": target}, run_dir=run_dir,
                        name=run_name, overwrite=overwrite, tensorboard=tensorboard or False,
                        info={"algo": f"gail-{name}", "reward_threshold": reward_threshold(env_id),
                              "expert_return": float(returns.mean()) if returns is not None and len(returns) else None})

        def report(info: dict[str, float]) -> None:  # the env's return: GAIL trains on the discriminator's reward
            run.progress(info)
            progress.update(int(info["env_steps"]), total=int(info["total_timesteps"]),
                            info=training_progress_text(info, return_label="env return"))

        with run, LazyProgress(f"gail-{name} {env_id}") as progress:
            result = run_irl(cfg, seed, algo=name, tb_logger=run, out=target, progress=report)
            figures = {**result.as_dict(), "run_dir": str(run.path)}
            run.finish(figures, checkpoint=result.checkpoint,
                       final_row={"step": result.env_steps, "env_steps": result.env_steps,
                                  "eval_return": result.mean_return, "eval_return_std": result.std_return,
                                  "final": True})
        if json_out:
            emit_json(figures)
        else:
            goal = "reached" if result.converged else "not reached"
            out_console.print(f"{result.algo} {result.env_id}: mean return {result.mean_return:.2f} +/- "
                              f"{result.std_return:.2f} (goal {goal}) after {result.env_steps} env steps in "
                              f"{result.wall_s:.1f} s -> {result.checkpoint}")
