"""`demokit pipeline`: expert -> demonstrations -> BC and GAIL -> one table (the README's main job)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from demokit.config import field_help


def register(app: typer.Typer) -> None:
    from demokit.pipelines.full import PipelineConfig

    def h(name: str) -> str:
        return field_help(PipelineConfig, name)

    @app.command("pipeline")
    def pipeline(
        env: str = typer.Option("CartPole-v1", "--env", help=h("env_id")),
        episodes: Optional[int] = typer.Option(None, "--episodes", help=h("episodes")),
        seed: Optional[int] = typer.Option(None, "--seed", help=h("seed")),
        expert_algo: Optional[str] = typer.Option(None, "--expert-algo", help=h("expert_algo")),
        gail_algo: Optional[str] = typer.Option(None, "--gail-algo", help=h("gail_algo")),
        workdir: Optional[str] = typer.Option(None, "--workdir", help=h("workdir")),
        eval_episodes: Optional[int] = typer.Option(None, "--eval-episodes", help=h("eval_episodes")),
        no_gail: bool = typer.Option(False, "--no-gail", help="skip GAIL"),
        expert_timesteps: Optional[int] = typer.Option(None, "--expert-timesteps", help=h("expert_timesteps")),
        bc_epochs: Optional[int] = typer.Option(None, "--bc-epochs", help=h("bc_epochs")),
        gail_timesteps: Optional[int] = typer.Option(None, "--gail-timesteps", help=h("gail_timesteps")),
        device: Optional[str] = typer.Option(None, "--device", help=h("device")),
        expert_source: Optional[str] = typer.Option(None, "--expert-source", help=h("expert_source")),
        reference_dir: Optional[str] = typer.Option(None, "--reference-dir", help=h("reference_dir")),
        json_out: bool = typer.Option(False, "--json", help="print the result as one JSON object (last stdout line)"),
    ) -> None:
        """The whole path: train (or reuse) an expert, collect its demonstrations, learn from them with
        behavioral cloning and GAIL, and print one table of expert, BC, GAIL and random returns."""
        from rich.table import Table

        from demokit.cli.checks import check_seed
        from demokit.cli.output import LazyProgress, emit_json, err_console, out_console
        from demokit.paths import check_output_path, remove_empty_tree
        from demokit.devices import resolve_device
        from demokit.config import from_mapping
        from demokit.pipelines.full import run_pipeline

        check_seed(seed, count=max(episodes or 1, 1))
        if device is not None:
            resolve_device(device)
        cfg = from_mapping(PipelineConfig, {"env_id": env}, episodes=episodes, seed=seed, expert_algo=expert_algo,
                           gail_algo=gail_algo, workdir=workdir, eval_episodes=eval_episodes,
                           gail=False if no_gail else None, device=device, expert_timesteps=expert_timesteps,
                           bc_epochs=bc_epochs, gail_timesteps=gail_timesteps, expert_source=expert_source,
                           reference_dir=reference_dir)
        run_dir = Path(cfg.workdir) / cfg.env_id.replace("/", "_")
        check_output_path(run_dir / "summary.json", what="--workdir")
        made = [d for d in (run_dir, *run_dir.parents) if not d.exists()]  # removed again if the run fails
        bars: dict[str, LazyProgress] = {}

        def on_stage(name: str, message: str) -> None:
            for bar in bars.values():
                bar.close()
            err_console.print(f"[bold cyan]{name}[/]: {message}")

        def progress(stage: str, completed: float, total: float | None, info: str) -> None:
            bar = bars.setdefault(stage, LazyProgress(stage))
            bar.update(completed, total=total, info=info)

        try:
            result = run_pipeline(cfg, on_stage=on_stage, progress=progress)
        except BaseException:
            if made:  # folders this run made, as far as they are empty: nothing a stage wrote is removed
                remove_empty_tree(made[-1])
            raise
        finally:
            for bar in bars.values():
                bar.close()
        if json_out:
            emit_json(result.as_dict())
            return
        table = Table(title=f"{result.env_id}: {cfg.episodes} expert episodes -> BC and GAIL "
                            f"(deterministic evaluation, {cfg.eval_episodes} episodes)")
        for col, justify in (("policy", "left"), ("mean return", "right"), ("std", "right"),
                             ("train time", "right"), ("detail", "left")):
            table.add_column(col, justify=justify)  # type: ignore[arg-type]
        for row in result.rows:
            t = "-" if row.train_s is None else f"{row.train_s:.1f} s"
            table.add_row(row.policy, f"{row.mean_return:.1f}", f"{row.std_return:.1f}", t, row.detail)
        out_console.print(table)
        out_console.print(f"dataset {result.dataset}; summary {result.summary_path}; total {result.wall_s:.1f} s")
