"""`demokit gail`: GAIL from an expert dataset, with any registered learner (PPO on-policy, DQN off-policy, ...).

`demokit irl --reward-model gail` under its historical name (one implementation:
:func:`demokit.cli.commands.irl.run_irl_command`). Writes
``policies/<dataset-stem>-gail-<algo>.pt`` unless ``--out`` says otherwise: an ordinary
policy checkpoint (algo ``gail-ppo`` / ``gail-dqn``, the discriminator's state in
``extra["reward_model"]``) that ``demokit eval`` and ``demokit collect`` accept.
"""

from __future__ import annotations

from pathlib import Path
import typer

from demokit.cli.commands.irl import default_irl_out, register_irl_command


def default_gail_out(dataset_path: str, algo: str) -> Path:
    """policies/<dataset-stem>-gail-<algo>.pt"""
    return default_irl_out(dataset_path, "gail", algo)


def register(app: typer.Typer) -> None:
    register_irl_command(app, "gail", "gail")
