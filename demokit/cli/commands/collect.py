"""`demokit collect`: run a policy and write its episodes to an HDF5 dataset."""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any, Optional

import typer

from demokit.config import field_help

HELP = ("Collect demonstrations: run a policy (random, a learner's expert such as ppo or dqn, or any demokit "
        "policy checkpoint) in vectorised envs and write whole episodes to an HDF5 dataset. Episode k is reset "
        "with seed + k, so the same policy, env and seed give the same dataset. Ctrl-C keeps every completed episode.")


def register(app: typer.Typer) -> None:
    from demokit.pipelines.collect import CollectConfig

    def h(name: str) -> str:
        return field_help(CollectConfig, name)

    @app.command("collect", help=HELP)
    def collect(
        ctx: typer.Context,
        policy: str = typer.Option(..., "--policy", metavar="SPEC", help=h("policy")),
        env: Optional[str] = typer.Option(None, "--env", help=h("env_id")),
        episodes: Optional[int] = typer.Option(None, "--episodes", metavar="N", help=h("n_episodes")),
        steps: Optional[int] = typer.Option(None, "--steps", metavar="N", help=h("n_steps")),
        out: Optional[Path] = typer.Option(None, "--out", metavar="PATH",
                                           help="output .h5 dataset (default: datasets/<env>-<policy>.h5, "
                                                "e.g. datasets/cartpole-v1-ppo.h5)"),
        seed: Optional[int] = typer.Option(None, "--seed", help=h("seed")),
        num_envs: Optional[int] = typer.Option(None, "--num-envs", metavar="K", help=h("num_envs")),
        stochastic: bool = typer.Option(False, "--stochastic",
                                        help="sample actions from the policy instead of acting greedily "
                                             "(the log-probabilities are stored as extras/log_prob)"),
        append: bool = typer.Option(False, "--append", help="add the episodes to an existing dataset"),
        force: bool = typer.Option(False, "--force", help="replace an existing dataset"),
        compression: Optional[str] = typer.Option(None, "--compression", metavar="gzip|lzf|blosc|none",
                                                  help=h("compression")),
        render_obs: bool = typer.Option(False, "--render-obs", help=h("render_obs")),
        render_size: Optional[int] = typer.Option(None, "--render-size", help=h("render_size"), show_default=False),
        grayscale: bool = typer.Option(False, "--grayscale", help=h("grayscale")),
        frame_stack: Optional[int] = typer.Option(None, "--frame-stack", help=h("frame_stack"), show_default=False),
        render_crop: Optional[str] = typer.Option(None, "--render-crop", metavar="TOP,BOTTOM,LEFT,RIGHT",
                                                  help=h("render_crop"), show_default=False),
        label_noise: Optional[float] = typer.Option(None, "--label-noise", metavar="P", help=h("label_noise"),
                                                    show_default=False),
        record_state: bool = typer.Option(False, "--record-state", help=h("record_state")),
        first_episode: Optional[int] = typer.Option(None, "--first-episode", metavar="K", help=h("first_episode"),
                                                    show_default=False),
        nproc: Optional[int] = typer.Option(None, "--nproc", metavar="N",
                                            help="collect on N processes: starts torchrun's launcher, each process "
                                                 "collects a contiguous share of the episodes and the shards are "
                                                 "combined into --out (the same dataset as one process); the same "
                                                 "as `torchrun --nproc-per-node N -m demokit collect ...`"),
        json_out: bool = typer.Option(False, "--json", help="print the result as one JSON line (last stdout line)"),
    ) -> None:
        from demokit.cli.checks import check_num_envs, check_seed
        from demokit.cli.output import emit_json, err_console, make_progress
        from demokit.errors import UserError
        from demokit.paths import check_output_path
        from demokit.pipelines.collect import CollectionInterrupted, collect_demo_data

        if append and force:
            raise UserError("--append and --force exclude each other: --append adds episodes to the dataset, "
                            "--force replaces it")
        mode = "append" if append else "overwrite" if force else None
        check_seed(seed, count=(episodes or steps or 1) + (first_episode or 0))
        check_num_envs(num_envs)
        if out is not None:  # a checkpoint given as --policy is an input; a symlink is written through
            out = check_output_path(out, kind="dataset", inputs=[policy], force=force, modify=append)
        from demokit.il.distributed import launched_by_torchrun

        if nproc is not None:
            if launched_by_torchrun():
                raise UserError("--nproc starts torchrun itself: under torchrun, leave --nproc out")
            if nproc < 1:
                raise UserError(f"--nproc must be >= 1, got {nproc}")
            if nproc > 1:
                from demokit.pipelines.sharded import launch

                if steps is not None or episodes is None:
                    raise UserError("--nproc takes an episode budget (--episodes): with --steps no process knows "
                                    "where its share starts")
                if episodes < nproc:
                    raise UserError(f"--episodes {episodes} cannot be split across {nproc} processes: give at "
                                    f"least one episode per process")
                if out is None:
                    raise UserError("--nproc needs --out (the combined dataset)")
                if mode is None and out.exists():
                    raise UserError(f"dataset {out} already exists; use --append to add episodes to it or --force "
                                    f"to replace it")
                code = launch(_argv_without(ctx, "nproc", out=out), nproc, out)
                raise typer.Exit(code)
        settings = dict(n_episodes=episodes, n_steps=steps, seed=seed, num_envs=num_envs,
                        deterministic=False if stochastic else None, mode=mode, compression=compression,
                        render_obs=render_obs, render_size=render_size, grayscale=grayscale, frame_stack=frame_stack,
                        render_crop=render_crop, label_noise=label_noise, first_episode=first_episode,
                        record_state=record_state or None)
        if launched_by_torchrun():
            _collect_rank(policy, env, out, settings, json_out)
            return
        reporter = _Reporter(make_progress, err_console)
        try:
            with warnings.catch_warnings(), reporter:
                warnings.showwarning = reporter.warning  # type: ignore[assignment]
                result = collect_demo_data(policy, env, out, progress=reporter, **settings)
        except CollectionInterrupted as exc:
            r = exc.result
            if r.episodes:
                kept = f"kept {r.episodes} complete episodes ({r.steps} steps) in {r.path}"
            elif Path(r.path).exists():
                kept = f"kept no new episode; {r.path} is unchanged"
            else:
                kept = f"kept no episode; {r.path} was not created"
            err_console.print(f"interrupted: {kept}; episodes still running were dropped", markup=False,
                              soft_wrap=True)
            if json_out:
                emit_json(r.as_dict())
            raise typer.Exit(130) from None
        _report(result, json_out)


def _report(result: Any, json_out: bool) -> None:
    """The lines of a finished collection: the cheap dataset checks, then the result."""
    from demokit.cli.output import emit_json, err_console
    from demokit.data.doctor import cheap_warnings

    for line in cheap_warnings(result.path):  # the cheap dataset checks on what was written
        err_console.print(f"warning: {line}", markup=False, highlight=False, soft_wrap=True)
    if result.cut_episodes:
        err_console.print("note: the last episode was cut by the --steps budget and is stored as truncated",
                          markup=False, soft_wrap=True)
    if json_out:
        emit_json(result.as_dict())
    else:
        spread = "" if math.isnan(result.std_return) else f" ± {result.std_return:.1f}"
        print(f"wrote {result.episodes} episodes ({result.steps} steps) to {result.path}: mean return "
              f"{result.mean_return:.1f}{spread}, {result.steps_per_s:,.0f} steps/s")


def _collect_rank(policy: str, env: Any, out: Any, settings: dict[str, Any], json_out: bool) -> None:
    """One rank of a torchrun launch: its shard; rank 0 combines and reports (demokit.pipelines.sharded)."""
    from demokit.cli.output import err_console, make_progress
    from demokit.pipelines.sharded import collect_sharded

    reporter = _Reporter(make_progress, err_console)
    try:
        with warnings.catch_warnings(), reporter:
            warnings.showwarning = reporter.warning  # type: ignore[assignment]
            result = collect_sharded(policy, env, out, progress=reporter, **settings)
    except KeyboardInterrupt:  # torchrun stopped the ranks (one failed) or Ctrl-C: the launcher says so
        raise typer.Exit(130) from None
    if result is not None:
        _report(result, json_out)


def _argv_without(ctx: Any, skip: str, *, out: Path) -> list[str]:
    """The command line of this command rebuilt from its parsed options, without ``skip``
    (``--out`` as checked: a symlink resolved)."""
    argv = [ctx.command.name]
    for param in ctx.command.params:
        value = ctx.params.get(param.name)
        if param.name == skip or value is None or value is False:
            continue
        if param.name == "out":
            value = out
        flag = param.opts[0]
        if getattr(param, "is_flag", False):
            argv.append(flag)
        else:
            argv += [flag, str(value)]
    return argv


class _Reporter:
    """Turns collect_demo_data progress events into rich progress bars on stderr. The bars start with the
    first event, so a command refused before collecting prints its ``error:`` line alone (no empty bar line)."""

    def __init__(self, make_progress: Any, console: Any) -> None:
        self.progress = make_progress()
        self.console = console
        self.started = False
        self.train_task: Any = None
        self.collect_task: Any = None

    def __enter__(self) -> _Reporter:
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.started:
            self.progress.stop()

    def warning(self, message: Any, category: Any, filename: str, lineno: int, file: Any = None,
                line: Any = None) -> None:
        self.console.print(f"warning: {message}", markup=False, soft_wrap=True)

    def __call__(self, info: dict[str, Any]) -> None:
        p = self.progress
        if not self.started:
            p.start()
            self.started = True
        if info.get("stage") == "train":
            if info.get("event") == "start":
                self.console.print(f"no {info['algo']} expert for {info['env_id']} at {info['checkpoint']}: "
                                   f"training it first", markup=False, soft_wrap=True)
                self.train_task = p.add_task(f"training {info['algo']} expert", total=None, info="")
                return
            total = info.get("total_timesteps")
            ret = info.get("eval_return", math.nan)
            p.update(self.train_task, completed=info.get("env_steps", 0), total=total,
                     info="" if ret is None or math.isnan(ret) else f"eval return {ret:.1f}")
            return
        if info.get("event") == "start":
            if self.train_task is not None:
                p.remove_task(self.train_task)
            self.by_steps = info["target_steps"] is not None
            budget = f"{info['target_steps']} steps" if self.by_steps else f"{info['target_episodes']} episodes"
            self.console.print(f"collecting {budget} of {info['env_id']} with policy {info['policy']} "
                               f"({info['num_envs']} envs) into {info['path']}", markup=False, soft_wrap=True)
            self.collect_task = p.add_task("collecting", info="",
                                           total=info["target_steps"] if self.by_steps else info["target_episodes"])
            return
        p.update(self.collect_task, completed=info["steps"] if self.by_steps else info["episodes"],
                 info=f"{info['episodes']} episodes, {info['steps_per_s']:,.0f} steps/s")
