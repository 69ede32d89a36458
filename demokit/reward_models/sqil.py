"""SQIL (Reddy, Dragan & Levine, 2020): soft Q imitation learning, i.e. RL with constant rewards.

Expert transitions carry reward **1**, the policy's own transitions reward **0**, and the
off-policy learner's every minibatch is **balanced**: a fraction ``expert_fraction``
(0.5, the paper's) of its rows are expert transitions drawn uniformly from the
demonstrations, the rest come from the replay buffer as usual.

How it plugs into the trainers' hook without a type branch: the model declares
``supplied_fraction`` (> 0) and :meth:`SqilRewardModel.supply_transitions` ``(n)``; an
off-policy trainer replaces that share of each sampled minibatch with the supplied
transitions and their rewards (``BaseTrainer.mix_supplied_transitions``). ``estimate``
gives every (policy) transition reward 0. SQIL needs a replay buffer (``needs = {"replay"}``):
an on-policy learner is refused before training.

Sign and scale: rewards are in {0, 1}; with the learner's discount the values of
expert-like states approach ``1 / (1 - gamma)``. SQIL learns nothing from the env
reward and has no trainable reward model (``train`` returns {}).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from demokit.config import option
from demokit.data.dataset import DemoDataset
from demokit.devices import resolve_device
from demokit.errors import ConfigError
from demokit.reward_models.base import BaseRewardModel, Transitions, num_transitions
from demokit.reward_models.expert import check_positive, check_type, expert_data_for, model_config, relabel
from demokit.reward_models.registry import register_reward_model
from demokit.seeding import derive_seed
from demokit.transitions import TransitionBatch

#: reward of an expert transition
EXPERT_REWARD = 1.0
#: reward of a policy transition
POLICY_REWARD = 0.0


@dataclass(frozen=True)
class SqilConfig:
    """Config of :class:`SqilRewardModel`."""

    type: str = option("sqil", "reward model type (registry name)")
    expert_data_path: str | None = option(None, "expert demonstrations: a demokit .h5 dataset")
    expert_fraction: float = option(0.5, "share of every training minibatch drawn from the expert data")
    collect_count: int | None = option(None, "use the first N expert transitions; unset: all")

    def __post_init__(self) -> None:
        check_type(self, "sqil")
        check_positive(self, "collect_count")
        if not 0.0 < self.expert_fraction < 1.0:
            raise ConfigError(f"SqilConfig.expert_fraction must be in (0, 1), got {self.expert_fraction}")


#: SQIL's own defaults per env and learner for the IRL pipelines, over the tuned RL table (measured: docs/benchmarks.md,
#: reward-model zoo, SQIL side by side with imitation). The tuned DQN row is made for RL from scratch, where
#: nothing is worth learning before the buffer holds rewards; SQIL's signal is the expert half of every minibatch,
#: there from the first step. CartPole-v1, seeds 0-4: learning from the first collection (learning_starts 1000 ->
#: 0), one gradient step per env step (128 per 128 instead of 128 per 256) and a goal check every 256 env steps
#: (2500) reached 475 after 515-775 env steps (was 2577-7722), every policy 495-500 over 100 fresh episodes.
SQIL_PIPELINE_DEFAULTS: dict[str, dict[str, dict[str, dict[str, Any]]]] = {
    "CartPole-v1": {"dqn": {"rl": {"learning_starts": 0, "train_freq": 128, "gradient_steps": 128,
                                   "eval_every": 256}}},
    # MountainCar-v0: plain DQN targets (max over the target net, as SB3's DQN under imitation's SQIL) instead of
    # double-DQN's: seeds 0-2 reached the goal after 15k / 15k / 20k env steps (were 30k / 60k / 20k; imitation's
    # SQIL with the same DQN row 10k / 15k / 15k); session 8, docs/benchmarks.md
    "MountainCar-v0": {"dqn": {"rl": {"double_q": False}}},
}


@register_reward_model("sqil")
class SqilRewardModel(BaseRewardModel):
    """SQIL's constant rewards and balanced replay (see the module docstring)."""

    config_class = SqilConfig
    needs = frozenset({"replay"})  # the pipelines' default learner is then the first off-policy one (dqn)
    pipeline_defaults = SQIL_PIPELINE_DEFAULTS

    @classmethod
    def parse_config(cls, config: Any) -> SqilConfig:
        return model_config(SqilConfig, config)

    def __init__(self, config: Mapping[str, Any] | SqilConfig, device: Any = "auto", tb_logger: Any = None, *,
                 seed: int = 0, expert_data: DemoDataset | None = None) -> None:
        self.cfg = self.parse_config(config)
        self.device = device if isinstance(device, torch.device) else resolve_device(str(device))
        self.tb_logger = tb_logger
        self.expert = expert_data_for(self.cfg, self.device, "SQIL", expert_data, self.cfg.collect_count)
        self._generator = torch.Generator(device=self.device)
        self._generator.manual_seed(derive_seed(seed, "sqil", "expert_batches"))
        #: share of each off-policy minibatch this model supplies (the trainers' hook reads it)
        self.supplied_fraction = float(self.cfg.expert_fraction)

    def supply_transitions(self, n: int) -> TransitionBatch:
        """``n`` expert transitions drawn uniformly (seeded), with reward 1."""
        index = torch.randint(len(self.expert), (int(n),), device=self.device, generator=self._generator)
        return self.expert.transitions(index, torch.full((int(n),), EXPERT_REWARD, device=self.device))

    def collect_data(self, data: Transitions) -> None:
        """Nothing to learn from policy data (the learner's replay buffer keeps it)."""

    def clear_data(self, iter: int | None = None) -> None:
        """Nothing is kept."""

    def train(self) -> dict[str, float]:
        """SQIL has no trainable reward."""
        return {}

    def estimate(self, data: Transitions) -> Transitions:
        """New data with every reward 0 (policy transitions); ``data`` is untouched."""
        return relabel(data, lambda d: torch.full((num_transitions(d),), POLICY_REWARD))

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The expert-sampling generator's state (so a resumed run draws the same batches)."""
        return {"generator": self._generator.get_state().clone()}

    def training_state(self) -> dict[str, Any]:
        """The same as :meth:`state_dict` (SQIL learns nothing; its expert sampling is its only state)."""
        return self.state_dict()

    def load_training_state(self, state: Mapping[str, Any]) -> None:
        self.load_state_dict(state)

    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        if "generator" in state:
            self._generator.set_state(state["generator"].to(torch.uint8).cpu())
