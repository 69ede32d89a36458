"""Inverse-RL pipelines: DI-engine's serial reward-model round with GAIL and DQN or PPO.

Every round follows the seeds' three stages exactly:

1. collect new data with the current policy and ``reward_model.collect_data(new_data)``
   (off-policy: the data also goes into the replay buffer);
2. ``reward_model.train()`` then ``reward_model.clear_data(iter)`` (``iter`` counts the
   rounds, so ``clear_buffer_per_iters=k`` keeps k rounds of policy data);
3. train the policy on ``reward_model.estimate(...)`` rewards: every replay minibatch
   (off-policy, :func:`serial_pipeline_reward_model_offpolicy`, DQN) or the whole
   rollout (on-policy, :func:`serial_pipeline_reward_model_onpolicy`, PPO).

The env's reward is never used for training. It is monitored only: the progress
callback shows the latest training episode's env return, and a periodic
deterministic evaluation stops training once it reaches the env's
``reward_threshold`` (``stop_at_threshold``; DI-engine's ``stop_value``).

``config`` is a mapping (or :class:`GAILConfig`) whose keys mirror ``demokit gail``'s
options; a minimal one is enough::

    result = serial_pipeline_reward_model_onpolicy(
        {"env_id": "CartPole-v1", "expert_data_path": "datasets/cartpole-v1-expert.h5"}, seed=0)
    policy, converged = result          # like serial_pipeline_il
    result.mean_return, result.checkpoint, result.reward_model

``reward_model`` holds GAIL settings (:class:`~demokit.reward_models.GailConfig` keys,
DI-engine's ``cfg.reward_model``) and ``rl`` PPO/DQN settings on top of demokit's tuned
table (:mod:`demokit.rl.hyperparams`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import torch

from demokit.config import from_mapping, option, to_dict
from demokit.data.dataset import DemoDataset, load_dataset
from demokit.errors import ConfigError, UserError
from demokit.policies import NeuralPolicy
from demokit.reward_models import BaseRewardModel, create_reward_model, gail_config
from demokit.paths import check_output_path
from demokit.rl.common import BaseTrainer, ProgressFn
from demokit.rl.dqn import DQNTrainer
from demokit.rl.hyperparams import config_class, tuned_config
from demokit.rl.ppo import PPOTrainer
from demokit.seeding import derive_seed

Algo = Literal["ppo", "dqn"]

#: GAIL's env-step budget is this many times the tuned RL budget of the env (when not given)
BUDGET_FACTOR = 3
#: GAIL's own defaults per env and algo, under the user's settings: ``rl`` over the tuned RL
#: table, ``reward_model`` over GailConfig's defaults (measured: docs/benchmarks.md, GAIL).
GAIL_DEFAULTS: dict[str, dict[str, dict[str, dict[str, Any]]]] = {
    "CartPole-v1": {
        "ppo": {"rl": {"n_epochs": 10, "eval_every": 5_000}},
        "dqn": {"rl": {"eval_every": 5_000}},
    },
    "Acrobot-v1": {
        # two passing checks in a row: a 3-round policy once passed a 50-episode check by luck (-77.6)
        # and scored -87.5 on fresh episodes
        "ppo": {"reward_model": {"update_per_collect": 20}, "rl": {"stop_after_passes": 2}},
        "dqn": {"rl": {"train_freq": 256, "gradient_steps": 128, "eval_every": 5_000}},
    },
    "MountainCar-v0": {
        "dqn": {"rl": {"train_freq": 64, "gradient_steps": 32, "eval_every": 5_000}},
    },
}


#: GAIL's learner when none is given: PPO, except where DQN was measured to imitate better
#: (MountainCar-v0: GAIL-PPO ended at -130 after 360k steps on -101 demonstrations, GAIL-DQN at -100)
DEFAULT_ALGO: dict[str, Algo] = {"MountainCar-v0": "dqn"}


def default_gail_algo(env_id: str) -> Algo:
    """The learner GAIL uses for ``env_id`` when neither the call nor the config names one."""
    return DEFAULT_ALGO.get(env_id, "ppo")


def gail_defaults(env_id: str, algo: str, part: str) -> dict[str, Any]:
    """GAIL's defaults of ``part`` ("rl" or "reward_model") for (env_id, algo); {} when none."""
    return dict(GAIL_DEFAULTS.get(env_id, {}).get(algo, {}).get(part, {}))


@dataclass(frozen=True)
class GAILConfig:
    """Settings of the GAIL pipelines and of ``demokit gail`` (CLI options mirror these keys)."""

    expert_data_path: str | None = option(None, "expert demonstrations: a demokit .h5 dataset")
    env_id: str | None = option(None, "env to train in (default: the dataset's env)")
    algo: Algo | None = option(None, "learner: ppo (on-policy) or dqn (off-policy); default: the pipeline's, "
                                     "run_gail's: ppo (dqn on MountainCar-v0)")
    total_timesteps: int | None = option(None, f"env-step budget (default: {BUDGET_FACTOR}x the tuned RL budget)")
    device: str = option("auto", "auto (CUDA when available), cpu or cuda: policy and discriminator")
    stop_at_threshold: bool = option(True, "stop once the deterministic evaluation reaches the stop value")
    stop_value: float | None = option(None, "evaluation return that stops training (default: env reward_threshold)")
    reward_model: Mapping[str, Any] | None = option(None, "GAIL reward-model settings (GailConfig keys)")
    rl: Mapping[str, Any] | None = option(None, "PPO/DQN settings over the tuned table (PPOConfig/DQNConfig keys)")

    def __post_init__(self) -> None:
        for name in ("reward_model", "rl"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, Mapping):
                raise ConfigError(f"GAILConfig.{name} must be a mapping of settings, got {type(value).__name__}")
        if self.total_timesteps is not None and self.total_timesteps < 1:
            raise ConfigError(f"GAILConfig.total_timesteps must be >= 1, got {self.total_timesteps}")
        rm_config = self.reward_model_config()
        if rm_config["type"] == "gail":
            gail_config(rm_config)  # unknown / bad reward-model keys fail here, before any training
        rl = dict(self.rl or {})
        owned = sorted(set(rl) & {"env_id", "seed", "device", "total_timesteps", "stop_value"})
        if owned:
            raise ConfigError(f"GAILConfig.rl must not set {', '.join(owned)}: use the top-level keys "
                              f"(env_id, total_timesteps, device, stop_value) and the seed argument")
        if self.algo is not None and rl:
            from_mapping(config_class(self.algo), {"env_id": "unchecked", **rl})

    def reward_model_config(self) -> dict[str, Any]:
        """The reward model's config: ``reward_model`` plus the top-level expert path, type "gail" by default."""
        cfg: dict[str, Any] = {"type": "gail", **dict(self.reward_model or {})}
        if self.expert_data_path is not None:
            cfg["expert_data_path"] = self.expert_data_path
        return cfg

    @property
    def expert_path(self) -> str:
        path = self.expert_data_path or (self.reward_model or {}).get("expert_data_path")
        if not path:
            raise ConfigError("GAIL needs expert demonstrations: set expert_data_path (demokit gail --expert FILE)")
        return str(path)


@dataclass(frozen=True)
class GAILResult:
    """What a GAIL pipeline produced. Unpacks like ``serial_pipeline_il``: ``policy, converged = result``.

    ``mean_return`` / ``std_return``: the final deterministic evaluation (env returns);
    ``converged``: it reached the stop value; ``rounds``: IRL rounds run.
    """

    policy: NeuralPolicy
    converged: bool
    mean_return: float
    std_return: float
    env_steps: int
    wall_s: float
    rounds: int
    algo: str
    env_id: str
    checkpoint: str | None
    reward_model: BaseRewardModel

    def __iter__(self) -> Iterator[Any]:
        return iter((self.policy, self.converged))

    def as_dict(self) -> dict[str, Any]:
        return {"checkpoint": self.checkpoint, "mean_return": self.mean_return, "std_return": self.std_return,
                "env_steps": self.env_steps, "wall_s": self.wall_s, "converged": self.converged,
                "rounds": self.rounds, "algo": self.algo, "env_id": self.env_id}


# -- rollout / replay data for the reward model ------------------------------------------

def rollout_transitions(rollout: Any, *, valid_only: bool) -> dict[str, torch.Tensor]:
    """A PPO rollout as a batch dict of transitions (env actions, raw observations).

    ``valid_only`` drops the autoreset steps (for the reward model's training set); without
    it every (step, env) cell is kept, in order, so rewards reshape to (n_steps, num_envs).
    """
    def field(name: str) -> torch.Tensor:
        if valid_only:
            return rollout.valid_flat(name)
        x = getattr(rollout, name)
        return x.reshape(-1, *x.shape[2:])

    return {"obs": field("obs_raw"), "action": field("env_actions"), "reward": field("rewards"),
            "next_obs": field("next_obs_raw"), "terminated": field("terminated"), "truncated": field("truncated")}


class _GailRounds:
    """Mixin turning a trainer's iteration into one IRL round (see the module docstring).

    The trainer's checkpoint gets algo ``gail-<algo>``, the reward model's state in
    ``extra["reward_model"]`` and the GAIL settings in ``training["gail"]``.
    """

    reward_model: BaseRewardModel
    gail: GAILConfig
    rounds: int
    reward_stats: dict[str, float]

    def _attach(self, reward_model: BaseRewardModel, gail: GAILConfig) -> None:
        self.reward_model = reward_model
        self.gail = gail
        self.rounds = 0
        self.reward_stats = {}

    def _train_reward_model(self) -> None:
        """Stage 2: fit the reward model, then let it release its training set."""
        self.reward_stats = self.reward_model.train()
        self.rounds += 1
        self.reward_model.clear_data(self.rounds)

    def _extra_state(self) -> dict[str, Any]:
        return {**super()._extra_state(), "reward_model": self.reward_model.state_dict()}  # type: ignore[misc]

    def save(self, path: str | os.PathLike[str], *, training: dict[str, Any] | None = None) -> str:
        figures = {**(training or {}), "gail": to_dict(self.gail), "rounds": self.rounds}
        return super().save(path, training=figures)  # type: ignore[misc]


class GAILPPOTrainer(_GailRounds, PPOTrainer):
    """PPO whose rollouts are rewarded by the reward model (on-policy round)."""

    algo = "gail-ppo"

    def _iteration(self) -> dict[str, float]:
        rollout = self.collect_rollout()                                              # 1. collect
        self.reward_model.collect_data(rollout_transitions(rollout, valid_only=True))
        self._train_reward_model()                                                    # 2. train + clear
        estimated = self.reward_model.estimate(rollout_transitions(rollout, valid_only=False))
        rewards = torch.as_tensor(estimated["reward"]).reshape(rollout.rewards.shape)
        return self.update(rollout, rewards=rewards)                                  # 3. learn on estimates


class GAILDQNTrainer(_GailRounds, DQNTrainer):
    """DQN whose replay minibatches are rewarded by the reward model (off-policy round)."""

    algo = "gail-dqn"

    def _env_actions(self, batch: Mapping[str, Any]) -> dict[str, Any]:
        """Replay batches hold 0-based action indices; the reward model sees env actions."""
        if self.action_start == 0:
            return dict(batch)
        return {**batch, "action": batch["action"] + self.action_start}

    def _estimated_rewards(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.reward_model.estimate(self._env_actions(batch))["reward"]

    def _iteration(self) -> dict[str, float]:
        cfg = self.config
        before = self.env_steps
        new_data = self.collect(int(cfg.train_freq))                                  # 1. collect (+ replay)
        self.reward_model.collect_data(self._env_actions(new_data))
        if self.env_steps < cfg.learning_starts:
            return {}
        self._train_reward_model()                                                    # 2. train + clear
        n = self.env_steps - before if cfg.gradient_steps == -1 else int(cfg.gradient_steps)
        return self.train_steps(n, reward_fn=self._estimated_rewards)                 # 3. learn on estimates


TRAINERS: dict[str, type[BaseTrainer]] = {"ppo": GAILPPOTrainer, "dqn": GAILDQNTrainer}


# -- the pipelines ------------------------------------------------------------------------

def expert_dataset_and_env(cfg: GAILConfig) -> tuple[DemoDataset, str]:
    """The expert dataset and the env to train in; UserError for a bad dataset or mismatched spaces."""
    dataset = load_dataset(cfg.expert_path)
    env_id = cfg.env_id or dataset.env_id
    if not env_id:
        raise UserError(f"dataset {dataset.path} records no env id; name the env (env_id / --env)")
    dataset.check_env(env_id)  # SpaceMismatchError before anything is trained
    return dataset, env_id


def gail_rl_config(algo: str, env_id: str, cfg: GAILConfig, *, seed: int) -> Any:
    """The PPO/DQN config GAIL trains with: tuned table < GAIL's defaults < ``cfg.rl`` < top-level keys.

    DQN's epsilon schedule is a fraction of the budget; it is rescaled so that epsilon
    decays over the tuned number of env steps (GAIL's budget is larger).
    """
    tuned = tuned_config(algo, env_id)
    budget = cfg.total_timesteps if cfg.total_timesteps is not None else BUDGET_FACTOR * int(tuned.total_timesteps)
    overrides = {**gail_defaults(env_id, algo, "rl"), **dict(cfg.rl or {})}
    if algo == "dqn" and "exploration_fraction" not in overrides:
        # epsilon decays over as many env steps as in the tuned run, whatever GAIL's budget
        overrides["exploration_fraction"] = min(1.0, tuned.exploration_fraction * tuned.total_timesteps / budget)
    return tuned_config(algo, env_id, **overrides, total_timesteps=budget, seed=seed, device=cfg.device,
                        stop_value=cfg.stop_value)


def run_gail(config: GAILConfig | Mapping[str, Any], seed: int = 0, *, algo: str | None = None,
             progress: ProgressFn | None = None, tb_logger: Any = None,
             out: str | os.PathLike[str] | None = None) -> GAILResult:
    """GAIL with ``algo`` (default ``config["algo"]``, else :func:`default_gail_algo`); see the two
    serial pipelines."""
    start = time.perf_counter()
    cfg = config if isinstance(config, GAILConfig) else from_mapping(GAILConfig, config)
    if algo is not None and cfg.algo not in (None, algo):
        raise ConfigError(f"config algo {cfg.algo!r} does not match this pipeline's {algo!r}: use "
                          f"serial_pipeline_reward_model_{'onpolicy' if cfg.algo == 'ppo' else 'offpolicy'}")
    check_output_path(out, inputs=[cfg.expert_data_path])
    dataset, env_id = expert_dataset_and_env(cfg)
    algo = algo or cfg.algo or default_gail_algo(env_id)
    if algo not in TRAINERS:
        raise ConfigError(f"unknown GAIL algo {algo!r}; use ppo or dqn")
    rl_config = gail_rl_config(algo, env_id, cfg, seed=seed)
    rm_config = cfg.reward_model_config()
    if rm_config["type"] == "gail":  # the absorbing state's value uses the learner's discount
        rm_config = {"gamma": float(rl_config.gamma), **gail_defaults(env_id, algo, "reward_model"), **rm_config}
    reward_model = create_reward_model(rm_config, cfg.device, tb_logger,
                                       seed=derive_seed(seed, "reward_model"), expert_data=dataset)
    holder: dict[str, Any] = {}

    def report(info: dict[str, float]) -> None:
        if progress is not None:
            trainer = holder.get("trainer")
            stats = {f"reward_model/{k}": v for k, v in (trainer.reward_stats if trainer else {}).items()}
            progress({**info, **stats})

    trainer = TRAINERS[algo](rl_config, progress=report, tb_writer=tb_logger)
    trainer._attach(reward_model, cfg)
    holder["trainer"] = trainer
    try:
        result = trainer.learn(out=out, stop_at_goal=cfg.stop_at_threshold)
    finally:
        trainer.close()
    return GAILResult(policy=trainer.policy, converged=bool(result.reached_threshold),
                      mean_return=float(result.mean_return), std_return=float(result.std_return),
                      env_steps=int(result.env_steps), wall_s=time.perf_counter() - start, rounds=trainer.rounds,
                      algo=trainer.algo, env_id=env_id, checkpoint=result.checkpoint, reward_model=reward_model)


def serial_pipeline_reward_model_offpolicy(config: GAILConfig | Mapping[str, Any], seed: int = 0, *,
                                           progress: ProgressFn | None = None, tb_logger: Any = None,
                                           out: str | os.PathLike[str] | None = None) -> GAILResult:
    """GAIL with DQN and a replay buffer (the seeds' CartPole example).

    Each round: collect ``train_freq`` env steps into the replay buffer and the reward
    model; train the discriminator and clear its data; ``gradient_steps`` DQN steps on
    replay minibatches whose rewards ``reward_model.estimate`` replaces (the buffer
    keeps the env rewards). ``out``: write a ``gail-dqn`` checkpoint there.
    """
    return run_gail(config, seed, algo="dqn", progress=progress, tb_logger=tb_logger, out=out)


def serial_pipeline_reward_model_onpolicy(config: GAILConfig | Mapping[str, Any], seed: int = 0, *,
                                          progress: ProgressFn | None = None, tb_logger: Any = None,
                                          out: str | os.PathLike[str] | None = None) -> GAILResult:
    """GAIL with PPO (the notebook's Acrobot example).

    Each round: one PPO rollout (valid steps go to the reward model); train the
    discriminator and clear its data; PPO epochs on the rollout with every reward
    replaced by ``reward_model.estimate``. ``out``: write a ``gail-ppo`` checkpoint there.
    """
    return run_gail(config, seed, algo="ppo", progress=progress, tb_logger=tb_logger, out=out)
