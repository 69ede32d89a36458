"""``serial_pipeline_il`` (and DI-engine's newer name ``serial_pipeline_bc``): behavioral cloning from a
dataset file, in the seeds' calling style.

    policy, converged = serial_pipeline_il({"env_id": "CartPole-v1"}, seed=314,
                                           data_path="datasets/cartpole-v1-expert.h5")

``config`` is a mapping (or a :class:`~demokit.il.BCConfig`) whose keys mirror
``demokit bc-train``'s options: env_id, epochs, batch_size, lr, hidden_sizes,
activation, loss, normalize_obs, val_fraction, eval_every, eval_episodes,
stop_value, device, out, num_threads. Every key is optional (env_id defaults to
the dataset's env); an unknown key raises :class:`~demokit.errors.ConfigError`.
``seed`` overrides ``config["seed"]`` when given (default 0). ``converged`` is True
once an evaluation reached ``stop_value`` (default: the env's reward_threshold).
No checkpoint is written unless ``config["out"]`` names one.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from demokit.data.dataset import DemoDataset
from demokit.errors import ConfigError
from demokit.il.bc import BCConfig, train_bc
from demokit.policies import NeuralPolicy


def serial_pipeline_il(config: Mapping[str, Any] | BCConfig | None = None, seed: int | None = None, *,
                       data_path: str | os.PathLike[str] | DemoDataset | None = None) -> tuple[NeuralPolicy, bool]:
    """Train BC on ``data_path``; returns ``(policy, converged)``."""
    if data_path is None:
        raise ConfigError("serial_pipeline_il needs data_path=... (a demokit .h5 dataset; collect one with "
                          "`demokit collect` or collect_demo_data)")
    result = train_bc(data_path, config, seed=seed)
    return result.policy, result.converged


def serial_pipeline_bc(config: Mapping[str, Any] | BCConfig | None = None, seed: int | None = None, *,
                       data_path: str | os.PathLike[str] | DemoDataset | None = None) -> tuple[NeuralPolicy, bool]:
    """DI-engine's current name of :func:`serial_pipeline_il` (renamed in 2022): the same call, the same result."""
    return serial_pipeline_il(config, seed, data_path=data_path)
