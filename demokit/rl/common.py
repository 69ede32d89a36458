"""Pieces shared by every trainer: schedules, threads, results, the learn loop, the reward hook.

``BaseTrainer`` owns what all learners do the same way: seeding, the vector env,
evaluation, the periodic "has it reached the goal yet?" check, progress reports,
checkpoint saving, the final 20-episode evaluation, and inverse RL as a hook: an
optional reward model that sees every collected batch and relabels every training
batch. Subclasses implement ``_iteration()`` (one unit of collect + learn) and
``_extra_state()``.
"""

from __future__ import annotations

import contextlib
import copy
import math
import os
import time
import warnings
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from demokit.config import option, required, to_dict
from demokit.envs import env_spec_json, make_vec_env, reward_threshold
from demokit.devices import resolve_device
from demokit.errors import ConfigError, UserError
from demokit.evaluation import EvalResult, evaluate_policy
from demokit.paths import check_distinct_outputs, check_output_path
from demokit.policies import NeuralPolicy, save_checkpoint
from demokit.results import as_dict
from demokit.rollout import StopFlag, VecStepper
from demokit.runtime import ProgressFn, torch_threads
from demokit.seeding import derive_seed, seed_everything
from demokit.transitions import TransitionBatch

# ``progress(info)`` (demokit.runtime.ProgressFn) is called after every iteration with keys env_steps,
# total_timesteps, episode_return (latest completed training episode, NaN before the first),
# steps_per_s and eval_return (latest evaluation mean, NaN before the first).

#: Seed offset of the evaluation episodes relative to the training seed (so the
#: training envs (seed .. seed+num_envs-1) and the evaluation episodes differ).
EVAL_SEED_OFFSET = 1000
#: env steps between two saves of ``learn(state_path=...)``'s training state (a SAC save costs ~0.25 s)
STATE_EVERY = 50_000


@dataclass(frozen=True)
class TrainResult:
    """What a finished training run produced (figures of the final 20-episode evaluation)."""

    checkpoint: str | None
    mean_return: float
    std_return: float
    env_steps: int
    wall_s: float
    reached_threshold: bool
    algo: str = ""
    env_id: str = ""
    stop_value: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return as_dict(self)


def linear_schedule(initial: float, progress_done: float, kind: str) -> float:
    """``initial`` ("constant") or ``initial * (1 - progress_done)`` ("linear"), progress in [0, 1]."""
    if kind == "constant":
        return initial
    if kind == "linear":
        return initial * max(0.0, 1.0 - progress_done)
    raise UserError(f"unknown schedule {kind!r}; use constant or linear")


def resolve_stop_value(env_id: str, stop_value: float | None) -> float | None:
    """The config's ``stop_value`` or else the env's registered reward_threshold (None: none)."""
    return float(stop_value) if stop_value is not None else reward_threshold(env_id)


@dataclass(frozen=True)
class LoopConfig:
    """Fields every trainer config has (PPOConfig and DQNConfig extend it; a subclass
    redeclares a field only to change its default or help)."""

    env_id: str = required("gymnasium env id, e.g. CartPole-v1")
    total_timesteps: int = option(200_000, "env-step budget (also the horizon of the linear schedules)")
    num_envs: int = option(8, "parallel envs in the SyncVectorEnv")
    gamma: float = option(0.99, "discount factor")
    eval_every: int = option(10_000, "env steps between goal checks (deterministic evaluation)")
    eval_episodes: int = option(5, "episodes of the quick goal check (all final_eval_episodes confirm it)")
    final_eval_episodes: int = option(20, "episodes of the final (and confirming) evaluation")
    stop_value: float | None = option(None, "mean return that counts as solved (None: the env's reward_threshold)")
    stop_after_passes: int = option(1, "consecutive passing goal checks needed to stop (2+: a lucky evaluation "
                                       "of a weak policy does not end training)")
    stop_margin_se: float = option(0.0, "standard errors by which the confirming evaluation's mean must clear "
                                        "stop_value (0: its mean reaches stop_value; 1: mean - std / sqrt(n - 1) "
                                        ">= stop_value, so a lucky confirmation of a policy just at the goal does "
                                        "not end training)")
    seed: int = option(0, "seed of everything (envs get seed+i)")
    device: str = option("auto", "auto, cpu or cuda")

    def __post_init__(self) -> None:
        check_positive(self, ("total_timesteps", "num_envs", "eval_every", "eval_episodes", "final_eval_episodes",
                              "stop_after_passes"))
        check_unit_interval(self, ("gamma",))
        if self.seed < 0:
            raise ConfigError(f"{type(self).__name__}.seed must be >= 0, got {self.seed}")
        if not (math.isfinite(self.stop_margin_se) and self.stop_margin_se >= 0):
            raise ConfigError(f"{type(self).__name__}.stop_margin_se must be a finite number >= 0, "
                              f"got {self.stop_margin_se}")
        if self.stop_margin_se > 0 and self.final_eval_episodes < 2:
            raise ConfigError(f"{type(self).__name__}.stop_margin_se > 0 needs a standard error: final_eval_episodes "
                              f"must be >= 2, got {self.final_eval_episodes}")


def clears_stop_value(returns: np.ndarray, stop_value: float, margin_se: float = 0.0) -> bool:
    """Whether evaluation ``returns`` (shape (episodes,)) reach ``stop_value`` by ``margin_se`` standard errors of
    their mean: ``mean - margin_se * se >= stop_value`` with ``se = std / sqrt(n - 1)`` (the population std, as
    EvalResult reports it: the sample std over sqrt(n)). ``margin_se`` 0: ``mean >= stop_value`` exactly."""
    mean = float(np.mean(returns))
    if margin_se == 0:
        return mean >= stop_value
    n = len(returns)
    if n < 2:
        raise ValueError("a standard error needs at least 2 returns")
    return mean - margin_se * float(np.std(returns)) / math.sqrt(n - 1) >= stop_value


def check_positive(cfg: Any, names: tuple[str, ...]) -> None:
    """ConfigError unless every field in ``names`` is >= 1."""
    for name in names:
        if getattr(cfg, name) < 1:
            raise ConfigError(f"{type(cfg).__name__}.{name} must be >= 1, got {getattr(cfg, name)}")


#: help of the off-policy learners' ``n_steps`` field (SACConfig, DQNConfig)
N_STEPS_HELP = ("n-step returns: each stored transition carries the discounted sum of the next n rewards and "
                "bootstraps from the state n steps on with gamma^n (fewer at an episode's end: "
                "rl.buffers.NStepWindows); 1: ordinary 1-step targets. Plain RL only: a reward model relabels "
                "single transitions")


def check_n_steps_with_reward_model(cfg: Any, reward_model: Any) -> None:
    """ConfigError when an off-policy learner with ``n_steps`` > 1 is given a reward model: its replay holds
    n-step sums of the env's rewards, which a reward model cannot relabel transition by transition."""
    if reward_model is not None and int(getattr(cfg, "n_steps", 1)) > 1:
        raise ConfigError(f"{type(cfg).__name__}.n_steps is {cfg.n_steps}, but a reward model relabels single "
                          f"transitions and n-step replay stores sums of the env's rewards: use n_steps 1 with a "
                          f"reward model (GAIL, AIRL, ...)")


def check_unit_interval(cfg: Any, names: tuple[str, ...]) -> None:
    """ConfigError unless every field in ``names`` is in [0, 1]."""
    for name in names:
        if not 0.0 <= getattr(cfg, name) <= 1.0:
            raise ConfigError(f"{type(cfg).__name__}.{name} must be in [0, 1], got {getattr(cfg, name)}")


class BaseTrainer:
    """Shared machinery; see the module docstring. Not used directly.

    A subclass implements ``_iteration() -> dict`` (one collect + learn unit of
    ``learn()``; returns scalars for TensorBoard) and ``_extra_state() -> dict`` (tensors
    saved in the checkpoint's ``extra``).

    Inverse RL is a hook, the seeds' three-stage round, that every ``_iteration`` calls
    the same way (each is a no-op without a reward model):

    1. :meth:`observe_transitions` with each collected batch (``reward_model.collect_data``);
    2. :meth:`fit_reward_model` once per round before learning (``train()`` then
       ``clear_data(round)``);
    3. :meth:`training_rewards` with each batch the learner trains on (on-policy: the
       rollout; off-policy: every sampled replay minibatch): ``reward_model.estimate``.

    The reward model is anything with the ``BaseRewardModel`` methods that accepts a
    :class:`~demokit.transitions.TransitionBatch`. ``cooptrain_reward=False`` freezes it
    (stages 1 and 2 are skipped; its rewards are still used).
    """

    algo = ""

    def __init__(self, config: Any, *, progress: ProgressFn | None = None, tb_writer: Any = None,
                 reward_model: Any = None, cooptrain_reward: bool = True) -> None:
        self.config = config
        self.progress = progress
        self.tb_writer = tb_writer
        self.reward_model = reward_model
        bind = getattr(reward_model, "use_policy_log_probs", None)  # e.g. AIRL: log pi of expert actions
        if callable(bind):
            bind(self.policy_log_probs)
        self.cooptrain_reward = bool(cooptrain_reward)
        self.reward_rounds = 0
        self.reward_stats: dict[str, float] = {}
        #: figures added to the checkpoint's ``training`` dict (e.g. the IRL pipeline's settings)
        self.checkpoint_notes: dict[str, Any] = {}
        self.device = resolve_device(config.device)
        self.env_id = config.env_id
        self.stop_value = resolve_stop_value(config.env_id, config.stop_value)
        self._threads = 1 if self.device.type == "cpu" else None
        seed = int(config.seed)
        seed_everything(seed)
        self.rng = np.random.default_rng(derive_seed(seed, "trainer"))
        self.generator = torch.Generator(device="cpu")
        self.generator.manual_seed(derive_seed(seed, "sampling"))
        self.venv = make_vec_env(config.env_id, int(config.num_envs), seed=seed, infos=False)
        self.runner = VecStepper(self.venv)
        self.runner.reset(seed=seed)
        self.env_steps = 0
        self.iterations = 0
        self.recent_returns: deque[float] = deque(maxlen=20)
        self.last_eval: float = math.nan
        self._t_start = time.perf_counter()
        self._policy: NeuralPolicy | None = None
        self._best: tuple[float, dict[str, Any]] | None = None  # (quick-check mean, policy state)

    @property
    def run_name(self) -> str:
        """``algo``, or ``<reward model>-<algo>`` (e.g. ``gail-ppo``) with a reward model."""
        if self.reward_model is None:
            return self.algo
        name = getattr(self.reward_model, "name", "") or type(self.reward_model).__name__.lower()
        return f"{name}-{self.algo}"

    # ---- the inverse-RL hook (see the class docstring) ---------------------------------
    def replay_batch(self, batch: Any, env_actions: Any) -> TransitionBatch:
        """Transitions of the replay-buffer layout (obs, reward, next_obs, terminated, truncated: a
        collected chunk of numpy arrays or a sampled dict of tensors) as a TransitionBatch whose actions
        are ``env_actions`` (what the env received)."""
        def t(x: Any) -> torch.Tensor:
            return torch.as_tensor(x, device=self.device)

        return TransitionBatch(observations=t(batch["obs"]), actions=t(env_actions), rewards=t(batch["reward"]),
                               next_observations=t(batch["next_obs"]), terminated=t(batch["terminated"]),
                               truncated=t(batch["truncated"]))

    def observe_transitions(self, batch: Callable[[], TransitionBatch]) -> None:
        """Stage 1: hand the freshly collected transitions to the reward model.

        ``batch`` is a zero-argument function building the batch, so learners without a
        reward model never build one.
        """
        if self.reward_model is not None and self.cooptrain_reward:
            self.reward_model.collect_data(batch())

    def fit_reward_model(self) -> None:
        """Stage 2 (once per round, before learning): ``train()``, then ``clear_data(round)``."""
        if self.reward_model is None:
            return
        self.reward_rounds += 1
        if self.cooptrain_reward:
            self.reward_stats = dict(self.reward_model.train() or {})
            self.reward_model.clear_data(self.reward_rounds)

    def training_rewards(self, batch: Callable[[], TransitionBatch]) -> torch.Tensor | None:
        """Stage 3: the reward model's rewards (B,) for a training batch; None without a reward model
        (the learner then uses the env's rewards)."""
        if self.reward_model is None:
            return None
        estimated = self.reward_model.estimate(batch())
        if isinstance(estimated, TransitionBatch):
            return estimated.rewards
        return torch.as_tensor(estimated["reward"]).reshape(-1)  # a model that returns a batch dict

    def mix_supplied_transitions(self, batch: dict[str, torch.Tensor],
                                 rewards: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """Off-policy stage 3b: a reward model that supplies transitions (``supplied_fraction`` > 0 and
        ``supply_transitions(n) -> TransitionBatch``, e.g. SQIL's expert data) replaces that share of a sampled
        replay minibatch (the last rows) with its own transitions and rewards. Otherwise: unchanged."""
        model = self.reward_model
        fraction = float(getattr(model, "supplied_fraction", 0.0) or 0.0) if model is not None else 0.0
        b = int(rewards.shape[0])
        n = min(b, int(round(fraction * b)))
        if n == 0:
            return batch, rewards
        extra = model.supply_transitions(n)
        keep = b - n
        own = {"obs": extra.observations, "next_obs": extra.next_observations, "terminated": extra.terminated,
               "truncated": extra.truncated, "reward": extra.rewards,
               "action": self.policy.actions_to_tensor(extra.actions.cpu())}
        mixed = dict(batch)
        for key, value in own.items():
            if key in batch:
                old = batch[key]
                mixed[key] = torch.cat([old[:keep], value.to(old.device, old.dtype).reshape(n, *old.shape[1:])])
        return mixed, torch.cat([rewards[:keep], extra.rewards.to(rewards.device, rewards.dtype)])

    def policy_log_probs(self, observations: torch.Tensor, env_actions: torch.Tensor) -> torch.Tensor:
        """log pi(a | s) (B,) of the current policy for raw flat observations and env actions (no gradient)."""
        policy = self.policy
        with torch.no_grad():
            x = policy.preprocess(observations)
            log_probs, _ = policy.evaluate_actions(x, policy.actions_to_tensor(env_actions.cpu()))
        return log_probs

    # ---- to be provided by subclasses ------------------------------------------
    @property
    def policy(self) -> NeuralPolicy:
        """The policy being trained (a NeuralPolicy; its checkpoint is the expert)."""
        assert self._policy is not None
        return self._policy

    def _iteration(self) -> dict[str, float]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _extra_state(self) -> dict[str, Any]:
        return {}

    def _checkpoint_extra(self) -> dict[str, Any]:
        extra = self._extra_state()
        if self.reward_model is not None:
            extra["reward_model"] = self.reward_model.state_dict()
        return extra

    # ---- shared ----------------------------------------------------------------
    @property
    def progress_done(self) -> float:
        """Fraction of ``total_timesteps`` used (drives the linear schedules)."""
        return min(1.0, self.env_steps / max(1, int(self.config.total_timesteps)))

    def _note_episodes(self, returns: list[float]) -> None:
        self.recent_returns.extend(returns)

    def evaluate(self, episodes: int = 20, seed: int | None = None, *, deterministic: bool = True) -> EvalResult:
        """Evaluate the current policy on ``episodes`` fresh episodes (episode i seeded seed+i).

        ``seed`` defaults to the training seed + 1000 (episodes unseen in training).
        """
        seed = int(self.config.seed) + EVAL_SEED_OFFSET if seed is None else int(seed)
        was_training = self.policy.training
        self.policy.eval()
        with torch_threads(self._threads):
            result = evaluate_policy(self.policy, self.env_id, episodes=episodes, seed=seed, deterministic=deterministic)
        self.policy.train(was_training)
        return result

    def _goal_check(self) -> EvalResult | None:
        """Quick eval on the first ``eval_episodes`` episodes; only if it passes, the other
        ones up to ``final_eval_episodes`` (same seeds as the final evaluation). Returns the
        full evaluation when the goal is reached, else None."""
        cfg = self.config
        seed = int(cfg.seed) + EVAL_SEED_OFFSET
        quick_n = min(int(cfg.eval_episodes), int(cfg.final_eval_episodes))
        quick = self.evaluate(quick_n, seed)
        self.last_eval = quick.mean_return
        self._log({"eval/quick_mean_return": quick.mean_return})
        if self._best is None or quick.mean_return > self._best[0]:
            self._best = (quick.mean_return, self.snapshot())
        if self.stop_value is None or quick.mean_return < self.stop_value:
            return None
        rest_n = int(cfg.final_eval_episodes) - quick_n
        if rest_n > 0:
            rest = self.evaluate(rest_n, seed + quick_n)
            full = EvalResult(returns=np.concatenate([quick.returns, rest.returns]),
                              lengths=np.concatenate([quick.lengths, rest.lengths]))
        else:
            full = quick
        self.last_eval = full.mean_return
        self._log({"eval/mean_return": full.mean_return})
        return full if clears_stop_value(full.returns, self.stop_value, float(cfg.stop_margin_se)) else None

    def _log(self, scalars: dict[str, float]) -> None:
        if self.tb_writer is not None:
            for k, v in scalars.items():
                if v is not None and math.isfinite(float(v)):
                    self.tb_writer.add_scalar(k, float(v), self.env_steps)

    def _report(self) -> None:
        if self.progress is None:
            return
        elapsed = max(1e-9, time.perf_counter() - self._t_start)
        self.progress({"env_steps": float(self.env_steps), "total_timesteps": float(self.config.total_timesteps),
                       "episode_return": self.recent_returns[-1] if self.recent_returns else math.nan,
                       "steps_per_s": self.env_steps / elapsed, "eval_return": self.last_eval})

    def learn(self, *, out: str | os.PathLike[str] | None = None, stop_at_goal: bool = True,
              state_path: str | os.PathLike[str] | None = None, state_every: int = STATE_EVERY) -> TrainResult:
        """The plain loop: iterate until ``total_timesteps`` env steps (or, with
        ``stop_at_goal``, until the deterministic evaluation reaches the stop value in
        ``stop_after_passes`` consecutive checks, every ``eval_every`` env steps), then
        evaluate on ``final_eval_episodes`` episodes and save a checkpoint to ``out`` (when given).

        ``state_path``: a long run that survives being stopped (trainers with ``save_training_state``,
        e.g. SAC): an existing file is continued from (the same settings: refused otherwise; the envs
        start fresh episodes); the whole training state is written there (atomically) every
        ``state_every`` env steps, when the budget is spent (before the final evaluation, so a later run
        with a larger budget goes on from the end) and when Ctrl-C / SIGTERM stops the run (at the end
        of the iteration in progress; a second signal stops at once, keeping the previous save). A save
        that fails (e.g. a full disk) is a warning: training goes on. The file is left in place."""
        cfg = self.config
        check_output_path(out)
        saver = None if state_path is None else _StateSaver(self, state_path, int(state_every), out=out)
        self._t_start = time.perf_counter()
        check_goal = stop_at_goal and self.stop_value is not None
        next_check = (int(self.env_steps) // int(cfg.eval_every) + 1) * int(cfg.eval_every)  # a resumed run goes on
        final: EvalResult | None = None
        passes = 0  # consecutive passing goal checks
        stop = StopFlag()
        with torch_threads(self._threads), (stop.installed() if saver else contextlib.nullcontext()):
            while self.env_steps < int(cfg.total_timesteps):
                stats = self._iteration()
                self.iterations += 1
                if self.recent_returns:
                    stats["rollout/ep_return_mean"] = float(np.mean(self.recent_returns))
                self._log(stats)
                if check_goal and self.env_steps >= next_check:
                    while next_check <= self.env_steps:
                        next_check += int(cfg.eval_every)
                    passed = self._goal_check()
                    passes = passes + 1 if passed is not None else 0
                    if passed is not None and passes >= int(cfg.stop_after_passes):
                        final = passed
                        self._report()
                        break
                if saver is not None:  # before the report: a progress function sees the state it reports on
                    saver.after_iteration(stopped=stop.set)
                self._report()
                if stop.set:
                    if saver is not None:  # a signal during the report: saved now (nothing to do when it was)
                        saver.after_iteration(stopped=True)
                    raise KeyboardInterrupt(f"training stopped at {self.env_steps} env steps; its state is in "
                                            f"{state_path} (run again with it to continue)")
        if final is None:
            final = self._final_evaluation()
        wall_s = time.perf_counter() - self._t_start
        reached = self.stop_value is not None and final.mean_return >= self.stop_value
        result = TrainResult(checkpoint=None, mean_return=final.mean_return, std_return=final.std_return,
                             env_steps=int(self.env_steps), wall_s=wall_s, reached_threshold=bool(reached),
                             algo=self.run_name, env_id=self.env_id, stop_value=self.stop_value)
        if out is not None:
            figures = result.as_dict()
            figures.pop("checkpoint")
            self.save(out, training=figures)
            result = TrainResult(**{**result.__dict__, "checkpoint": str(out)})
        return result

    def _final_evaluation(self) -> EvalResult:
        """Evaluate the final policy; if a goal check saw a better one (budget ran out
        before the goal), evaluate that snapshot too and keep whichever is better."""
        n = int(self.config.final_eval_episodes)
        final = self.evaluate(n)
        if self._best is not None and self._best[0] > final.mean_return:
            current = self.snapshot()
            self.policy.load_state_dict(self._best[1])
            best = self.evaluate(n)
            if best.mean_return > final.mean_return:
                final = best
            else:
                self.policy.load_state_dict(current)
        self._best = None
        self.last_eval = final.mean_return
        return final

    def save(self, path: str | os.PathLike[str], *, training: dict[str, Any] | None = None) -> str:
        """Write the policy as a demokit checkpoint (algo, env spec, config, extra state); returns sha256."""
        figures = {**(training or {}), **self.checkpoint_notes}
        figures.setdefault("env_steps", int(self.env_steps))
        figures["config"] = to_dict(self.config)
        if self.reward_model is not None:
            figures["rounds"] = self.reward_rounds
        return save_checkpoint(path, self.policy, algo=self.run_name, env_id=self.env_id,
                               env_spec=env_spec_json(self.env_id), training=figures, extra=self._checkpoint_extra())

    def snapshot(self) -> dict[str, Any]:
        """A deep copy of the policy's state (weights and normalisation statistics)."""
        return copy.deepcopy(self.policy.state_dict())

    def close(self) -> None:
        """Close the vector env."""
        self.venv.close()


def check_state_path(state_path: str | os.PathLike[str], state_every: int = STATE_EVERY, *,
                     out: str | os.PathLike[str] | None = None, inputs: tuple[Any, ...] = (),
                     what: str = "state_path", out_what: str = "checkpoint") -> None:
    """Refuse, before any work, a training-state path that cannot be written (the output rules), that is one
    of ``inputs`` (e.g. the expert data) or the checkpoint ``out``, and a ``state_every`` below 1 env step."""
    check_output_path(state_path, inputs=inputs, what=what)  # read when it exists, then rewritten
    check_distinct_outputs(state_path, out, what=what, other_what=out_what)
    if int(state_every) < 1:
        raise ConfigError(f"state_every must be >= 1 env step, got {state_every}")


class _StateSaver:
    """``learn(state_path=...)``'s bookkeeping: checks the trainer and the path, continues from an existing
    file, then saves every ``every`` env steps, at the budget's end and when a stop signal arrived."""

    def __init__(self, trainer: BaseTrainer, path: str | os.PathLike[str], every: int, *,
                 out: str | os.PathLike[str] | None) -> None:
        if not hasattr(trainer, "save_training_state"):
            raise ConfigError(f"a training state to continue from: the {trainer.algo or type(trainer).__name__} "
                              f"learner has none")
        check_state_path(path, every, out=out)
        self.trainer, self.path, self.every = trainer, path, every
        if os.path.exists(path):
            trainer.load_training_state(path)
        self.saved_at = int(trainer.env_steps)

    def after_iteration(self, *, stopped: bool) -> None:
        """Save when due, and after a stop signal (the caller then stops)."""
        t = self.trainer
        steps = int(t.env_steps)
        due = steps - self.saved_at >= self.every or steps >= int(t.config.total_timesteps)
        if steps > self.saved_at and (due or stopped):
            self.save()

    def save(self) -> None:
        t = self.trainer
        self.saved_at = int(t.env_steps)
        try:
            t.save_training_state(self.path)
        except OSError as exc:  # e.g. a full disk: the run goes on (the previous state is intact: atomic writes)
            warnings.warn(f"state_path {self.path}: the training state at {t.env_steps} env steps was not saved "
                          f"({exc.strerror or exc}); training goes on and tries again in {self.every} env steps; "
                          f"a stopped run would continue from the previous save", stacklevel=3)
