"""`demokit train-expert` and `demokit eval`."""

from __future__ import annotations

from typing import Optional

import typer

from demokit.cli.checks import STATE_EVERY_HELP, state_help
from demokit.config import field_help, from_mapping, parse_settings
from demokit.rl.common import STATE_EVERY, check_state_path
from demokit.runs import OVERWRITE_HELP, RUN_DIR_HELP, RUN_NAME_HELP


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
        settings: Optional[list[str]] = typer.Option(None, "--set", metavar="KEY=VALUE",
                                                     help="a learner setting over the tuned table (repeatable; the "
                                                          "keys of the learner's config, e.g. --set n_steps=3 "
                                                          "--set learning_rate=1e-3; VALUE as JSON or text)"),
        run_dir: Optional[str] = typer.Option(None, "--run-dir", help=RUN_DIR_HELP),
        run_name: Optional[str] = typer.Option(None, "--run-name", help=RUN_NAME_HELP),
        overwrite: bool = typer.Option(False, "--overwrite", help=OVERWRITE_HELP),
        force: bool = typer.Option(False, "--force", help="replace --out even when it is not a checkpoint"),
        json_out: bool = typer.Option(False, "--json", help="print the result as one JSON object (last stdout line)"),
        state: Optional[str] = typer.Option(None, "--state", metavar="PATH", help=state_help(reward_models=False)),
        state_every: int = typer.Option(STATE_EVERY, "--state-every", min=1, help=STATE_EVERY_HELP),
    ) -> None:
        """Train an expert with any registered learner (ppo, dqn, sac, ...) and tuned settings; save its checkpoint."""
        from demokit.cli.checks import check_num_envs, check_seed
        from demokit.cli.output import LazyProgress, emit_json, out_console
        from demokit.devices import resolve_device
        from demokit.paths import check_output_path
        from demokit.config import to_dict
        from demokit.envs import reward_threshold
        from demokit.policies import load_checkpoint
        from demokit.progress import training_progress_text
        from demokit.rl.expert import default_out, train_expert
        from demokit.rl.registry import check_learner_resumable, get_learner
        from demokit.runs import RunFolder, final_row

        check_seed(seed)
        check_num_envs(num_envs)
        cfg = from_mapping(ExpertConfig, {"env_id": env}, algo=algo, total_timesteps=timesteps, seed=seed,
                           num_envs=num_envs, out=out, device=device, tensorboard=tensorboard,
                           rl=parse_settings(settings or ()) or None)
        target = check_output_path(cfg.out or default_out(cfg.env_id, cfg.algo), kind="checkpoint", force=force)
        cfg = from_mapping(ExpertConfig, cfg, out=str(target))
        resolve_device(cfg.device)
        if state is not None:  # checked here too, so that a refusal writes no run folder
            check_learner_resumable(get_learner(cfg.algo))
            check_state_path(state, state_every, out=target, what="--state", out_what="--out checkpoint")
        run = RunFolder("train-expert", cfg.env_id, config=to_dict(cfg), run_dir=run_dir, name=run_name,
                        overwrite=overwrite, tensorboard=cfg.tensorboard or False,
                        info={"algo": cfg.algo, "reward_threshold": reward_threshold(cfg.env_id)})

        def report(info: dict[str, float]) -> None:
            run.progress(info)
            progress.update(int(info["env_steps"]), total=int(info["total_timesteps"]),
                            info=training_progress_text(info))

        with run, LazyProgress(f"{cfg.algo} {cfg.env_id}") as progress:
            resume = {} if state is None else {"state_path": state, "state_every": state_every}
            result = train_expert(cfg, progress=report, tb_writer=run, **resume)
            figures = {**result.as_dict(), "run_dir": str(run.path)}
            run.update_config(resolved=load_checkpoint(result.checkpoint).training.get("config"))
            run.finish(figures, checkpoint=result.checkpoint,
                       final_row=final_row(result.env_steps, result.mean_return, result.std_return))
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
        dataset: Optional[str] = typer.Option(None, "--dataset", help=field_help(EvalConfig, "dataset")),
        expert_return: Optional[float] = typer.Option(None, "--expert-return",
                                                      help=field_help(EvalConfig, "expert_return")),
        random_return: Optional[float] = typer.Option(None, "--random-return",
                                                      help=field_help(EvalConfig, "random_return")),
        json_out: bool = typer.Option(False, "--json", help="print the result as one JSON object (last stdout line)"),
    ) -> None:
        """Evaluate a policy checkpoint: mean and std of the episode return."""
        from demokit.cli.checks import check_seed
        from demokit.cli.output import emit_json, out_console
        from demokit.rl.expert import evaluate_checkpoint

        check_seed(seed)
        cfg = from_mapping(EvalConfig, {"policy": policy}, env_id=env, episodes=episodes, seed=seed,
                           deterministic=False if stochastic else None, dataset=dataset,
                           expert_return=expert_return, random_return=random_return)
        figures = evaluate_checkpoint(cfg)
        if json_out:
            emit_json(figures)
        else:
            out_console.print(f"{figures['env_id']}: mean return {figures['mean_return']:.2f} +/- "
                              f"{figures['std_return']:.2f} over {figures['episodes']} episodes "
                              f"(mean length {figures['mean_length']:.1f})")
            if "expert_return" in figures:
                score = figures["normalised_score"]
                out_console.print(f"normalised score {'undefined' if score is None else f'{score:.3f}'} "
                                  f"(random {figures['random_return']:.2f}, expert {figures['expert_return']:.2f} "
                                  f"from {figures['expert_return_source']})")
