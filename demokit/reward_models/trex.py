"""T-REX (Brown, Goo, Nagarajan & Niekum, 2019): a reward learned from ranked trajectories.

Training data: whole trajectories with a score (higher = better). Each update draws pairs
of trajectories with different scores, a random snippet length ``L`` and a snippet of
each (the better one starting no earlier than the worse one, as in the paper), and
fits a state reward ``R(s)`` with the Bradley-Terry loss on the snippets' summed
predicted rewards::

    P(better > worse) = exp(sum R(better)) / (exp(sum R(better)) + exp(sum R(worse)))

Where the ranking lives (``ranking``):

* ``"rank"`` (default): a per-step extra named ``rank_key`` (default ``rank``) in the
  dataset; an episode's score is its value at the episode's first step (demokit datasets
  keep per-step extras; write the episode's rank on each of its steps);
* ``"returns"``: the episodes' returns stored in the dataset (when the demonstrations
  are of mixed quality and their returns are meaningful).

A dataset with neither (or a single score) cannot train T-REX: one error naming D-REX
(``drex``), which makes the ranking itself from plain demonstrations.

T-REX learns from the ranked data alone: the first ``train()`` (``pretrain_reward=True``
does it before RL) fits ``R``; later calls change nothing.

Sign and scale: ``R`` is only defined up to an additive constant and a scale; demokit
standardises it with the mean and std of ``R`` over the training trajectories' states and
passes it through a sigmoid (the paper's choice for its RL runs): rewards in (0, 1),
0.5 for an average training state. Being positive, the reward pays for living longer:
on CartPole-v1 that alone favours balancing, so that task says little about the ranking.
``reward_form: negative`` pays the sigmoid minus 1, in (-1, 0): the same ranking of
states, but every step costs, least where R is high, so ending the episode sooner pays
(tasks solved by ending it; the per-env defaults, ``pipeline_defaults``, choose it where
measured). ``standardized`` is the standardised R itself (either sign).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
import torch
import torch.nn.functional as F

from demokit.config import option
from demokit.data.dataset import DemoDataset
from demokit.devices import resolve_device
from demokit.errors import ConfigError, UserError
from demokit.policies.networks import make_adam, mlp
from demokit.reward_models.base import BaseRewardModel, Transitions
from demokit.reward_models.expert import (ExpertData, bounded_form, check_positive, check_type, expert_data_for,
                                          model_config, relabel)
from demokit.reward_models.registry import register_reward_model
from demokit.seeding import derive_seed


@dataclass(frozen=True)
class RankedRewardConfig:
    """Keys shared by T-REX and D-REX (the reward network and its Bradley-Terry fit)."""

    type: str = option("trex", "reward model type (registry name)")
    expert_data_path: str | None = option(None, "demonstrations: a demokit .h5 dataset")
    hidden_dims: tuple[int, ...] = option((64, 64), "hidden widths of R(s) (tanh)")
    snippet_min: int = option(10, "shortest snippet")
    snippet_max: int = option(50, "longest snippet")
    batch_size: int = option(32, "trajectory pairs per update")
    train_steps: int = option(2000, "updates of the (one) fit")
    learning_rate: float = option(1e-3, "Adam learning rate")
    reward_form: Literal["sigmoid", "negative", "standardized"] = option(
        "sigmoid", "sigmoid of the standardised R (in (0, 1)), that minus 1 (negative, in (-1, 0): ending sooner "
                   "pays) or the standardised R itself")

    #: DI-engine's T-REX / D-REX key names with the same meaning (ding/reward_model/trex_reward_model.py)
    di_engine_keys: ClassVar[dict[str, str]] = {"min_snippet_length": "snippet_min",
                                                "max_snippet_length": "snippet_max"}
    #: DI-engine's keys without an equivalent here, and why
    di_engine_unmapped: ClassVar[dict[str, str]] = {
        "num_snippets": "demokit draws fresh snippet pairs at every update (train_steps x batch_size pairs in all); "
                        "set train_steps",
        "update_per_collect": "DI-engine's passes over a fixed snippet set; demokit counts updates: set train_steps",
        "num_trajs": "demokit compares snippets only (no downsampled whole trajectories)",
        "offline_data_path": "demokit reads the ranked episodes from one dataset: set expert_data_path to a demokit "
                             ".h5 (a per-step rank extra, or ranking: returns)",
        "reward_model_path": "the reward model's weights go into the policy checkpoint (state_dict), not a file",
        "target_new_data_count": "the ranking fit runs once, before RL (pretrain_reward); it waits for no new data",
    }

    def __post_init__(self) -> None:
        check_type(self, self.registered_as)
        check_positive(self, "snippet_min", "snippet_max", "batch_size", "train_steps", "learning_rate")
        if self.snippet_min > self.snippet_max:
            raise ConfigError(f"{type(self).__name__}.snippet_min ({self.snippet_min}) > snippet_max "
                              f"({self.snippet_max})")

    registered_as = "trex"


@dataclass(frozen=True)
class TrexConfig(RankedRewardConfig):
    """Config of :class:`TrexRewardModel`."""

    ranking: Literal["rank", "returns"] = option("rank", "episode scores: the per-step extra rank_key (value at "
                                                         "each episode's first step) or the episodes' returns")
    rank_key: str = option("rank", "name of the per-step extra holding each episode's rank (higher = better)")


@dataclass(frozen=True)
class Trajectory:
    """One scored trajectory: ``observations`` flat float32 (T, D) on the model's device, ``score``."""

    observations: torch.Tensor
    score: float


def bradley_terry_loss(worse_sums: torch.Tensor, better_sums: torch.Tensor) -> torch.Tensor:
    """Mean ``-log P(better > worse)`` with ``P = softmax([worse, better])[1]``, from summed rewards (B,)."""
    return F.cross_entropy(torch.stack([worse_sums, better_sums], 1),
                           torch.ones(worse_sums.shape[0], dtype=torch.long, device=worse_sums.device))


def dataset_trajectories(expert: ExpertData, cfg: TrexConfig, who: str) -> list[Trajectory]:
    """The dataset's episodes with their scores (``cfg.ranking``); a UserError without usable rankings."""
    ds = expert.dataset
    if cfg.ranking == "returns":
        ds.require_rewards(f"{who}'s ranking by returns (T-REX rankings)")
        scores = expert.episode_returns
    else:
        extras = ds.extras_spec
        if cfg.rank_key not in extras:
            raise UserError(f"{who} needs ranked demonstrations: {ds.path} has no per-episode rank (per-step "
                            f"extra {cfg.rank_key!r}); rank by the episodes' returns (ranking: returns) or use "
                            f"--reward-model drex, which ranks noisy rollouts of a BC policy itself")
        ranks = np.asarray(ds.extras[cfg.rank_key]).reshape(len(ds), -1)[:, 0]
        scores = ranks[expert.episode_starts]
    if len(np.unique(scores)) < 2:
        raise UserError(f"{who} needs demonstrations of different quality: every episode of {ds.path} has the same "
                        f"score ({cfg.ranking}); use --reward-model drex on plain demonstrations")
    return [Trajectory(expert.observations[s], float(score)) for s, score in zip(expert.episode_slices(), scores)]


#: T-REX's and D-REX's own defaults per env and learner for the IRL pipelines (measured, 100 evaluation
#: episodes: docs/benchmarks.md, reward-model zoo). Acrobot-v1 and MountainCar-v0 are solved by ending the
#: episode: the sigmoid reward (positive) pays for never finishing; ``negative`` (sigmoid - 1) makes every step
#: cost. D-REX, Acrobot-v1, seed 0: -82.0 over 100 episodes (expert -86.0) after 93k env steps.
RANKED_PIPELINE_DEFAULTS: dict[str, dict[str, dict[str, dict[str, Any]]]] = {
    "Acrobot-v1": {"ppo": {"reward_model": {"reward_form": "negative"}}},
    "MountainCar-v0": {"dqn": {"reward_model": {"reward_form": "negative"}}},
}
#: their learner per env when none is given: DQN on MountainCar-v0 (PPO does not solve it even with the env's
#: reward), SAC on Pendulum-v1 (as RED's and PWIL's)
RANKED_DEFAULT_LEARNERS: dict[str, str] = {"Pendulum-v1": "sac", "MountainCar-v0": "dqn"}


@register_reward_model("trex")
class TrexRewardModel(BaseRewardModel):
    """T-REX's ranked-trajectory reward (see the module docstring); D-REX inherits its per-env defaults."""

    config_class = TrexConfig
    pipeline_defaults = RANKED_PIPELINE_DEFAULTS
    default_learners = RANKED_DEFAULT_LEARNERS
    #: the method's name in messages
    title = "T-REX"

    @classmethod
    def parse_config(cls, config: Any) -> Any:
        return model_config(cls.config_class, config)

    def __init__(self, config: Mapping[str, Any] | TrexConfig, device: Any = "auto", tb_logger: Any = None, *,
                 seed: int = 0, expert_data: DemoDataset | None = None) -> None:
        self.cfg = self.parse_config(config)
        self.device = device if isinstance(device, torch.device) else resolve_device(str(device))
        self.tb_logger = tb_logger
        self._seed = int(seed)
        self.expert = expert_data_for(self.cfg, self.device, self.title, expert_data)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(derive_seed(seed, "trex", "init"))
            self.net = mlp(self.expert.obs_dim, self.cfg.hidden_dims, 1, activation="tanh").to(self.device)
        self.optimizer = make_adam(self.net.parameters(), lr=self.cfg.learning_rate, direct=True)
        self._rng = np.random.default_rng(derive_seed(seed, "trex", "pairs"))
        self.r_mean, self.r_std = 0.0, 0.0  # r_std 0: not trained
        self.last_stats: dict[str, float] = {}
        self.trajectories = self.ranked_trajectories()

    def ranked_trajectories(self) -> list[Trajectory]:
        """The scored trajectories T-REX learns from (here: the dataset's; D-REX overrides)."""
        return dataset_trajectories(self.expert, self.cfg, "T-REX")

    def r(self, flat_obs: torch.Tensor) -> torch.Tensor:
        """The learned (raw) state reward R(s) (B,)."""
        return self.net(self.expert.normalize(flat_obs)).squeeze(-1)

    def _pairs(self, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
        """(worse, better) trajectory indices, their snippet starts and the snippet length of one update."""
        trajs = self.trajectories
        lengths = np.array([t.observations.shape[0] for t in trajs])
        scores = np.array([t.score for t in trajs])
        length = int(self._rng.integers(self.cfg.snippet_min, self.cfg.snippet_max + 1))
        worse, better, ws, bs = [], [], [], []
        while len(worse) < n:
            i, j = self._rng.integers(len(trajs), size=2)
            if scores[i] == scores[j]:
                continue
            lo, hi = (i, j) if scores[i] < scores[j] else (j, i)
            ell = min(length, lengths[lo], lengths[hi])
            t_lo = int(self._rng.integers(0, lengths[lo] - ell + 1))
            t_hi = int(self._rng.integers(min(t_lo, lengths[hi] - ell), lengths[hi] - ell + 1))
            worse.append(lo), better.append(hi), ws.append((t_lo, ell)), bs.append((t_hi, ell))
        return np.array(worse), np.array(better), np.array(ws), np.array(bs), length

    def _snippet_sums(self, which: np.ndarray, starts: np.ndarray) -> torch.Tensor:
        return torch.stack([self.r(self.trajectories[k].observations[s:s + ell]).sum()
                            for k, (s, ell) in zip(which, starts)])

    def train(self) -> dict[str, float]:
        """Fit R on snippet pairs (first call only); returns the last loss and the pair accuracy."""
        if self.r_std > 0:
            return dict(self.last_stats)
        losses, accs = [], []
        for _ in range(self.cfg.train_steps):
            worse, better, ws, bs, _ = self._pairs(self.cfg.batch_size)
            w_sum, b_sum = self._snippet_sums(worse, ws), self._snippet_sums(better, bs)
            loss = bradley_terry_loss(w_sum, b_sum)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            losses.append(loss.detach())
            accs.append((b_sum > w_sum).float().mean().detach())
        with torch.no_grad():
            values = self.r(torch.cat([t.observations for t in self.trajectories]))
            self.r_mean, self.r_std = float(values.mean()), max(float(values.std()), 1e-6)
        tail = max(1, len(losses) // 10)
        self.last_stats = {"loss": float(torch.stack(losses[-tail:]).mean()),
                           "accuracy": float(torch.stack(accs[-tail:]).mean())}
        if self.tb_logger is not None:
            for k, v in self.last_stats.items():
                self.tb_logger.add_scalar(f"reward_model/{k}", v, self.cfg.train_steps)
        return dict(self.last_stats)

    def collect_data(self, data: Transitions) -> None:
        """T-REX does not learn from the RL policy's data."""

    def clear_data(self, iter: int | None = None) -> None:
        """Nothing is kept."""

    @torch.no_grad()
    def rewards(self, data: Transitions) -> torch.Tensor:
        """The standardised R(s) (B,): through a sigmoid by default, minus 1 in the ``negative`` form."""
        if self.r_std <= 0:
            raise UserError(f"{self.name or 'trex'}'s reward is not trained: call train() first "
                            f"(pretrain_reward=True)")
        z = (self.r(self.expert.batch(data).observations) - self.r_mean) / self.r_std
        if self.cfg.reward_form == "standardized":
            return z
        return bounded_form(torch.sigmoid(z), 1.0, self.cfg.reward_form)  # sigmoid: as is; negative: minus 1

    def estimate(self, data: Transitions) -> Transitions:
        """New data with the learned rewards; ``data`` is untouched."""
        return relabel(data, self.rewards)

    def state_dict(self) -> dict[str, torch.Tensor]:
        state = {f"net.{k}": v.detach().cpu().clone() for k, v in self.net.state_dict().items()}
        state["r_stats"] = torch.tensor([self.r_mean, self.r_std], dtype=torch.float64)
        return state

    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        try:
            self.net.load_state_dict({k[4:]: v for k, v in state.items() if k.startswith("net.")})
        except RuntimeError as exc:
            raise UserError(f"{self.name} state does not fit this model: {str(exc).splitlines()[0]}") from None
        self.r_mean, self.r_std = (float(v) for v in state["r_stats"])
