"""Soft actor-critic: squashed-Gaussian actor, twin Q critics with Polyak targets, automatic entropy.

The actor is a ``NeuralPolicy`` with head "squashed_gaussian" (its checkpoint is an ordinary
demokit policy: ``demokit eval`` / ``collect`` act from it; the deterministic action is
``tanh(mean)`` rescaled to the Box bounds). The critics, their targets and the entropy
coefficient travel in the checkpoint's ``extra``. ``SACTrainer`` is the round-by-round API of
an outer loop (as ``DQNTrainer``)::

    trainer = SACTrainer(tuned_config("sac", "Pendulum-v1"))
    new = trainer.collect(1)            # numpy arrays of the new transitions (also in ``replay``)
    trainer.train_steps(1, reward_fn=None)

Replay stores the actor's action in [-1, 1] (the rescaling to the bounds is a fixed affine map)
and the observations in their space's dtype (float64 MuJoCo observations stay float64 until
the network). Truncated transitions bootstrap, terminated ones do not; autoreset steps
(gymnasium 1.x NEXT_STEP) are never stored.

The loop is written for a small CPU net where Python overhead per env step dominates: one
fused-Adam call per network, the two critics evaluated as one batched matmul chain, the
actor's loss through the critics' detached weights (no gradient bookkeeping for them), the
target update as two foreach calls, and loss figures read only when TensorBoard logs them.
"""

from __future__ import annotations

import io
import json
import math
import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from gymnasium import spaces
from torch import nn

from demokit.config import from_mapping, option, to_dict
from demokit.devices import has_fast_bfloat16
from demokit.errors import CheckpointError, ConfigError, UserError
from demokit.paths import atomic_write_bytes
from demokit.policies import make_policy
from demokit.policies.networks import ACTIVATIONS, make_adam, set_learning_rate
from demokit.rl.buffers import ReplayBuffer
from demokit.rl.common import (N_STEPS_HELP, BaseTrainer, LoopConfig, ProgressFn, check_n_steps_with_reward_model,
                               check_positive, check_unit_interval, linear_schedule)
from demokit.rollout import storage_spec, to_storage
from demokit.seeding import derive_seed
from demokit.spaces import describe

RewardFn = Callable[[dict[str, torch.Tensor]], torch.Tensor]

#: ``format`` of a file written by :meth:`SACTrainer.save_training_state`
TRAINING_STATE_FORMAT = "demokit-sac-training-state"
TRAINING_STATE_VERSION = 1
#: config fields a resumed run may change (budget, evaluation, placement); all others must match (a state saved
#: before a field existed resumes under any value of it when the field is listed here: stop_margin_se, session 9)
RESUMABLE_CHANGES = frozenset({"total_timesteps", "eval_every", "eval_episodes", "final_eval_episodes",
                               "stop_value", "stop_after_passes", "stop_margin_se", "device"})

#: env steps per ``_iteration`` (one progress report / goal-check opportunity); bounded by eval_every
STEPS_PER_ITERATION = 250


@dataclass(frozen=True)
class SACConfig(LoopConfig):
    """SAC hyperparameters (SB3 / rl-zoo defaults; per-env tuned values live in ``rl.hyperparams``)."""

    total_timesteps: int = option(1_000_000, "env-step budget (also the horizon of the lr schedule)")
    num_envs: int = option(1, "parallel envs in the SyncVectorEnv")
    buffer_size: int = option(1_000_000, "replay buffer capacity (transitions)")
    learning_starts: int = option(100, "env steps of uniformly random actions before the first gradient step")
    batch_size: int = option(256, "replay minibatch size")
    learning_rate: float = option(3e-4, "Adam learning rate of the actor, the critics and the entropy coefficient")
    lr_schedule: Literal["constant", "linear"] = option("constant", "learning-rate schedule over total_timesteps")
    tau: float = option(0.005, "Polyak rate of the target critics (1.0: hard copy)")
    train_freq: int = option(1, "env steps (per env) collected between training rounds")
    gradient_steps: int = option(1, "gradient steps per training round (-1: as many as env steps collected)")
    target_update_interval: int = option(1, "gradient steps between target-critic updates")
    ent_coef: float | None = option(None, "fixed entropy coefficient alpha; unset: tuned automatically "
                                          "toward target_entropy, starting at ent_coef_init")
    ent_coef_init: float = option(1.0, "initial alpha of the automatic tuning")
    target_entropy: float | None = option(None, "entropy target of the automatic tuning (unset: -dim(actions))")
    n_critics: int = option(2, "Q networks; the target is their minimum")
    n_steps: int = option(1, N_STEPS_HELP)
    hidden_sizes: tuple[int, ...] = option((256, 256), "hidden layers of the actor and of each critic")
    activation: str = option("relu", "activation: tanh, relu, elu or gelu")
    precision: Literal["float32", "bfloat16"] = option(
        "float32", "matrix products of the gradient steps' hidden layers: float32, or bfloat16 (mixed precision: "
                   "weights, optimiser, output layers, losses and acting stay float32; ~1.3-1.5x faster training on "
                   "CPUs with AVX512-BF16 or AMX, and on GPUs, but ~16x slower on CPUs without them (a warning "
                   "says so); numerics differ from float32)")

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive(self, ("buffer_size", "batch_size", "train_freq", "target_update_interval", "n_critics",
                              "n_steps"))
        check_unit_interval(self, ("tau",))
        if self.tau == 0.0:
            raise ConfigError("SACConfig.tau must be in (0, 1]: 0 never updates the target critics")
        if self.gradient_steps == 0 or self.gradient_steps < -1:
            raise ConfigError(f"SACConfig.gradient_steps must be >= 1 or -1, got {self.gradient_steps}")
        if self.learning_starts < 0 or self.learning_rate <= 0:
            raise ConfigError(f"SACConfig: learning_starts must be >= 0 and learning_rate > 0, got "
                              f"{self.learning_starts} and {self.learning_rate}")
        if self.ent_coef is not None and self.ent_coef < 0:
            raise ConfigError(f"SACConfig.ent_coef must be >= 0 (or unset for automatic tuning), got {self.ent_coef}")
        if self.ent_coef_init <= 0:
            raise ConfigError(f"SACConfig.ent_coef_init must be > 0, got {self.ent_coef_init}")
        if self.activation not in ACTIVATIONS:
            raise ConfigError(f"SACConfig.activation must be one of {sorted(ACTIVATIONS)}, got {self.activation!r}")
        if self.precision not in ("float32", "bfloat16"):
            raise ConfigError(f"SACConfig.precision must be float32 or bfloat16, got {self.precision!r}")
        if not self.hidden_sizes or any(int(h) < 1 for h in self.hidden_sizes):
            raise ConfigError(f"SACConfig.hidden_sizes must be positive integers, got {self.hidden_sizes}")
        if self.learning_starts >= self.total_timesteps:
            warnings.warn(f"SACConfig: learning_starts {self.learning_starts} >= total_timesteps {self.total_timesteps}: "
                          f"every action is uniformly random and no gradient step runs", stacklevel=3)


# ---- the maths (known-answer tested) ------------------------------------------------
def sac_critic_target(rewards: torch.Tensor, next_q: torch.Tensor, next_log_prob: torch.Tensor,
                      terminated: torch.Tensor, gamma: float | torch.Tensor, alpha: torch.Tensor | float) -> torch.Tensor:
    """y = r + gamma * (1 - terminated) * (min_i Q'_i(s', a') - alpha * log pi(a'|s')), a' ~ pi(s').

    ``next_q``: (n_critics, B) target-critic values of (s', a'); ``next_log_prob``: (B,).
    ``gamma``: the discount, or (B,) per-transition bootstrap factors (n-step transitions: gamma^m,
    ``r`` their discounted m-step reward sum). Truncated transitions bootstrap (only ``terminated``
    cuts the sum)."""
    soft_v = next_q.min(0).values - alpha * next_log_prob
    return rewards + gamma * (1.0 - terminated.float()) * soft_v


def sac_critic_loss(q: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """0.5 * sum over critics of the mean squared error of ``q`` (n_critics, B) to ``target`` (B,)."""
    return 0.5 * (q - target).pow(2).mean(-1).sum()


def sac_actor_loss(log_prob: torch.Tensor, q: torch.Tensor, alpha: torch.Tensor | float) -> torch.Tensor:
    """mean(alpha * log pi(a|s) - min_i Q_i(s, a)), a ~ pi(s) reparameterised; ``q``: (n_critics, B)."""
    return (alpha * log_prob - q.min(0).values).mean()


def sac_alpha_loss(log_alpha: torch.Tensor, log_prob: torch.Tensor, target_entropy: float) -> torch.Tensor:
    """-mean(log_alpha * (log pi(a|s) + target_entropy)): alpha grows while the entropy is below target."""
    return -(log_alpha * (log_prob.detach() + target_entropy)).mean()


def sac_alpha_grad(log_prob: torch.Tensor, target_entropy: float) -> torch.Tensor:
    """d sac_alpha_loss / d log_alpha = -mean(log pi(a|s) + target_entropy), shape (1,) (the trainer
    sets it as the gradient directly: no autograd pass for a one-parameter loss)."""
    return -(log_prob.detach() + target_entropy).mean().reshape(1)


@torch.no_grad()
def polyak_update_(target: Sequence[torch.Tensor], source: Sequence[torch.Tensor], tau: float) -> None:
    """target <- (1 - tau) * target + tau * source, for lists of tensors (two foreach calls)."""
    torch._foreach_mul_(list(target), 1.0 - tau)
    torch._foreach_add_(list(target), list(source), alpha=tau)


class QEnsemble(nn.Module):
    """``n`` MLP critics Q_i(obs, action) evaluated together as batched matrix products.

    Member i has the layers of ``nn.Linear`` (same default initialisation); weights are stored
    stacked as (n, in, out) so one ``baddbmm`` per layer evaluates all members.
    ``forward(x, params=None, compute_dtype=None)``: x (B, in) -> (n, B) float32; ``params``
    replaces the module's own tensors (e.g. detached ones, so that a loss differentiates only
    through ``x``); ``compute_dtype`` (e.g. bfloat16) runs the hidden layers' products in that
    dtype (the output layer stays in x's dtype: Q-values keep float32 resolution).
    """

    def __init__(self, in_dim: int, hidden_sizes: Sequence[int], *, n: int = 2, activation: str = "relu") -> None:
        super().__init__()
        self.n = int(n)
        self.act = ACTIVATIONS[activation]()
        self._relu = activation == "relu"  # in place on the fresh product (same values, no new tensor)
        sizes = [int(in_dim), *(int(h) for h in hidden_sizes), 1]
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for a, b in zip(sizes[:-1], sizes[1:]):
            layers = [nn.Linear(a, b) for _ in range(self.n)]
            self.weights.append(nn.Parameter(torch.stack([lin.weight.detach().t() for lin in layers]).contiguous()))
            self.biases.append(nn.Parameter(torch.stack([lin.bias.detach() for lin in layers]).unsqueeze(1)))

    def param_list(self) -> list[torch.Tensor]:
        """[W0, b0, W1, b1, ...] in layer order (what ``params`` of :meth:`forward` takes)."""
        out: list[torch.Tensor] = []
        for w, b in zip(self.weights, self.biases):
            out += [w, b]
        return out

    def forward(self, x: torch.Tensor, params: Sequence[torch.Tensor] | None = None,
                compute_dtype: torch.dtype | None = None) -> torch.Tensor:
        p = self.param_list() if params is None else params
        h = x.unsqueeze(0).expand(self.n, *x.shape)
        last = len(p) // 2 - 1
        for i in range(last):
            w, b = p[2 * i], p[2 * i + 1]
            if compute_dtype is not None:
                h, w, b = h.to(compute_dtype), w.to(compute_dtype), b.to(compute_dtype)
            h = torch.baddbmm(b, h, w)
            h = h.relu_() if self._relu else self.act(h)
        return torch.baddbmm(p[-1], h.to(x.dtype), p[-2]).squeeze(-1)


def check_sac_action_space(env_id: str, act_space: spaces.Space) -> None:
    """UserError unless SAC can act in ``act_space`` (a Box with finite bounds)."""
    if not isinstance(act_space, spaces.Box):
        raise UserError(f"--algo sac needs a Box (continuous) action space; {env_id} has {describe(act_space)}: "
                        f"use --algo ppo or --algo dqn")
    if not (np.all(np.isfinite(act_space.low)) and np.all(np.isfinite(act_space.high))):
        raise UserError(f"--algo sac rescales its tanh actions to the action bounds; {env_id} has unbounded "
                        f"actions {describe(act_space)}: use --algo ppo")


class SACTrainer(BaseTrainer):
    """SAC on ``config.num_envs`` envs; see the module docstring for the round-by-round API."""

    algo = "sac"

    def __init__(self, config: SACConfig | dict[str, Any], *, progress: ProgressFn | None = None,
                 tb_writer: Any = None, reward_model: Any = None, cooptrain_reward: bool = True) -> None:
        cfg = config if isinstance(config, SACConfig) else from_mapping(SACConfig, config)
        check_n_steps_with_reward_model(cfg, reward_model)
        super().__init__(cfg, progress=progress, tb_writer=tb_writer, reward_model=reward_model,
                         cooptrain_reward=cooptrain_reward)
        obs_space, act_space = self.runner.observation_space, self.runner.action_space
        try:
            check_sac_action_space(cfg.env_id, act_space)
        except UserError:
            self.close()
            raise
        dev = self.device
        self._policy = make_policy(obs_space, act_space, head="squashed_gaussian", hidden_sizes=cfg.hidden_sizes,
                                   activation=cfg.activation).to(dev)
        self._policy.seed(derive_seed(cfg.seed, "policy"))
        self.act_dim = int(np.prod(act_space.shape))
        self.critic = QEnsemble(self._policy.obs_dim + self.act_dim, cfg.hidden_sizes, n=cfg.n_critics,
                                activation=cfg.activation).to(dev)
        self.critic_target = QEnsemble(self._policy.obs_dim + self.act_dim, cfg.hidden_sizes, n=cfg.n_critics,
                                       activation=cfg.activation).to(dev)
        self.critic_target.load_state_dict(self.critic.state_dict())
        self.critic_target.requires_grad_(False)
        self._critic_params = self.critic.param_list()
        self._target_params = self.critic_target.param_list()
        self._actor_params = list(self._policy.parameters())
        self.actor_optimizer = make_adam(self._actor_params, cfg.learning_rate, direct=True)
        self.critic_optimizer = make_adam(self._critic_params, cfg.learning_rate, direct=True)
        self.auto_alpha = cfg.ent_coef is None
        self.target_entropy = float(-self.act_dim if cfg.target_entropy is None else cfg.target_entropy)
        init = cfg.ent_coef_init if self.auto_alpha else max(float(cfg.ent_coef), 1e-30)
        self.log_alpha = torch.tensor([math.log(init)], device=dev, requires_grad=self.auto_alpha)
        self.alpha_optimizer = make_adam([self.log_alpha], cfg.learning_rate, direct=True) if self.auto_alpha else None
        self._fixed_alpha = None if self.auto_alpha else torch.tensor(float(cfg.ent_coef), device=dev)
        # observations in their own dtype and shape for a Box space; other spaces flat float32
        obs_shape, obs_dtype = storage_spec(obs_space)
        self.replay = ReplayBuffer(cfg.buffer_size, self._policy.obs_dim, action_shape=(self.act_dim,),
                                   action_dtype=np.float32, obs_shape=obs_shape, obs_dtype=obs_dtype,
                                   seed=derive_seed(cfg.seed, "replay"), device=dev, n_steps=cfg.n_steps,
                                   gamma=cfg.gamma, num_envs=self.runner.num_envs)
        self._low = np.asarray(act_space.low, dtype=np.float64).reshape(-1)
        self._half_range = 0.5 * (np.asarray(act_space.high, dtype=np.float64).reshape(-1) - self._low)
        self._act_shape = tuple(act_space.shape)
        self._act_dtype = act_space.dtype
        self._all_envs = np.arange(self.runner.num_envs)
        self.gradient_steps_done = 0
        self._low_precision = torch.bfloat16 if cfg.precision == "bfloat16" else None
        if self._low_precision is not None and not has_fast_bfloat16(dev):
            warnings.warn(f"SAC precision bfloat16 on {dev}: this {dev.type} has no native bfloat16 products "
                          f"(AVX512-BF16 or AMX on a CPU), so torch emulates them; measured on such a CPU a "
                          f"gradient step took ~16x float32's time: use precision float32 here", stacklevel=2)

    # ---- acting ------------------------------------------------------------------
    @property
    def alpha(self) -> torch.Tensor:
        """The current entropy coefficient (a detached 1-element tensor)."""
        return self.log_alpha.detach().exp() if self.auto_alpha else self._fixed_alpha

    def to_env_actions(self, squashed: np.ndarray) -> np.ndarray:
        """Actions in [-1, 1] (B, A) -> env actions in the Box bounds (B, *shape)."""
        env = self._low + (squashed.astype(np.float64) + 1.0) * self._half_range
        env = np.minimum(np.maximum(env, self._low), self._low + 2.0 * self._half_range)  # rounding only
        return env.astype(self._act_dtype).reshape((squashed.shape[0], *self._act_shape))

    def _sample_actions(self, obs: Any) -> np.ndarray:
        n = self.runner.num_envs
        if self.env_steps < int(self.config.learning_starts):
            return self.rng.uniform(-1.0, 1.0, size=(n, self.act_dim)).astype(np.float32)
        with torch.inference_mode():
            actions, _ = self.policy.sample(self.policy.preprocess(obs), generator=self.generator)
        return actions.numpy()

    def collect(self, n_env_steps: int) -> dict[str, np.ndarray]:
        """Step the envs (uniform random actions before ``learning_starts``, then the stochastic
        actor) until ``n_env_steps`` real transitions were added (a vector step may add up to
        num_envs - 1 more); pushes them into ``replay`` and returns them as numpy arrays (obs,
        action in [-1, 1], reward, next_obs, terminated, truncated, env_action). Autoreset
        steps are skipped."""
        runner = self.runner
        parts: list[tuple[np.ndarray, ...]] = []
        added = 0
        while added < n_env_steps:
            obs = to_storage(runner.observation_space, runner.obs)
            actions = self._sample_actions(runner.obs)
            env_actions = self.to_env_actions(actions)
            step = runner.step(env_actions)
            nxt = to_storage(runner.observation_space, step.next_obs)
            ok = step.valid
            if ok.all():
                part = (obs, actions, step.reward.astype(np.float32), nxt, step.terminated, step.truncated,
                        env_actions)
                env_index = self._all_envs
            else:
                part = (obs[ok], actions[ok], step.reward[ok].astype(np.float32), nxt[ok], step.terminated[ok],
                        step.truncated[ok], env_actions[ok])
                env_index = np.flatnonzero(ok)
            k = int(part[2].shape[0])
            if k:
                self.replay.add(*part[:6], env_index=env_index)
                parts.append(part)
                added += k
                self.env_steps += k
            if step.episode_returns:
                self._note_episodes(step.episode_returns)
        cols = [np.concatenate(c) for c in zip(*parts)] if parts else []
        return dict(zip((*ReplayBuffer.FIELDS, "env_action"), cols))

    # ---- learning ----------------------------------------------------------------
    def train_steps(self, n: int, reward_fn: RewardFn | None = None) -> dict[str, float]:
        """``n`` gradient steps on replay minibatches; ``reward_fn(batch)`` (if given) supplies
        the rewards of each sampled batch instead of the stored ones (the buffer is not changed).
        Returns mean losses only when TensorBoard logs them (reading them costs a sync per call)."""
        losses = self._train(int(n), reward_fn)
        if losses is None or self.tb_writer is None:
            return {}
        critic, actor, alpha = losses
        return {"train/critic_loss": float(critic), "train/actor_loss": float(actor),
                "train/ent_coef": float(alpha), "train/gradient_steps": float(self.gradient_steps_done)}

    def _train(self, n: int, reward_fn: RewardFn | None) -> tuple[torch.Tensor, ...] | None:
        cfg = self.config
        if len(self.replay) == 0 or n < 1:
            return None
        if cfg.lr_schedule != "constant":
            lr = linear_schedule(cfg.learning_rate, self.progress_done, cfg.lr_schedule)
            for opt in (self.actor_optimizer, self.critic_optimizer, self.alpha_optimizer):
                if opt is not None:
                    set_learning_rate(opt, lr)
        sums = torch.zeros(3, device=self.device)
        for _ in range(n):
            batch = self.replay.sample(cfg.batch_size)
            if reward_fn is not None:
                batch["reward"] = torch.as_tensor(reward_fn(batch)).reshape(-1).to(self.device, torch.float32)
                batch, batch["reward"] = self.mix_supplied_transitions(batch, batch["reward"])  # e.g. SQIL
            sums += torch.stack(self._gradient_step(batch))
        return tuple(sums / n)

    def _gradient_step(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        cfg, actor, gen, low = self.config, self.policy, self.generator, self._low_precision
        x = actor.preprocess(batch["obs"])
        x_next = actor.preprocess(batch["next_obs"])
        # the actor's reparameterised sample at s (used by the alpha and actor losses)
        shape = (x.shape[0], self.act_dim)
        a_pi, logp_pi = self._actor_rsample(x, torch.randn(shape, generator=gen).to(x.device))
        alpha = self.alpha
        if self.auto_alpha:  # the gradient of sac_alpha_loss, set directly
            self.log_alpha.grad = sac_alpha_grad(logp_pi, self.target_entropy)
            self.alpha_optimizer.step()
        with torch.no_grad():
            a2, logp2 = self._actor_rsample(x_next, torch.randn(shape, generator=gen).to(x.device))
            next_q = self.critic_target(torch.cat([x_next, a2], -1), compute_dtype=low)
            y = sac_critic_target(batch["reward"], next_q, logp2, batch["terminated"],
                                  batch.get("discount", cfg.gamma), alpha)
        q = self.critic(torch.cat([x, batch["action"]], -1), compute_dtype=low)
        critic_loss = sac_critic_loss(q, y)
        self.critic_optimizer.zero_grad()
        critic_loss.backward()
        self.critic_optimizer.step()
        frozen = [p.detach() for p in self._critic_params]
        actor_loss = sac_actor_loss(logp_pi, self.critic(torch.cat([x, a_pi], -1), frozen, low), alpha)
        self.actor_optimizer.zero_grad()
        actor_loss.backward()
        self.actor_optimizer.step()
        self.gradient_steps_done += 1
        if self.gradient_steps_done % int(cfg.target_update_interval) == 0:
            polyak_update_(self._target_params, self._critic_params, float(cfg.tau))
        return critic_loss.detach(), actor_loss.detach(), alpha.reshape(())

    def _actor_rsample(self, x: torch.Tensor, noise: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The actor's reparameterised sample (``policy.rsample``); with ``precision`` bfloat16 the
        network's products run under autocast and the head's maths (tanh, log-prob) in float32."""
        actor = self.policy
        if self._low_precision is None:
            return actor.rsample(x, noise)
        with torch.autocast(x.device.type, dtype=self._low_precision):
            out = actor(x)
        return actor.head.sample(out.float(), noise)

    def _iteration(self) -> dict[str, float]:
        cfg = self.config
        start = self.env_steps
        chunk = min(STEPS_PER_ITERATION, int(cfg.eval_every))
        sums: list[torch.Tensor] = []
        while self.env_steps - start < chunk and self.env_steps < int(cfg.total_timesteps):
            before = self.env_steps
            new_data = self.collect(int(cfg.train_freq) * self.runner.num_envs)
            self.observe_transitions(lambda: self.replay_batch(new_data, new_data["env_action"]))  # IRL stage 1
            if self.env_steps < int(cfg.learning_starts):
                continue
            self.fit_reward_model()                                                             # IRL stage 2
            n = self.env_steps - before if cfg.gradient_steps == -1 else int(cfg.gradient_steps)
            losses = self._train(n, None if self.reward_model is None else self._relabel)        # IRL stage 3
            if losses is not None and self.tb_writer is not None:
                sums.append(torch.stack(losses))
        if not sums:
            return {}
        critic, actor, alpha = torch.stack(sums).mean(0).tolist()
        return {"train/critic_loss": critic, "train/actor_loss": actor, "train/ent_coef": alpha,
                "train/gradient_steps": float(self.gradient_steps_done)}

    def _relabel(self, batch: dict[str, torch.Tensor]) -> torch.Tensor | None:
        """The reward model's rewards of a sampled replay batch (it sees the env's actions)."""
        env_actions = self.to_env_actions(batch["action"].cpu().numpy())
        return self.training_rewards(lambda: self.replay_batch(batch, env_actions))

    # ---- resuming a long run ----------------------------------------------------------
    def save_training_state(self, path: str | os.PathLike[str]) -> None:
        """Write everything needed to CONTINUE training (atomically): the config, the actor, the
        critics and their targets, log alpha, the three optimisers' states, the replay buffer's
        contents, the counters and every random generator's state, and with a reward model (e.g.
        GAIL-SAC) the model's own training state (``reward_model.training_state()``: refused for a
        model without one). (To ACT, the ordinary checkpoint of :meth:`save` suffices.) Not saved:
        the envs' in-progress episodes (a resumed run starts fresh episodes)."""
        reward_model = None
        if self.reward_model is not None:
            reward_model = {"type": type(self.reward_model).__name__, "rounds": int(self.reward_rounds),
                            "state": self.reward_model.training_state()}
        r = self.replay
        n = r.size
        payload = {
            "format": TRAINING_STATE_FORMAT, "format_version": TRAINING_STATE_VERSION,
            "config": json.dumps(to_dict(self.config)),
            "policy": {k: v.detach().cpu() for k, v in self.policy.state_dict().items()},
            "critic": {k: v.detach().cpu() for k, v in self.critic.state_dict().items()},
            "critic_target": {k: v.detach().cpu() for k, v in self.critic_target.state_dict().items()},
            "log_alpha": self.log_alpha.detach().cpu(),
            "optimizers": {name: opt.state_dict() for name, opt in self._optimizers().items()},
            "replay": {**{f: torch.from_numpy(np.ascontiguousarray(getattr(r, f)[:n])) for f in r.fields},
                       "pos": r.pos, "size": n},
            "counters": json.dumps({"env_steps": int(self.env_steps), "iterations": int(self.iterations),
                                    "gradient_steps_done": int(self.gradient_steps_done),
                                    "recent_returns": list(self.recent_returns), "last_eval": self.last_eval}),
            "rng": json.dumps({"trainer": self.rng.bit_generator.state, "replay": r.rng.bit_generator.state}),
            "generators": {"sampling": self.generator.get_state(),
                           "policy": self.policy._generator.get_state() if self.policy._generator else torch.empty(0)},
        }
        if reward_model is not None:
            payload["reward_model"] = reward_model
        if self._best is not None:
            payload["best"] = {"mean": torch.tensor(self._best[0], dtype=torch.float64),
                               "state": {k: v.detach().cpu() for k, v in self._best[1].items()}}
        buf = io.BytesIO()
        torch.save(payload, buf)
        atomic_write_bytes(path, buf.getvalue())

    def load_training_state(self, path: str | os.PathLike[str]) -> None:
        """Continue from a :meth:`save_training_state` file (loaded with ``weights_only=True``).
        The file's config must equal this trainer's except for :data:`RESUMABLE_CHANGES`; the
        replay buffer's capacity must hold the saved transitions."""
        try:
            payload = torch.load(path, map_location="cpu", weights_only=True)
        except FileNotFoundError:
            raise CheckpointError(f"no SAC training state at {path}") from None
        except Exception as exc:  # noqa: BLE001 - any unreadable file is the user's input
            raise CheckpointError(f"{path} is not a readable SAC training state ({type(exc).__name__})") from None
        if not isinstance(payload, dict) or payload.get("format") != TRAINING_STATE_FORMAT:
            raise CheckpointError(f"{path} is not a SAC training state (format {TRAINING_STATE_FORMAT!r})")
        if payload.get("format_version") != TRAINING_STATE_VERSION:
            raise CheckpointError(f"{path}: SAC training state version {payload.get('format_version')} is not "
                                  f"{TRAINING_STATE_VERSION}")
        ours = json.loads(json.dumps(to_dict(self.config)))
        # a field the saved config lacks did not exist yet: the state was trained at its default (e.g. n_steps 1)
        saved = {**json.loads(json.dumps(to_dict(SACConfig(env_id=self.config.env_id)))), **json.loads(payload["config"])}
        differ = sorted(k for k in set(saved) | set(ours) if k not in RESUMABLE_CHANGES and saved.get(k) != ours.get(k))
        if differ:
            k = differ[0]
            raise UserError(f"{path} was trained with {k}={saved.get(k)!r}, this run has {k}={ours.get(k)!r}: "
                            f"resume with the same settings (only {', '.join(sorted(RESUMABLE_CHANGES))} may change)")
        saved_model = payload.get("reward_model")
        saved_type = None if saved_model is None else saved_model["type"]
        ours_type = None if self.reward_model is None else type(self.reward_model).__name__
        if saved_type != ours_type:
            raise UserError(f"{path} was trained with reward model {saved_type}, this run has {ours_type}: resume "
                            f"with the same reward model")
        rep = payload["replay"]
        n = int(rep["size"])
        if n > self.replay.capacity:
            raise UserError(f"{path} holds {n} replay transitions, more than this run's buffer_size")
        if saved_model is not None:  # first: it refuses other reward-model settings before anything is loaded
            self.reward_model.load_training_state(saved_model["state"])
            self.reward_rounds = int(saved_model["rounds"])
        self.policy.load_state_dict(payload["policy"])
        self.critic.load_state_dict(payload["critic"])
        self.critic_target.load_state_dict(payload["critic_target"])
        with torch.no_grad():
            self.log_alpha.copy_(payload["log_alpha"])
        for name, opt in self._optimizers().items():
            opt.load_state_dict(payload["optimizers"][name])
        for f in self.replay.fields:
            getattr(self.replay, f)[:n] = rep[f].numpy()
        self.replay.size, self.replay.pos = n, int(rep["pos"]) % self.replay.capacity
        counters = json.loads(payload["counters"])
        self.env_steps, self.iterations = int(counters["env_steps"]), int(counters["iterations"])
        self.gradient_steps_done = int(counters["gradient_steps_done"])
        self.recent_returns.clear()
        self.recent_returns.extend(counters["recent_returns"])
        self.last_eval = float(counters["last_eval"])
        rng = json.loads(payload["rng"])
        self.rng.bit_generator.state = rng["trainer"]
        self.replay.rng.bit_generator.state = rng["replay"]
        self.generator.set_state(payload["generators"]["sampling"])
        if self.policy._generator is not None and payload["generators"]["policy"].numel():
            self.policy._generator.set_state(payload["generators"]["policy"])
        best = payload.get("best")
        self._best = None if best is None else (float(best["mean"]), best["state"])

    def _optimizers(self) -> dict[str, Any]:
        opts = {"actor": self.actor_optimizer, "critic": self.critic_optimizer}
        if self.alpha_optimizer is not None:
            opts["alpha"] = self.alpha_optimizer
        return opts

    def _extra_state(self) -> dict[str, Any]:
        return {"critic": {k: v.detach().cpu() for k, v in self.critic.state_dict().items()},
                "critic_target": {k: v.detach().cpu() for k, v in self.critic_target.state_dict().items()},
                "log_alpha": self.log_alpha.detach().cpu()}
