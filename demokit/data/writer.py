"""DatasetWriter: buffered, atomic, locked writing of whole episodes into one dataset.

Crash safety: the writer's work is committed atomically every ``commit_interval``
seconds (default 10) and at close, through the storage layer
(:mod:`demokit.data.storage`): a new HDF5 file is written as a temporary file moved
into place at the first commit; appends (and later commits) write in place behind a
rollback journal, so a commit costs what it adds. A writer killed at any moment
leaves the file as of its last commit (docs/dataset-format.md, "Writing").

Usage::

    with DatasetWriter("demos.h5", observation_space=env.observation_space,
                       action_space=env.action_space, env_id="CartPole-v1") as w:
        for ep in episodes:
            w.add_episode(ep)

Leaving the ``with`` block normally commits; an exception aborts (nothing is
written, the original is untouched); ``KeyboardInterrupt`` / ``SystemExit`` commit
the episodes added so far and propagate.
"""

from __future__ import annotations

import json
import math
import os
import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from operator import attrgetter
from typing import Any, Literal

import numpy as np
from gymnasium import spaces

from demokit import _version
from demokit.data import format as fmt
from demokit.data.episode import Episode
from demokit.data.locking import signals_deferred
from demokit.data.storage import FieldSpec, Storage, open_storage, storage_for
from demokit.envs import env_spec_json
from demokit.errors import DatasetError, UserError
from demokit.spaces import check_same_spaces, space_to_json

Mode = Literal["create", "append", "overwrite"]
ExtrasSpec = Mapping[str, tuple[tuple[int, ...], Any]]
QuickCheck = Callable[[Any], "bool | None"]  # see _quick_check

#: buffered transitions that trigger a write of one block
DEFAULT_BLOCK_STEPS = 1 << 18
#: seconds between periodic commits of the episodes added so far (kill -9 loses at most this much)
DEFAULT_COMMIT_INTERVAL = 10.0


class DatasetWriter:
    """Write whole :class:`Episode` objects into a demokit dataset (see module docstring).

    Args:
        path: the ``.h5`` file.
        observation_space, action_space: gymnasium spaces of the data.
        env_id: gymnasium id (taken from ``env_spec`` when omitted).
        env_spec: gymnasium ``EnvSpec`` (stored as ``EnvSpec.to_json()``), dict or JSON text.
        provenance: a JSON-serialisable dict (policy kind, checkpoint sha256, its return,
            seed, command line, ...), stored as the ``provenance`` attribute.
        mode: ``"create"`` (refuse an existing file), ``"overwrite"`` (replace it at
            commit) or ``"append"`` (add episodes to an existing dataset with the same
            spaces and env id; a missing file is created).
        compression: ``None``, ``"gzip"`` or ``"lzf"``.
        extras: optional ``{name: (per_step_shape, dtype)}`` of extra per-step arrays;
            inferred from the first episode when omitted.
        block_steps: buffered transitions written per block.
        commit_interval: seconds between periodic commits (default 10): the first
            ``add_episode`` / ``add_columns`` after the interval commits every episode
            added so far, so a writer killed (``kill -9``, power loss) loses at most the
            episodes of the last interval. None: commit only at close.

    ``num_episodes`` / ``num_steps`` count what this writer added; ``total_episodes`` /
    ``total_steps`` include the episodes already in the file when appending.
    """

    def __init__(self, path: str | os.PathLike[str], *, observation_space: spaces.Space,
                 action_space: spaces.Space, env_id: str | None = None, env_spec: Any = None,
                 provenance: Mapping[str, Any] | None = None, mode: Mode = "create",
                 compression: str | None = None, extras: ExtrasSpec | None = None,
                 block_steps: int = DEFAULT_BLOCK_STEPS,
                 commit_interval: float | None = DEFAULT_COMMIT_INTERVAL) -> None:
        self._closed = True  # until construction succeeds: a failed writer must not touch any file
        if mode not in ("create", "append", "overwrite"):
            raise UserError(f"unknown dataset write mode {mode!r}: use create, append or overwrite")
        _, self.path = storage_for(path)  # a Path for local files, else the location string
        self.mode: Mode = mode
        self.observation_space = observation_space
        self.action_space = action_space
        self.compression = fmt.check_compression(compression)
        self._obs_leaves = fmt.leaf_specs(observation_space)
        self._act_leaves = fmt.leaf_specs(action_space)
        self._spec_json = env_spec_json(env_spec)
        if env_id is None and env_spec is not None:
            env_id = getattr(env_spec, "id", None) or (env_spec.get("id") if isinstance(env_spec, Mapping) else None)
        self.env_id = env_id
        if provenance is not None and not isinstance(provenance, Mapping):
            raise UserError(f"provenance must be a dict, got {type(provenance).__name__}")
        self.provenance = dict(provenance) if provenance is not None else {}
        self._extras: dict[str, tuple[tuple[int, ...], np.dtype]] | None = None
        self._has_rewards: bool | None = None  # fixed by the file (append) or the first data added
        self._quick: QuickCheck | None = None
        if extras is not None:
            self._set_extras(_checked_extras(extras))
        if block_steps < 1:
            raise UserError(f"block_steps must be >= 1, got {block_steps}")
        self.block_steps = int(block_steps)
        if commit_interval is not None and not commit_interval > 0:
            raise UserError(f"commit_interval must be > 0 seconds (or None: only at close), got {commit_interval}")
        self.commit_interval = commit_interval
        self._next_commit = math.inf if commit_interval is None else time.monotonic() + commit_interval
        self._committed_episodes = 0  # episodes of this writer that are committed
        self._record_added = False  # this writer's record in 'appends' exists (periodic commits update it)

        self._pool: dict[str, np.ndarray] = {}  # reused block buffers (no fresh pages per block)
        self._buffer: list[Episode] = []
        self._buffer_exact = True  # every buffered episode holds exactly the stored dtypes (see _write_block)
        self._buffer_steps = 0
        self._num_episodes = 0
        self._num_steps = 0
        self._base_episodes = 0
        self._base_steps = 0
        self._started = False  # the fields of a new dataset exist in the storage
        self._store: Storage = open_storage(self.path, mode)  # takes the writer's exclusive lock
        try:
            self._appending = mode == "append" and self._store.existed
            if self._appending:
                self._check_existing()
                self._started = True
        except BaseException:
            self._store.close()
            raise
        self._closed = False

    # -- properties --------------------------------------------------------------------

    @property
    def num_episodes(self) -> int:
        """Episodes added by this writer."""
        return self._num_episodes + len(self._buffer)

    @property
    def num_steps(self) -> int:
        """Transitions added by this writer."""
        return self._num_steps + self._buffer_steps

    @property
    def total_episodes(self) -> int:
        return self._base_episodes + self.num_episodes

    @property
    def total_steps(self) -> int:
        return self._base_steps + self.num_steps

    @property
    def closed(self) -> bool:
        return self._closed

    # -- public API --------------------------------------------------------------------

    def __enter__(self) -> DatasetWriter:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        if self._closed:
            return False
        if exc_type is None:
            self.close()
        elif issubclass(exc_type, (KeyboardInterrupt, SystemExit)):
            # interrupted (Ctrl-C, or SystemExit from a SIGTERM handler): keep what is complete
            if self.num_episodes:
                self.close()
            else:
                self.abort()
        else:
            self.abort()
        return False

    def add_episode(self, episode: Episode) -> None:
        """Buffer one whole episode; it is written with the next block."""
        quick = self._quick
        fit = None if quick is None or self._closed else quick(episode)
        if fit is None:  # the general path: nested spaces, odd shapes or types, extras not known yet
            self._check_open()
            if type(episode) is not Episode and not isinstance(episode, Episode):
                raise UserError(f"add_episode expects a demokit.data.Episode, got {type(episode).__name__}")
            self._check_episode(episode)
        if (episode.rewards is not None) is not self._has_rewards:
            self._set_rewards(episode.rewards is not None)
            fit = self._quick is not None and bool(self._quick(episode))  # armed now if the extras were unknown
        if not fit:
            self._buffer_exact = False
        self._buffer.append(episode)
        self._buffer_steps += episode.terminated.shape[0]
        if self._buffer_steps >= self.block_steps:
            self.flush()
        if time.monotonic() >= self._next_commit:
            self.commit()

    def add_episodes(self, episodes: Iterable[Episode]) -> None:
        """Buffer whole episodes in order (as :meth:`add_episode` each); written in blocks."""
        add = self.add_episode
        for ep in episodes:
            add(ep)

    def add_columns(self, *, observations: Any, actions: Any, rewards: Any | None, terminated: Any, truncated: Any,
                    final_observations: Any, episode_lengths: Any, seeds: Any = None,
                    extras: Mapping[str, Any] | None = None) -> None:
        """Add whole episodes given in the format's own flat layout, written at once.

        The fast path for data that is already flat (converters, bulk copies): N
        transitions of E episodes as ``observations`` / ``actions`` (N rows, nested for
        Dict / Tuple spaces), ``rewards`` / ``terminated`` / ``truncated`` (N,),
        ``final_observations`` (E rows), ``episode_lengths`` (E,) summing to N,
        ``seeds`` (E,) or None (-1), ``extras`` ``{name: (N, ...)}``. The same checks
        as for :class:`Episode` apply (flags only on an episode's last step).
        """
        self._check_open()
        lengths = np.asarray(episode_lengths, dtype=np.int64).reshape(-1)
        e = len(lengths)
        if e == 0:
            return
        if lengths.min() < 1:
            raise UserError(f"episode_lengths must all be >= 1, got {int(lengths.min())}")
        n = int(lengths.sum())
        ends = np.cumsum(lengths) - 1
        cols: dict[str, np.ndarray] = {}
        for root, space, specs, batch, rows in (
                (fmt.OBSERVATIONS, self.observation_space, self._obs_leaves, observations, n),
                (fmt.ACTIONS, self.action_space, self._act_leaves, actions, n),
                (fmt.FINAL_OBSERVATIONS, self.observation_space, self._obs_leaves, final_observations, e)):
            for (path, dtype, shape), leaf in zip(specs, fmt.leaves_of(space, batch, root)):
                cols[fmt.h5_name(root, path)] = _rows(fmt.h5_name(root, path), leaf, rows, shape, dtype)
        self._set_rewards(rewards is not None)
        for name, dtype, data in ((fmt.REWARDS, np.float64, rewards), (fmt.TERMINATED, bool, terminated),
                                  (fmt.TRUNCATED, bool, truncated)):
            if data is not None or name != fmt.REWARDS:
                cols[name] = _rows(name, data, n, (), np.dtype(dtype))
        for name in (fmt.TERMINATED, fmt.TRUNCATED):
            inner = cols[name].copy()
            inner[ends] = False
            if inner.any():
                raise UserError(f"{name} is set on step {int(np.flatnonzero(inner)[0])}, which is not the last step of "
                                f"its episode; {name} may only be set on an episode's last step")
        extras = dict(extras or {})
        spec = self._extras
        if spec is None:
            spec = _checked_extras({k: (np.shape(v)[1:], np.asarray(v).dtype) for k, v in extras.items()})
        if set(extras) != set(spec):
            raise UserError(f"extras {sorted(extras)} given but this dataset stores {sorted(spec)}; "
                            f"every episode must carry the same extra arrays")
        for name, (shape, dtype) in spec.items():
            key = f"{fmt.EXTRAS}/{name}"
            cols[key] = _rows(key, extras[name], n, shape, dtype)
        seed_arr = np.full(e, -1, dtype=np.int64) if seeds is None else np.asarray(seeds, dtype=np.int64).reshape(-1)
        if seed_arr.shape != (e,):
            raise UserError(f"seeds has {seed_arr.shape[0]} entries but episode_lengths has {e}")
        self._set_extras(spec)
        self.flush()  # episodes added before these go first
        self._write_guarded(lambda: self._write_columns(cols, lengths, seed_arr), rows_hint=n, episodes_hint=e)
        self._num_steps += n
        self._num_episodes += e
        if time.monotonic() >= self._next_commit:
            self.commit()

    def flush(self) -> None:
        """Write the buffered episodes into the temporary file (the target changes only at commit)."""
        self._check_open()
        if not self._buffer:
            return
        self._write_guarded(lambda: self._write_block(self._buffer, exact=self._buffer_exact),
                            rows_hint=self._buffer_steps, episodes_hint=len(self._buffer))
        self._num_episodes += len(self._buffer)
        self._num_steps += self._buffer_steps
        self._buffer = []
        self._buffer_steps = 0
        self._buffer_exact = True

    def _write_guarded(self, write: Any, *, rows_hint: int, episodes_hint: int) -> None:
        """Run ``write``; if it is interrupted half-way (e.g. Ctrl-C), undo its partial block so that
        a later commit cannot write some fields twice."""
        if not self._started:
            self._create_fields(rows_hint=rows_hint, episodes_hint=episodes_hint)
        store = self._store
        sizes = {name: store.num_rows(name) for name in store.fields()}
        try:
            write()
        except BaseException:
            try:
                for name, n in sizes.items():
                    store.truncate(name, n)
            except Exception:  # the storage itself failed (e.g. a full disk): give up this writer
                self._cleanup()
            raise

    def commit(self) -> None:
        """Make every episode added so far durable and visible to readers, atomically.

        Called by itself every ``commit_interval`` seconds and by :meth:`close`. A commit
        costs what was added since the last one (docs/dataset-format.md, "Writing").
        Ctrl-C / SIGTERM arriving during the commit are held back until it is complete.
        """
        self._check_open()
        with signals_deferred():
            try:
                if self.num_episodes == self._committed_episodes and (self._started or self._appending):
                    pass  # nothing new since the last commit (a new file still gets written when empty)
                else:
                    self.flush()
                    if not self._started:  # no episodes at all: an empty, valid dataset
                        if self._has_rewards is None:
                            self._has_rewards = True
                        self._create_fields(rows_hint=1, episodes_hint=1)
                    self._finalize_attrs()
                    self._store.commit()
                    self._committed_episodes = self.num_episodes
            except BaseException:
                self._cleanup()
                raise
        if self.commit_interval is not None:
            self._next_commit = time.monotonic() + self.commit_interval

    def close(self) -> None:
        """Commit what was added (see :meth:`commit`) and release the file."""
        if self._closed:
            return
        if self._appending and self.num_episodes == 0:
            self._cleanup()  # nothing new: leave the original untouched
            return
        try:
            if self.num_episodes != self._committed_episodes or not self._store.existed:
                self.commit()
        finally:  # also when an interrupt held back during the commit is delivered
            self._cleanup()

    def abort(self) -> None:
        """Discard what this writer added since its last commit (before any commit: no new file,
        the original untouched) and release the file."""
        if not self._closed:
            self._cleanup()

    def __del__(self) -> None:  # a writer dropped without close(): discard, never commit
        try:
            if not getattr(self, "_closed", True):
                self._cleanup()
        except Exception:
            pass

    # -- internals ---------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise UserError(f"DatasetWriter for {self.path} is closed")

    def _cleanup(self) -> None:
        self._closed = True
        self._num_episodes += len(self._buffer)  # the counts stay those of the episodes added
        self._num_steps += self._buffer_steps
        self._buffer = []
        self._buffer_steps = 0
        self._store.close()

    def _check_existing(self) -> None:
        from demokit.data.dataset import load_dataset

        ds = load_dataset(self.path)
        check_appendable(ds, self.path, observation_space=self.observation_space, action_space=self.action_space,
                         env_id=self.env_id, extras=self._extras)
        if self.env_id is None:
            self.env_id = ds.env_id
        self._set_extras(ds.extras_spec)
        self._has_rewards = ds.has_rewards
        self._base_episodes = ds.num_episodes
        self._base_steps = len(ds)

    def _set_rewards(self, has: bool) -> None:
        """Fix whether the dataset has rewards (the first data added decides; later data must agree)."""
        if self._has_rewards is None:
            self._has_rewards = has
        elif self._has_rewards != has:
            where = f"dataset {self.path}" if self._appending else "this writer's dataset"
            raise UserError(f"{where} {'has rewards' if self._has_rewards else 'is reward-free'} but the data added "
                            f"{'has rewards' if has else 'has none'}; every episode of a dataset has rewards or none "
                            f"does")

    def _set_extras(self, spec: dict[str, tuple[tuple[int, ...], np.dtype]]) -> None:
        """Fix the extras of the dataset; with flat spaces this arms the quick episode check."""
        self._extras = spec
        obs, act = self._obs_leaves, self._act_leaves
        if len(obs) != 1 or obs[0][0] or len(act) != 1 or act[0][0]:  # Dict / Tuple: every leaf checked in full
            self._quick = None
            return
        (_, obs_dtype, obs_shape), (_, act_dtype, act_shape) = obs[0], act[0]
        self._quick = _quick_check(obs_shape, obs_dtype, act_shape, act_dtype, spec)

    def _check_episode(self, ep: Episode) -> None:
        if self._extras is None:
            self._set_extras(_checked_extras({k: (np.shape(v)[1:], np.asarray(v).dtype) for k, v in ep.extras.items()}))
        if set(ep.extras) != set(self._extras):
            raise UserError(f"episode has extras {sorted(ep.extras)} but this dataset stores {sorted(self._extras)}; "
                            f"every episode must carry the same extra arrays")
        for name, (shape, _) in self._extras.items():
            if tuple(np.shape(ep.extras[name])[1:]) != shape:
                raise UserError(f"episode extra {name!r} has per-step shape {tuple(np.shape(ep.extras[name])[1:])}, "
                                f"expected {shape}")
        T = len(ep)
        self._check_leaves("observations", self.observation_space, self._obs_leaves, ep.observations, T)
        self._check_leaves("actions", self.action_space, self._act_leaves, ep.actions, T)
        self._check_leaves("final_observation", self.observation_space, self._obs_leaves, ep.final_observation, 1)

    @staticmethod
    def _check_leaves(what: str, space: spaces.Space, specs: list[Any], batch: Any, rows: int) -> None:
        leaves = [batch] if len(specs) == 1 and not specs[0][0] else fmt.leaves_of(space, batch, what)
        for (path, _, shape), leaf in zip(specs, leaves):
            got = getattr(leaf, "shape", None)
            if got is None:
                got = np.shape(leaf)
            if got[:1] == (rows,) and got[1:] == shape:
                continue
            # accept rows of the right size in another shape (e.g. Discrete actions as (T, 1))
            if got[:1] == (rows,) and int(np.prod(got[1:], dtype=np.int64)) == int(np.prod(shape, dtype=np.int64)):
                continue
            label = "/".join((what, *path))
            raise UserError(f"episode {label} has shape {tuple(got)}, expected ({', '.join(map(str, (rows, *shape)))}) "
                            f"for the dataset's space")

    def _create_fields(self, *, rows_hint: int, episodes_hint: int) -> None:
        """Root attributes and empty fields of a new dataset (chunks sized from the first block)."""
        store = self._store
        has_rewards = self._has_rewards is not False
        store.set_attrs({
            fmt.ATTR_FORMAT: fmt.FORMAT_NAME,
            fmt.ATTR_VERSION: np.int64(fmt.FORMAT_VERSION),
            "env_id": self.env_id or "",
            "env_spec": self._spec_json or "null",
            "observation_space": space_to_json(self.observation_space),
            "action_space": space_to_json(self.action_space),
            "provenance": fmt.to_json(self.provenance),
            "appends": "[]",
            "created": fmt.utc_now(),
            "demokit_version": _version.__version__,
            "total_steps": np.int64(0),
            "total_episodes": np.int64(0),
            **({} if has_rewards else {fmt.ATTR_REWARDS: fmt.REWARDS_NONE}),
        })
        for root, leaves, rows in ((fmt.OBSERVATIONS, self._obs_leaves, rows_hint),
                                   (fmt.ACTIONS, self._act_leaves, rows_hint),
                                   (fmt.FINAL_OBSERVATIONS, self._obs_leaves, episodes_hint)):
            for path, dtype, shape in leaves:
                self._create(fmt.h5_name(root, path), dtype, shape, rows)
        if has_rewards:
            self._create(fmt.REWARDS, np.dtype(np.float64), (), rows_hint)
        self._create(fmt.TERMINATED, np.dtype(bool), (), rows_hint)
        self._create(fmt.TRUNCATED, np.dtype(bool), (), rows_hint)
        store.create_group(fmt.EXTRAS)
        for name, (shape, dtype) in (self._extras or {}).items():
            self._create(f"{fmt.EXTRAS}/{name}", dtype, shape, rows_hint)
        store.create_group(fmt.EPISODES)
        for name, dtype in fmt.episode_fields(has_rewards).items():
            self._create(f"{fmt.EPISODES}/{name}", dtype, (), episodes_hint)
        self._started = True

    def _create(self, name: str, dtype: np.dtype, shape: tuple[int, ...], rows_hint: int) -> None:
        row_bytes = dtype.itemsize * int(np.prod(shape, dtype=np.int64))
        self._store.create_field(FieldSpec(name, dtype, shape, chunks=fmt.chunk_rows(row_bytes, rows_hint),
                                           compression=self.compression))

    def _gather(self, root: str, space: spaces.Space, specs: list[Any], batches: Sequence[Any], n: int
                ) -> list[np.ndarray]:
        """Concatenate the leaves of per-episode batches into one array per leaf (stored dtype and shape)."""
        if len(specs) == 1 and not specs[0][0]:
            per_leaf = [batches]
        else:
            split = [fmt.leaves_of(space, b) for b in batches]
            per_leaf = [[s[i] for s in split] for i in range(len(specs))]
        return [self._concat(fmt.h5_name(root, path), arrays, dtype, shape, n)
                for (path, dtype, shape), arrays in zip(specs, per_leaf)]

    def _concat(self, name: str, arrays: Sequence[Any], dtype: np.dtype, shape: tuple[int, ...], n: int) -> np.ndarray:
        """The ``n`` rows of ``arrays`` stacked into a reused buffer of the stored dtype and row shape."""
        buf = self._pool.get(name)
        if buf is None or buf.shape[0] < n:
            buf = self._pool[name] = np.empty((max(n, self.block_steps if buf is not None else n), *shape), dtype=dtype)
        out = buf[:n]
        if n:
            try:
                np.concatenate(arrays, axis=0, out=out, casting="unsafe")
            except ValueError:  # rows of the right size in another shape, e.g. Discrete actions as (T, 1)
                np.concatenate([np.asarray(a).reshape(len(a), *shape) for a in arrays], axis=0, out=out,
                               casting="unsafe")
        return out

    def _write_block(self, episodes: list[Episode], *, exact: bool = False) -> None:
        """Write buffered episodes as one block of columns.

        ``exact``: the spaces are flat and every episode is an :class:`Episode` whose arrays
        have the stored dtypes and row shapes (checked when it was added), so a column is
        the bytes of its pieces joined. Otherwise (or when a piece is not C-contiguous) the
        pieces are concatenated into a reused buffer, cast to the stored dtype.
        """
        e = len(episodes)
        # one pass over the episodes: a tuple of pieces per field
        obs, act, fin, rewards, terminated, truncated, seed = zip(*map(attrgetter(
            "observations", "actions", "final_observation", "rewards", "terminated", "truncated", "seed"), episodes))
        lengths = np.fromiter(map(len, terminated), dtype=np.int64, count=e)
        n = int(lengths.sum())
        cols: dict[str, np.ndarray] = {}

        def column(name: str, pieces: Sequence[Any], dtype: np.dtype, shape: tuple[int, ...], rows: int) -> np.ndarray:
            joined = _joined(pieces, dtype, shape, rows) if exact else None
            return joined if joined is not None else self._concat(name, pieces, dtype, shape, rows)

        for root, space, specs, batches, rows in (
                (fmt.OBSERVATIONS, self.observation_space, self._obs_leaves, obs, n),
                (fmt.ACTIONS, self.action_space, self._act_leaves, act, n),
                (fmt.FINAL_OBSERVATIONS, self.observation_space, self._obs_leaves, fin, e)):
            if exact:  # flat spaces: one leaf
                ((path, dtype, shape),) = specs
                cols[fmt.h5_name(root, path)] = column(fmt.h5_name(root, path), batches, dtype, shape, rows)
                continue
            for (path, _, _), data in zip(specs, self._gather(root, space, specs, batches, rows)):
                cols[fmt.h5_name(root, path)] = data
        for name, pieces, dtype in ((fmt.REWARDS, rewards, np.float64), (fmt.TERMINATED, terminated, bool),
                                    (fmt.TRUNCATED, truncated, bool)):
            if name != fmt.REWARDS or self._has_rewards:
                cols[name] = column(name, pieces, np.dtype(dtype), (), n)
        for name, (shape, dtype) in (self._extras or {}).items():
            key = f"{fmt.EXTRAS}/{name}"
            cols[key] = column(key, tuple(ep.extras[name] for ep in episodes), dtype, shape, n)
        seeds = np.fromiter(seed, dtype=np.int64, count=e)
        self._write_columns(cols, lengths, seeds)

    def _write_columns(self, cols: Mapping[str, np.ndarray], lengths: np.ndarray, seeds: np.ndarray) -> None:
        """Append whole episodes given as flat per-field arrays, plus their episode index rows."""
        store = self._store
        steps0 = store.num_rows(fmt.TERMINATED)
        for name, data in cols.items():
            store.append(name, data)
        ends = np.cumsum(lengths)
        first = ends - lengths
        index = {
            "start": steps0 + first,
            "length": lengths,
            "return": np.add.reduceat(cols[fmt.REWARDS], first) if fmt.REWARDS in cols else None,
            "terminated": cols[fmt.TERMINATED][ends - 1],
            "truncated": cols[fmt.TRUNCATED][ends - 1],
            "seed": seeds,
        }
        for name, values in index.items():
            if values is not None:
                store.append(f"{fmt.EPISODES}/{name}", np.asarray(values, dtype=fmt.EPISODE_FIELDS[name]))

    def _finalize_attrs(self) -> None:
        store = self._store
        steps = store.num_rows(fmt.TERMINATED)
        episodes = store.num_rows(f"{fmt.EPISODES}/length")
        values: dict[str, Any] = {}
        if self._appending:
            appends = json.loads(store.attrs().get("appends") or "[]")
            if self._record_added:  # a periodic commit of this writer made the record: extend it
                appends.pop()
            appends.append({"time": fmt.utc_now(), "episodes": [self._base_episodes, episodes],
                            "demokit_version": _version.__version__, "provenance": self.provenance})
            self._record_added = True
            values["appends"] = fmt.to_json(appends)
            values["modified"] = fmt.utc_now()
        values["total_steps"] = np.int64(steps)
        values["total_episodes"] = np.int64(episodes)
        store.set_attrs(values)
        assert steps == self.total_steps and episodes == self.total_episodes, (steps, episodes)


def _quick_check(obs_shape: tuple[int, ...], obs_dtype: np.dtype, act_shape: tuple[int, ...], act_dtype: np.dtype,
                 extras: Mapping[str, tuple[tuple[int, ...], np.dtype]]) -> QuickCheck:
    """The quick check of an episode for a dataset with flat spaces (a closure: the stored shapes
    and dtypes are bound once). It returns None when the episode needs the full check (not an
    Episode, a field that is not an ndarray, another row shape, other extras), else whether
    every array also has the stored dtype (True: its bytes can be joined) or needs a cast.

    Row counts need no check here: :class:`Episode` checked them on construction. Dtypes are
    compared by identity with numpy's shared native instances (``np.dtype(str)``); an equal
    dtype that is another instance only costs the cast path.
    """
    ndarray, episode_type = np.ndarray, Episode
    obs_dtype, act_dtype = np.dtype(obs_dtype.str), np.dtype(act_dtype.str)
    extra_specs = tuple((name, shape, np.dtype(dtype.str)) for name, (shape, dtype) in extras.items())
    extra_names = extras.keys()

    def check(ep: Any) -> bool | None:
        if type(ep) is not episode_type:
            return None
        obs, act, fin = ep.observations, ep.actions, ep.final_observation
        if not (type(obs) is ndarray and type(act) is ndarray and type(fin) is ndarray
                and obs.shape[1:] == obs_shape and act.shape[1:] == act_shape and fin.shape[1:] == obs_shape):
            return None
        exact = obs.dtype is obs_dtype and act.dtype is act_dtype and fin.dtype is obs_dtype
        ep_extras = ep.extras
        if extra_specs:
            if ep_extras.keys() != extra_names:
                return None
            for name, shape, dtype in extra_specs:
                arr = ep_extras[name]
                if type(arr) is not ndarray or arr.shape[1:] != shape:
                    return None
                exact = exact and arr.dtype is dtype
        elif ep_extras:
            return None
        return exact

    return check


def _joined(pieces: Sequence[Any], dtype: np.dtype, shape: tuple[int, ...], rows: int) -> np.ndarray | None:
    """The bytes of C-contiguous arrays of ``dtype`` joined into one (rows, *shape) array, or None
    when a piece is not C-contiguous or the sizes do not add up (the caller concatenates then)."""
    try:
        data = b"".join(pieces)
    except TypeError:  # a piece that exports no contiguous buffer
        return None
    if len(data) != rows * dtype.itemsize * int(np.prod(shape, dtype=np.int64)):
        return None
    return np.frombuffer(data, dtype=dtype).reshape(rows, *shape)


def check_appendable(ds: Any, path: Any, *, observation_space: spaces.Space, action_space: spaces.Space,
                     env_id: str | None, extras: ExtrasSpec | None) -> None:
    """Refuse appending data of these spaces, env and extras (None: not known yet) to the dataset ``ds``
    (at ``path``): a DatasetError naming what differs. The writer checks it when it opens a dataset to
    append to; a sharded collection checks it before collecting (its ranks write new shards)."""
    check_same_spaces(what=f"dataset {path}", expected_obs=ds.observation_space, expected_act=ds.action_space,
                      actual_obs=observation_space, actual_act=action_space, against="the data to append")
    if env_id is not None and ds.env_id is not None and ds.env_id != env_id:
        raise DatasetError(f"dataset {path} holds {ds.env_id} episodes, not {env_id}; "
                           f"append only episodes of the same env or write to another file")
    mine = None if extras is None else _checked_extras(extras)
    if mine is not None and mine != ds.extras_spec:
        raise DatasetError(f"dataset {path} has extras {_fmt_extras(ds.extras_spec)} but the writer was given "
                           f"{_fmt_extras(mine)}; append episodes with the same extra arrays")


def _checked_extras(extras: ExtrasSpec) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """Normalise an extras spec ``{name: (shape, dtype)}``, refusing names/dtypes HDF5 cannot hold."""
    out = {}
    for name, (shape, dtype) in extras.items():
        dt = np.dtype(dtype)
        if not isinstance(name, str) or not name or "/" in name:
            raise UserError(f"extra array name {name!r} cannot be stored: use a non-empty name without '/'")
        if dt.kind not in "biuf":
            raise UserError(f"extra array {name!r} has dtype {dt}; only bool, integer and float arrays can be stored")
        out[name] = (tuple(int(x) for x in shape), dt)
    return out


def _rows(name: str, data: Any, rows: int, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """``data`` as an array of ``rows`` rows of ``shape`` in ``dtype``, or a UserError naming the field."""
    arr = np.asarray(data)
    if arr.ndim == 0 or arr.shape[0] != rows or arr.size != rows * int(np.prod(shape, dtype=np.int64)):
        raise UserError(f"{name} has shape {arr.shape}, expected ({', '.join(map(str, (rows, *shape)))})")
    return arr.reshape(rows, *shape).astype(dtype, copy=False)


def _fmt_extras(extras: Mapping[str, tuple[tuple[int, ...], np.dtype]] | None) -> str:
    if not extras:
        return "none"
    return ", ".join(f"{k} {np.dtype(dt)}{tuple(shp)}" for k, (shp, dt) in sorted(extras.items()))
