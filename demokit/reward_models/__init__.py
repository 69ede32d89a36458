"""Reward models (inverse RL): the BaseRewardModel contract, the registry and GAIL.

>>> from demokit.reward_models import create_reward_model
>>> rm = create_reward_model({"type": "gail", "expert_data_path": "datasets/cartpole-v1-expert.h5"}, "auto", None)
"""

from demokit.reward_models.base import BaseRewardModel, Transitions, as_batch, with_rewards
from demokit.reward_models.registry import create_reward_model, register_reward_model, registered_reward_models
from demokit.reward_models.gail import (  # noqa: E402  (registers "gail")
    EXPERT_LABEL,
    POLICY_LABEL,
    REWARD_FORMS,
    Discriminator,
    GailConfig,
    GailRewardModel,
    gail_config,
    logits_expert_is_one_loss,
    reward_from_logits,
)

__all__ = ["BaseRewardModel", "Discriminator", "EXPERT_LABEL", "GailConfig", "GailRewardModel", "POLICY_LABEL",
           "REWARD_FORMS", "Transitions", "as_batch", "create_reward_model", "gail_config", "logits_expert_is_one_loss",
           "register_reward_model", "registered_reward_models", "reward_from_logits", "with_rewards"]
