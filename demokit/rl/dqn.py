"""DQN with double-DQN targets, a target network, Huber loss and a replay buffer.

The Q network is a ``NeuralPolicy`` with head "qvalue" (it acts greedily), so its
checkpoint is an ordinary demokit policy. ``DQNTrainer`` is the API an outer loop
(GAIL) drives::

    trainer = DQNTrainer(tuned_config("dqn", "CartPole-v1"))
    new = trainer.collect(256)                      # numpy arrays of the new transitions
    trainer.train_steps(128, reward_fn=lambda b: discriminator_reward(b["obs"], b["action"]))

``reward_fn(batch)`` returns a (batch_size,) tensor used instead of the stored rewards
of that sampled batch; the buffer is never modified. Autoreset steps are never stored.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from gymnasium import spaces
from torch import nn

from demokit.config import from_mapping, option
from demokit.errors import ConfigError, UserError
from demokit.policies import make_policy
from demokit.policies.networks import clip_grad_norm, make_adam, polyak_update, set_learning_rate
from demokit.rl.buffers import ReplayBuffer
from demokit.rl.common import (N_STEPS_HELP, BaseTrainer, LoopConfig, check_n_steps_with_reward_model, check_positive,
                               check_unit_interval, linear_schedule)
from demokit.rollout import storage_spec, to_storage
from demokit.runtime import ProgressFn
from demokit.seeding import derive_seed
from demokit.spaces import describe
from demokit.transitions import TransitionBatch

RewardFn = Callable[[dict[str, torch.Tensor]], torch.Tensor]


@dataclass(frozen=True)
class DQNConfig(LoopConfig):
    """DQN hyperparameters (generic defaults; per-env tuned values live in ``rl.hyperparams``)."""

    total_timesteps: int = option(100_000, "env-step budget (also the horizon of the schedules)")
    num_envs: int = option(1, "parallel envs in the SyncVectorEnv")
    buffer_size: int = option(100_000, "replay buffer capacity (transitions)")
    learning_starts: int = option(1_000, "env steps collected before the first gradient step")
    batch_size: int = option(64, "replay minibatch size")
    learning_rate: float = option(1e-4, "Adam learning rate")
    lr_schedule: Literal["constant", "linear"] = option("constant", "learning-rate schedule over total_timesteps")
    train_freq: int = option(4, "env steps collected between training rounds")
    gradient_steps: int = option(1, "gradient steps per training round (-1: as many as env steps collected)")
    target_update_interval: int = option(1_000, "gradient steps between target-network updates")
    tau: float = option(1.0, "target update rate: 1.0 = hard copy, < 1 = polyak averaging")
    exploration_fraction: float = option(0.1, "fraction of total_timesteps over which epsilon decays")
    exploration_initial_eps: float = option(1.0, "initial epsilon of the epsilon-greedy policy")
    exploration_final_eps: float = option(0.05, "final epsilon")
    max_grad_norm: float = option(10.0, "gradient-norm clip")
    n_steps: int = option(1, N_STEPS_HELP)
    double_q: bool = option(True, "double-DQN targets (online argmax, target evaluation)")
    hidden_sizes: tuple[int, ...] = option((64, 64), "hidden layers of the Q network")
    activation: str = option("relu", "activation: tanh, relu, elu or gelu")

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive(self, ("buffer_size", "batch_size", "train_freq", "target_update_interval", "n_steps"))
        check_unit_interval(self, ("tau", "exploration_fraction", "exploration_initial_eps",
                                   "exploration_final_eps"))
        if self.gradient_steps == 0 or self.gradient_steps < -1:
            raise ConfigError(f"DQNConfig.gradient_steps must be >= 1 or -1, got {self.gradient_steps}")
        if self.learning_starts < 0 or self.learning_rate <= 0:
            raise ConfigError(f"DQNConfig: learning_starts must be >= 0 and learning_rate > 0, got "
                              f"{self.learning_starts} and {self.learning_rate}")


def double_dqn_targets(rewards: torch.Tensor, next_q_online: torch.Tensor, next_q_target: torch.Tensor,
                       terminated: torch.Tensor, gamma: float | torch.Tensor, *, double_q: bool = True) -> torch.Tensor:
    """y = r + gamma * (1 - terminated) * Q_target(s', a*), a* = argmax_a Q_online(s', a)
    (double DQN) or argmax_a Q_target(s', a) (plain DQN). Truncated transitions bootstrap.
    ``gamma``: the discount, or (B,) per-transition bootstrap factors (n-step transitions: gamma^m)."""
    chooser = next_q_online if double_q else next_q_target
    best = chooser.argmax(-1, keepdim=True)
    next_v = next_q_target.gather(-1, best).squeeze(-1)
    return rewards + gamma * (1.0 - terminated.float()) * next_v


#: the least probability :func:`epsilon_greedy_log_probs` gives an action (a finite log at epsilon 0)
MIN_ACTION_PROB = 1e-8


def epsilon_greedy_log_probs(greedy: torch.Tensor, actions: torch.Tensor, epsilon: float,
                             n_actions: int) -> torch.Tensor:
    """log pi(a|s) (B,) of the epsilon-greedy policy: ``epsilon / n`` for every action plus ``1 - epsilon`` for
    the greedy one (``greedy``, ``actions``: (B,) 0-based indices); probabilities floored at MIN_ACTION_PROB."""
    eps = float(epsilon)
    p = eps / int(n_actions) + (1.0 - eps) * (actions.reshape(-1).long() == greedy.reshape(-1).long()).float()
    return p.clamp_min(MIN_ACTION_PROB).log()


class DQNTrainer(BaseTrainer):
    """DQN on ``config.num_envs`` envs; see the module docstring for the round-by-round API."""

    algo = "dqn"

    def __init__(self, config: DQNConfig | dict[str, Any], *, progress: ProgressFn | None = None,
                 tb_writer: Any = None, reward_model: Any = None, cooptrain_reward: bool = True) -> None:
        cfg = config if isinstance(config, DQNConfig) else from_mapping(DQNConfig, config)
        check_n_steps_with_reward_model(cfg, reward_model)
        super().__init__(cfg, progress=progress, tb_writer=tb_writer, reward_model=reward_model,
                         cooptrain_reward=cooptrain_reward)
        obs_space, act_space = self.runner.observation_space, self.runner.action_space
        if not isinstance(act_space, spaces.Discrete):
            self.close()
            raise UserError(f"DQN needs a Discrete action space; {cfg.env_id} has {describe(act_space)}: "
                            f"use --algo ppo")
        self._policy = make_policy(obs_space, act_space, head="qvalue", hidden_sizes=cfg.hidden_sizes,
                                   activation=cfg.activation).to(self.device)
        self._policy.seed(derive_seed(cfg.seed, "policy"))
        self.target = copy.deepcopy(self._policy)
        self.target.requires_grad_(False)
        self._params = list(self._policy.parameters())
        # the fused Adam kernel without torch.optim (same maths and values as torch.optim.Adam(fused=True); its
        # first use imports torch._dynamo, ~1 s of CPU per process, most of a short SQIL run)
        self.optimizer = make_adam(self._params, cfg.learning_rate, direct=True)
        obs_shape, obs_dtype = storage_spec(obs_space)
        self.replay = ReplayBuffer(cfg.buffer_size, self._policy.obs_dim, obs_shape=obs_shape, obs_dtype=obs_dtype,
                                   seed=derive_seed(cfg.seed, "replay"), device=self.device, n_steps=cfg.n_steps,
                                   gamma=cfg.gamma, num_envs=self.runner.num_envs)
        self.n_actions = int(act_space.n)
        self.action_start = int(act_space.start)
        self.gradient_steps_done = 0

    @property
    def epsilon(self) -> float:
        """Current exploration rate (linear decay over exploration_fraction of the budget)."""
        cfg = self.config
        frac = min(1.0, self.progress_done / cfg.exploration_fraction) if cfg.exploration_fraction > 0 else 1.0
        return cfg.exploration_initial_eps + frac * (cfg.exploration_final_eps - cfg.exploration_initial_eps)

    def policy_log_probs(self, observations: torch.Tensor, env_actions: torch.Tensor) -> torch.Tensor:
        """log pi(a | s) (B,) of the epsilon-greedy policy DQN acts with now (raw flat observations, env actions)."""
        policy = self.policy
        with torch.no_grad():
            greedy = policy.value(policy.preprocess(observations)).argmax(-1)
        actions = torch.as_tensor(env_actions, device=greedy.device).reshape(-1).long() - self.action_start
        return epsilon_greedy_log_probs(greedy, actions, self.epsilon, self.n_actions)

    def collect(self, n_env_steps: int) -> dict[str, np.ndarray]:
        """Step the envs epsilon-greedily until ``n_env_steps`` real transitions were added
        (a vector step may add up to num_envs - 1 more); returns them as numpy arrays
        (obs, action (0-based index), reward, next_obs, terminated, truncated) and pushes
        them into ``replay``. Autoreset steps are skipped."""
        runner, policy, space = self.runner, self.policy, self.runner.observation_space
        parts: list[tuple[np.ndarray, ...]] = []
        added = 0
        n = runner.num_envs
        while added < n_env_steps:
            obs = to_storage(space, runner.obs)
            with torch.no_grad():
                greedy = policy.value(policy.preprocess(runner.obs)).argmax(-1).cpu().numpy()
            explore = self.rng.random(n) < self.epsilon
            actions = np.where(explore, self.rng.integers(0, self.n_actions, size=n), greedy)
            step = runner.step(actions + self.action_start)
            ok = step.valid
            k = int(ok.sum())
            if k:
                part = (obs[ok], actions[ok], step.reward[ok].astype(np.float32),
                        to_storage(space, step.next_obs)[ok], step.terminated[ok], step.truncated[ok])
                self.replay.add(*part, env_index=np.flatnonzero(ok))
                parts.append(part)
                added += k
                self.env_steps += k
            self._note_episodes(step.episode_returns)
        cols = [np.concatenate(c) for c in zip(*parts)] if parts else []
        return dict(zip(ReplayBuffer.FIELDS, cols))

    def train_steps(self, n: int, reward_fn: RewardFn | None = None) -> dict[str, float]:
        """``n`` gradient steps on replay minibatches; ``reward_fn(batch)`` (if given)
        supplies the rewards of each sampled batch instead of the stored ones."""
        cfg = self.config
        if len(self.replay) == 0 or n < 1:
            return {}
        lr = linear_schedule(cfg.learning_rate, self.progress_done, cfg.lr_schedule)
        set_learning_rate(self.optimizer, lr)
        policy, target, params, target_every = self.policy, self.target, self._params, int(cfg.target_update_interval)
        losses = torch.zeros(int(n))
        batches = self.replay.sample_many(int(n), cfg.batch_size)
        for i in range(int(n)):
            batch = {k: v[i] for k, v in batches.items()}
            rewards = batch["reward"] if reward_fn is None else torch.as_tensor(reward_fn(batch)).reshape(-1)
            rewards = rewards.to(self.device, torch.float32)
            batch, rewards = self.mix_supplied_transitions(batch, rewards)  # IRL: e.g. SQIL's expert share
            b = rewards.shape[0]
            if cfg.double_q:  # one forward pass for Q(s, .) and the online Q(s', .)
                q_all = policy.value(policy.preprocess(torch.cat([batch["obs"], batch["next_obs"]])))
                q_all, next_online = q_all[:b], q_all[b:].detach()
            else:
                q_all = policy.value(policy.preprocess(batch["obs"]))
            with torch.no_grad():
                next_target = target.value(target.preprocess(batch["next_obs"]))
                y = double_dqn_targets(rewards, next_online if cfg.double_q else next_target, next_target,
                                       batch["terminated"], batch.get("discount", cfg.gamma), double_q=cfg.double_q)
            q = q_all.gather(-1, batch["action"].long().unsqueeze(-1)).squeeze(-1)
            loss = nn.functional.smooth_l1_loss(q, y)
            self.optimizer.zero_grad()
            loss.backward()
            clip_grad_norm(params, cfg.max_grad_norm)
            self.optimizer.step()
            self.gradient_steps_done += 1
            if self.gradient_steps_done % target_every == 0:
                polyak_update(self.target, self.policy, cfg.tau)
            losses[i] = loss.detach()
        return {"train/loss": float(losses.mean()), "train/learning_rate": lr, "train/epsilon": self.epsilon,
                "train/gradient_steps": float(self.gradient_steps_done)}

    def _replay_batch(self, batch: dict[str, Any]) -> TransitionBatch:
        """Collected or sampled transitions as a TransitionBatch (env actions: index + the space's start)."""
        return self.replay_batch(batch, torch.as_tensor(batch["action"], device=self.device) + self.action_start)

    def _iteration(self) -> dict[str, float]:
        cfg = self.config
        before = self.env_steps
        new_data = self.collect(int(cfg.train_freq))
        self.observe_transitions(lambda: self._replay_batch(new_data))                # IRL stage 1
        if self.env_steps < cfg.learning_starts:
            return {}
        self.fit_reward_model()                                                       # IRL stage 2
        n = self.env_steps - before if cfg.gradient_steps == -1 else int(cfg.gradient_steps)
        relabel = None if self.reward_model is None else (                            # IRL stage 3
            lambda b: self.training_rewards(lambda: self._replay_batch(b)))
        return self.train_steps(n, reward_fn=relabel)

    def _extra_state(self) -> dict[str, Any]:
        return {"target": {k: v.detach().cpu() for k, v in self.target.state_dict().items()}}
