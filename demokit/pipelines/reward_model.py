"""Inverse-RL pipelines: DI-engine's serial reward-model round with any reward model and any learner.

Every round follows the seeds' three stages exactly (the trainers' reward hook,
:class:`demokit.rl.common.BaseTrainer`):

1. collect new data with the current policy and ``reward_model.collect_data(new_data)``
   (off-policy: the data also goes into the replay buffer);
2. ``reward_model.train()`` then ``reward_model.clear_data(iter)`` (``iter`` counts the
   rounds, so ``clear_buffer_per_iters=k`` keeps k rounds of policy data);
3. train the policy on ``reward_model.estimate(...)`` rewards: every replay minibatch
   (off-policy learners, :func:`serial_pipeline_reward_model_offpolicy`, e.g. DQN) or
   the whole rollout (on-policy learners, :func:`serial_pipeline_reward_model_onpolicy`,
   e.g. PPO).

The env's reward is never used for training. It is monitored only: the progress
callback shows the latest training episode's env return, and a periodic
deterministic evaluation stops training once it reaches the env's
``reward_threshold`` (``stop_at_threshold``; DI-engine's ``stop_value``).

``config`` is a mapping (or :class:`IRLConfig`) whose keys mirror ``demokit gail``'s
options, or DI-engine's ``(main_config, create_config)`` pair
(:mod:`demokit.pipelines.ding_config`); a minimal one is enough::

    result = serial_pipeline_reward_model_onpolicy(
        {"env_id": "CartPole-v1", "expert_data_path": "datasets/cartpole-v1-expert.h5"}, seed=0)
    policy, converged = result          # like serial_pipeline_il
    result.mean_return, result.checkpoint, result.reward_model

``reward_model`` holds the reward model's settings (its ``type``, default ``gail``, and
its config class's keys: DI-engine's ``cfg.reward_model``) and ``rl`` the learner's
settings on top of demokit's tuned table (:mod:`demokit.rl.hyperparams`). The pipeline
never branches on a reward model's type: what it needs from the learner and its
per-env defaults are declared by the model's class (``needs``, ``pipeline_defaults``,
``default_learners``).
"""

from __future__ import annotations

import inspect
import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from demokit.config import from_mapping, option, to_dict
from demokit.data.dataset import DemoDataset, load_dataset
from demokit.errors import ConfigError, UserError
from demokit.pipelines.ding_config import irl_keys_from_ding
from demokit.policies import NeuralPolicy
from demokit.reward_models import BaseRewardModel, create_reward_model, reward_model_class
from demokit.paths import check_output_path
from demokit.rl.common import STATE_EVERY, ProgressFn, check_state_path
from demokit.rl.hyperparams import tuned_config
from demokit.rl.registry import (LearnerSpec, check_action_space, check_learner_resumable, check_learner_settings,
                                 get_learner, learner_names)
from demokit.seeding import derive_seed

#: the IRL budget is this many times the tuned RL budget of the env (when not given)
BUDGET_FACTOR = 3
#: the reward model when the config names none
DEFAULT_REWARD_MODEL = "gail"


@dataclass(frozen=True)
class IRLConfig:
    """Settings of the inverse-RL pipelines and of ``demokit gail`` (CLI options mirror these keys)."""

    expert_data_path: str | None = option(None, "expert demonstrations: a demokit .h5 dataset")
    env_id: str | None = option(None, "env to train in (default: the dataset's env)")
    algo: str | None = option(None, "learner: a registered name, e.g. ppo (on-policy) or dqn (off-policy); default: "
                                    "the pipeline's kind, the reward model's choice for the env (gail: dqn on "
                                    "MountainCar-v0), else the first registered learner that fits")
    total_timesteps: int | None = option(None, f"env-step budget (default: the reward model's for the env, e.g. "
                                               f"gail's 1M on MuJoCo tasks, else {BUDGET_FACTOR}x the tuned RL "
                                               f"budget)")
    device: str = option("auto", "auto (CUDA when available), cpu or cuda: policy and reward model")
    stop_at_threshold: bool = option(True, "stop once the deterministic evaluation reaches the stop value")
    stop_value: float | None = option(None, "evaluation return that stops training (default: env reward_threshold)")
    reward_model: Mapping[str, Any] | None = option(None, "reward-model settings: type (default gail) and the keys "
                                                          "of its config class (GailConfig for gail)")
    rl: Mapping[str, Any] | None = option(None, "learner settings over the tuned table (its config class's keys)")

    def __post_init__(self) -> None:
        for name in ("reward_model", "rl"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, Mapping):
                raise ConfigError(f"IRLConfig.{name} must be a mapping of settings, got {type(value).__name__}")
        if self.total_timesteps is not None and self.total_timesteps < 1:
            raise ConfigError(f"IRLConfig.total_timesteps must be >= 1, got {self.total_timesteps}")
        rm_config = self.reward_model_config()
        reward_model_class(rm_config["type"]).parse_config(rm_config)  # unknown / bad keys fail here
        check_learner_settings("IRLConfig.rl", dict(self.rl or {}),
                               owned=("env_id", "seed", "device", "total_timesteps", "stop_value"),
                               use="use the top-level keys (env_id, total_timesteps, device, stop_value) and the seed "
                                   "argument", spec=None if self.algo is None else get_learner(self.algo))

    def reward_model_config(self) -> dict[str, Any]:
        """The reward model's config: ``reward_model`` plus the top-level expert path, type gail by default."""
        cfg: dict[str, Any] = {"type": DEFAULT_REWARD_MODEL, **dict(self.reward_model or {})}
        if self.expert_data_path is not None:
            cfg["expert_data_path"] = self.expert_data_path
        return cfg

    @property
    def expert_path(self) -> str:
        rm = self.reward_model or {}
        path = self.expert_data_path or rm.get("expert_data_path") or rm.get("data_path")
        if not path:
            raise ConfigError("inverse RL needs expert demonstrations: set expert_data_path "
                              "(demokit gail --expert FILE)")
        return str(path)


@dataclass(frozen=True)
class IRLResult:
    """What an IRL pipeline produced. Unpacks like ``serial_pipeline_il``: ``policy, converged = result``.

    ``mean_return`` / ``std_return``: the final deterministic evaluation (env returns);
    ``converged``: it reached the stop value; ``rounds``: IRL rounds run; ``algo``:
    ``<reward model>-<learner>``, e.g. ``gail-ppo``.
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


# -- what the reward model declares ------------------------------------------------------

def irl_defaults(model: type[BaseRewardModel], env_id: str, algo: str, part: str) -> dict[str, Any]:
    """The reward model's own defaults of ``part`` ("rl" or "reward_model") for (env_id, algo); {} when none."""
    table = getattr(model, "pipeline_defaults", None) or {}
    return dict(table.get(env_id, {}).get(algo, {}).get(part, {}))


def missing_facts(model: type[BaseRewardModel], spec: LearnerSpec) -> list[str]:
    """What ``model`` needs (``needs``) that the learner ``spec`` does not provide ("replay": off-policy learners)."""
    provided = set(spec.provides) | {"gamma", "next_observations"} | ({"replay"} if spec.off_policy else set())
    return sorted(set(model.needs) - provided)


def default_learner(env_id: str, action_space: Any, *, reward_model: str = DEFAULT_REWARD_MODEL,
                    off_policy: bool | None = None) -> str:
    """The learner when neither the call nor the config names one: the reward model's choice for
    ``env_id`` (``default_learners``) when it is of the wanted kind and fits, else the first registered
    learner of that kind that fits ``action_space``."""
    model = reward_model_class(reward_model)
    preferred = (getattr(model, "default_learners", None) or {}).get(env_id)
    candidates = ([preferred] if preferred else []) + list(learner_names(off_policy=off_policy))
    fitting = [n for n in candidates if (off_policy is None or get_learner(n).off_policy == off_policy)
               and get_learner(n).supports(action_space)]
    for name in fitting:  # one that gives the model what it needs first (e.g. sqil: an off-policy learner)
        if not missing_facts(model, get_learner(name)):
            return name
    if fitting:  # none does: resolve_learner names what is missing
        return fitting[0]
    kind = "" if off_policy is None else ("off-policy " if off_policy else "on-policy ")
    raise UserError(f"no registered {kind}learner supports the action space of {env_id}; registered: "
                    f"{', '.join(get_learner(n).describe() for n in learner_names())}")


def _accepted_kwargs(cls: type, offered: dict[str, Any]) -> dict[str, Any]:
    """The keyword arguments of ``offered`` that ``cls(config, device, tb_logger, ...)`` accepts."""
    params = inspect.signature(cls.__init__).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return dict(offered)
    return {k: v for k, v in offered.items() if k in params}


# -- the pipelines ------------------------------------------------------------------------

def expert_dataset_and_env(cfg: IRLConfig) -> tuple[DemoDataset, str]:
    """The expert dataset and the env to train in; UserError for a bad dataset or mismatched spaces."""
    dataset = load_dataset(cfg.expert_path)
    env_id = cfg.env_id or dataset.env_id
    if not env_id:
        raise UserError(f"dataset {dataset.path} records no env id; name the env (env_id / --env)")
    dataset.check_env(env_id)  # SpaceMismatchError before anything is trained
    return dataset, env_id


def resolve_learner(cfg: IRLConfig, dataset: DemoDataset, env_id: str, *, algo: str | None = None,
                    off_policy: bool | None = None) -> LearnerSpec:
    """The learner of a run: ``algo``, else the config's, else :func:`default_learner`; checked against the
    pipeline's kind, the env's action space and what the reward model needs."""
    if algo is not None and cfg.algo not in (None, algo):
        raise ConfigError(f"config algo {cfg.algo!r} does not match this run's learner {algo!r}")
    rm_type = cfg.reward_model_config()["type"]
    name = algo or cfg.algo or default_learner(env_id, dataset.action_space, reward_model=rm_type,
                                               off_policy=off_policy)
    spec = get_learner(name)
    if off_policy is not None and spec.off_policy != off_policy:
        right = "offpolicy" if spec.off_policy else "onpolicy"
        raise ConfigError(f"learner {name} is {spec.kind}: use serial_pipeline_reward_model_{right}, or one of the "
                          f"{'off' if off_policy else 'on'}-policy learners: "
                          f"{', '.join(learner_names(off_policy=off_policy))}")
    check_action_space(name, dataset.action_space, env_id)
    model = reward_model_class(rm_type)
    missing = missing_facts(model, spec)
    if missing:
        fit = [n for n in learner_names() if not missing_facts(model, get_learner(n))]
        raise ConfigError(f"reward model {rm_type} needs {', '.join(missing)} from the learner, which {name} does "
                          f"not provide; learners that do: {', '.join(fit) or 'none registered'}")
    return spec


def irl_rl_config(spec: LearnerSpec, env_id: str, cfg: IRLConfig, *, seed: int) -> Any:
    """The learner config IRL trains with: tuned table < the reward model's defaults < ``cfg.rl`` < top-level keys.

    The budget: ``cfg.total_timesteps``, else the reward model's ``total_timesteps`` for the env and learner (its
    ``pipeline_defaults`` "rl" part), else :data:`BUDGET_FACTOR` times the tuned RL budget; the stop value likewise
    (``cfg.stop_value``, else the model's, else the tuned table's, else the env's reward threshold).

    Fields that are fractions of the budget (``spec.budget_fractions``, e.g. DQN's
    exploration_fraction) are rescaled so that they span as many env steps as in the
    tuned run, whatever the (larger) IRL budget.
    """
    tuned = tuned_config(spec.name, env_id)
    model = reward_model_class(cfg.reward_model_config()["type"])
    model_rl = irl_defaults(model, env_id, spec.name, "rl")
    model_budget = model_rl.pop("total_timesteps", None)  # the model's own budget for the env, when it has one
    budget = (cfg.total_timesteps if cfg.total_timesteps is not None else int(model_budget) if model_budget
              else BUDGET_FACTOR * int(tuned.total_timesteps))
    overrides = {**model_rl, **dict(cfg.rl or {})}
    for name in spec.budget_fractions:
        if name not in overrides:
            overrides[name] = min(1.0, getattr(tuned, name) * tuned.total_timesteps / budget)
    stop_value = cfg.stop_value if cfg.stop_value is not None else overrides.pop("stop_value", None)
    overrides.pop("stop_value", None)
    return tuned_config(spec.name, env_id, **overrides, total_timesteps=budget, seed=seed, device=cfg.device,
                        stop_value=stop_value)


def run_irl(config: IRLConfig | Mapping[str, Any] | tuple[Any, Any], seed: int = 0, *, algo: str | None = None,
            off_policy: bool | None = None, cooptrain_reward: bool = True, pretrain_reward: bool = False,
            max_env_step: int | None = None, progress: ProgressFn | None = None, tb_logger: Any = None,
            out: str | os.PathLike[str] | None = None, force: bool = False,
            state_path: str | os.PathLike[str] | None = None, state_every: int = STATE_EVERY) -> IRLResult:
    """Inverse RL with the configured reward model and learner (see the two serial pipelines).

    ``algo``: the learner (default: the config's, else :func:`default_learner`);
    ``off_policy``: refuse learners of the other kind (the serial pipelines set it);
    ``pretrain_reward``: ``reward_model.train()`` once before RL (for models that learn
    from expert data alone); ``cooptrain_reward=False``: the reward model is frozen during
    RL (no collect_data / train / clear_data; its estimates are still used);
    ``max_env_step``: DI-engine's name of the budget (``total_timesteps``); ``out``: the checkpoint
    to write, refused before any work when it is the expert data, a special or read-only file, or a
    file of another kind (a dataset, a file demokit did not write) unless ``force`` (the CLI's rules).
    ``state_path``: a long run that survives being stopped (learners with a training state, e.g. SAC,
    and reward models with one, e.g. GAIL): the whole training state is written there (atomically)
    every ``state_every`` env steps, and a run started with an existing ``state_path`` continues from
    it (the same settings: refused otherwise; the envs start fresh episodes). The last save of a run
    that spent its budget is its end (before the final evaluation), so a later run with a larger budget
    goes on from there; the file is left in place when the run ends (delete it to start over).
    """
    start = time.perf_counter()
    cfg = irl_config(config)
    if max_env_step is not None:
        if cfg.total_timesteps not in (None, max_env_step):
            raise ConfigError(f"max_env_step={max_env_step} and total_timesteps={cfg.total_timesteps} differ: "
                              f"give one")
        cfg = from_mapping(IRLConfig, cfg, total_timesteps=max_env_step)
    check_output_path(out, kind="checkpoint", inputs=[cfg.expert_path], force=force)  # the CLI's rules
    if state_path is not None:  # read when it exists, then rewritten: never the expert data or the checkpoint
        check_state_path(state_path, state_every, out=out, inputs=(cfg.expert_path,))
    dataset, env_id = expert_dataset_and_env(cfg)
    spec = resolve_learner(cfg, dataset, env_id, algo=algo, off_policy=off_policy)
    rl_config = irl_rl_config(spec, env_id, cfg, seed=seed)
    rm_config = cfg.reward_model_config()
    model = reward_model_class(rm_config["type"])
    if state_path is not None:
        check_resumable(spec, model)
    rm_config = {**irl_defaults(model, env_id, spec.name, "reward_model"), **rm_config}
    if "gamma" in model.needs:  # e.g. GAIL's absorbing state's value uses the learner's discount
        rm_config = {"gamma": float(rl_config.gamma), **rm_config}
    offered = _accepted_kwargs(model, {"seed": derive_seed(seed, "reward_model"), "expert_data": dataset})
    reward_model = create_reward_model(rm_config, cfg.device, tb_logger, **offered)
    if pretrain_reward:
        reward_model.train()
    holder: dict[str, Any] = {}

    def report(info: dict[str, float]) -> None:
        if progress is not None:
            trainer = holder.get("trainer")
            stats = {f"reward_model/{k}": v for k, v in (trainer.reward_stats if trainer else {}).items()}
            progress({**info, **stats})

    trainer = spec.trainer(rl_config, progress=report, tb_writer=tb_logger, reward_model=reward_model,
                           cooptrain_reward=cooptrain_reward)
    trainer.checkpoint_notes = {"irl": to_dict(cfg)}
    holder["trainer"] = trainer
    resume = {} if state_path is None else {"state_path": state_path, "state_every": state_every}
    try:
        result = trainer.learn(out=out, stop_at_goal=cfg.stop_at_threshold, **resume)
    finally:
        trainer.close()
    return IRLResult(policy=trainer.policy, converged=bool(result.reached_threshold),
                     mean_return=float(result.mean_return), std_return=float(result.std_return),
                     env_steps=int(result.env_steps), wall_s=time.perf_counter() - start,
                     rounds=trainer.reward_rounds, algo=trainer.run_name, env_id=env_id,
                     checkpoint=result.checkpoint, reward_model=reward_model)


def check_resumable(spec: LearnerSpec, model: type[BaseRewardModel]) -> None:
    """ConfigError unless the learner and the reward model can save their training state and continue from it
    (run_irl's ``state_path``): SAC with GAIL or SQIL, say; checked before anything trains."""
    check_learner_resumable(spec)
    if model.training_state is BaseRewardModel.training_state:
        raise ConfigError(f"a training state to continue from: the {model.name or model.__name__} reward model has "
                          f"none (training_state / load_training_state)")


def irl_config(config: IRLConfig | Mapping[str, Any] | tuple[Any, Any]) -> IRLConfig:
    """An IRLConfig from itself, a mapping of its keys, or DI-engine's ``(main_config, create_config)`` pair."""
    if isinstance(config, IRLConfig):
        return config
    if isinstance(config, tuple):
        if len(config) != 2:
            raise ConfigError(f"a DI-engine config is a (main_config, create_config) pair, got {len(config)} items")
        return from_mapping(IRLConfig, irl_keys_from_ding(*config))
    return from_mapping(IRLConfig, config)


def serial_pipeline_reward_model_offpolicy(config: IRLConfig | Mapping[str, Any] | tuple[Any, Any], seed: int = 0, *,
                                           cooptrain_reward: bool = True, pretrain_reward: bool = False,
                                           max_env_step: int | None = None, progress: ProgressFn | None = None,
                                           tb_logger: Any = None, out: str | os.PathLike[str] | None = None,
                                           force: bool = False) -> IRLResult:
    """Inverse RL with an off-policy learner (default: the first registered one that fits, DQN on
    Discrete actions) and a replay buffer (the seeds' CartPole example).

    Each round: collect ``train_freq`` env steps into the replay buffer and the reward
    model; train the reward model and clear its data; ``gradient_steps`` learner steps on
    replay minibatches whose rewards ``reward_model.estimate`` replaces (the buffer
    keeps the env rewards). ``out``: write a ``<reward model>-<learner>`` checkpoint there.
    """
    return run_irl(config, seed, off_policy=True, cooptrain_reward=cooptrain_reward, pretrain_reward=pretrain_reward,
                   max_env_step=max_env_step, progress=progress, tb_logger=tb_logger, out=out, force=force)


def serial_pipeline_reward_model_onpolicy(config: IRLConfig | Mapping[str, Any] | tuple[Any, Any], seed: int = 0, *,
                                          cooptrain_reward: bool = True, pretrain_reward: bool = False,
                                          max_env_step: int | None = None, progress: ProgressFn | None = None,
                                          tb_logger: Any = None, out: str | os.PathLike[str] | None = None,
                                          force: bool = False) -> IRLResult:
    """Inverse RL with an on-policy learner (default: PPO; the notebook's Acrobot example).

    Each round: one rollout (valid steps go to the reward model); train the reward model
    and clear its data; learner epochs on the rollout with every reward replaced by
    ``reward_model.estimate``. ``out``: write a ``<reward model>-<learner>`` checkpoint there.
    """
    return run_irl(config, seed, off_policy=False, cooptrain_reward=cooptrain_reward, pretrain_reward=pretrain_reward,
                   max_env_step=max_env_step, progress=progress, tb_logger=tb_logger, out=out, force=force)
