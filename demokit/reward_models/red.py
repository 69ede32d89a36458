"""RED (Wang, Ciliberto, Amadori & Demiris, 2019): random expert distillation.

A fixed, randomly initialised target network ``f(s, a)`` (never trained) and a predictor
``f_hat(s, a)`` of the same shape trained to match it on the expert's state-action pairs
only (MSE). Off the expert's support the predictor has not learned the target, so the
prediction error is large there. The reward is

    r(s, a) = exp(-sigma * ||f(s, a) - f_hat(s, a)||^2)

Sign and scale: ``0 < r <= 1``, 1 where the predictor is exact. ``sigma`` is set from the
expert data after training (demokit's choice; the paper tunes it so the expert's reward
is close to 1 and falls off quickly): ``sigma = sigma_scale / mean expert error``, so a
typical expert pair earns ``exp(-sigma_scale)`` (``sigma_scale = 0.1``: 0.90) and a pair with
ten times the expert's mean error ``exp(-1)``. ``reward_form``: ``positive`` (default, the
paper's) pays for living longer (right for CartPole); ``negative`` pays ``r - 1`` in
``(-1, 0]`` (every step costs, least where expert-like: for tasks solved by ending the
episode; the per-env defaults, ``pipeline_defaults``, choose it where measured).

RED learns from the expert data alone: the first ``train()`` fits the predictor
(``train_steps`` Adam steps; ``pretrain_reward=True`` does it before RL) and later calls
change nothing. Inputs: expert-standardised observations and one-hot actions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from demokit.config import option
from demokit.data.dataset import DemoDataset
from demokit.devices import resolve_device
from demokit.errors import UserError
from demokit.policies.networks import make_adam, mlp
from demokit.reward_models.base import BaseRewardModel, Transitions
from demokit.reward_models.expert import (PENDULUM_STOP, BoundedForm, bounded_form, check_form, check_positive,
                                          check_type, expert_data_for, model_config, relabel)
from demokit.reward_models.registry import register_reward_model
from demokit.seeding import derive_seed


@dataclass(frozen=True)
class RedConfig:
    """Config of :class:`RedRewardModel`."""

    type: str = option("red", "reward model type (registry name)")
    expert_data_path: str | None = option(None, "expert demonstrations: a demokit .h5 dataset")
    hidden_dims: tuple[int, ...] = option((64, 64), "hidden widths of the target and the predictor (tanh)")
    output_dim: int = option(16, "width of the random features f(s, a)")
    batch_size: int = option(128, "expert pairs per predictor update")
    train_steps: int = option(3000, "predictor updates of the (one) fit")
    learning_rate: float = option(1e-3, "predictor Adam learning rate")
    sigma_scale: float = option(0.1, "sigma = sigma_scale / mean expert error (typical expert reward exp(-0.1))")
    collect_count: int | None = option(None, "use the first N expert transitions; unset: all")
    reward_form: BoundedForm = option("positive", "positive (exp(-sigma*err), in (0, 1]) or negative (that minus "
                                                  "1, in (-1, 0]: ending sooner pays)")

    def __post_init__(self) -> None:
        check_type(self, "red")
        check_form(self)
        check_positive(self, "output_dim", "batch_size", "train_steps", "learning_rate", "sigma_scale",
                       "collect_count")


#: RED's own defaults per env and learner for the IRL pipelines (measured, seed 0, 100 evaluation episodes:
#: docs/benchmarks.md, reward-model zoo). Acrobot-v1 is solved by ending the episode: the positive reward
#: kept PPO at -500 for 1M env steps; ``negative`` reached -85.2 (expert -86.0). With sigma_scale 0.1 the
#: states at rest (the start of every demonstration) cost ~0.04 a step and the swing-up ~0.11: discounted at
#: 0.99, stalling at rest forever (-4.4) was worth as much as swinging up (-4.0 to -5.3), and the greedy policy
#: of seed 2 stalled in 7 of 100 episodes (0.92). sigma_scale 1.0: stall -35.6, swing-up -24 to -27.
RED_PIPELINE_DEFAULTS: dict[str, dict[str, dict[str, dict[str, Any]]]] = {
    "Acrobot-v1": {"ppo": {"reward_model": {"reward_form": "negative", "sigma_scale": 1.0}}},
    # MountainCar-v0 is ended by reaching the flag too: negative with DQN reached -102.2 (expert -102.9) in 25k
    "MountainCar-v0": {"dqn": {"reward_model": {"reward_form": "negative"}}},
    "Pendulum-v1": {"sac": {"rl": dict(PENDULUM_STOP)}},
}
#: RED's learner per env when none is given: SAC on Pendulum-v1 (-188.4 after 3k env steps; PPO was at -885
#: after 60k, its RL budget there is 400k); DQN on MountainCar-v0 (as GAIL's: the env's tuned learner)
RED_DEFAULT_LEARNERS: dict[str, str] = {"Pendulum-v1": "sac", "MountainCar-v0": "dqn"}


@register_reward_model("red")
class RedRewardModel(BaseRewardModel):
    """RED's random-distillation reward (see the module docstring)."""

    config_class = RedConfig
    pipeline_defaults = RED_PIPELINE_DEFAULTS
    default_learners = RED_DEFAULT_LEARNERS

    @classmethod
    def parse_config(cls, config: Any) -> RedConfig:
        return model_config(RedConfig, config)

    def __init__(self, config: Mapping[str, Any] | RedConfig, device: Any = "auto", tb_logger: Any = None, *,
                 seed: int = 0, expert_data: DemoDataset | None = None) -> None:
        self.cfg = self.parse_config(config)
        self.device = device if isinstance(device, torch.device) else resolve_device(str(device))
        self.tb_logger = tb_logger
        self.expert = expert_data_for(self.cfg, self.device, "RED", expert_data, self.cfg.collect_count)
        d = self.expert.feature_dim
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(derive_seed(seed, "red", "init"))
            self.target = mlp(d, self.cfg.hidden_dims, self.cfg.output_dim, activation="tanh").to(self.device)
            self.predictor = mlp(d, self.cfg.hidden_dims, self.cfg.output_dim, activation="tanh").to(self.device)
        self.target.requires_grad_(False)
        self.optimizer = make_adam(self.predictor.parameters(), lr=self.cfg.learning_rate, direct=True)
        self._generator = torch.Generator(device=self.device)
        self._generator.manual_seed(derive_seed(seed, "red", "batches"))
        self.sigma = 0.0  # 0: not trained yet
        self.last_stats: dict[str, float] = {}

    def errors(self, x: torch.Tensor) -> torch.Tensor:
        """Squared prediction errors ||f(x) - f_hat(x)||^2 (B,) of features ``x``."""
        return (self.target(x) - self.predictor(x)).pow(2).sum(-1)

    def train(self) -> dict[str, float]:
        """Fit the predictor on the expert data (first call only) and set sigma; returns the expert error."""
        if self.sigma > 0:
            return dict(self.last_stats)
        x = self.expert.expert_features()
        idx = torch.randint(x.shape[0], (self.cfg.train_steps, self.cfg.batch_size), device=self.device,
                            generator=self._generator)
        for u in range(self.cfg.train_steps):
            loss = self.errors(x[idx[u]]).mean()
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
        with torch.no_grad():
            mean_err = float(self.errors(x).mean())
        self.sigma = self.cfg.sigma_scale / max(mean_err, 1e-12)
        self.last_stats = {"expert_error": mean_err, "sigma": self.sigma}
        if self.tb_logger is not None:
            for k, v in self.last_stats.items():
                self.tb_logger.add_scalar(f"reward_model/{k}", v, 0)
        return dict(self.last_stats)

    def collect_data(self, data: Transitions) -> None:
        """RED does not learn from policy data."""

    def clear_data(self, iter: int | None = None) -> None:
        """Nothing is kept."""

    @torch.no_grad()
    def rewards(self, data: Transitions) -> torch.Tensor:
        """``exp(-sigma * error)`` (B,) (minus 1 in the ``negative`` form)."""
        if self.sigma <= 0:
            raise UserError("RED's predictor is not trained: call train() first (or pretrain_reward=True)")
        b = self.expert.batch(data)
        r = torch.exp(-self.sigma * self.errors(self.expert.features(b.observations, b.actions)))
        return bounded_form(r, 1.0, self.cfg.reward_form)

    def estimate(self, data: Transitions) -> Transitions:
        """New data with RED rewards; ``data`` is untouched."""
        return relabel(data, self.rewards)

    def state_dict(self) -> dict[str, torch.Tensor]:
        state = {f"target.{k}": v.detach().cpu().clone() for k, v in self.target.state_dict().items()}
        state.update({f"predictor.{k}": v.detach().cpu().clone() for k, v in self.predictor.state_dict().items()})
        state["sigma"] = torch.tensor(float(self.sigma), dtype=torch.float64)
        return state

    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        try:
            self.target.load_state_dict({k[7:]: v for k, v in state.items() if k.startswith("target.")})
            self.predictor.load_state_dict({k[10:]: v for k, v in state.items() if k.startswith("predictor.")})
        except RuntimeError as exc:
            raise UserError(f"RED state does not fit this model: {str(exc).splitlines()[0]}") from None
        self.sigma = float(state["sigma"])
