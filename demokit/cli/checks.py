"""Checks of command-line values that must hold before a command starts any work.

Each raises :class:`~demokit.errors.UserError` (one ``error:`` line, exit 2) naming the
option, the value and the allowed range, so a long run never fails at its end on a value
that could have been refused at its start. Also the help texts of options that several
commands share (``--state``).
"""

from __future__ import annotations

import os

from demokit.errors import UserError

#: seeds are stored as int64 (episode seeds, checkpoints' configs) and passed to numpy/torch
MAX_SEED = 2**63 - 1
#: the widest hidden layer a command accepts (a 16384x16384 float32 layer is already 1 GiB)
MAX_HIDDEN = 16384
#: the most parallel envs of one process
MAX_NUM_ENVS = 1024
#: DEMOKIT_THREADS: the largest torch thread count accepted
MAX_THREADS = 1024


def check_seed(seed: int | None, *, what: str = "--seed", count: int = 1) -> None:
    """``seed`` .. ``seed + count - 1`` must all lie in [0, 2**63 - 1]."""
    if seed is None:
        return
    if seed < 0:
        raise UserError(f"{what} must be a non-negative integer, got {seed}")
    if seed + max(int(count), 1) - 1 > MAX_SEED:
        span = "" if count <= 1 else f" (episode k is reset with seed + k, up to seed + {count - 1})"
        raise UserError(f"{what} {seed} is too large{span}: seeds must stay below 2**63 = {MAX_SEED + 1}")


def check_hidden(hidden: str | None, *, what: str = "--hidden") -> None:
    """Comma-separated positive widths, each at most :data:`MAX_HIDDEN`."""
    if hidden is None:
        return
    parts = [p for p in hidden.replace(" ", "").split(",") if p]
    try:
        widths = [int(p) for p in parts]
    except ValueError:
        raise UserError(f"{what} must be comma-separated integer layer widths such as 64,64, got {hidden!r}") from None
    if not widths or any(w < 1 for w in widths):
        raise UserError(f"{what} must be positive layer widths such as 64,64, got {hidden!r}")
    if max(widths) > MAX_HIDDEN:
        raise UserError(f"{what} {hidden}: a layer of {max(widths):,} units is too wide (at most {MAX_HIDDEN:,})")


def check_num_envs(num_envs: int | None, *, what: str = "--num-envs") -> None:
    if num_envs is None:
        return
    if not 1 <= num_envs <= MAX_NUM_ENVS:
        raise UserError(f"{what} must be between 1 and {MAX_NUM_ENVS}, got {num_envs}")


def threads_from_env(environ: dict[str, str] | os._Environ[str] = os.environ) -> int | None:
    """The torch thread count asked for by ``DEMOKIT_THREADS`` (None: unset)."""
    text = environ.get("DEMOKIT_THREADS")
    if text is None or text.strip() == "":
        return None
    try:
        n = int(text.strip())
    except ValueError:
        raise UserError(f"DEMOKIT_THREADS must be a positive integer (torch threads), got {text!r}") from None
    if not 1 <= n <= MAX_THREADS:
        raise UserError(f"DEMOKIT_THREADS must be between 1 and {MAX_THREADS}, got {n}")
    return n


def state_help(*, reward_models: bool) -> str:
    """The help of ``--state`` (train-expert, gail, irl), naming the learners (and reward models) that have
    a training state to save."""
    from demokit.rl.registry import resumable_learners

    learners = resumable_learners()
    text = ("a long run that survives being stopped: the whole training state (networks, optimisers, replay "
            f"buffer{', reward model' if reward_models else ''}, random streams) is saved to PATH every "
            "--state-every env steps, at the budget's end and on Ctrl-C / SIGTERM, and a run given an existing "
            "PATH continues from it (the same settings; the envs start fresh episodes). Learners with a training "
            f"state: {', '.join(learners) or 'none'}")
    if reward_models:
        from demokit.reward_models import BaseRewardModel, reward_model_class
        from demokit.reward_models.registry import registered_reward_models

        able = [n for n in registered_reward_models()
                if reward_model_class(n).training_state is not BaseRewardModel.training_state]
        text += f"; reward models with one: {', '.join(able) or 'none'}"
    return text


STATE_EVERY_HELP = "env steps between saves of --state"
