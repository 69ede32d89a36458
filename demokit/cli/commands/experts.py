"""`demokit train-expert` and `demokit eval`."""

from __future__ import annotations

from typing import Optional

import typer

from demokit.config import field_help, from_mapping


def register(app: typer.Typer) -> None:
    from demokit.rl.expert import EvalConfig, ExpertConfig
    from demokit.rl.registry import learner_help

    @app.command("train-expert")
    def train_expert_cmd(
        env: str = typer.Option(..., "--env", help=field_help(ExpertConfig, "env_id")),
        algo: Optional[str] = typer.Option(None, "--algo", help=learner_help() + " (default: ppo)"),
        timesteps: Optional[int] = typer.Option(None, "--timesteps", help=field_help(ExpertConfig, "total_timesteps")),
        seed: Optional[int] = typer.Option(None, "--seed", help=field_help(ExpertConfig, "seed")),
        num_envs: Optional[int] = typer.Option(None, "--num-envs", help=field_help(ExpertConfig, "num_envs")),
        out: Optional[str] = typer.Option(None, "--out", help=field_help(ExpertConfig, "out")),
        device: Optional[str] = typer.Option(None, "--device", help=field_help(ExpertConfig, "device")),
        tensorboard: Optional[str] = typer.Option(None, "--tensorboard", help=field_help(ExpertConfig, "tensorboard")),
        json_out: bool = typer.Option(False, "--json", help="print the result as one JSON object (last stdout line)"),
    ) -> None:
        """Train an expert with any registered learner (ppo, dqn, ...) and tuned settings; save its checkpoint."""
        from demokit.cli.output import LazyProgress, emit_json, out_console
        from demokit.progress import training_progress_text
        from demokit.rl.expert import train_expert

        cfg = from_mapping(ExpertConfig, {"env_id": env}, algo=algo, total_timesteps=timesteps, seed=seed,
                           num_envs=num_envs, out=out, device=device, tensorboard=tensorboard)

        def report(info: dict[str, float]) -> None:
            progress.update(int(info["env_steps"]), total=int(info["total_timesteps"]),
                            info=training_progress_text(info))

        with LazyProgress(f"{cfg.algo} {cfg.env_id}") as progress:
            result = train_expert(cfg, progress=report)
        figures = {"checkpoint": result.checkpoint, "mean_return": result.mean_return,
                   "std_return": result.std_return, "env_steps": result.env_steps, "wall_s": result.wall_s,
                   "reached_threshold": result.reached_threshold, "env_id": result.env_id, "algo": result.algo}
        if json_out:
            emit_json(figures)
        else:
            goal = "" if result.stop_value is None else (
                f" (goal {result.stop_value:g} {'reached' if result.reached_threshold else 'not reached'})")
            out_console.print(f"{result.algo} {result.env_id}: mean return {result.mean_return:.2f} "
                              f"+/- {result.std_return:.2f}{goal} after {result.env_steps} env steps "
                              f"in {result.wall_s:.1f} s -> {result.checkpoint}")

    @app.command("eval")
    def eval_cmd(
        policy: str = typer.Option(..., "--policy", help=field_help(EvalConfig, "policy")),
        env: Optional[str] = typer.Option(None, "--env", help=field_help(EvalConfig, "env_id")),
        episodes: Optional[int] = typer.Option(None, "--episodes", help=field_help(EvalConfig, "episodes")),
        seed: Optional[int] = typer.Option(None, "--seed", help=field_help(EvalConfig, "seed")),
        stochastic: bool = typer.Option(False, "--stochastic", help="sample actions instead of acting deterministically"),
        json_out: bool = typer.Option(False, "--json", help="print the result as one JSON object (last stdout line)"),
    ) -> None:
        """Evaluate a policy checkpoint: mean and std of the episode return."""
        from demokit.cli.output import emit_json, out_console
        from demokit.rl.expert import evaluate_checkpoint

        cfg = from_mapping(EvalConfig, {"policy": policy}, env_id=env, episodes=episodes, seed=seed,
                           deterministic=False if stochastic else None)
        figures = evaluate_checkpoint(cfg)
        if json_out:
            emit_json(figures)
        else:
            out_console.print(f"{figures['env_id']}: mean return {figures['mean_return']:.2f} +/- "
                              f"{figures['std_return']:.2f} over {figures['episodes']} episodes "
                              f"(mean length {figures['mean_length']:.1f})")
