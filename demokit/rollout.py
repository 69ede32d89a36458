"""The one rollout engine: stepping a vector env for collection, evaluation, DAgger, PPO and DQN.

Two layers:

* :class:`VecStepper` steps a gymnasium 1.x vector env in autoreset mode NEXT_STEP and tells
  real transitions apart. When sub-env i ends an episode at step t (terminated or truncated),
  step t returns that episode's *final* observation and step t+1 resets sub-env i: it ignores
  the action, returns the reset observation, reward 0 and both flags False. Step t+1 is not a
  transition of the MDP: the stepper marks it ``valid=False`` (learners drop it from rollouts,
  GAE, losses and replay buffers). It also keeps per-env episode returns and lengths, and
  resets all sub-envs or a masked subset with given seeds. PPO and DQN step it directly
  (continuous rollouts, sub-envs reset by the autoreset).
* :func:`run_episodes` runs whole, individually seeded episodes on a stepper: episode ``k``
  is reset with seed ``seed + k`` (a finished sub-env is reset explicitly with its next
  episode's seed, so a running episode never meets an autoreset step), an :class:`Actor` acts
  on the batch of the envs still running (in env order; idle envs are stepped with their
  previous action and ignored), per-env preallocated buffers (:class:`SlotBuffers`) record
  the episodes, and finished episodes go to a sink. Budgets: a number of episodes, or a
  number of transitions (the episode crossing it is cut, see :class:`OrderedSink`).
  Collection, evaluation and DAgger use it.

Observations are kept in their space's dtype and shape (:func:`storage_spec`): uint8 images
stay uint8 until a policy's encoder.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from gymnasium import spaces
from gymnasium.vector import VectorEnv

from demokit.data import format as fmt
from demokit.data.episode import Episode, obs_index
from demokit.runtime import ProgressFn
from demokit.spaces import flat_dim, flatten_batch

#: episode buffers start with this many rows (or the env's time limit, if smaller) and double when full
INITIAL_CAPACITY = 1024
#: seconds between progress reports of :func:`run_episodes`
PROGRESS_EVERY_S = 0.25
#: the per-step extra of an actor whose executed action differs from the action it records (the label):
#: :func:`run_episodes` steps the env with it (e.g. :class:`demokit.policies.actors.LabelNoiseActor`)
EXECUTED_ACTION = "executed_action"


# ------------------------------------------------------------------------------------------
# observation storage


def storage_spec(space: spaces.Space) -> tuple[tuple[int, ...], np.dtype]:
    """(shape, dtype) of one stored observation: a Box keeps its own; Dict / Tuple / Discrete /
    other spaces are stored flat as float32 (``spaces.flatten_batch``)."""
    if isinstance(space, spaces.Box):
        return tuple(space.shape), np.dtype(space.dtype)
    return (flat_dim(space),), np.dtype(np.float32)


def to_storage(space: spaces.Space, obs: Any) -> np.ndarray:
    """A raw observation batch in the layout of :func:`storage_spec` (a Box batch as is)."""
    if isinstance(space, spaces.Box):
        return np.asarray(obs)
    return flatten_batch(space, obs)


# ------------------------------------------------------------------------------------------
# stepping


@dataclass
class VecStep:
    """One vector step. ``next_obs`` is the raw (possibly nested) batch the env returned; for a
    valid sub-env whose episode ended it is that episode's final observation. ``valid[i]`` is
    False on autoreset steps. ``ended`` lists the sub-envs whose episode ended in this step and
    ``episode_returns`` / ``episode_lengths`` their figures (same order)."""

    next_obs: Any
    reward: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    valid: np.ndarray
    ended: np.ndarray
    episode_returns: list[float]
    episode_lengths: list[int]


_NONE = np.zeros(0, np.int64)
_NONE.flags.writeable = False


class VecStepper:
    """Wraps a NEXT_STEP vector env: current observations, the autoreset mask, episode figures.

    ``obs``: the observation batch each sub-env's next action will be taken at.
    ``next_valid``: whether the *next* step of each sub-env will be a real transition
    (False right after an episode end that was not followed by an explicit reset).
    """

    def __init__(self, venv: VectorEnv) -> None:
        self.venv = venv
        self.num_envs = int(venv.num_envs)
        self.observation_space = venv.single_observation_space
        self.action_space = venv.single_action_space
        self.obs: Any = None
        self.next_valid = np.ones(self.num_envs, dtype=bool)
        self._ep_return = np.zeros(self.num_envs, dtype=np.float64)
        self._ep_length = np.zeros(self.num_envs, dtype=np.int64)

    def reset(self, seed: int | Sequence[int | None] | None = None, *, mask: np.ndarray | None = None) -> Any:
        """Reset all sub-envs (an int seed: sub-env i gets seed + i; a list: one seed per sub-env)
        or, with ``mask``, only the masked ones (the others keep running). Returns ``obs``."""
        seed_arg = list(seed) if isinstance(seed, Sequence) else seed
        if mask is None:
            self.obs, _ = self.venv.reset(seed=seed_arg)
            self.next_valid = np.ones(self.num_envs, dtype=bool)  # a new array: past VecSteps keep theirs
            self._ep_return[:] = 0.0
            self._ep_length[:] = 0
        else:
            self.obs, _ = self.venv.reset(seed=seed_arg, options={"reset_mask": mask})
            self.next_valid = self.next_valid | np.asarray(mask, dtype=bool)
            self._ep_return[mask] = 0.0
            self._ep_length[mask] = 0
        return self.obs

    def step(self, actions: Any) -> VecStep:
        """Step all sub-envs with ``actions`` (ignored by the env on autoreset steps)."""
        valid = self.next_valid
        obs, reward, terminated, truncated, _ = self.venv.step(actions)
        reward = np.asarray(reward, dtype=np.float64)
        terminated = np.asarray(terminated, dtype=bool)
        truncated = np.asarray(truncated, dtype=bool)
        if valid.all():  # the common case: no autoreset step in this vector step
            self._ep_return += reward
            self._ep_length += 1
        else:
            terminated, truncated = terminated & valid, truncated & valid
            self._ep_return += np.where(valid, reward, 0.0)
            self._ep_length += valid
        done = terminated | truncated
        if done.any():
            ended = np.flatnonzero(done)
            returns, lengths = self._ep_return[ended].tolist(), self._ep_length[ended].tolist()
            self._ep_return[ended] = 0.0
            self._ep_length[ended] = 0
        else:
            ended, returns, lengths = _NONE, [], []
        self.next_valid = ~done
        self.obs = obs
        return VecStep(next_obs=obs, reward=reward, terminated=terminated, truncated=truncated, valid=valid,
                       ended=ended, episode_returns=returns, episode_lengths=lengths)

    def close(self) -> None:
        self.venv.close()


# ------------------------------------------------------------------------------------------
# whole episodes


class Actor(Protocol):
    """Batched acting for :func:`run_episodes`.

    ``extras_spec``: per-step extras ``name -> (shape, dtype)`` that ``act`` returns (may be empty).
    ``start(slot, k)``: env ``slot`` begins episode ``k``. ``act(obs, slots)``: actions (and extras
    or None) for the observation batch of the running envs ``slots`` (increasing env indices).
    The actions are recorded and executed, unless the extras hold :data:`EXECUTED_ACTION` (a batch
    of the action space, flat leaves as stored): then the env executes those and the actions are
    the recorded labels.
    """

    extras_spec: Mapping[str, tuple[tuple[int, ...], np.dtype]]

    def start(self, slot: int, episode: int) -> None: ...

    def act(self, obs: Any, slots: np.ndarray) -> tuple[Any, Mapping[str, np.ndarray] | None]: ...


class EpisodeSink(Protocol):
    """Where :func:`run_episodes` hands finished episodes (``ep`` None when not recording).
    ``episodes`` / ``steps``: the figures progress reports show."""

    episodes: int
    steps: int

    def add(self, k: int, ep: Episode | None, cut: bool, episode_return: float, length: int) -> None: ...

    def steps_before(self, k: int) -> int: ...


class SlotBuffers:
    """Preallocated (num_envs, capacity, ...) arrays; row ``t`` of env ``i`` is step t of its episode."""

    def __init__(self, obs_space: spaces.Space, act_space: spaces.Space, num_envs: int, capacity: int,
                 extras_spec: Mapping[str, tuple[tuple[int, ...], np.dtype]]) -> None:
        self.obs_space, self.act_space = obs_space, act_space
        self.n, self.capacity = num_envs, capacity
        self.obs = [np.zeros((num_envs, capacity, *shape), dtype) for _, dtype, shape in fmt.leaf_specs(obs_space)]
        self.act = [np.zeros((num_envs, capacity, *shape), dtype) for _, dtype, shape in fmt.leaf_specs(act_space)]
        self.rewards = np.zeros((num_envs, capacity), np.float64)
        self.extras = {k: np.zeros((num_envs, capacity, *shape), dtype) for k, (shape, dtype) in extras_spec.items()}
        self.rows = np.arange(num_envs)

    def record(self, rows: np.ndarray, t: np.ndarray, obs: Any, actions: Any,
               extras: Mapping[str, np.ndarray] | None) -> None:
        """Step ``t[j]`` of env ``rows[j]``: the observation, action and extras of row j of the batches."""
        for buf, leaf in zip(self.obs, fmt.leaves_of(self.obs_space, obs)):
            buf[rows, t] = leaf
        for buf, leaf in zip(self.act, fmt.leaves_of(self.act_space, actions, "actions")):
            buf[rows, t] = leaf
        if extras:
            for name, values in extras.items():
                self.extras[name][rows, t] = values

    def grow(self) -> None:
        def double(a: np.ndarray) -> np.ndarray:
            out = np.zeros((a.shape[0], 2 * a.shape[1], *a.shape[2:]), a.dtype)
            out[:, : a.shape[1]] = a
            return out
        self.obs = [double(a) for a in self.obs]
        self.act = [double(a) for a in self.act]
        self.rewards = double(self.rewards)
        self.extras = {k: double(a) for k, a in self.extras.items()}
        self.capacity *= 2

    def episode(self, i: int, length: int, final_obs: Any, *, terminated: bool, truncated: bool, seed: int) -> Episode:
        flags = np.zeros((2, length), bool)
        flags[0, -1], flags[1, -1] = terminated, truncated
        return Episode(observations=fmt.assemble(self.obs_space, [a[i, :length].copy() for a in self.obs]),
                       actions=fmt.assemble(self.act_space, [a[i, :length].copy() for a in self.act]),
                       rewards=self.rewards[i, :length].copy(), terminated=flags[0], truncated=flags[1],
                       final_observation=final_obs,
                       extras={k: a[i, :length].copy() for k, a in self.extras.items()}, seed=seed)


def head_of(ep: Episode, n: int) -> Episode:
    """The first ``n`` steps of ``ep`` as an episode cut by a budget (truncated on its last step)."""
    truncated = np.zeros(n, bool)
    truncated[-1] = True
    return Episode(observations=obs_index(ep.observations, slice(0, n)), actions=obs_index(ep.actions, slice(0, n)),
                   rewards=ep.rewards[:n], terminated=np.zeros(n, bool), truncated=truncated,
                   final_observation=obs_index(ep.observations, slice(n, n + 1)),
                   extras={k: v[:n] for k, v in ep.extras.items()}, seed=ep.seed)


class OrderedSink:
    """Hands finished episodes to ``write`` in episode-index order, applying the step budget.

    With ``n_steps``, exactly the first ``n_steps`` transitions of episodes 0, 1, 2, ... are
    written; the episode crossing the budget is cut there (:func:`head_of`).
    """

    def __init__(self, write: Callable[[Episode], None], n_steps: int | None) -> None:
        self.write = write
        self.n_steps = n_steps
        self.pending: dict[int, tuple[Episode, bool]] = {}
        self.next_index = 0
        self.steps = 0
        self.episodes = 0
        self.returns: list[float] = []
        self.cut = 0
        self.full = False

    def add(self, k: int, ep: Episode | None, cut: bool, episode_return: float, length: int) -> None:
        assert ep is not None, "the ordered sink needs recorded episodes"
        self.pending[k] = (ep, cut)
        while self.next_index in self.pending:
            self._write(*self.pending.pop(self.next_index))
            self.next_index += 1

    def _write(self, ep: Episode, cut: bool) -> None:
        if self.full:
            return
        if self.n_steps is not None:
            room = self.n_steps - self.steps
            if len(ep) > room:
                ep, cut = head_of(ep, room), True
            self.full = self.steps + len(ep) >= self.n_steps
        self.write(ep)
        self.steps += len(ep)
        self.episodes += 1
        self.returns.append(ep.episode_return)
        self.cut += int(cut)

    def steps_before(self, k: int) -> int:
        """Transitions known to precede episode ``k`` (written + finished earlier episodes)."""
        return self.steps + sum(len(ep) for j, (ep, _) in self.pending.items() if j < k)

    def flush_completed(self) -> None:
        """On interrupt: write the finished episodes still waiting for an earlier one, in index order."""
        for k in sorted(self.pending):
            self._write(*self.pending.pop(k))


class EpisodeTable:
    """Keeps every finished episode's return, length and (when recorded) data, by index."""

    def __init__(self, n_episodes: int) -> None:
        self.returns = np.zeros(n_episodes)
        self.lengths = np.zeros(n_episodes, dtype=np.int64)
        self.data: dict[int, Episode] = {}
        self.episodes = 0
        self.steps = 0

    def add(self, k: int, ep: Episode | None, cut: bool, episode_return: float, length: int) -> None:
        self.returns[k], self.lengths[k] = episode_return, length
        if ep is not None:
            self.data[k] = ep
        self.episodes += 1
        self.steps += length

    def steps_before(self, k: int) -> int:  # pragma: no cover - only step budgets ask
        raise NotImplementedError("EpisodeTable serves episode budgets")

    def in_order(self) -> list[Episode]:
        return [self.data[k] for k in sorted(self.data)]


class StopFlag:
    """While installed (main thread only), SIGINT and SIGTERM set ``self.set`` instead of raising.

    A second signal raises ``KeyboardInterrupt`` at once (an env stuck in ``step`` can
    still be left); the caller then keeps the finished episodes all the same.
    """

    def __init__(self) -> None:
        self.set = False
        self._old: dict[int, Any] = {}

    def _handler(self, signum: int, frame: Any) -> None:
        if self.set:
            raise KeyboardInterrupt(f"signal {signum} received twice")
        self.set = True

    @contextlib.contextmanager
    def installed(self) -> Iterator[StopFlag]:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handler)
        try:
            yield self
        finally:
            for sig, old in self._old.items():
                signal.signal(sig, old)
            self._old.clear()


def _scatter(space: spaces.Space, full: Any, rows: np.ndarray, part: Any) -> Any:
    """``full`` (a batch of all envs' actions) with rows ``rows`` replaced by the batch ``part``."""
    leaves = [np.array(leaf) for leaf in fmt.leaves_of(space, full, "actions")]
    for leaf, new in zip(leaves, fmt.leaves_of(space, part, "actions")):
        leaf[rows] = new
    return fmt.assemble(space, leaves)


def run_episodes(stepper: VecStepper, actor: Actor, sink: EpisodeSink, *, seed: int, n_episodes: int | None = None,
                 n_steps: int | None = None, record: bool = True, stop: StopFlag | None = None,
                 progress: ProgressFn | None = None, first_episode: int = 0) -> int:
    """Run seeded episodes until the budget is met (or ``stop`` is set); returns transitions stepped.

    Episode ``k`` is reset with seed ``seed + k`` and handed to ``sink.add`` when it ends (cut
    episodes of a step budget included; data only with ``record``). Give exactly one of
    ``n_episodes`` and ``n_steps``. ``first_episode`` = f runs episodes f, f + 1, ... of the
    same sequence (reset seed ``seed + k`` and ``actor.start(slot, k)`` with the global ``k``;
    ``sink.add`` gets ``k - f``): a shard of a longer collection. ``progress`` gets ``{"episodes", "steps", "steps_per_s"}``
    (the sink's figures) every ``PROGRESS_EVERY_S`` seconds.
    """
    assert (n_episodes is None) != (n_steps is None), "give exactly one budget"
    n = stepper.num_envs
    venv = stepper.venv
    spec = getattr(getattr(venv, "envs", [None])[0], "spec", None)
    limit = spec.max_episode_steps if spec is not None else None
    capacity = min(INITIAL_CAPACITY, limit or INITIAL_CAPACITY, n_steps or INITIAL_CAPACITY)
    bufs = SlotBuffers(stepper.observation_space, stepper.action_space, n, capacity,
                       actor.extras_spec) if record else None
    slot_ep = np.full(n, -1, np.int64)   # episode index running in each env (-1: idle)
    t = np.zeros(n, np.int64)            # steps taken so far by each env's episode
    all_rows = np.arange(n)
    next_k = 0
    stepped = 0

    def may_start() -> bool:
        return next_k < n_episodes if n_episodes is not None else stepped < n_steps  # type: ignore[operator]

    seeds: list[int | None] = [None] * n
    for i in range(n):
        if may_start():
            slot_ep[i], seeds[i] = next_k, seed + first_episode + next_k
            actor.start(i, first_episode + next_k)
            next_k += 1
    obs = stepper.reset(seeds)
    active = slot_ep >= 0                # kept up to date only when episodes end (cheap steps)
    n_active = int(active.sum())
    rows = all_rows if n_active == n else np.flatnonzero(active)
    actions: Any = None
    longest = 0                          # an upper bound of t.max()
    last_report = t0 = time.perf_counter()
    while n_active and (stop is None or not stop.set):
        batch = obs if n_active == n else obs_index(obs, rows)
        acted, extras = actor.act(batch, rows)
        if bufs is not None:
            bufs.record(rows, t[rows] if n_active < n else t, batch, acted, extras)
        if extras and EXECUTED_ACTION in extras:  # the recorded action is a label; the env executes this one
            acted = extras[EXECUTED_ACTION]
        actions = acted if n_active == n else _scatter(stepper.action_space, actions, rows, acted)
        step = stepper.step(actions)
        obs = step.next_obs
        if bufs is not None:
            bufs.rewards[all_rows, t] = step.reward
        t += active
        stepped += n_active
        longest += 1
        over_budget = n_steps is not None and stepped >= n_steps
        if over_budget or len(step.ended):
            ended = np.zeros(n, bool)
            ended[step.ended] = True
            ended &= active
            cut = _budget_cuts(slot_ep, t, sink, n_steps) & ~ended if over_budget else np.zeros(n, bool)
            finishing = np.flatnonzero(ended | cut)
            if len(finishing):
                figures = dict(zip(step.ended.tolist(), step.episode_returns))
                reset_mask = np.zeros(n, bool)
                seeds = [None] * n
                for i in finishing:
                    k = int(slot_ep[i])
                    ep = None
                    if bufs is not None:
                        ep = bufs.episode(i, int(t[i]), obs_index(obs, slice(i, i + 1)),
                                          terminated=bool(step.terminated[i]),
                                          truncated=bool(step.truncated[i] or cut[i]),
                                          seed=seed + first_episode + k)
                    ret = figures[int(i)] if ended[i] else float(stepper._ep_return[i])
                    sink.add(k, ep, bool(cut[i]), ret, int(t[i]))
                    t[i] = 0
                    if may_start():
                        slot_ep[i], seeds[i], reset_mask[i] = next_k, seed + first_episode + next_k, True
                        actor.start(int(i), first_episode + next_k)
                        next_k += 1
                    else:
                        slot_ep[i] = -1
                if reset_mask.any():
                    obs = stepper.reset(seeds, mask=reset_mask)
                active = slot_ep >= 0
                n_active = int(active.sum())
                rows = all_rows if n_active == n else np.flatnonzero(active)
                longest = int(t.max())
        if bufs is not None and longest >= bufs.capacity:
            bufs.grow()
        if progress is not None and (now := time.perf_counter()) - last_report >= PROGRESS_EVERY_S:
            last_report = now
            progress({"episodes": sink.episodes, "steps": sink.steps, "steps_per_s": stepped / max(1e-9, now - t0)})
    return stepped


def _budget_cuts(slot_ep: np.ndarray, t: np.ndarray, sink: EpisodeSink, n_steps: int) -> np.ndarray:
    """Envs whose episode can no longer be needed beyond its current length.

    Episode k keeps at most ``n_steps - S`` steps, S = the transitions of episodes before
    it. S is at least the known steps of earlier episodes (finished ones in full, running
    ones so far), so once ``t_k >= n_steps - that bound`` the episode is done for the budget.
    """
    cut = np.zeros(len(slot_ep), bool)
    running = slot_ep >= 0
    for i in np.flatnonzero(running):
        k = slot_ep[i]
        before = sink.steps_before(int(k)) + int(t[running & (slot_ep < k)].sum())
        cut[i] = t[i] >= n_steps - before
    return cut
