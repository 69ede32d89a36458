"""demokit: expert data and imitation learning on Gymnasium tasks.

One pipeline, one dataset format: train experts (PPO, DQN), collect their
demonstrations into HDF5 datasets, then learn from them with behavioral cloning,
DAgger or GAIL. The public names below are imported lazily.
"""

from __future__ import annotations

import importlib
from typing import Any

from demokit._version import __version__

_EXPORTS: dict[str, str] = {
    # data format
    "load_dataset": "demokit.data.dataset",
    "DemoDataset": "demokit.data.dataset",
    "DatasetWriter": "demokit.data.writer",
    "Episode": "demokit.data.episode",
    # policies and evaluation
    "Policy": "demokit.policies",
    "NeuralPolicy": "demokit.policies",
    "RandomPolicy": "demokit.policies",
    "load_policy": "demokit.policies",
    "load_checkpoint": "demokit.policies",
    "evaluate_policy": "demokit.evaluation",
    # experts
    "train_expert": "demokit.rl",
    # pipelines
    "collect_demo_data": "demokit.pipelines.collect",
    "serial_pipeline_il": "demokit.pipelines.il",
    "serial_pipeline_reward_model_offpolicy": "demokit.pipelines.reward_model",
    "serial_pipeline_reward_model_onpolicy": "demokit.pipelines.reward_model",
    # imitation learning
    "train_bc": "demokit.il",
    "train_dagger": "demokit.il",
    # reward models
    "BaseRewardModel": "demokit.reward_models",
    "GailRewardModel": "demokit.reward_models",
    "create_reward_model": "demokit.reward_models",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'demokit' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
