"""Acting strategies of the rollout engine (:func:`demokit.rollout.run_episodes`).

Each actor acts on the batch of the envs still running (``slots``: their env indices) and
is told when an env starts an episode, so that sampled actions can come from a generator of
that episode alone (the dataset then does not depend on how many envs ran side by side).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from gymnasium.vector.utils import batch_space

from demokit.data import format as fmt
from demokit.errors import UserError
from demokit.policies.base import Policy
from demokit.policies.neural import ROW_INVARIANT_BATCH, NeuralPolicy
from demokit.seeding import derive_seed
from demokit.spaces import describe

ExtrasSpec = Mapping[str, tuple[tuple[int, ...], np.dtype]]
#: the (read-only) extras spec of actors that record no extras
NO_EXTRAS: ExtrasSpec = MappingProxyType({})


class BatchActor:
    """Any policy, one ``policy.act`` per step (deterministic, or seeded once with ``seed`` when sampling).

    ``pad``: a greedy NeuralPolicy on the CPU acts on batches padded to ``ROW_INVARIANT_BATCH``
    rows (each row's action independent of the batch size).
    """

    extras_spec: ExtrasSpec = NO_EXTRAS

    def __init__(self, policy: Policy, *, deterministic: bool, seed: int | None = None, pad: bool = False) -> None:
        self.policy = policy
        self.deterministic = deterministic
        if not deterministic and seed is not None:
            policy.seed(seed)
        greedy_cpu_net = deterministic and isinstance(policy, NeuralPolicy) and policy.device.type == "cpu"
        self.pad_to = ROW_INVARIANT_BATCH if pad and greedy_cpu_net else 0

    def start(self, slot: int, episode: int) -> None:
        pass

    def act(self, obs: Any, slots: np.ndarray) -> tuple[Any, None]:
        with torch.inference_mode():
            if self.pad_to:
                return self.policy.act(obs, deterministic=True, pad_to=self.pad_to), None
            return self.policy.act(obs, deterministic=self.deterministic), None


class RandomActor:
    """Uniform actions drawn per episode: episode k samples blocks of actions from its own batched
    copy of the action space, seeded from (seed, k); a vector step gathers one row per env."""

    BLOCK = 128
    extras_spec: ExtrasSpec = NO_EXTRAS

    def __init__(self, action_space: spaces.Space, seed: int, num_envs: int) -> None:
        self.seed = seed
        self.space = action_space
        self.batched = [batch_space(action_space, self.BLOCK) for _ in range(num_envs)]
        self.blocks = [np.zeros((num_envs, self.BLOCK, *shape), dtype)
                       for _, dtype, shape in fmt.leaf_specs(action_space)]
        self.pos = np.zeros(num_envs, np.int64)

    def _refill(self, slot: int) -> None:
        for buf, leaf in zip(self.blocks, fmt.leaves_of(self.space, self.batched[slot].sample(), "actions")):
            buf[slot] = leaf
        self.pos[slot] = 0

    def start(self, slot: int, episode: int) -> None:
        self.batched[slot].seed(derive_seed(self.seed, "actions", episode))
        self._refill(slot)

    def act(self, obs: Any, slots: np.ndarray) -> tuple[Any, None]:
        for i in slots[self.pos[slots] >= self.BLOCK]:  # an episode used its block up: draw the next one
            self._refill(int(i))
        pos = self.pos[slots]
        actions = fmt.assemble(self.space, [buf[slots, pos] for buf in self.blocks])
        self.pos[slots] += 1
        return actions, None


class SamplingActor:
    """A NeuralPolicy sampling from its action distribution with one generator per episode.

    ``NeuralPolicy.sample(rngs=...)`` draws each row from its own generator on a padded batch,
    so each row's action depends only on its own episode's generator (not on the batch).
    The log-probability of each sampled action is kept as a per-step extra when ``store_log_probs``.
    """

    def __init__(self, policy: NeuralPolicy, seed: int, num_envs: int, store_log_probs: bool) -> None:
        self.policy = policy
        self.seed = seed
        self.gens = [np.random.default_rng(derive_seed(seed, "idle", i)) for i in range(num_envs)]
        self.store = store_log_probs
        self.extras_spec: ExtrasSpec = {"log_prob": ((), np.dtype(np.float32))} if store_log_probs else NO_EXTRAS

    def start(self, slot: int, episode: int) -> None:
        self.gens[slot] = np.random.default_rng(derive_seed(self.seed, "actions", episode))

    def act(self, obs: Any, slots: np.ndarray) -> tuple[Any, dict[str, np.ndarray] | None]:
        policy = self.policy
        with torch.inference_mode():
            actions, log_prob = policy.sample(policy.preprocess(obs), rngs=[self.gens[i] for i in slots],
                                              pad_to=ROW_INVARIANT_BATCH)
        return policy.to_env_action(actions), ({"log_prob": log_prob.numpy()} if self.store else None)


class HistoryActor:
    """Wraps an actor of a policy with ``arch.history = K > 1``: keeps the last K observations of
    every env (oldest first) and hands the stacked batch (n, K, ...) to the wrapped actor. An env
    that starts an episode fills its history with its first observation (edge padding, as
    ``DemoDataset.sample_windows(..., before=K - 1)`` and gymnasium's ``FrameStackObservation``)."""

    def __init__(self, inner: Any, history: int, num_envs: int) -> None:
        self.inner, self.k, self.num_envs = inner, int(history), int(num_envs)
        self.extras_spec: ExtrasSpec = inner.extras_spec
        self.buf: np.ndarray | None = None
        self.fresh = np.ones(num_envs, dtype=bool)

    def start(self, slot: int, episode: int) -> None:
        self.fresh[slot] = True
        self.inner.start(slot, episode)

    def act(self, obs: Any, slots: np.ndarray) -> tuple[Any, Any]:
        obs = np.asarray(obs)
        if self.buf is None:
            self.buf = np.zeros((self.num_envs, self.k, *obs.shape[1:]), obs.dtype)
        fresh = self.fresh[slots]
        old = slots[~fresh]
        self.buf[old, :-1] = self.buf[old, 1:]
        self.buf[old, -1] = obs[~fresh]
        self.buf[slots[fresh]] = obs[fresh][:, None]
        self.fresh[slots] = False
        return self.inner.act(self.buf[slots], slots)


def with_history(actor: Any, policy: Policy, num_envs: int) -> Any:
    """``actor`` wrapped in a :class:`HistoryActor` when ``policy`` acts on a history of observations."""
    k = policy.arch.history if isinstance(policy, NeuralPolicy) else 1
    return HistoryActor(actor, k, num_envs) if k > 1 else actor


class LabelNoiseActor:
    """DART-style data (Laskey et al. 2017): with probability ``eps`` per step the env executes a
    uniformly random action instead of the wrapped actor's, while the recorded action stays the
    wrapped actor's (the expert's label for the state it is shown). The executed action is the
    per-step extra ``executed_action`` (:data:`demokit.rollout.EXECUTED_ACTION`). Episode k draws
    from its own generator seeded from (seed, k): one uniform per step, and a random action only
    when it is below ``eps`` (the data does not depend on how many envs ran side by side).
    Discrete, MultiDiscrete, MultiBinary and Box action spaces (a Box needs finite bounds)."""

    def __init__(self, inner: Any, action_space: spaces.Space, eps: float, seed: int, num_envs: int) -> None:
        if not isinstance(action_space, (spaces.Discrete, spaces.MultiDiscrete, spaces.MultiBinary, spaces.Box)) or (
                isinstance(action_space, spaces.Box) and not action_space.is_bounded()):
            raise UserError(f"label noise draws uniform random actions: it needs a Discrete, MultiDiscrete, "
                            f"MultiBinary or bounded Box action space, not {describe(action_space)}")
        self.inner, self.eps, self.seed = inner, float(eps), seed
        self.space = action_space
        _, dtype, shape = fmt.leaf_specs(action_space)[0]
        self.extras_spec: ExtrasSpec = {**inner.extras_spec, "executed_action": (tuple(shape), np.dtype(dtype))}
        self.gens = [np.random.default_rng(derive_seed(seed, "label-noise-idle", i)) for i in range(num_envs)]

    def start(self, slot: int, episode: int) -> None:
        self.gens[slot] = np.random.default_rng(derive_seed(self.seed, "label-noise", episode))
        self.inner.start(slot, episode)

    def _random(self, gen: np.random.Generator) -> np.ndarray:
        s = self.space
        if isinstance(s, spaces.Discrete):
            return np.asarray(s.start + gen.integers(s.n), s.dtype)
        if isinstance(s, spaces.MultiDiscrete):
            return (s.start + gen.integers(s.nvec)).astype(s.dtype)
        if isinstance(s, spaces.MultiBinary):
            return gen.integers(2, size=s.shape).astype(s.dtype)
        return gen.uniform(s.low, s.high).astype(s.dtype)

    def act(self, obs: Any, slots: np.ndarray) -> tuple[Any, dict[str, np.ndarray]]:
        labels, extras = self.inner.act(obs, slots)
        executed = np.array(labels, copy=True)
        for j, i in enumerate(slots):
            gen = self.gens[int(i)]
            if gen.random() < self.eps:
                executed[j] = self._random(gen)
        return labels, {**(extras or {}), "executed_action": executed}


def make_actor(policy: Policy, *, random: bool, deterministic: bool, seed: int, num_envs: int,
               store_log_probs: bool = True) -> BatchActor | RandomActor | SamplingActor | HistoryActor:
    """The collector's actor: per-episode uniform draws (``random``), per-episode sampling streams
    (a NeuralPolicy with a distribution, ``deterministic=False``) or batched ``act`` (padded for
    greedy CPU networks)."""
    if random:
        return RandomActor(policy.action_space, seed, num_envs)
    if not deterministic and isinstance(policy, NeuralPolicy) and policy.stochastic:
        return with_history(SamplingActor(policy, seed, num_envs, store_log_probs), policy, num_envs)
    return with_history(BatchActor(policy, deterministic=deterministic, seed=derive_seed(seed, "actions"), pad=True),
                        policy, num_envs)
