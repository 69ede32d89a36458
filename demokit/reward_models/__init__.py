"""Reward models (inverse RL): the BaseRewardModel contract, the registry, GAIL, AIRL, SQIL, PWIL, RED, T-REX, D-REX.

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
from demokit.reward_models.airl import AirlConfig, AirlRewardModel  # registers "airl"
from demokit.reward_models.sqil import SqilConfig, SqilRewardModel  # registers "sqil"
from demokit.reward_models.pwil import PwilConfig, PwilRewardModel  # registers "pwil"
from demokit.reward_models.red import RedConfig, RedRewardModel  # registers "red"
from demokit.reward_models.trex import TrexConfig, TrexRewardModel  # registers "trex"
from demokit.reward_models.drex import DrexConfig, DrexRewardModel  # registers "drex"
from demokit.transitions import TransitionBatch

__all__ = ["AirlConfig", "AirlRewardModel", "DrexConfig", "DrexRewardModel", "PwilConfig", "PwilRewardModel",
           "RedConfig", "RedRewardModel", "SqilConfig", "SqilRewardModel", "TrexConfig", "TrexRewardModel",
           "BaseRewardModel", "DI_ENGINE_KEYS", "Discriminator", "EXPERT_LABEL", "GailConfig", "GailRewardModel",
           "LEARNER_FACTS", "POLICY_LABEL", "REWARD_FORMS", "TransitionBatch", "Transitions", "as_batch",
           "as_transition_batch", "create_reward_model", "gail_config", "logits_expert_is_one_loss",
           "register_reward_model", "registered_reward_models", "reward_from_logits", "reward_model_class",
           "with_rewards"]
