"""Proximal Policy Optimisation (clipped surrogate, GAE, separate critic) on vector envs.

``PPOTrainer`` is the API GAIL drives round by round::

    trainer = PPOTrainer(tuned_config("ppo", "CartPole-v1"))
    rollout = trainer.collect_rollout()            # (n_steps, num_envs, ...) tensors
    rewards = discriminator_reward(rollout.obs_raw, rollout.env_actions)   # same (T, N) shape
    trainer.update(rollout, rewards=rewards)       # GAE + PPO epochs on the learned reward

``learn()`` is the plain loop (collect, update, periodic evaluation, stop at the goal).
Autoreset steps (``rollout.valid`` False) are excluded from GAE and from the loss.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from gymnasium import spaces
from torch import nn

from demokit.config import from_mapping, option
from demokit.errors import ConfigError
from demokit.policies import NeuralPolicy, ObsNormalizer, make_policy
from demokit.policies.encoders import encoder_class, resolve_encoder
from demokit.policies.networks import clip_grad_norm, make_adam, set_learning_rate
from demokit.policies.value import ValueNet
from demokit.rl.buffers import Rollout
from demokit.rl.common import BaseTrainer, LoopConfig, check_positive, check_unit_interval, linear_schedule
from demokit.rl.gae import compute_gae
from demokit.rollout import storage_spec, to_storage
from demokit.runtime import ProgressFn
from demokit.seeding import derive_seed
from demokit.spaces import check_same_spaces
from demokit.transitions import TransitionBatch


@dataclass(frozen=True)
class PPOConfig(LoopConfig):
    """PPO hyperparameters (generic defaults; per-env tuned values live in ``rl.hyperparams``)."""

    n_steps: int = option(128, "steps per env per rollout")
    batch_size: int = option(256, "minibatch size of the PPO epochs")
    n_epochs: int = option(10, "passes over each rollout")
    gae_lambda: float = option(0.95, "GAE lambda")
    learning_rate: float = option(3e-4, "Adam learning rate (actor and critic)")
    lr_schedule: Literal["constant", "linear"] = option("linear", "learning-rate schedule over total_timesteps")
    clip_range: float = option(0.2, "PPO ratio clip range")
    clip_schedule: Literal["constant", "linear"] = option("constant", "clip-range schedule over total_timesteps")
    clip_range_vf: float | None = option(None, "value clipping range around the old values (None: no clipping)")
    ent_coef: float = option(0.0, "entropy bonus coefficient")
    vf_coef: float = option(0.5, "value loss coefficient")
    max_grad_norm: float = option(0.5, "gradient-norm clip")
    target_kl: float | None = option(None, "stop a rollout's epochs early when an epoch's approximate KL exceeds 1.5x this")
    normalize_obs: bool = option(False, "running observation normalisation (statistics saved with the policy)")
    normalize_reward: bool = option(False, "scale rewards by the running std of the discounted return "
                                           "(of whatever rewards update() gets)")
    normalize_advantage: bool = option(True, "normalise advantages per minibatch")
    hidden_sizes: tuple[int, ...] = option((64, 64), "hidden layers of the policy and of the critic")
    activation: str = option("tanh", "activation: tanh, relu, elu or gelu")
    log_std_init: float = option(0.0, "initial log std of the Gaussian policy (Box actions)")
    encoder: str = option("auto", "observation encoder of the policy and of the critic: mlp, nature_cnn or another "
                                  "registered one (auto: nature_cnn for uint8 image observations of at least 36x36, "
                                  "else mlp); with nature_cnn, normalize_obs subtracts a running mean frame")

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive(self, ("n_steps", "batch_size", "n_epochs"))
        if self.encoder != "auto":
            encoder_class(self.encoder)  # an unknown name: a UserError listing the known ones
        check_unit_interval(self, ("gae_lambda",))
        if self.learning_rate <= 0 or self.clip_range <= 0:
            raise ConfigError(f"PPOConfig: learning_rate and clip_range must be > 0, got "
                              f"{self.learning_rate} and {self.clip_range}")


# ---- the maths (pure functions, tested on hand-computed cases) -----------------------
def surrogate_loss(new_log_prob: torch.Tensor, old_log_prob: torch.Tensor, advantages: torch.Tensor,
                   clip_range: float) -> tuple[torch.Tensor, torch.Tensor]:
    """PPO's policy loss -E[min(r A, clip(r, 1-c, 1+c) A)] and the log-ratios log r (detached), r = new / old."""
    log_ratio = new_log_prob - old_log_prob
    ratio = torch.exp(log_ratio)
    unclipped = advantages * ratio
    clipped = advantages * torch.clamp(ratio, 1.0 - clip_range, 1.0 + clip_range)
    # min(u, c) as a select: the same values, and a cheaper backward than torch.minimum's (which halves the
    # gradient between equal inputs: the two halves meet again in the ratio's gradient)
    return -torch.where(unclipped <= clipped, unclipped, clipped).mean(), log_ratio.detach()


@torch.no_grad()
def ratio_statistics(log_ratio: torch.Tensor, clip_range: float) -> tuple[float, float]:
    """Clip fraction (the share of ratios r with |r - 1| > c) and approximate KL E[(r - 1) - log r]
    of log-ratios ``log r`` (any shape)."""
    ratio = torch.exp(log_ratio)
    return float(((ratio - 1.0).abs() > clip_range).float().mean()), float(((ratio - 1.0) - log_ratio).mean())


def clipped_surrogate_loss(new_log_prob: torch.Tensor, old_log_prob: torch.Tensor, advantages: torch.Tensor,
                           clip_range: float) -> tuple[torch.Tensor, float, float]:
    """PPO's policy loss -E[min(r A, clip(r, 1-c, 1+c) A)], plus clip fraction and approx KL."""
    loss, log_ratio = surrogate_loss(new_log_prob, old_log_prob, advantages, clip_range)
    return (loss, *ratio_statistics(log_ratio, clip_range))


def value_loss(new_values: torch.Tensor, old_values: torch.Tensor, returns: torch.Tensor,
               clip_range_vf: float | None) -> torch.Tensor:
    """Mean squared error to the returns; with ``clip_range_vf`` the pessimistic max of the
    unclipped and the clipped (old +- clip) error."""
    err = (new_values - returns).pow(2)
    if clip_range_vf is None:
        return err.mean()
    clipped = old_values + torch.clamp(new_values - old_values, -clip_range_vf, clip_range_vf)
    return torch.maximum(err, (clipped - returns).pow(2)).mean()


def rollout_batch(rollout: Rollout, *, valid_only: bool) -> TransitionBatch:
    """The rollout as a TransitionBatch (env actions, raw observations, the acting policy's log-probs).

    ``valid_only`` drops the autoreset steps (a reward model's training data); without it
    every (step, env) cell is kept in order, so rewards reshape to (n_steps, num_envs).
    """
    def field(name: str) -> torch.Tensor:
        if valid_only:
            return rollout.valid_flat(name)
        x = getattr(rollout, name)
        return x.reshape(-1, *x.shape[2:])

    return TransitionBatch(observations=field("obs_raw"), actions=field("env_actions"), rewards=field("rewards"),
                           next_observations=field("next_obs_raw"), terminated=field("terminated"),
                           truncated=field("truncated"), log_probs=field("log_probs"))


# ---- the trainer ---------------------------------------------------------------------
class PPOTrainer(BaseTrainer):
    """PPO on ``config.num_envs`` envs; see the module docstring for the round-by-round API.

    ``policy``: the NeuralPolicy (categorical for Discrete, Gaussian for Box actions);
    ``critic``: a separate MLP on the same (normalised) input. Pass ``policy`` to start
    from an existing one (e.g. a BC policy; its spaces must match the env).
    """

    algo = "ppo"

    def __init__(self, config: PPOConfig | dict[str, Any], *, progress: ProgressFn | None = None,
                 tb_writer: Any = None, policy: NeuralPolicy | None = None, reward_model: Any = None,
                 cooptrain_reward: bool = True) -> None:
        cfg = config if isinstance(config, PPOConfig) else from_mapping(PPOConfig, config)
        super().__init__(cfg, progress=progress, tb_writer=tb_writer, reward_model=reward_model,
                         cooptrain_reward=cooptrain_reward)
        obs_space, act_space = self.runner.observation_space, self.runner.action_space
        if policy is None:
            policy = make_policy(obs_space, act_space, hidden_sizes=cfg.hidden_sizes, activation=cfg.activation,
                                 normalize_obs=cfg.normalize_obs, log_std_init=cfg.log_std_init,
                                 encoder=resolve_encoder(cfg.encoder, obs_space))
        else:
            check_same_spaces(what="the given policy", expected_obs=policy.observation_space,
                              expected_act=policy.action_space, actual_obs=obs_space, actual_act=act_space,
                              against=f"env {cfg.env_id}")
            if not policy.stochastic:
                raise ConfigError(f"PPO needs a policy with an action distribution, not a {policy.arch.head} one")
        self._policy = policy.to(self.device)
        self._policy.seed(derive_seed(cfg.seed, "policy"))
        # the critic: the policy's kind of encoder on the same network input; an encoder that normalises its
        # own input (a mean frame) gets its statistics from the policy's (shared buffers, see _sync_critic_stats)
        critic_arch = dataclasses.replace(policy.arch, hidden_sizes=cfg.hidden_sizes, activation=cfg.activation)
        self.critic: nn.Module = ValueNet(obs_space, critic_arch).to(self.device)
        if self._own_statistics:  # one mean frame for both networks (the same tensors)
            for name, buf in self._policy.encoder.named_buffers():
                self.critic.encoder.register_buffer(name, buf)
        self._pending_stats: np.ndarray | None = None
        self.params = [*self._policy.parameters(), *self.critic.parameters()]
        self.optimizer = make_adam(self.params, cfg.learning_rate, direct=True, eps=1e-5)
        self._return_stats = ObsNormalizer(1)  # running variance of the discounted return
        self._return_acc = np.zeros(self.runner.num_envs)

    @property
    def _own_statistics(self) -> bool:
        """Whether the policy's encoder keeps its own input statistics (nature_cnn's mean frame)."""
        return self._policy.normalizes_obs and self._policy.obs_norm is None

    def _refresh_own_statistics(self) -> None:
        """Fold the last rollout's observations into an encoder's own statistics (the first time: the current
        observations) before collecting, so that a rollout and its update see one mean frame."""
        if not self._own_statistics:
            return
        pending = self._pending_stats
        if pending is None and self._policy.encoder.statistics_seen() == 0:
            pending = to_storage(self.runner.observation_space, self.runner.obs)
        if pending is not None:
            self._policy.update_obs_statistics(pending)
        self._pending_stats = None

    # ---- collection ------------------------------------------------------------
    @torch.no_grad()
    def _act(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Sample actions for the network input ``x``: (actions, log_probs, values), on the CPU."""
        actions, log_probs = self.policy.sample(x, generator=self.generator)
        return actions, log_probs, self.critic(x).cpu()

    def collect_rollout(self) -> Rollout:
        """Run ``n_steps`` vector steps with the current (stochastic) policy.

        Observation statistics (``normalize_obs``) are updated from the rollout's valid raw
        observations *after* collection, so every stored ``obs`` used the same statistics.
        """
        cfg, policy, runner = self.config, self.policy, self.runner
        self._refresh_own_statistics()
        steps, n = int(cfg.n_steps), runner.num_envs
        obs_shape, obs_dtype = storage_spec(runner.observation_space)
        obs_raw = np.empty((steps, n, *obs_shape), obs_dtype)
        next_obs_raw = np.empty((steps, n, *obs_shape), obs_dtype)
        obs_in: np.ndarray | None = None      # the normalised network inputs (normalize_obs only)
        actions: np.ndarray | None = None
        env_actions: np.ndarray | None = None
        log_probs = np.empty((steps, n), np.float32)
        values = np.empty((steps, n), np.float32)
        rewards = np.empty((steps, n), np.float32)
        terminated = np.empty((steps, n), bool)
        truncated = np.empty((steps, n), bool)
        valid = np.empty((steps, n), bool)
        ep_returns: list[float] = []
        ep_lengths: list[int] = []
        policy.eval()
        space = runner.observation_space
        for t in range(steps):
            obs_raw[t] = to_storage(space, runner.obs)
            with torch.no_grad():
                x = policy.preprocess(obs_raw[t] if isinstance(space, spaces.Box) else runner.obs)
            if policy.obs_norm is not None:
                if obs_in is None:
                    obs_in = np.empty((steps, *x.shape), np.float32)
                obs_in[t] = x.cpu().numpy()
            a, lp, v = self._act(x)
            if actions is None:
                actions = np.empty((steps, *a.shape), a.numpy().dtype)
                env_actions = np.empty_like(actions)
            actions[t] = a.numpy()
            log_probs[t] = lp.numpy()
            values[t] = v.numpy()
            env_a = policy.to_env_action(a)
            env_actions[t] = env_a.reshape(env_actions[t].shape)
            step = runner.step(env_a)
            rewards[t] = step.reward
            terminated[t] = step.terminated
            truncated[t] = step.truncated
            valid[t] = step.valid
            next_obs_raw[t] = to_storage(space, step.next_obs)
            if step.episode_returns:
                ep_returns += step.episode_returns
                ep_lengths += step.episode_lengths
        with torch.no_grad():
            last_values = self.critic(policy.preprocess(runner.obs)).cpu()
        if self._own_statistics:
            self._pending_stats = obs_raw[valid]
        else:
            policy.update_obs_statistics(obs_raw[valid])
        policy.train()
        self.env_steps += int(valid.sum())
        self._note_episodes(ep_returns)
        dev = self.device

        def tens(a: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(a).to(dev)

        raw = tens(obs_raw)
        if obs_in is not None:
            inputs = tens(obs_in)
        else:  # without normalisation the network input is the stored observation, prepared
            prepared = policy.preprocess(raw.reshape(steps * n, *obs_shape))
            inputs = prepared.reshape(steps, n, *prepared.shape[1:])
        assert actions is not None and env_actions is not None
        return Rollout(obs=inputs, obs_raw=raw, actions=tens(actions), env_actions=tens(env_actions),
                       log_probs=tens(log_probs), values=tens(values), rewards=tens(rewards),
                       terminated=tens(terminated), truncated=tens(truncated), next_obs_raw=tens(next_obs_raw),
                       valid=tens(valid), last_values=last_values.to(dev), episode_returns=ep_returns,
                       episode_lengths=ep_lengths)

    # ---- learning --------------------------------------------------------------
    def update(self, rollout: Rollout, rewards: torch.Tensor | None = None) -> dict[str, float]:
        """GAE + ``n_epochs`` PPO epochs on the rollout's valid steps.

        ``rewards`` (same (n_steps, num_envs) shape) replaces the env rewards, e.g. a
        discriminator's; values on invalid steps are ignored. Returns loss statistics (the clip
        fraction and the approximate KL as per-sample means over all the minibatches' samples).
        """
        cfg = self.config
        r = rollout.rewards if rewards is None else torch.as_tensor(rewards)
        if tuple(r.shape) != tuple(rollout.rewards.shape):
            raise ValueError(f"rewards must have the rollout's shape {tuple(rollout.rewards.shape)}, got {tuple(r.shape)}")
        if cfg.normalize_reward:
            r = self._scale_rewards(r, rollout)
        adv, ret = compute_gae(r, rollout.values, rollout.last_values, rollout.terminated, rollout.truncated,
                               rollout.valid, gamma=cfg.gamma, gae_lambda=cfg.gae_lambda)
        mask = rollout.valid.reshape(-1)
        obs = rollout.valid_flat("obs")
        actions = rollout.valid_flat("actions")
        old_logp = rollout.valid_flat("log_probs")
        old_values = rollout.valid_flat("values")
        adv = adv.to(self.device).reshape(-1)[mask]
        ret = ret.to(self.device).reshape(-1)[mask]
        m = int(obs.shape[0])
        if m == 0:
            return {}
        done = self.progress_done
        lr = linear_schedule(cfg.learning_rate, done, cfg.lr_schedule)
        clip = linear_schedule(cfg.clip_range, done, cfg.clip_schedule)
        set_learning_rate(self.optimizer, lr)
        bs = min(int(cfg.batch_size), m)
        # the per-sample scalars as the rows of one (4, m) tensor: a minibatch gathers them with one index
        # (each row of the gathered (4, bs) block is contiguous, so the reductions over it are the same sums)
        scalars = torch.stack((old_logp, old_values, adv, ret))
        sums = np.zeros(3)
        log_ratios: list[torch.Tensor] = []  # every minibatch's, for the clip fraction and the approximate KL
        n_updates = 0
        for _ in range(int(cfg.n_epochs)):
            order = torch.randperm(m, generator=self.generator).to(self.device) if bs < m else None
            epoch_start = len(log_ratios)
            for start in range(0, m, bs):
                if order is None:
                    b_obs, b_act, b_logp, b_val, b_adv, b_ret = obs, actions, old_logp, old_values, adv, ret
                else:
                    idx = order[start:start + bs]
                    b_obs, b_act = obs[idx], actions[idx]
                    b_logp, b_val, b_adv, b_ret = scalars[:, idx]
                if cfg.normalize_advantage and b_adv.shape[0] > 1:
                    b_adv = (b_adv - b_adv.mean()) / (b_adv.std() + 1e-8)
                logp, ent = self.policy.evaluate_actions(b_obs, b_act)
                values = self.critic(b_obs)  # (B,)
                pg_loss, log_ratio = surrogate_loss(logp, b_logp, b_adv, clip)
                v_loss = value_loss(values, b_val, b_ret, cfg.clip_range_vf)
                ent_mean = ent.mean()
                loss = pg_loss + cfg.vf_coef * v_loss
                if cfg.ent_coef != 0.0:  # without the bonus the entropy is only reported (no backward through it)
                    loss = loss - cfg.ent_coef * ent_mean
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                clip_grad_norm(self.params, cfg.max_grad_norm)
                self.optimizer.step()
                sums += (pg_loss.item(), v_loss.item(), ent_mean.item())
                log_ratios.append(log_ratio)
                n_updates += 1
            if cfg.target_kl is not None:
                _, epoch_kl = ratio_statistics(torch.cat(log_ratios[epoch_start:]), clip)
                if epoch_kl > 1.5 * cfg.target_kl:
                    break
        clip_fraction, approx_kl = ratio_statistics(torch.cat(log_ratios), clip)
        mean = sums / max(1, n_updates)
        return {"train/policy_loss": mean[0], "train/value_loss": mean[1], "train/entropy": mean[2],
                "train/clip_fraction": clip_fraction, "train/approx_kl": approx_kl, "train/n_updates": float(n_updates),
                "train/learning_rate": lr, "train/clip_range": clip}

    def _scale_rewards(self, rewards: torch.Tensor, rollout: Rollout) -> torch.Tensor:
        """Divide by the running std of the per-env discounted return (updated with these
        rewards; the accumulator restarts at episode ends), clipped to [-10, 10]."""
        r = rewards.detach().cpu().numpy().astype(np.float64)
        valid = rollout.valid.cpu().numpy()
        done = (rollout.terminated | rollout.truncated).cpu().numpy()
        acc = self._return_acc
        seen = []
        for t in range(r.shape[0]):
            acc = np.where(valid[t], acc * self.config.gamma + r[t], acc)
            seen.append(acc[valid[t]])
            acc = np.where(done[t], 0.0, acc)
        self._return_acc = acc
        self._return_stats.update(np.concatenate(seen)[:, None])
        std = float(torch.sqrt(self._return_stats.var + 1e-8))
        return torch.from_numpy(np.clip(r / std, -10.0, 10.0).astype(np.float32)).to(rewards.device)

    def _iteration(self) -> dict[str, float]:
        rollout = self.collect_rollout()
        self.observe_transitions(lambda: rollout_batch(rollout, valid_only=True))    # IRL stage 1
        self.fit_reward_model()                                                       # IRL stage 2
        rewards = self.training_rewards(lambda: rollout_batch(rollout, valid_only=False))  # IRL stage 3
        return self.update(rollout, rewards=None if rewards is None else rewards.reshape(rollout.rewards.shape))

    def _extra_state(self) -> dict[str, Any]:
        return {"critic": {k: v.detach().cpu() for k, v in self.critic.state_dict().items()}}
