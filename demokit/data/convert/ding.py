"""DI-engine expert data -> demokit (writing it: :mod:`demokit.data.convert.ding_write`).

DI-engine's ``collect_demo_data`` / ``save_file`` store expert data as a pickled
``list`` of transition dicts ``{"obs", "next_obs", "action", "reward", "done", ...}``
whose values are torch tensors (or numpy arrays / Python scalars); policy outputs
such as ``logit``, ``value`` and counters such as ``collect_iter`` ride along. The
file is read with :func:`demokit.data.convert.safe_pickle.safe_load` (nothing in it
is executed); a ``torch.save`` file holding the same list is accepted too. With
``data_type='hdf5'`` DI-engine's ``hdf5_save`` writes the same columns as root datasets
``obs``, ``action``, ``reward``, ``done``, ``next_obs`` of an HDF5 file: read with the same
rules. A ``collect_iter`` that is 0 everywhere (what ``collect_demo_data`` writes) is not kept.

Episodes end where ``done`` is true. DI-engine does not separate termination from
truncation, so ``done`` counts as *terminated* except:

* when a transition carries ``truncated`` or ``timeout`` (newer DI-engine), that
  flag marks the end as truncated;
* with ``--env``, an episode whose length equals the env's ``max_episode_steps``
  ended by the time limit and is marked *truncated* (an episode that truly
  terminated on exactly its last allowed step is indistinguishable and is marked
  truncated too).

Without ``--env`` every done is a termination and a note says so.

**Interleaved pieces.** DI-engine's serial collector steps ``env_num`` envs together and
flushes each env's steps in chunks (``n_sample // env_num`` steps, or fewer at a done), so a
real file is short pieces of several envs' episodes, interleaved. The data is cut into
pieces at every done and every jump (``next_obs[i] != obs[i+1]``); an unfinished piece is
joined to the first later piece whose first ``obs`` equals, bit for bit, its last
``next_obs`` (DI-engine's next piece of that env starts exactly there). Episodes are the
joined chains, in the order of their first piece. A chain that never reaches a done (still
running when the collection stopped) is kept as a truncated episode. Where states repeat
exactly (identical observations), a join could go more than one way: the earliest candidate
is taken and the conversion notes say so; every transition keeps its true next observation
either way. Every other numeric per-step key becomes an extra array.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from demokit.data import format as fmt
from demokit.data.convert.common import (
    Segments,
    Source,
    block_from_segments,
    check_rows,
    env_info,
    fit_to_space,
    flat_spaces,
    numeric_extras,
    open_hdf5,
    rows_equal,
)
from demokit.data.convert.safe_pickle import safe_load
from demokit.data.storage import hdf5 as h5io
from demokit.errors import UserError

CORE_KEYS = ("obs", "next_obs", "action", "reward", "done")
#: keys a transition must hold; the others of CORE_KEYS may be absent from every transition (reward-free data,
#: DI-engine's obs/action-only GAIL expert data)
REQUIRED_KEYS = ("obs", "action")
TRUNCATION_KEYS = ("truncated", "timeout")
#: root attribute of an HDF5 file demokit writes in DI-engine's layout: the env id (HDF5Dataset reads datasets only)
ENV_ATTR = "demokit_env_id"


def _to_numpy(value: Any) -> Any:
    if hasattr(value, "detach") and hasattr(value, "numpy"):  # a torch tensor
        return value.detach().cpu().numpy()
    if isinstance(value, (Mapping, str, bytes)) or value is None:
        return value
    return np.asarray(value)


def _stack(path: Path, rows: list[Any], key: str) -> np.ndarray:
    first = rows[0]
    if isinstance(first, Mapping):
        raise UserError(f"{path}: {key!r} values are dicts (Dict observations); demokit reads DI-engine data with "
                        f"array observations only")
    shape = np.shape(first)
    for i, row in enumerate(rows):
        if not isinstance(row, np.ndarray) or row.shape != shape:
            got = f"shape {row.shape}" if isinstance(row, np.ndarray) else f"a {type(row).__name__}"
            raise UserError(f"{path}: transition {i} has {key!r} of {got} but transition 0 has shape {shape}; "
                            f"every transition must hold arrays of the same shape")
    return np.stack(rows)


def load_transitions(path: str | os.PathLike[str]) -> list[Mapping[str, Any]]:
    """The list of transition dicts of a DI-engine data file (safely unpickled)."""
    path = Path(path)
    data = safe_load(path)
    if isinstance(data, Mapping) and isinstance(data.get("data"), (list, tuple)):
        data = data["data"]
    if not isinstance(data, (list, tuple)):
        raise UserError(f"{path}: holds a {type(data).__name__}; DI-engine expert data is a list of transition dicts "
                        f"with keys {', '.join(CORE_KEYS)}")
    if not data:
        raise UserError(f"{path}: the list of transitions is empty; there is nothing to convert")
    for i, tr in enumerate(data):
        if not isinstance(tr, Mapping):
            raise UserError(f"{path}: transition {i} is a {type(tr).__name__}, not a dict")
        missing = [k for k in REQUIRED_KEYS if k not in tr]
        if missing:
            raise UserError(f"{path}: transition {i} lacks {', '.join(map(repr, missing))}; DI-engine transitions "
                            f"hold {', '.join(CORE_KEYS)} (reward, done and next_obs may be absent)")
    return list(data)


def read_ding(path: str | os.PathLike[str], *, env_id: str | None = None) -> Source:
    """Validate a DI-engine data file (a pickle / torch.save list of transitions, or the HDF5 file of
    DI-engine's ``hdf5_save``) and return it as a :class:`Source`."""
    path = Path(path)
    if path.is_file() and h5io.is_hdf5(path):
        return _source(path, _hdf5_columns(path), env_id=env_id)
    return _source(path, _pickle_columns(path), env_id=env_id)


@dataclass
class _Columns:
    """A DI-engine file as per-transition arrays: ``core`` (CORE_KEYS present), truncation ``flags``,
    the ``other`` keys (extra candidates), keys held by only some transitions (``partial``: how many)."""

    n: int
    keys: list[str]
    core: dict[str, np.ndarray]
    flags: dict[str, np.ndarray] = field(default_factory=dict)
    other: dict[str, Any] = field(default_factory=dict)
    partial: dict[str, int] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    groups: list[str] = field(default_factory=list)  # HDF5 groups at the root (skipped)
    env_id: str | None = None  # the env the file names (demokit's hdf5 attribute)


def _pickle_columns(path: Path) -> _Columns:
    transitions = load_transitions(path)
    n = len(transitions)
    columns: dict[str, list[Any]] = {}
    for tr in transitions:
        for key, value in tr.items():
            columns.setdefault(str(key), []).append(_to_numpy(value))
    partial = {k: len(v) for k, v in columns.items() if len(v) != n}
    for key in ("reward", "done", "next_obs"):
        if key in partial:
            first = next(i for i, tr in enumerate(transitions) if key not in tr)
            raise UserError(f"{path}: transition {first} lacks {key!r}, which {partial[key]} of the {n} "
                            f"transitions hold; it must be in every transition or in none")
    for key in partial:
        del columns[key]
    core = {k: _stack(path, columns.pop(k), k) for k in CORE_KEYS if k in columns}
    flags = {k: _stack(path, columns.pop(k), k) for k in TRUNCATION_KEYS if k in columns}
    keys = sorted(map(str, transitions[0].keys()))
    return _Columns(n=n, keys=keys, core=core, flags=flags, other={k: _stack_or_keep(v) for k, v in columns.items()},
                    partial=partial, info={"transitions": n, "keys": keys})


def is_ding_hdf5_file(h5: h5io.File) -> bool:
    """Whether an open HDF5 file has the layout of DI-engine's ``hdf5_save`` (root datasets obs, action, ...)."""
    return isinstance(h5.get("obs"), h5io.Dataset) and isinstance(h5.get("action"), h5io.Dataset)


def _hdf5_columns(path: Path) -> _Columns:
    with open_hdf5(path) as h5:
        for key in REQUIRED_KEYS:
            if isinstance(h5.get(key), h5io.Group):
                raise UserError(f"{path}: {key!r} is a group (Dict {key}s); demokit reads DI-engine data with array "
                                f"observations and actions only")
            if not isinstance(h5.get(key), h5io.Dataset):
                raise UserError(f"{path}: no dataset {key!r}; DI-engine's hdf5_save writes the datasets "
                                f"{', '.join(CORE_KEYS)} at the file's root")
        data = {str(k): v[()] for k, v in h5.items() if isinstance(v, h5io.Dataset)}
        groups = sorted(str(k) for k, v in h5.items() if isinstance(v, h5io.Group))
        named = fmt.decode_attr(h5.attrs.get(ENV_ATTR)) if ENV_ATTR in h5.attrs else None
    for key, value in data.items():
        if key in CORE_KEYS + TRUNCATION_KEYS and np.ndim(value) == 0:
            raise UserError(f"{path}: dataset {key!r} is a scalar; expected one row per transition")
    core = {k: data.pop(k) for k in CORE_KEYS if k in data}
    flags = {k: data.pop(k) for k in TRUNCATION_KEYS if k in data}
    n = check_rows(path, {**core, **flags}, reference="obs")
    if n == 0:
        raise UserError(f"{path}: the datasets are empty; there is nothing to convert")
    keys = sorted([*core, *flags, *data])
    return _Columns(n=n, keys=keys, core=core, flags=flags, other=data, groups=groups,
                    info={"transitions": n, "keys": keys, "layout": "hdf5"},
                    env_id=named if isinstance(named, str) and named else None)


def _source(path: Path, cols: _Columns, *, env_id: str | None) -> Source:
    """The shared rules of both layouts: episodes from done / truncation flags / jumps, pieces re-linked."""
    n, core, columns = cols.n, dict(cols.core), dict(cols.other)
    absent = [k for k in CORE_KEYS if k not in core]
    if "done" not in core:
        core["done"] = np.zeros(n, dtype=bool)
    for key, flags in cols.flags.items():
        if np.size(flags) != n:
            raise UserError(f"{path}: {key!r} has per-step shape {np.shape(flags)[1:]}; expected one flag per "
                            f"transition")
        core[f"__{key}__"] = np.reshape(flags, n).astype(bool)
    dropped = 0
    if "next_obs" not in core:  # obs/action only: the next observation is the following row's
        core, columns, n, dropped = _derive_next_obs(core, columns, n)
        if n == 0:
            raise UserError(f"{path}: without next_obs a transition needs a following row; no transition has one")
    rewards = core["reward"].astype(np.float64) if "reward" in core else None
    if rewards is not None and rewards.size != n:
        raise UserError(f"{path}: 'reward' has per-step shape {rewards.shape[1:]}; expected one reward per transition")
    done = core["done"]
    if done.size != n:
        raise UserError(f"{path}: 'done' has per-step shape {done.shape[1:]}; expected one flag per transition")
    done = done.reshape(n).astype(bool)
    truncation = np.zeros(n, dtype=bool)
    for key in (*TRUNCATION_KEYS, "cut"):
        if f"__{key}__" in core:
            truncation |= core.pop(f"__{key}__")

    if env_id is None and cols.env_id is not None:
        import gymnasium as gym

        env_id = cols.env_id if cols.env_id in gym.registry else None
    env = env_info(env_id) if env_id is not None else None
    obs_space, act_space, obs, actions = flat_spaces(core["obs"], core["action"], env, path=path)
    if core["next_obs"].shape[1:] != core["obs"].shape[1:]:
        raise UserError(f"{path}: 'next_obs' has per-step shape {core['next_obs'].shape[1:]} but 'obs' has "
                        f"{core['obs'].shape[1:]}")
    if env is not None:
        next_obs = fit_to_space(core["next_obs"], obs_space, what=f"{path}: next_obs", against=f"env {env.env_id}")
    else:
        next_obs = core["next_obs"].reshape(obs.shape).astype(obs.dtype, copy=False)

    source = Source(kind="ding", path=path, observation_space=obs_space, action_space=act_space, episodes=(),
                    num_episodes=0, num_steps=0, env_id=env.env_id if env else None,
                    env_spec=env.spec_json if env else None, spaces_inferred=env is None,
                    info=cols.info)
    if rewards is None:
        source.note("the transitions hold no 'reward': the dataset is reward-free (BC, DAgger and GAIL train on it; "
                    "return statistics and return filters are not available)")
    if "done" in absent:
        source.note("the transitions hold no 'done': episodes end only where the observations jump "
                    "(next_obs differs from the following obs) and are kept as truncated")
    if dropped:
        source.note(f"the transitions hold no 'next_obs': each transition's next observation is the following "
                    f"row's obs; the {dropped} transition(s) whose next observation is unknown (at each done and the "
                    f"file's last row) were dropped, their obs kept as the episode's final observation, and those "
                    f"episodes are marked truncated")
    if env is None:
        source.note(f"the file names no env, so the spaces were inferred from the data (observations {obs_space}, "
                    f"actions {act_space}) and every done counts as a termination; pass --env to use the env's "
                    f"spaces and mark episodes that reach its time limit as truncated")
    for key, held in cols.partial.items():
        source.note(f"key {key!r} is present in only {held} of {cols.n} transitions; skipped")
    for group in cols.groups:
        source.note(f"group {group!r} skipped (DI-engine's HDF5Dataset reads the root datasets only)")
    counter = columns.get("collect_iter")
    if isinstance(counter, np.ndarray) and counter.dtype.kind in "biuf" and not counter.any():
        del columns["collect_iter"]
        source.note("'collect_iter' is 0 in every transition (what DI-engine's collect_demo_data writes): not kept")
    extras = numeric_extras(source, columns, n, what="dataset" if cols.info.get("layout") == "hdf5" else "key")

    ends = done | truncation
    pieces = _pieces(obs, next_obs, ends)
    chains, ambiguous = _relink(pieces, obs, next_obs, ends)
    order = np.concatenate([np.arange(s, e + 1) for chain in chains for s, e in (pieces[i] for i in chain)])
    lengths = np.array([sum(pieces[i][1] - pieces[i][0] + 1 for i in chain) for chain in chains], dtype=np.int64)
    last = np.array([pieces[chain[-1]][1] for chain in chains], dtype=np.int64)
    stop = np.cumsum(lengths)
    open_end = ~ends[last]  # still running when the collection stopped
    segments = Segments(start=stop - lengths, stop=stop, terminated=done[last] & ~truncation[last],
                        truncated=truncation[last] | open_end)
    linked = sum(len(c) - 1 for c in chains)
    if linked:
        source.note(f"the transitions are pieces of several envs' episodes, interleaved (DI-engine's collector flushes "
                    f"each env's steps in chunks): {len(pieces)} pieces were re-linked into {len(chains)} episodes "
                    f"({linked} joins, each where a piece's last next_obs equals, bit for bit, the first obs of a "
                    f"later piece)")
    interleaved = linked > 0 or len(pieces) > int(ends.sum()) + 1
    repeated = _repeated_rows(obs) if interleaved else 0
    if ambiguous or repeated:
        source.note(f"the joins are ambiguous: {repeated} observation row(s) repeat an earlier one exactly (identical "
                    f"states), so a piece could continue more than one unfinished piece ({ambiguous} join(s) had "
                    f"several candidates; the earliest was taken) and rows that follow each other in the file "
                    f"were taken as one env's consecutive steps; every transition keeps its true next observation, "
                    f"but those episodes' boundaries and returns may be wrong")
    if open_end.any():
        source.note(f"{int(open_end.sum())} episode(s) have no done at their end (still running when the collection "
                    f"stopped); they are kept as truncated episodes")
    limit = env.max_episode_steps if env is not None else None
    if limit:
        at_limit = segments.terminated & (segments.lengths == limit)
        if at_limit.any():
            segments = Segments(start=segments.start, stop=segments.stop, terminated=segments.terminated & ~at_limit,
                                truncated=segments.truncated | at_limit)
            source.note(f"{int(at_limit.sum())} episode(s) of exactly {limit} steps (the time limit of {env.env_id}) "
                        f"ended by the time limit: marked truncated, not terminated (an episode that truly terminated "
                        f"on its last allowed step cannot be told apart)")
        over = segments.lengths > limit
        if over.any():
            source.note(f"{int(over.sum())} episode(s) are longer than the time limit of {env.env_id} ({limit} "
                        f"steps): the data was not collected with that limit, or pieces were joined wrongly")
    identity = len(order) == n and bool(np.all(order[1:] > order[:-1]))
    take = (lambda a: a) if identity else (lambda a: a[order])
    source.set_blocks([block_from_segments(segments, observations=take(obs), actions=take(actions),
                                           rewards=None if rewards is None else take(rewards.reshape(n)),
                                           finals=next_obs[last],
                                           extras={k: take(v) for k, v in extras.items()})])
    return source


def _derive_next_obs(core: dict[str, np.ndarray], columns: dict[str, Any], n: int
                     ) -> tuple[dict[str, np.ndarray], dict[str, Any], int, int]:
    """Data without ``next_obs``: row i's next observation is row i + 1's obs. The rows whose next observation
    is unknown (a done row, the last row) are dropped; the row before each becomes a cut (``__cut__``: truncated)
    whose next observation is the dropped row's obs. Returns (core, columns, rows kept, rows dropped)."""
    done = core["done"].reshape(n).astype(bool)
    drop = done.copy()
    drop[-1] = True
    keep = ~drop
    obs = core["obs"]
    nxt = np.empty_like(obs)
    nxt[:-1] = obs[1:]
    nxt[-1] = obs[-1]
    cut = np.zeros(n, dtype=bool)
    cut[:-1] = drop[1:]
    out = {k: v[keep] for k, v in core.items() if k != "done"}
    out["next_obs"] = nxt[keep]
    out["__cut__"] = cut[keep]
    out["done"] = np.zeros(int(keep.sum()), dtype=bool)
    cols = {k: v[keep] if np.ndim(v) and len(v) == n else v for k, v in columns.items()}
    return out, cols, int(keep.sum()), int(drop.sum())


def _pieces(obs: np.ndarray, next_obs: np.ndarray, ends: np.ndarray) -> list[tuple[int, int]]:
    """Maximal runs of rows [first, last] that are consecutive steps of one env: a run ends at a
    done (or truncation flag) or where ``next_obs[i] != obs[i+1]``."""
    n = len(ends)
    cut = ends.copy()
    if n > 1:
        cut[:-1] |= ~rows_equal(next_obs[:-1], obs[1:])
    cut[-1] = True
    last = np.flatnonzero(cut)
    first = np.concatenate([[0], last[:-1] + 1])
    return list(zip(first.tolist(), last.tolist()))


def _repeated_rows(obs: np.ndarray) -> int:
    """How many observation rows repeat an earlier row exactly."""
    flat = np.ascontiguousarray(obs.reshape(len(obs), -1))
    rows = flat.view(np.dtype((np.void, flat.dtype.itemsize * flat.shape[1]))).ravel() if flat.shape[1] else flat
    return int(len(obs) - len(np.unique(rows)))


def _relink(pieces: list[tuple[int, int]], obs: np.ndarray, next_obs: np.ndarray, ends: np.ndarray
            ) -> tuple[list[list[int]], int]:
    """Join each unfinished piece to the later piece that continues it (its first obs equals, bit for
    bit, the unfinished piece's last next_obs), in file order. Returns the chains of piece indices
    (ordered by their first piece) and the number of ambiguous joins (several candidates: the
    earliest unfinished piece wins)."""
    waiting: dict[bytes, list[int]] = {}  # last next_obs -> chains waiting for their continuation (oldest first)
    chains: list[list[int]] = []
    ambiguous = 0
    for index, (first, last) in enumerate(pieces):
        key = np.ascontiguousarray(obs[first]).tobytes()
        queue = waiting.get(key)
        if queue:
            if len(queue) > 1:
                ambiguous += 1
            chain = queue.pop(0)
            if not queue:
                del waiting[key]
            chains[chain].append(index)
        else:
            chain = len(chains)
            chains.append([index])
        if not ends[last]:
            waiting.setdefault(np.ascontiguousarray(next_obs[last]).tobytes(), []).append(chain)
    return chains, ambiguous


def _stack_or_keep(values: list[Any]) -> Any:
    """Stack per-step values of an optional key when they are same-shaped arrays."""
    if all(isinstance(v, np.ndarray) for v in values) and len({v.shape for v in values}) == 1:
        return np.stack(values)
    out = np.empty(len(values), dtype=object)
    for i, v in enumerate(values):
        out[i] = v
    return out
