"""A reward model in "a user's package": registered when this module is imported (by an entry point)."""

from __future__ import annotations

from typing import Any

import torch

from demokit.reward_models import BaseRewardModel, register_reward_model, with_rewards


@register_reward_model("plugin_constant_test")
class ConstantReward(BaseRewardModel):
    """Reward 1 for everything (written to seed 002's contract only)."""

    def __init__(self, config: Any, device: Any, tb_logger: Any) -> None:
        self.config = dict(config)

    def estimate(self, data: Any) -> Any:
        return with_rewards(data, torch.ones(len(data["obs"])))

    def train(self) -> None:
        return None

    def collect_data(self, data: Any) -> None:
        return None

    def clear_data(self, iter: int | None = None) -> None:
        return None
