"""`demokit irl --reward-model NAME`: inverse RL with any registered reward model (and `demokit gail`'s body).

One implementation for both commands (:func:`run_irl_command`): `demokit gail` is
`demokit irl --reward-model gail`. Writes ``policies/<dataset-stem>-<model>-<algo>.pt``
unless ``--out`` says otherwise: an ordinary policy checkpoint (algo ``<model>-<learner>``,
the reward model's state in ``extra["reward_model"]``) that ``demokit eval`` and
``demokit collect`` accept.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any, Optional

import typer

from demokit.cli.checks import STATE_EVERY_HELP, state_help
from demokit.config import field_help
from demokit.rl.common import STATE_EVERY, check_state_path
from demokit.runs import OVERWRITE_HELP, RUN_DIR_HELP, RUN_NAME_HELP


def default_irl_out(dataset_path: str, reward_model: str, algo: str) -> Path:
    """policies/<dataset-stem>-<reward model>-<algo>.pt"""
    return Path("policies") / f"{Path(dataset_path).stem}-{reward_model}-{algo}.pt"


def run_irl_command(reward_model: str, *, command: str, expert: str, env: str | None, algo: str | None,
                    timesteps: int | None, seed: int, device: str | None, out: Path | None, tensorboard: str | None,
                    force: bool, run_dir: str | None, run_name: str | None, overwrite: bool, json_out: bool,
                    settings: list[str] | None = None, state: Path | None = None,
                    state_every: int = STATE_EVERY) -> None:
    """Check everything, train ``reward_model`` + the learner, write the checkpoint and the run folder, print.
    ``settings``: the ``--set`` pairs (``rl.KEY=VALUE``, ``reward_model.KEY=VALUE``, top-level IRLConfig keys);
    ``state``: the training state to save every ``state_every`` env steps and to continue from when it exists."""
    from demokit.cli.output import LazyProgress, emit_json, out_console
    from demokit.config import from_mapping, to_dict
    from demokit.devices import resolve_device
    from demokit.envs import reward_threshold
    from demokit.paths import check_output_path
    from demokit.pipelines.reward_model import (IRLConfig, check_resumable, expert_dataset_and_env, resolve_learner,
                                                run_irl)
    from demokit.progress import training_progress_text
    from demokit.reward_models import reward_model_class
    from demokit.runs import RunFolder, final_row

    reward_model_class(reward_model)  # an unknown name lists the registered ones
    extra = irl_settings(settings or ())
    cfg = from_mapping(IRLConfig, {**extra, "expert_data_path": expert,
                                   "reward_model": {**extra.get("reward_model", {}), "type": reward_model}},
                       env_id=env, algo=algo, total_timesteps=timesteps, device=device)  # an unknown --algo lists the learners
    resolve_device(cfg.device)
    dataset, env_id = expert_dataset_and_env(cfg)  # a bad dataset or mismatched spaces: error before training
    spec = resolve_learner(cfg, dataset, env_id)  # a learner that does not fit: error before training
    name = spec.name
    target = str(out if out is not None else default_irl_out(expert, reward_model, name))
    target = str(check_output_path(target, kind="checkpoint", inputs=[expert], force=force))
    if state is not None:  # checked here too, so that a refusal writes no run folder
        check_resumable(spec, reward_model_class(reward_model))
        check_state_path(state, state_every, out=target, inputs=(expert,), what="--state", out_what="--out checkpoint")
    returns = dataset.episode_returns
    run = RunFolder(command, env_id, config={**to_dict(cfg), "seed": seed, "out": target}, run_dir=run_dir,
                    name=run_name, overwrite=overwrite, tensorboard=tensorboard or False,
                    info={"algo": f"{reward_model}-{name}", "reward_threshold": reward_threshold(env_id),
                          "expert_return": float(returns.mean()) if returns is not None and len(returns) else None})

    def report(info: dict[str, Any]) -> None:  # the env's return: the learner trains on the model's reward
        run.progress(info)
        progress.update(int(info["env_steps"]), total=int(info["total_timesteps"]),
                        info=training_progress_text(info, return_label="env return"))

    with run, LazyProgress(f"{reward_model}-{name} {env_id}") as progress:
        resume = {} if state is None else {"state_path": state, "state_every": state_every}
        result = run_irl(cfg, seed, algo=name, tb_logger=run, out=target, force=force, progress=report, **resume)
        figures = {**result.as_dict(), "run_dir": str(run.path)}
        run.finish(figures, checkpoint=result.checkpoint,
                   final_row=final_row(result.env_steps, result.mean_return, result.std_return))
    if json_out:
        emit_json(figures)
    else:
        goal = "reached" if result.converged else "not reached"
        out_console.print(f"{result.algo} {result.env_id}: mean return {result.mean_return:.2f} +/- "
                          f"{result.std_return:.2f} (goal {goal}) after {result.env_steps} env steps in "
                          f"{result.wall_s:.1f} s -> {result.checkpoint}")


#: IRLConfig keys with their own option (``--set`` refuses them)
FLAG_KEYS = {"expert_data_path": "--expert", "env_id": "--env", "algo": "--algo", "total_timesteps": "--timesteps",
             "device": "--device"}
SET_HELP = ("a setting over the defaults (repeatable): rl.KEY=VALUE for the learner (its config's keys, e.g. "
            "rl.batch_size=64), reward_model.KEY=VALUE for the reward model (e.g. reward_model.grad_penalty=1), or "
            "stop_value=VALUE; VALUE as JSON or text")

def irl_settings(pairs: Iterable[str]) -> dict[str, Any]:
    """``--set`` pairs as IRLConfig keys; a key with its own option, the reward model's ``type``, or a bare key
    that is not IRLConfig's (with the ``rl.`` / ``reward_model.`` form to use) is a ConfigError."""
    import dataclasses

    from demokit.config import parse_settings
    from demokit.errors import ConfigError
    from demokit.pipelines.reward_model import IRLConfig

    extra = parse_settings(pairs, sections=("rl", "reward_model"))
    names = {f.name for f in dataclasses.fields(IRLConfig)}
    for key in extra:
        if key in FLAG_KEYS:
            raise ConfigError(f"--set {key}: use {FLAG_KEYS[key]}")
        if key in ("rl", "reward_model") and not isinstance(extra[key], dict):
            raise ConfigError(f"--set {key}: give its keys one by one, e.g. --set {key}.KEY=VALUE")
        if key not in names:
            plain = sorted(names - set(FLAG_KEYS) - {"rl", "reward_model"})
            raise ConfigError(f"--set {key}: not a top-level setting ({', '.join(plain)}); "
                              f"a learner setting is --set rl.{key}=..., a reward-model one --set reward_model.{key}=...")
    if "type" in extra.get("reward_model", {}):
        raise ConfigError("--set reward_model.type: choose the reward model with `demokit irl --reward-model NAME`")
    return extra


def register_irl_command(app: typer.Typer, command: str, reward_model: str | None = None) -> None:
    """Register ``demokit <command>``: with ``reward_model`` None it takes ``--reward-model NAME`` (demokit irl),
    else it trains that model (demokit gail). One definition of the options for both."""
    from demokit.pipelines.reward_model import IRLConfig
    from demokit.reward_models import registered_reward_models
    from demokit.rl.registry import learner_help

    default_out = f"policies/<dataset>-{reward_model or '<reward model>'}-<algo>.pt"
    model_option = (typer.Option(..., "--reward-model", help="registered reward model: "
                                 + ", ".join(registered_reward_models()) + " (and any a package registers)")
                    if reward_model is None else typer.Option(reward_model, "--reward-model", hidden=True))

    def command_fn(
        reward_model_name: str = model_option,
        expert: str = typer.Option(..., "--expert", help=field_help(IRLConfig, "expert_data_path")),
        env: Optional[str] = typer.Option(None, "--env", help=field_help(IRLConfig, "env_id")),
        algo: Optional[str] = typer.Option(None, "--algo", help=learner_help() + " (default: the reward model's "
                                                                                 "choice for the env, else the "
                                                                                 "first that fits)"),
        timesteps: Optional[int] = typer.Option(None, "--timesteps", help=field_help(IRLConfig, "total_timesteps")),
        seed: int = typer.Option(0, "--seed", help="seed of everything (envs, policy, reward model)", min=0,
                                 max=2**63 - 1),
        device: Optional[str] = typer.Option(None, "--device", help=field_help(IRLConfig, "device")),
        out: Optional[Path] = typer.Option(None, "--out", help=f"policy checkpoint to write (default: {default_out})"),
        tensorboard: Optional[str] = typer.Option(None, "--tensorboard", help="TensorBoard log directory (needs "
                                                                              "`pip install tensorboard`)"),
        force: bool = typer.Option(False, "--force", help="replace --out even when it is not a checkpoint"),
        run_dir: Optional[str] = typer.Option(None, "--run-dir", help=RUN_DIR_HELP),
        run_name: Optional[str] = typer.Option(None, "--run-name", help=RUN_NAME_HELP),
        overwrite: bool = typer.Option(False, "--overwrite", help=OVERWRITE_HELP),
        json_out: bool = typer.Option(False, "--json", help="print the result as one JSON object (last stdout line)"),
        settings: Optional[list[str]] = typer.Option(None, "--set", metavar="KEY=VALUE", help=SET_HELP),
        state: Optional[Path] = typer.Option(None, "--state", metavar="PATH", help=state_help(reward_models=True)),
        state_every: int = typer.Option(STATE_EVERY, "--state-every", min=1, help=STATE_EVERY_HELP),
    ) -> None:
        if reward_model is not None and reward_model_name != reward_model:
            from demokit.errors import UserError
            raise UserError(f"demokit {command} trains {reward_model}; for {reward_model_name} use "
                            f"`demokit irl --reward-model {reward_model_name}`")
        run_irl_command(reward_model_name, command=command, expert=expert, env=env, algo=algo, timesteps=timesteps,
                        seed=seed, device=device, out=out, tensorboard=tensorboard, force=force, run_dir=run_dir,
                        run_name=run_name, overwrite=overwrite, json_out=json_out, settings=settings, state=state,
                        state_every=state_every)

    what = "a registered reward model" if reward_model is None else {"gail": "a discriminator"}.get(
        reward_model, f"the {reward_model} reward model")
    title = "Inverse RL" if reward_model is None else reward_model.upper()
    command_fn.__doc__ = (f"{title}: learn a policy from expert demonstrations with {what} as the reward.\n\n"
                          "The env's reward is never used for training; its return is shown for monitoring "
                          "and training stops once the deterministic evaluation reaches the env's "
                          "reward_threshold (or the budget is spent).")
    app.command(command)(command_fn)


def register(app: typer.Typer) -> None:
    register_irl_command(app, "irl")
