"""Reward models (inverse RL): the BaseRewardModel contract, the registry and GAIL.

>>> from demokit.reward_models import create_reward_model
>>> rm = create_reward_model({"type": "gail", "expert_data_path": "datasets/cartpole-v1-expert.h5"}, "auto", None)

The built-in models are imported (and so registered) here, not by the registry.
"""

from demokit.reward_models.base import (
    DI_ENGINE_KEYS,
    LEARNER_FACTS,
    BaseRewardModel,
    Transitions,
    as_batch,
    as_transition_batch,
    with_rewards,
)
from demokit.reward_models.registry import (
    create_reward_model,
    register_reward_model,
    registered_reward_models,
    reward_model_class,
)
from demokit.reward_models.gail import (  # registers "gail"
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
from demokit.transitions import TransitionBatch

__all__ = ["BaseRewardModel", "DI_ENGINE_KEYS", "Discriminator", "EXPERT_LABEL", "GailConfig", "GailRewardModel",
           "LEARNER_FACTS", "POLICY_LABEL", "REWARD_FORMS", "TransitionBatch", "Transitions", "as_batch",
           "as_transition_batch", "create_reward_model", "gail_config", "logits_expert_is_one_loss",
           "register_reward_model", "registered_reward_models", "reward_from_logits", "reward_model_class",
           "with_rewards"]
