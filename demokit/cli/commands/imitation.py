"""`demokit bc-train` and `demokit dagger`: imitation learning from datasets and experts.

``bc-train`` writes ``policies/<dataset-stem>-bc.pt`` unless ``--out`` says otherwise;
``dagger`` writes ``policies/<env>-dagger.pt`` and the aggregated dataset
``datasets/<env>-dagger.h5``. Both checkpoints are ordinary demokit policies:
``demokit eval`` and ``demokit collect`` take them like any expert.

Under ``torchrun`` (``WORLD_SIZE`` > 1) ``bc-train`` trains with DistributedDataParallel
and only rank 0 prints and writes; see :mod:`demokit.il.distributed`.
"""

import os
from pathlib import Path
from typing import Any, Optional

import typer

from demokit.cli.checks import check_hidden, check_seed
from demokit.cli.output import LazyProgress
from demokit.paths import check_input_path, check_output_path
from demokit.progress import bc_progress_text
from demokit.config import field_help
from demokit.il.bc import BCConfig, default_bc_out
from demokit.il.dagger import DAggerConfig, default_dagger_paths
from demokit.runs import OVERWRITE_HELP, RUN_DIR_HELP, RUN_NAME_HELP, RunFolder, epoch_row


def bc_run_folder(dataset: Path, overrides: dict[str, Any], *, run_dir: Optional[str], run_name: Optional[str],
                  overwrite: bool, tensorboard: Optional[str]) -> RunFolder:
    """The run folder of a bc-train run (refused before training when it exists)."""
    from demokit.data import load_dataset
    from demokit.envs import reward_threshold

    ds = load_dataset(dataset)
    env_id = overrides.get("env_id") or ds.env_id or "unknown-env"
    returns = ds.episode_returns
    return RunFolder("bc-train", env_id, config={"dataset": str(dataset), **overrides}, run_dir=run_dir,
                     name=run_name, overwrite=overwrite, tensorboard=tensorboard or False,
                     info={"algo": "bc", "dataset": str(dataset),
                           "expert_return": float(returns.mean()) if returns is not None and len(returns) else None,
                           "reward_threshold": reward_threshold(env_id) if env_id != "unknown-env" else None})




def _is_main_rank() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def _fmt(v: Optional[float], spec: str = ".1f") -> str:
    return "n/a" if v is None else format(v, spec)


DAGGER_HELP = (
    "DAgger: roll out expert/learner mixtures, label every state with the expert, retrain BC.\n\n"
    "Round 0 runs the expert alone; in round i the expert's action is executed with probability beta_i "
    "at every step (else the learner's). Every visited state is labelled with the expert's action and "
    "appended to --dataset-out (a demokit dataset; extras: executed_action, expert_executed, round); "
    "BC is then retrained from scratch on all of it."
)


def register(app: typer.Typer) -> None:
    @app.command("bc-train")
    def bc_train(
        dataset: Path = typer.Argument(..., help="demokit .h5 dataset of expert demonstrations", show_default=False),
        env: Optional[str] = typer.Option(None, "--env", help=field_help(BCConfig, "env_id"), show_default=False),
        epochs: Optional[int] = typer.Option(None, "--epochs", help=field_help(BCConfig, "epochs"), show_default=False),
        batch_size: Optional[int] = typer.Option(None, "--batch-size", help=field_help(BCConfig, "batch_size"),
                                                 show_default=False),
        lr: Optional[float] = typer.Option(None, "--lr", help=field_help(BCConfig, "lr"), show_default=False),
        hidden: Optional[str] = typer.Option(None, "--hidden",
                                             help=field_help(BCConfig, "hidden_sizes"), show_default=False),
        val_fraction: Optional[float] = typer.Option(None, "--val-fraction", help=field_help(BCConfig, "val_fraction"),
                                                     show_default=False),
        eval_every: Optional[int] = typer.Option(None, "--eval-every", help=field_help(BCConfig, "eval_every"),
                                                 show_default=False),
        eval_episodes: Optional[int] = typer.Option(None, "--eval-episodes", help=field_help(BCConfig, "eval_episodes"),
                                                    show_default=False),
        stop_value: Optional[float] = typer.Option(None, "--stop-value", help=field_help(BCConfig, "stop_value"),
                                                   show_default=False),
        seed: Optional[int] = typer.Option(None, "--seed", help=field_help(BCConfig, "seed"), show_default=False),
        out: Optional[Path] = typer.Option(None, "--out", help="policy checkpoint to write "
                                           "(default: policies/<dataset-stem>-bc.pt)", show_default=False),
        device: Optional[str] = typer.Option(None, "--device", help=field_help(BCConfig, "device"), show_default=False),
        loss: Optional[str] = typer.Option(None, "--loss", help=field_help(BCConfig, "loss"), show_default=False),
        stream: Optional[bool] = typer.Option(None, "--stream/--in-memory", help=field_help(BCConfig, "stream"),
                                              show_default=False),
        max_memory: Optional[float] = typer.Option(None, "--max-memory", help=field_help(BCConfig, "max_memory_mb"),
                                                 show_default=False),
        workers: Optional[int] = typer.Option(None, "--workers", help=field_help(BCConfig, "workers"),
                                              show_default=False),
        history: Optional[int] = typer.Option(None, "--history", help=field_help(BCConfig, "history"),
                                              show_default=False),
        encoder: Optional[str] = typer.Option(None, "--encoder", help=field_help(BCConfig, "encoder"),
                                              show_default=False),
        aux_state: Optional[float] = typer.Option(None, "--aux-state", metavar="WEIGHT",
                                                  help=field_help(BCConfig, "aux_state"), show_default=False),
        state_head: Optional[str] = typer.Option(None, "--state-head", metavar="none|state|features+state",
                                                 help=field_help(BCConfig, "state_head"), show_default=False),
        keep_best: Optional[bool] = typer.Option(None, "--keep-best/--keep-last", help=field_help(BCConfig, "keep_best"),
                                                 show_default=False),
        state_head_fit: Optional[str] = typer.Option(None, "--state-head-fit", metavar="end_to_end|recorded|estimated",
                                                     help=field_help(BCConfig, "state_head_fit"),
                                                     show_default=False),
        normalize_obs: Optional[bool] = typer.Option(None, "--normalize-obs/--no-normalize-obs",
                                                     help=field_help(BCConfig, "normalize_obs"), show_default=False),
        obs_noise: Optional[float] = typer.Option(None, "--obs-noise", help=field_help(BCConfig, "obs_noise"),
                                                  show_default=False),
        weight_decay: Optional[float] = typer.Option(None, "--weight-decay", help=field_help(BCConfig, "weight_decay"),
                                                     show_default=False),
        lr_schedule: Optional[str] = typer.Option(None, "--lr-schedule", help=field_help(BCConfig, "lr_schedule"),
                                                  show_default=False),
        ensemble: Optional[int] = typer.Option(None, "--ensemble", metavar="N", help=field_help(BCConfig, "ensemble"),
                                               show_default=False),
        run_dir: Optional[str] = typer.Option(None, "--run-dir", help=RUN_DIR_HELP, show_default=False),
        run_name: Optional[str] = typer.Option(None, "--run-name", help=RUN_NAME_HELP, show_default=False),
        overwrite: bool = typer.Option(False, "--overwrite", help=OVERWRITE_HELP),
        tensorboard: Optional[str] = typer.Option(None, "--tensorboard", help="TensorBoard log directory of the "
                                                  "metrics rows (needs `pip install tensorboard`)", show_default=False),
        force: bool = typer.Option(False, "--force", help="replace --out even when it is not a checkpoint"),
        json_out: bool = typer.Option(False, "--json", help="print the result as one JSON object (last line)"),
    ) -> None:
        """Behavioral cloning: train a policy on a dataset's (observation, action) pairs.

        Runs under torchrun too (DistributedDataParallel; effective batch = --batch-size x processes).
        """
        from demokit.cli.output import emit_json
        from demokit.il.bc import train_bc
        from demokit.il.distributed import launched_by_torchrun

        distributed = launched_by_torchrun()  # the command joins torchrun's process group; train_bc never guesses
        main_rank = _is_main_rank()
        check_seed(seed)
        check_hidden(hidden)
        check_input_path(dataset, what="dataset")
        target = str(check_output_path(out if out is not None else default_bc_out(dataset), kind="checkpoint",
                                       inputs=[dataset], force=force))
        overrides: dict[str, Any] = {"env_id": env, "epochs": epochs, "batch_size": batch_size, "lr": lr,
                                     "hidden_sizes": hidden, "val_fraction": val_fraction, "eval_every": eval_every,
                                     "eval_episodes": eval_episodes, "stop_value": stop_value, "seed": seed,
                                     "device": device, "loss": loss, "out": target, "stream": stream,
                                     "max_memory_mb": max_memory, "workers": workers, "history": history,
                                     "force": force, "encoder": encoder, "aux_state": aux_state,
                                     "state_head": state_head, "state_head_fit": state_head_fit,
                                     "keep_best": keep_best,
                                     "obs_noise": obs_noise, "normalize_obs": normalize_obs, "weight_decay": weight_decay,
                                     "lr_schedule": lr_schedule, "ensemble": ensemble}
        if not main_rank:
            train_bc(dataset, None, distributed=distributed, **overrides)
            return
        run = bc_run_folder(dataset, overrides, run_dir=run_dir, run_name=run_name, overwrite=overwrite,
                            tensorboard=tensorboard)
        with run, LazyProgress("bc-train", epochs or 0) as progress:

            def on_epoch(rec: dict) -> None:
                line = (f"epoch {rec['epoch']}: return {rec['eval_mean']:.1f} ± {rec['eval_std']:.1f}"
                        if "eval_mean" in rec else None)
                progress.update(rec["epoch"], info=bc_progress_text(rec), line=line, total=rec["max_epochs"])
                run.log_row(epoch_row(rec))

            result = train_bc(dataset, None, callback=on_epoch, distributed=distributed, **overrides)
            summary = {**result.summary(), "run_dir": str(run.path)}
            defaults_line = None
            if result.checkpoint is not None:
                from demokit.il.bc import describe_defaults
                from demokit.policies import load_checkpoint

                written = load_checkpoint(result.checkpoint)
                run.update_config(resolved=written.training.get("config"))
                defaults_line = describe_defaults(written.env_id or "the env", result.tuned_defaults)
            run.finish(summary, checkpoint=result.checkpoint)
        if json_out:
            emit_json(summary)
        else:
            state = "converged" if result.converged else "did not reach the stop value"
            print(f"wrote {result.checkpoint}: return {_fmt(result.mean_return)} ± {_fmt(result.std_return)} "
                  f"after {result.epochs} epochs ({state}); {result.samples_per_s:,.0f} samples/s, "
                  f"{result.wall_s:.1f} s")
            if defaults_line:
                print(defaults_line)

    @app.command("dagger", help=DAGGER_HELP)
    def dagger(
        expert: Path = typer.Option(..., "--expert", help="expert policy checkpoint", show_default=False),
        env: Optional[str] = typer.Option(None, "--env", help=field_help(DAggerConfig, "env_id"), show_default=False),
        rounds: Optional[int] = typer.Option(None, "--rounds",
                                             help=field_help(DAggerConfig, "rounds"), show_default=False),
        episodes_per_round: Optional[int] = typer.Option(None, "--episodes-per-round",
                                                         help=field_help(DAggerConfig, "episodes_per_round"),
                                                         show_default=False),
        beta_schedule: Optional[str] = typer.Option(None, "--beta-schedule",
                                                    help=field_help(DAggerConfig, "beta_schedule"),
                                                    show_default=False),
        epochs: Optional[int] = typer.Option(None, "--epochs",
                                             help=field_help(DAggerConfig, "epochs"), show_default=False),
        batch_size: Optional[int] = typer.Option(None, "--batch-size", help=field_help(DAggerConfig, "batch_size"),
                                                 show_default=False),
        lr: Optional[float] = typer.Option(None, "--lr", help=field_help(DAggerConfig, "lr"), show_default=False),
        hidden: Optional[str] = typer.Option(None, "--hidden", help=field_help(DAggerConfig, "hidden_sizes"),
                                             show_default=False),
        encoder: Optional[str] = typer.Option(None, "--encoder", help=field_help(DAggerConfig, "encoder"),
                                              show_default=False),
        ensemble: Optional[int] = typer.Option(None, "--ensemble", metavar="N",
                                               help=field_help(DAggerConfig, "ensemble"), show_default=False),
        eval_episodes: Optional[int] = typer.Option(None, "--eval-episodes",
                                                    help=field_help(DAggerConfig, "eval_episodes"),
                                                    show_default=False),
        keep_best: Optional[bool] = typer.Option(None, "--keep-best/--keep-last",
                                                 help=field_help(DAggerConfig, "keep_best"), show_default=False),
        seed: Optional[int] = typer.Option(None, "--seed", help=field_help(DAggerConfig, "seed"), show_default=False),
        device: Optional[str] = typer.Option(None, "--device",
                                             help=field_help(DAggerConfig, "device"), show_default=False),
        out: Optional[Path] = typer.Option(None, "--out", help="final policy checkpoint "
                                           "(default: policies/<env>-dagger.pt)", show_default=False),
        dataset_out: Optional[Path] = typer.Option(None, "--dataset-out", help="aggregated dataset "
                                                   "(default: datasets/<env>-dagger.h5)", show_default=False),
        demonstrations: Optional[Path] = typer.Option(None, "--demonstrations",
                                                      help=field_help(DAggerConfig, "demonstrations"),
                                                      show_default=False),
        force: bool = typer.Option(False, "--force", help="replace an existing --dataset-out (and an --out that "
                                                          "is not a checkpoint)"),
        run_dir: Optional[str] = typer.Option(None, "--run-dir", help=RUN_DIR_HELP, show_default=False),
        run_name: Optional[str] = typer.Option(None, "--run-name", help=RUN_NAME_HELP, show_default=False),
        overwrite: bool = typer.Option(False, "--overwrite", help=OVERWRITE_HELP),
        tensorboard: Optional[str] = typer.Option(None, "--tensorboard", help="TensorBoard log directory of the "
                                                  "metrics rows (needs `pip install tensorboard`)", show_default=False),
        json_out: bool = typer.Option(False, "--json", help="print the result as one JSON object (last line)"),
    ) -> None:
        """DAgger: roll out expert/learner mixtures, label every state with the expert, retrain BC."""
        from demokit.cli.output import emit_json
        from demokit.devices import resolve_device
        from demokit.errors import UserError
        from demokit.il.dagger import train_dagger
        from demokit.policies import load_checkpoint

        check_seed(seed)
        check_hidden(hidden)
        if device is not None:
            resolve_device(device)  # before anything is written (no CUDA: refused here)
        env_id = env or load_checkpoint(expert).env_id
        if not env_id:
            raise UserError(f"checkpoint {expert} does not name its env; pass --env ENV")
        default_out, default_data = default_dagger_paths(env_id)
        if demonstrations is not None:
            check_input_path(demonstrations, what="--demonstrations")
        out = check_output_path(out or default_out, kind="checkpoint", inputs=[expert, demonstrations], force=force)
        dataset_out = check_output_path(dataset_out or default_data, kind="dataset",
                                        inputs=[expert, out, demonstrations], force=force, what="--dataset-out")
        if out is not None and dataset_out is not None and out == dataset_out:
            raise UserError(f"--out and --dataset-out are the same file ({out}); give them different paths")
        overrides: dict[str, Any] = {
            "expert": str(expert), "env_id": env_id, "rounds": rounds, "episodes_per_round": episodes_per_round,
            "beta_schedule": beta_schedule, "epochs": epochs, "batch_size": batch_size, "lr": lr,
            "hidden_sizes": hidden, "encoder": encoder, "ensemble": ensemble, "eval_episodes": eval_episodes,
            "keep_best": keep_best, "seed": seed,
            "device": device, "out": str(out or default_out), "dataset_out": str(dataset_out or default_data), "overwrite": force,
            "demonstrations": None if demonstrations is None else str(demonstrations)}
        total = rounds if rounds is not None else DAggerConfig().rounds
        from demokit.envs import reward_threshold

        run = RunFolder("dagger", env_id, config=overrides, run_dir=run_dir, name=run_name, overwrite=overwrite,
                        tensorboard=tensorboard or False,
                        info={"algo": "dagger", "reward_threshold": reward_threshold(env_id),
                              "expert": str(expert)})
        with run, LazyProgress("dagger", total) as progress:

            def on_round(rec: dict) -> None:
                run.log_row({**{k: v for k, v in rec.items() if k not in ("mean_return", "std_return")},
                             "step": rec["round"], "eval_return": rec["mean_return"],
                             "eval_return_std": rec["std_return"]})
                progress.update(rec["round"] + 1, info=f"beta {rec['beta']:.2f}  return {_fmt(rec['mean_return'])}",
                                line=f"round {rec['round']}: beta {rec['beta']:.2f}, rollout return "
                                f"{rec['rollout_return']:.1f}, {rec['dataset_steps']} labelled steps, "
                                f"BC return {_fmt(rec['mean_return'])} ± {_fmt(rec['std_return'])}")

            result = train_dagger(None, callback=on_round, **overrides)
            summary = {**result.summary(), "run_dir": str(run.path)}
            run.finish(summary, checkpoint=result.checkpoint)
        if json_out:
            emit_json(summary)
        else:
            chosen = (f" (round {result.chosen_round}'s policy, the best evaluated)"
                      if keep_best and result.chosen_round != len(result.rounds) - 1 else "")
            print(f"wrote {result.checkpoint} and {result.dataset}: return {_fmt(result.mean_return)} ± "
                  f"{_fmt(result.std_return)} after {len(result.rounds)} rounds{chosen}; {result.wall_s:.1f} s")
