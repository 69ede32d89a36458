"""Learners: PPO, DQN and SAC on Gymnasium 1.x vector envs, behind one registry.

Plain use: ``train_expert({"env_id": "CartPole-v1", "algo": "ppo"})``. Every trainer
takes an optional reward model (inverse RL as a hook on any learner: see
``BaseTrainer``). Learners are registered here (one call each) and looked up with
``demokit.rl.registry.get_learner``; tuned per-env settings: ``demokit.rl.hyperparams``.
"""

from gymnasium import spaces

from demokit.rl.buffers import ReplayBuffer, Rollout
from demokit.rl.common import TrainResult
from demokit.rl.dqn import DQNConfig, DQNTrainer, double_dqn_targets
from demokit.rl.gae import compute_gae
from demokit.rl.ppo import PPOConfig, PPOTrainer, clipped_surrogate_loss, value_loss
from demokit.rl.registry import LearnerSpec, get_learner, learner_names, register_learner
from demokit.rl.sac import SACConfig, SACTrainer, check_sac_action_space

# -- the built-in learners: one registration each ------------------------------------------
register_learner("ppo", config=PPOConfig, trainer=PPOTrainer, off_policy=False,
                 action_spaces=(spaces.Discrete, spaces.Box), provides=("log_probs", "policy_log_probs"),
                 summary="PPO (clipped surrogate, GAE)")
register_learner("dqn", config=DQNConfig, trainer=DQNTrainer, off_policy=True, action_spaces=(spaces.Discrete,),
                 provides=("policy_log_probs",), budget_fractions=("exploration_fraction",),
                 summary="double DQN with a replay buffer")
register_learner("sac", config=SACConfig, trainer=SACTrainer, off_policy=True, action_spaces=(spaces.Box,),
                 provides=("policy_log_probs",), space_check=check_sac_action_space,
                 summary="soft actor-critic (bounded Box actions)")

from demokit.rl.expert import EvalConfig, ExpertConfig, default_out, evaluate_checkpoint, train_expert  # noqa: E402
from demokit.rl.hyperparams import TUNED, tuned_config  # noqa: E402

__all__ = ["DQNConfig", "DQNTrainer", "EvalConfig", "ExpertConfig", "LearnerSpec", "PPOConfig", "PPOTrainer",
           "ReplayBuffer", "Rollout", "SACConfig", "SACTrainer", "TUNED", "TrainResult", "clipped_surrogate_loss",
           "compute_gae", "default_out", "double_dqn_targets", "evaluate_checkpoint", "get_learner",
           "learner_names", "register_learner", "train_expert", "tuned_config", "value_loss"]
