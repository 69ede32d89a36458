"""Expert training: PPO, DQN and SAC on Gymnasium 1.x vector envs.

Plain use: ``train_expert({"env_id": "CartPole-v1", "algo": "ppo"})``. Outer loops
(GAIL) drive ``PPOTrainer`` (``collect_rollout`` / ``update(rollout, rewards=...)``) or
``DQNTrainer`` / ``SACTrainer`` (``collect`` / ``train_steps(n, reward_fn=...)``) round by round.
Tuned per-env settings: ``demokit.rl.hyperparams.TUNED`` / ``tuned_config``.
"""

from demokit.rl.buffers import ReplayBuffer, Rollout
from demokit.rl.common import TrainResult
from demokit.rl.dqn import DQNConfig, DQNTrainer, double_dqn_targets
from demokit.rl.expert import EvalConfig, ExpertConfig, default_out, evaluate_checkpoint, train_expert
from demokit.rl.gae import compute_gae
from demokit.rl.hyperparams import TUNED, tuned_config
from demokit.rl.ppo import PPOConfig, PPOTrainer, clipped_surrogate_loss, value_loss
from demokit.rl.sac import SACConfig, SACTrainer

__all__ = ["DQNConfig", "DQNTrainer", "EvalConfig", "ExpertConfig", "evaluate_checkpoint", "PPOConfig", "PPOTrainer",
           "ReplayBuffer", "Rollout", "SACConfig", "SACTrainer", "TUNED",
           "TrainResult", "clipped_surrogate_loss", "compute_gae", "default_out",
           "double_dqn_targets", "train_expert", "tuned_config", "value_loss"]
