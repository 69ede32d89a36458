"""Shared parts of the converters: the in-memory source, space inference and fitting,
env look-ups, cutting flat transition arrays into episodes (kept flat, as column
blocks), and writing demokit files.

Every reader returns a :class:`Source` whose episodes have been *validated before any
output is opened*: counts and shapes are checked up front, so a bad input is refused
with a :class:`UserError` naming the file, the field and the numbers, and nothing is
written.
"""

from __future__ import annotations

import dataclasses
import json
import os
import warnings
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from gymnasium import spaces

from demokit import _version
from demokit.config import option
from demokit.data.episode import Episode, obs_index
from demokit.data.storage import hdf5 as h5io
from demokit.errors import ConfigError, SpaceMismatchError, UserError
from demokit.spaces import check_same_spaces, describe

@dataclass(frozen=True)
class ConvertConfig:
    """Options of :func:`demokit.data.convert.convert` and ``demokit convert``."""

    env_id: str | None = option(None, "gymnasium env id of the data (for sources that do not name one; "
                                      "spaces are checked against it)")
    force: bool = option(False, "replace DST if it exists")
    compression: str | None = option(None, "HDF5 compression of the output: gzip, lzf or none")
    to: str | None = option(None, "output kind: demokit (.h5 file), minari (dataset directory), d4rl "
                                  "(flat .hdf5), ding (DI-engine expert data: a pickle, or its hdf5 layout for a .hdf5 "
                                  "DST), robomimic (.hdf5), imitation (datasets folder) or lerobot (v3.0 folder); "
                                  "default: from DST (.h5/.hdf5 -> demokit, .pkl -> ding, a directory -> minari)")
    dataset_id: str | None = option(None, "Minari dataset id written into metadata.json "
                                          "(default: from the DST directory name, e.g. cartpole-expert-v0)")
    minari_data_format: str | None = option(None, "storage of a Minari output: hdf5 (one HDF5 file), arrow or "
                                                  "parquet (a folder of part files per episode), as Minari's "
                                                  "data_format (default: hdf5)")

    def __post_init__(self) -> None:
        if self.minari_data_format is not None and self.minari_data_format not in MINARI_FORMATS:
            raise ConfigError(f"unknown Minari data format {self.minari_data_format!r} (--minari-format): use one "
                              f"of {', '.join(MINARI_FORMATS)}")


@dataclass(frozen=True)
class ConvertResult:
    """What a conversion wrote."""

    path: Path
    source_kind: str
    episodes: int
    steps: int
    target_kind: str = "demokit"
    spaces_inferred: bool = False
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["path"] = str(self.path)
        d["notes"] = list(self.notes)
        return d


@dataclass
class Source:
    """A validated source, ready to be written. ``episodes`` may be consumed once.

    A flat source (D4RL, DI-engine, demokit) also has ``blocks``: its data as
    :class:`ColumnBlock` objects, which writers use instead of ``episodes`` (see
    :meth:`set_blocks`); ``blocks`` is None for sources read episode by episode.
    """

    kind: str
    path: Path
    observation_space: spaces.Space
    action_space: spaces.Space
    episodes: Iterable[Episode]
    num_episodes: int
    num_steps: int
    env_id: str | None = None
    env_spec: Any = None
    spaces_inferred: bool = False
    info: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    provenance: dict[str, Any] | None = None  # the source's own demokit provenance, if any
    blocks: list[ColumnBlock] | None = None

    def set_blocks(self, blocks: list[ColumnBlock]) -> None:
        """Give the source's data as column blocks (``episodes`` becomes their lazy episode view)."""
        self.blocks = list(blocks)
        self.episodes = (ep for block in self.blocks for ep in block.episodes())
        self.num_episodes = sum(block.num_episodes for block in self.blocks)
        self.num_steps = sum(block.num_steps for block in self.blocks)

    def iter_blocks(self) -> Iterator[ColumnBlock]:
        """The data as column blocks: ``blocks``, or one block per episode (consumes ``episodes``)."""
        if self.blocks is not None:
            return iter(self.blocks)
        return map(ColumnBlock.of_episode, self.episodes)

    def note(self, message: str) -> None:
        """Record a conversion note (kept in the output's provenance) and warn."""
        self.notes.append(message)
        warnings.warn(f"{self.path}: {message}", UserWarning, stacklevel=3)

    def output_provenance(self) -> dict[str, Any]:
        prov: dict[str, Any] = dict(self.provenance or {})
        if "converted_from" in prov:  # an earlier conversion: keep it
            prov["conversion_history"] = [*prov.get("conversion_history", []), prov.pop("converted_from")]
        prov.pop("conversion_notes", None)
        prov["converted_from"] = {"kind": self.kind, "path": str(self.path.resolve()), **self.info}
        prov["converter"] = f"demokit {_version.__version__} demokit.data.convert"
        prov["spaces_inferred"] = self.spaces_inferred
        if self.notes:
            prov["conversion_notes"] = list(self.notes)
        return prov


# ---------------------------------------------------------------------------------------
# environments


@dataclass(frozen=True)
class EnvInfo:
    env_id: str
    observation_space: spaces.Space
    action_space: spaces.Space
    spec_json: str
    max_episode_steps: int | None


def env_info(env_id: str) -> EnvInfo:
    """Spaces, spec and time limit of a gymnasium env (an unknown id is a UserError)."""
    from demokit.envs import env_spec_json, make_env, max_episode_steps

    env = make_env(env_id)
    try:
        return EnvInfo(env_id, env.observation_space, env.action_space, env_spec_json(env_id), max_episode_steps(env_id))
    finally:
        env.close()


def check_declared_spaces(source: Source, env_id: str | None) -> None:
    """With ``env_id``: the source's declared spaces must equal the env's; adopt its id/spec."""
    if env_id is None:
        return
    env = env_info(env_id)
    if source.spaces_inferred and _fits(source.observation_space, env.observation_space) and _fits(
            source.action_space, env.action_space):
        # spaces inferred by an earlier conversion: the env's (bounds, n) replace them
        source.observation_space, source.action_space = env.observation_space, env.action_space
        source.spaces_inferred = False
    check_same_spaces(what=f"{source.kind} source {source.path}", expected_obs=source.observation_space,
                      expected_act=source.action_space, actual_obs=env.observation_space,
                      actual_act=env.action_space, against=f"env {env_id}")
    if source.env_id not in (None, env_id):
        source.note(f"the source names env {source.env_id!r} but --env {env_id!r} was given; using {env_id!r}")
    if source.env_id != env_id:
        source.env_id, source.env_spec = env_id, env.spec_json


def _fits(inferred: spaces.Space, space: spaces.Space) -> bool:
    """Whether data described by an inferred space also lies in ``space`` (same layout)."""
    if type(inferred) is not type(space):
        return False
    if isinstance(space, spaces.Discrete):
        return space.start <= inferred.start and inferred.start + inferred.n <= space.start + space.n
    if isinstance(space, spaces.MultiDiscrete):
        return inferred.shape == space.shape and bool(np.all(inferred.nvec <= space.nvec))
    if isinstance(space, (spaces.Box, spaces.MultiBinary)):
        return inferred.shape == space.shape and inferred.dtype == space.dtype
    return False


# ---------------------------------------------------------------------------------------
# spaces of flat sources (D4RL, DI-engine): inferred, or fitted to an env's


def infer_space(array: np.ndarray, *, what: str, role: Literal["observation", "action"]) -> tuple[spaces.Space, np.ndarray]:
    """A space for rows of ``array`` (N, ...) with the rows conformed to it.

    float -> Box(-inf, inf); bool -> MultiBinary; integer with one value per row
    (shape () or (1,)) -> Discrete(max+1) (start = min when negative); integer vectors
    -> MultiDiscrete(max+1 per column) for actions, Box over the dtype's range for
    observations (e.g. uint8 images).
    """
    shape = array.shape[1:]
    if array.dtype.kind == "f":
        return spaces.Box(-np.inf, np.inf, shape=shape, dtype=array.dtype), array
    if array.dtype.kind == "b":
        if shape == ():
            return spaces.Discrete(2), array.astype(np.int64)
        return spaces.MultiBinary(list(shape) if len(shape) > 1 else int(shape[0])), array.astype(np.int8)
    if array.dtype.kind in "iu":
        if shape in ((), (1,)):
            flat = array.reshape(len(array)).astype(np.int64)
            lo = int(flat.min()) if len(flat) else 0
            hi = int(flat.max()) if len(flat) else 0
            start = min(0, lo)
            return spaces.Discrete(hi - start + 1, start=start), flat
        if role == "action" and len(shape) == 1:
            if len(array) and array.min() < 0:
                raise UserError(f"{what}: integer action vectors with negative entries cannot be described as "
                                f"MultiDiscrete; pass --env to give the action space")
            nvec = array.max(axis=0).astype(np.int64) + 1 if len(array) else np.ones(shape, dtype=np.int64)
            return spaces.MultiDiscrete(nvec), array.astype(np.int64)
        info = np.iinfo(array.dtype)
        return spaces.Box(info.min, info.max, shape=shape, dtype=array.dtype), array
    raise UserError(f"{what} has dtype {array.dtype}; only numeric arrays can be converted")


def fit_to_space(array: np.ndarray, space: spaces.Space, *, what: str, against: str) -> np.ndarray:
    """Conform rows of ``array`` to ``space`` (cast, drop a trailing singleton axis for
    Discrete); a shape or range that does not fit is a :class:`SpaceMismatchError`."""
    def mismatch(detail: str) -> SpaceMismatchError:
        return SpaceMismatchError(f"{what} {detail}, which does not fit {against}'s {describe(space)}; "
                                  f"check --env or convert without it to infer the spaces")

    shape = array.shape[1:]
    if isinstance(space, spaces.Discrete):
        if shape not in ((), (1,)):
            raise mismatch(f"has per-step shape {shape}")
        flat = array.reshape(len(array))
        if flat.dtype.kind == "f" and not np.all(np.isfinite(flat) & (flat == np.round(flat))):
            raise mismatch("holds non-integer values")
        flat = flat.astype(np.int64)
        if len(flat) and (flat.min() < space.start or flat.max() >= space.start + space.n):
            raise mismatch(f"has values in [{flat.min()}, {flat.max()}]")
        return flat
    if isinstance(space, (spaces.Box, spaces.MultiDiscrete, spaces.MultiBinary)):
        if shape != space.shape:
            def squeezed(s: tuple[int, ...]) -> tuple[int, ...]:
                return tuple(d for d in s if d != 1)

            if squeezed(shape) != squeezed(space.shape):  # only singleton axes may differ
                raise mismatch(f"has per-step shape {shape}")
            array = array.reshape(len(array), *space.shape)
        if isinstance(space, (spaces.MultiDiscrete, spaces.MultiBinary)):
            high = space.nvec if isinstance(space, spaces.MultiDiscrete) else 2
            low = space.start if isinstance(space, spaces.MultiDiscrete) else 0
            if len(array) and (np.any(array < low) or np.any(array >= low + high)):
                raise mismatch("has values outside its range")
        return array.astype(space.dtype, copy=False)
    raise mismatch("is a flat array")


def flat_spaces(obs: np.ndarray, actions: np.ndarray, env: EnvInfo | None, *, path: Path
                ) -> tuple[spaces.Space, spaces.Space, np.ndarray, np.ndarray]:
    """Observation/action spaces of flat arrays: the env's (checked) or inferred."""
    if env is None:
        obs_space, obs = infer_space(obs, what=f"{path}: observations", role="observation")
        act_space, actions = infer_space(actions, what=f"{path}: actions", role="action")
        return obs_space, act_space, obs, actions
    obs = fit_to_space(obs, env.observation_space, what=f"{path}: observations", against=f"env {env.env_id}")
    actions = fit_to_space(actions, env.action_space, what=f"{path}: actions", against=f"env {env.env_id}")
    return env.observation_space, env.action_space, obs, actions


# ---------------------------------------------------------------------------------------
# flat transitions -> episodes


@dataclass(frozen=True)
class ColumnBlock:
    """Whole episodes in the flat layout of a demokit file (the arguments of
    :meth:`DatasetWriter.add_columns <demokit.data.writer.DatasetWriter.add_columns>`).

    N transitions of E episodes: ``observations`` / ``actions`` (N rows; nested batches for
    Dict / Tuple spaces), ``rewards`` (None: reward-free) /
    ``terminated`` / ``truncated`` (N,) with the flags only on an episode's last step,
    ``final_observations`` (E rows), ``episode_lengths`` (E,) summing to N, ``extras``
    ``{name: (N, ...)}`` and ``seeds`` (E,) or None (unknown). Flat sources (D4RL,
    DI-engine, demokit files) are read as one block, so they are written without being taken apart
    into :class:`Episode` objects; :meth:`episodes` gives that view where one is needed.
    """

    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray | None
    terminated: np.ndarray
    truncated: np.ndarray
    final_observations: np.ndarray
    episode_lengths: np.ndarray
    extras: Mapping[str, np.ndarray] = field(default_factory=dict)
    seeds: np.ndarray | None = None

    @classmethod
    def of_episode(cls, ep: Episode) -> ColumnBlock:
        return cls(observations=ep.observations, actions=ep.actions, rewards=ep.rewards, terminated=ep.terminated,
                   truncated=ep.truncated, final_observations=ep.final_observation,
                   episode_lengths=np.array([len(ep)], dtype=np.int64), extras=ep.extras,
                   seeds=np.array([ep.seed], dtype=np.int64))

    @property
    def num_episodes(self) -> int:
        return len(self.episode_lengths)

    @property
    def num_steps(self) -> int:
        return len(self.terminated)

    def columns(self) -> dict[str, Any]:
        """Keyword arguments of ``DatasetWriter.add_columns``."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def next_observations(self) -> np.ndarray:
        """(N, ...) observation after each step (flat observations only)."""
        obs = np.asarray(self.observations)
        nxt = np.empty_like(obs)
        nxt[:-1] = obs[1:]
        nxt[np.cumsum(self.episode_lengths) - 1] = self.final_observations
        return nxt

    def episodes(self) -> Iterator[Episode]:
        """The block's episodes (views of its arrays)."""
        stops = np.cumsum(self.episode_lengths).tolist()
        seeds = [-1] * len(stops) if self.seeds is None else np.asarray(self.seeds).tolist()
        start = 0
        for k, stop in enumerate(stops):
            sl = slice(start, stop)
            yield Episode(observations=obs_index(self.observations, sl), actions=obs_index(self.actions, sl),
                          rewards=None if self.rewards is None else self.rewards[sl], terminated=self.terminated[sl], truncated=self.truncated[sl],
                          final_observation=obs_index(self.final_observations, slice(k, k + 1)),
                          extras={name: arr[sl] for name, arr in self.extras.items()}, seed=seeds[k])
            start = stop


@dataclass(frozen=True)
class Segments:
    """Episodes of N flat transitions as arrays: episode k is rows ``start[k]:stop[k]``."""

    start: np.ndarray  # (E,) int64
    stop: np.ndarray  # (E,) int64, exclusive
    terminated: np.ndarray  # (E,) bool
    truncated: np.ndarray  # (E,) bool

    def __len__(self) -> int:
        return len(self.start)

    @property
    def lengths(self) -> np.ndarray:
        return self.stop - self.start


def rows_equal(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-row exact equality of two (N, ...) arrays (NaN equals NaN)."""
    eq = a == b
    if a.dtype.kind == "f":
        eq |= np.isnan(a) & np.isnan(b)
    return eq.reshape(len(a), -1).all(axis=1)


def split_segments(source: Source, *, terminals: np.ndarray, timeouts: np.ndarray,
                   observations: np.ndarray, next_observations: np.ndarray | None, end_field: str) -> Segments:
    """Cut N flat transitions into episodes.

    An episode ends at a step with ``terminals`` (terminated) or ``timeouts``
    (truncated), and also where ``next_observations[i] != observations[i+1]``
    (the data jumps: that piece is marked truncated). A trailing piece without an
    end flag becomes a truncated episode. Notes are recorded for the last two cases.
    """
    n = len(terminals)
    ends = terminals | timeouts
    cut = np.zeros(n, dtype=bool)
    if next_observations is not None and n > 1:
        cut[:-1] = ~rows_equal(next_observations[:-1], observations[1:]) & ~ends[:-1]
        if cut.any():
            source.note(f"{int(cut.sum())} place(s) where next_observations[i] != observations[i+1] without an "
                        f"episode end (first at step {int(np.flatnonzero(cut)[0])}); the data was split there "
                        f"and those pieces are marked truncated")
    trailing = n > 0 and not ends[-1] and not cut[-1]
    if trailing:
        last_end = np.flatnonzero(ends | cut)
        first = int(last_end[-1]) + 1 if len(last_end) else 0
        source.note(f"the last {n - first} step(s) have no {end_field} flag; they are kept as one truncated episode")
        cut[-1] = True
    last = np.flatnonzero(ends | cut)
    stop = last + 1
    return Segments(start=np.concatenate([np.zeros(1, dtype=stop.dtype), stop[:-1]]), stop=stop,
                    terminated=terminals[last].astype(bool), truncated=(timeouts[last] | cut[last]).astype(bool))


def block_from_segments(segments: Segments, *, observations: np.ndarray, actions: np.ndarray,
                        rewards: np.ndarray | None,
                        finals: np.ndarray, extras: Mapping[str, np.ndarray]) -> ColumnBlock:
    """One :class:`ColumnBlock` of the segments' rows (rows outside every segment are left
    out); ``finals`` holds one final observation per segment."""
    lengths = segments.lengths.astype(np.int64)
    n = len(actions)
    if len(segments) and segments.start[0] == 0 and segments.stop[-1] == n and np.array_equal(
            segments.start[1:], segments.stop[:-1]):
        rows: Any = slice(None)  # the segments tile the data: no copy
    else:
        rows = np.arange(int(lengths.sum())) + np.repeat(segments.start - (np.cumsum(lengths) - lengths), lengths)
    ends = np.cumsum(lengths) - 1
    terminated = np.zeros(int(lengths.sum()), dtype=bool)
    truncated = np.zeros(int(lengths.sum()), dtype=bool)
    terminated[ends] = segments.terminated
    truncated[ends] = segments.truncated
    return ColumnBlock(observations=observations[rows], actions=actions[rows],
                       rewards=None if rewards is None else rewards[rows],
                       terminated=terminated, truncated=truncated, final_observations=finals,
                       episode_lengths=lengths, extras={name: arr[rows] for name, arr in extras.items()})


def require_rewards(source: Source, *, target: str, why: str) -> None:
    """Refuse to write a reward-free source to a format whose episodes must have rewards (one UserError,
    before anything is written): rewards are never invented."""
    if source.blocks and source.blocks[0].rewards is None:
        raise UserError(f"{source.path} is reward-free, but {target} {why}; demokit does not invent rewards: write "
                        f"it as a demokit .h5, LeRobot, imitation or robomimic dataset (they hold reward-free data)")


def check_rows(path: Path, fields: Mapping[str, Any], *, reference: str) -> int:
    """All fields must have as many rows as ``fields[reference]``; returns that count."""
    n = len(fields[reference])
    for name, arr in fields.items():
        if arr is not None and len(arr) != n:
            raise UserError(f"{path}: field {name!r} has {len(arr)} rows but {reference!r} has {n}; "
                            f"the file is inconsistent (truncated or mixed) and was not converted")
    return n


def numeric_extras(source: Source, candidates: Mapping[str, Any], n: int, *, what: str) -> dict[str, np.ndarray]:
    """The candidate per-step arrays that can be stored as extras (numeric, ``n`` rows);
    the others are skipped with a note."""
    out: dict[str, np.ndarray] = {}
    for name, value in candidates.items():
        arr = np.asarray(value)
        clean = name.replace("/", ".")
        if arr.dtype.kind not in "biuf" or arr.ndim == 0:
            source.note(f"{what} {name!r} (dtype {arr.dtype}, shape {arr.shape}) is not a numeric per-step array; skipped")
        elif len(arr) != n:
            source.note(f"{what} {name!r} has {len(arr)} rows, not {n}; skipped")
        elif not clean:
            source.note(f"{what} with an empty name skipped")
        else:
            out[clean] = arr
    return out


# ---------------------------------------------------------------------------------------
# targets


class MemoryHDF5:
    """An HDF5 file built in memory (HDF5's core driver); ``image`` holds its bytes after the
    ``with`` block. Writers then put the bytes on disk with plain file I/O: HDF5 that runs out
    of disk space in the middle of a file cannot be closed cleanly (it crashed the process), a
    Python write raises one OSError that names the path."""

    def __init__(self, **kwargs: Any) -> None:
        self.kwargs, self.image = kwargs, b""

    def __enter__(self) -> Any:
        from demokit.data.storage import hdf5 as h5io

        self.h5 = h5io.open_file(f"demokit-memory-{id(self)}.h5", "w", driver="core", backing_store=False,
                                 **self.kwargs)
        return self.h5

    def __exit__(self, exc_type: Any, *exc: Any) -> None:
        try:
            if exc_type is None:
                self.h5.flush()
                self.image = self.h5.id.get_file_image()
        finally:
            self.h5.close()


#: the files of a Minari dataset's data/ directory: the episodes of its HDF5 storage, and the
#: dataset's metadata (its arrow / parquet storage holds one directory per episode instead)
MAIN_FILE = "main_data.hdf5"
METADATA_FILE = "metadata.json"
#: Minari's storages (its ``data_format``)
MINARI_FORMATS = ("hdf5", "arrow", "parquet")


def read_json_object(path: Path) -> dict[str, Any]:
    """A JSON file holding an object (a Minari ``metadata.json``); one UserError naming it otherwise."""
    try:
        value = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"{path}: not readable JSON ({exc})") from None
    if not isinstance(value, dict):
        raise UserError(f"{path}: expected a JSON object, got {type(value).__name__}")
    return value


def is_minari_episode_dir(path: Path) -> bool:
    """Whether ``path`` is an episode directory of Minari's arrow / parquet storage (``data/<episode id>/``)."""
    name = path.name
    return name.isascii() and name.isdigit() and str(int(name)) == name and path.is_dir()


def minari_data_dir(path: str | os.PathLike[str]) -> Path | None:
    """The ``data/`` directory of a Minari dataset given as the dataset dir, its data
    dir or its ``main_data.hdf5``; None when ``path`` is none of those. A data dir holds
    ``metadata.json`` and either ``main_data.hdf5`` or episode directories ``<id>/``."""
    p = Path(path)
    for cand in (p / "data", p, p.parent if p.name == MAIN_FILE else None):
        if cand is None or not (cand / METADATA_FILE).is_file():
            continue
        if (cand / MAIN_FILE).is_file() or any(is_minari_episode_dir(c) for c in cand.iterdir()):
            return cand
    return None


def prepare_target(dst: Path, *, force: bool, is_dir: bool) -> None:
    """Refuse an existing DST unless ``force``; never replace something of another kind.

    ``is_dir``: DST is a Minari dataset directory (an empty directory counts as absent;
    a non-empty one is replaced only when it is a Minari dataset).
    """
    if dst.exists() and not (dst.is_file() or dst.is_dir()):
        raise UserError(f"{dst} is not a regular file or directory (a FIFO, device or socket); demokit never "
                        f"replaces it, even with --force: choose another DST")
    if not dst.exists():
        return
    if is_dir and dst.is_dir() and not any(dst.iterdir()):
        return
    if not force:
        raise UserError(f"{dst} already exists; pass --force (force=True) to replace it or choose another DST")
    if is_dir and not dst.is_dir():
        raise UserError(f"{dst} is a file, not a Minari dataset directory; remove it or choose another DST")
    if is_dir:
        if minari_data_dir(dst) is None:
            raise UserError(f"{dst} is a non-empty directory that is not a Minari dataset; it was left alone: "
                            f"choose another DST")
    if not is_dir and dst.is_dir():
        raise UserError(f"{dst} is a directory; give a file name such as {dst / 'demos.h5'}")


def write_demokit(source: Source, dst: Path, *, force: bool, compression: str | None) -> ConvertResult:
    from demokit.data.writer import DatasetWriter

    with DatasetWriter(dst, observation_space=source.observation_space, action_space=source.action_space,
                       env_id=source.env_id, env_spec=source.env_spec, provenance=source.output_provenance(),
                       mode="overwrite" if force else "create", compression=compression) as writer:
        if source.blocks is not None:  # flat data: written as it is, without Episode objects
            for block in source.blocks:
                writer.add_columns(**block.columns())
        else:
            writer.add_episodes(source.episodes)
        episodes, steps = writer.num_episodes, writer.num_steps
    return ConvertResult(path=dst, source_kind=source.kind, episodes=episodes, steps=steps, target_kind="demokit",
                         spaces_inferred=source.spaces_inferred, notes=tuple(source.notes))


def same_path(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def publish_dir(dst: Path, write: Any) -> None:
    """Build a folder with ``write(tmp)`` in a hidden folder beside ``dst``, then rename it onto ``dst``
    (an existing ``dst`` is kept aside until the rename succeeds and restored on any failure)."""
    import shutil

    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.parent / f".{dst.name}.tmp-{os.getpid()}"
    old = dst.parent / f".{dst.name}.old-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        write(tmp)
        if dst.exists():
            os.replace(dst, old)
        os.replace(tmp, dst)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old.exists() and not dst.exists():
            os.replace(old, dst)
        raise
    shutil.rmtree(old, ignore_errors=True)


def prepare_folder_target(dst: Path, *, force: bool, recognise: Any, kind: str) -> None:
    """An existing folder DST is replaced only with ``force`` and only when ``recognise(dst)`` says it is a
    ``kind`` folder (or it is empty); otherwise one UserError and nothing is touched."""
    if not dst.exists() or (dst.is_dir() and not any(dst.iterdir())):
        return
    if not force:
        raise UserError(f"{dst} already exists; pass --force (force=True) to replace it or choose another DST")
    if not recognise(dst):
        raise UserError(f"{dst} is not a {kind} folder; it was left alone: choose another DST")


def open_hdf5(path: str | os.PathLike[str]) -> h5io.File:
    """A foreign HDF5 file (D4RL, Minari, robomimic) opened read-only; UserError when it cannot be."""
    try:
        return h5io.open_file(path, "r")
    except OSError as exc:
        raise UserError(f"{path}: cannot be opened as HDF5 ({exc})") from None
