"""DemoDataset: read a demokit dataset (lazy metadata, bulk cached arrays, row-range reads).

``load_dataset(path)`` validates the dataset cheaply (attributes, field shapes and the
episode index only) and returns a :class:`DemoDataset`. The storage behind it is chosen
by the location (:mod:`demokit.data.storage`: an HDF5 file for plain paths). Each
per-step field is read with one storage read the first time a whole-field property
uses it and cached; :meth:`DemoDataset.read` and :meth:`DemoDataset.iter_batches` read
row ranges without caching (for data larger than memory).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from functools import cached_property
from typing import Any

import numpy as np
from gymnasium import spaces

from demokit.data import format as fmt
from demokit.data.episode import Episode, obs_index, obs_map
from demokit.data.storage import Storage, storage_for
from demokit.data.storage.base import RowRuns, index_array, rows_range
from demokit.errors import DatasetError, UserError
from demokit.spaces import check_same_spaces, flatten_batch, space_from_json

RngLike = np.random.Generator | int | None
#: the derived field of :meth:`DemoDataset.read` (not stored: see docs/dataset-format.md)
NEXT_OBSERVATIONS = "next_observations"


def load_dataset(path: str | os.PathLike[str]) -> DemoDataset:
    """Open and validate a demokit dataset; raises :class:`DatasetError` naming the problem."""
    return DemoDataset(path)


class DemoDataset:
    """A demokit demonstration dataset (see docs/dataset-format.md).

    ``len(ds)`` is the number of transitions. Arrays (``observations``, ``actions``,
    ``rewards``, ``terminated``, ``truncated``, ``next_observations``,
    ``final_observations``, ``extras``) are read in bulk on first use and cached
    read-only (they are shared: copy before changing them); observations/actions of
    Dict / Tuple spaces are dicts / tuples of arrays. ``sample`` returns fresh arrays.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._backend, self.path = storage_for(path)  # a Path for local files, else the location string
        self._cache: dict[str, Any] = {}
        self._sample_source: dict[str, Any] | None = None
        self._validate()

    # -- opening and validation --------------------------------------------------------

    def _open(self) -> Storage:
        """A read handle on the storage (opened per operation: no handle outlives it or crosses a fork)."""
        return self._backend.open(self.path, "r")

    def _fail(self, problem: str) -> DatasetError:
        return DatasetError(f"dataset {self.path}: {problem}")

    def _check_attr_types(self, attrs: dict[str, Any]) -> None:
        """Every known root attribute has its documented type (docs/dataset-format.md, "Root attributes")."""
        def bad(key: str, what: str) -> DatasetError:
            value = attrs[key]
            return self._fail(f"root attribute {key!r} should be {what} but is {type(value).__name__} "
                              f"{str(value)[:60]!r}; the file is damaged")

        for key in ("env_id", "created", "modified", "demokit_version"):
            if key in attrs and not isinstance(attrs[key], str):
                raise bad(key, "a string")
        for key in ("total_steps", "total_episodes"):
            value = attrs[key]
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise bad(key, "a non-negative integer")
        for key, kind, what in (("observation_space", dict, "a JSON object"), ("action_space", dict, "a JSON object"),
                                ("provenance", (dict, type(None)), "a JSON object"),
                                ("appends", (list, type(None)), "a JSON list"),
                                ("env_spec", (dict, type(None)), "a JSON object or null")):
            if key not in attrs:
                continue
            if not isinstance(attrs[key], str):
                raise bad(key, f"JSON text ({what})")
            try:
                decoded = json.loads(attrs[key]) if attrs[key] else None
            except ValueError:
                raise self._fail(f"root attribute {key!r} is not valid JSON; the file is damaged") from None
            if not isinstance(decoded, kind):
                raise bad(key, what)

    def _check_dtype(self, name: str, stored: np.dtype, want: np.dtype | None) -> None:
        """Stored dtypes match the spaces and the format (a Discrete action stored as 1.5 is refused)."""
        if want is None:  # extras: any bool / int / float
            ok = stored.kind in "biuf"
            what = "bool, integer or float"
        else:
            ok = stored.kind == want.kind and stored.itemsize == want.itemsize
            what = str(want)
        if not ok:
            raise self._fail(f"'{name}' is stored as {stored} but the format / the stored space says {what}; "
                             f"the file is damaged or was not written by demokit")

    def _check_flags(self, name: str, flags: np.ndarray, rows: np.ndarray | None) -> None:
        """``terminated`` / ``truncated`` may be set only on an episode's last step (``rows``: the rows of
        ``flags``, None for all). (A stale ``episodes/*`` copy of the flags is a finding of ``demokit doctor``.)"""
        hits = np.flatnonzero(flags) if rows is None else rows[np.asarray(flags, dtype=bool)]
        if not hits.size:  # only the set flags are looked at: about one per episode
            return
        episode = np.searchsorted(self.episode_starts, hits, side="right") - 1
        inner = hits != self.episode_ends[episode]
        if inner.any():
            first = int(np.flatnonzero(inner)[0])
            raise self._fail(f"'{name}' is set on step {int(hits[first])}, in the middle of episode "
                             f"{int(episode[first])}; it may only be set on an episode's last step: the file is "
                             f"damaged")

    def _validate(self) -> None:
        p = self.path
        with self._open() as f:
            attrs = f.attrs()
            name = attrs.get(fmt.ATTR_FORMAT)
            if name != fmt.FORMAT_NAME:
                raise DatasetError(f"{p} is an HDF5 file but not a demokit dataset (its 'format' attribute is "
                                   f"{name!r}, expected {fmt.FORMAT_NAME!r}); convert it with `demokit convert`")
            version = attrs.get(fmt.ATTR_VERSION)
            if isinstance(version, bool) or not isinstance(version, int) or version < 1:
                raise self._fail(f"unknown format version {version!r}; the file is damaged")
            if version > fmt.FORMAT_VERSION:
                raise DatasetError(f"dataset {p} was written by format version {version}; this demokit reads up to "
                                   f"{fmt.FORMAT_VERSION}: upgrade demokit")
            missing = [a for a in fmt.REQUIRED_ATTRS if a not in attrs]
            if missing:
                raise self._fail(f"missing root attribute(s) {', '.join(missing)}; the file is damaged")
            self._check_attr_types(attrs)
            self._attrs = attrs
            marker = attrs.get(fmt.ATTR_REWARDS)
            if marker is not None and marker != fmt.REWARDS_NONE:
                raise self._fail(f"root attribute {fmt.ATTR_REWARDS!r} is {str(marker)[:60]!r}; the format knows only "
                                 f"{fmt.REWARDS_NONE!r} (a reward-free dataset): the file is damaged")
            has_rewards = marker is None
            if not has_rewards and fmt.REWARDS in f.fields():
                raise self._fail(f"is marked reward-free but holds '{fmt.REWARDS}'; the file is damaged")
            obs_leaves = fmt.leaf_specs(self.observation_space)
            act_leaves = fmt.leaf_specs(self.action_space)

            fields = f.fields()

            def shape_of(name: str) -> tuple[int, ...]:
                if name not in fields:
                    raise self._fail(f"missing dataset '{name}'; the file is damaged")
                return (f.num_rows(name), *fields[name].shape)

            n = shape_of(fmt.TERMINATED)[0] if shape_of(fmt.TERMINATED) else 0
            per_step = [(fmt.h5_name(fmt.OBSERVATIONS, pth), shp) for pth, _, shp in obs_leaves]
            per_step += [(fmt.h5_name(fmt.ACTIONS, pth), shp) for pth, _, shp in act_leaves]
            per_step += [(fmt.REWARDS, ())] if has_rewards else []
            per_step += [(fmt.TERMINATED, ()), (fmt.TRUNCATED, ())]
            extras_spec: dict[str, tuple[tuple[int, ...], np.dtype]] = {}
            for name, spec in fields.items():
                parent, _, key = name.rpartition("/")
                if parent == fmt.EXTRAS:
                    extras_spec[key] = (spec.shape, spec.dtype)
                    per_step.append((name, spec.shape))
            want_dtype = {fmt.h5_name(root, pth): dt for root, leaves in ((fmt.OBSERVATIONS, obs_leaves),
                                                                          (fmt.ACTIONS, act_leaves),
                                                                          (fmt.FINAL_OBSERVATIONS, obs_leaves))
                          for pth, dt, _ in leaves}
            want_dtype.update({fmt.REWARDS: np.dtype(np.float64), fmt.TERMINATED: np.dtype(bool),
                               fmt.TRUNCATED: np.dtype(bool)})
            want_dtype.update({f"{fmt.EPISODES}/{k}": dt for k, dt in fmt.EPISODE_FIELDS.items()})
            for name, spec in fields.items():
                self._check_dtype(name, spec.dtype, want_dtype.get(name))
            for name, row_shape in per_step:
                shp = shape_of(name)
                if shp[:1] != (n,):
                    raise self._fail(f"field arrays have inconsistent lengths: '{name}' has "
                                     f"{shp[0] if shp else 0} rows but 'terminated' has {n}")
                if shp[1:] != tuple(row_shape):
                    raise self._fail(f"'{name}' has rows of shape {shp[1:]} but the stored space says {tuple(row_shape)}")
            index = {}
            for key in fmt.episode_fields(has_rewards):
                shape_of(f"{fmt.EPISODES}/{key}")
                index[key] = f.read(f"{fmt.EPISODES}/{key}")
            e = len(index["length"])
            for key, arr in index.items():
                if arr.shape != (e,):
                    raise self._fail(f"episode index has inconsistent lengths: 'episodes/{key}' has {arr.shape[0]} "
                                     f"rows but 'episodes/length' has {e}")
            for pth, _, shp in obs_leaves:
                name = fmt.h5_name(fmt.FINAL_OBSERVATIONS, pth)
                got = shape_of(name)
                if got != (e, *shp):
                    raise self._fail(f"'{name}' has shape {got}, expected {(e, *shp)} (one row per episode)")
        lengths, starts = index["length"].astype(np.int64), index["start"].astype(np.int64)
        if e and lengths.min() < 1:
            raise self._fail(f"episode index does not add up: episode {int(np.argmin(lengths))} has length "
                             f"{int(lengths.min())}")
        expected_starts = np.cumsum(lengths) - lengths
        if not np.array_equal(starts, expected_starts):
            bad = int(np.flatnonzero(starts != expected_starts)[0])
            raise self._fail(f"episode index does not add up: episode {bad} starts at {int(starts[bad])} but the "
                             f"episodes before it end at {int(expected_starts[bad])}")
        if int(lengths.sum()) != n:
            raise self._fail(f"episode index does not add up: episode lengths sum to {int(lengths.sum())} "
                             f"but the file holds {n} transitions")
        if int(attrs["total_steps"]) != n or int(attrs["total_episodes"]) != e:
            raise self._fail(f"attributes say {attrs['total_steps']} steps / {attrs['total_episodes']} episodes but "
                             f"the arrays hold {n} / {e}; the file is damaged")
        for arr in index.values():
            arr.flags.writeable = False
        self._n = n
        self._has_rewards = has_rewards
        self._index = index
        self._extras_spec = extras_spec

    # -- metadata ----------------------------------------------------------------------

    def __len__(self) -> int:
        return self._n

    def __repr__(self) -> str:
        return (f"DemoDataset({str(self.path)!r}, env_id={self.env_id!r}, episodes={self.num_episodes}, "
                f"steps={len(self)})")

    @property
    def num_episodes(self) -> int:
        return int(self._index["length"].shape[0])

    @property
    def num_steps(self) -> int:
        return self._n

    @property
    def has_rewards(self) -> bool:
        """False for a reward-free dataset (no ``rewards``, no episode returns: docs/dataset-format.md)."""
        return self._has_rewards

    def require_rewards(self, what: str) -> None:
        """Refuse ``what`` (e.g. "--top-k") in one line when the dataset is reward-free."""
        if not self._has_rewards:
            raise DatasetError(f"dataset {self.path} has no rewards (a reward-free dataset), so {what} is not "
                               f"available; it holds observations, actions and episode ends only")

    @cached_property
    def metadata(self) -> dict[str, Any]:
        """Root attributes, JSON-valued ones decoded (env_spec, spaces, provenance, appends)."""
        return fmt.decode_metadata(self._attrs, str(self.path))

    @property
    def format_version(self) -> int:
        return int(self._attrs[fmt.ATTR_VERSION])

    @property
    def env_id(self) -> str | None:
        return self._attrs.get("env_id") or None

    @property
    def env_spec(self) -> dict[str, Any] | None:
        return self.metadata.get("env_spec")

    @property
    def provenance(self) -> dict[str, Any]:
        return self.metadata.get("provenance") or {}

    @cached_property
    def observation_space(self) -> spaces.Space:
        return self._space("observation_space")

    @cached_property
    def action_space(self) -> spaces.Space:
        return self._space("action_space")

    def _space(self, attr: str) -> spaces.Space:
        try:
            return space_from_json(self._attrs[attr])
        except (UserError, KeyError, TypeError, ValueError) as exc:
            raise self._fail(f"attribute {attr!r} is not a valid space description ({exc})") from None

    @property
    def extras_spec(self) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
        """``{name: (per_step_shape, dtype)}`` of the extra arrays."""
        return dict(self._extras_spec)

    # -- episode index -----------------------------------------------------------------

    @property
    def episode_starts(self) -> np.ndarray:
        return self._index["start"]

    @property
    def episode_lengths(self) -> np.ndarray:
        return self._index["length"]

    @property
    def episode_returns(self) -> np.ndarray | None:
        """(E,) float64, or None for a reward-free dataset."""
        return self._index.get("return")

    @property
    def episode_terminated(self) -> np.ndarray:
        return self._index["terminated"]

    @property
    def episode_truncated(self) -> np.ndarray:
        return self._index["truncated"]

    @property
    def episode_seeds(self) -> np.ndarray:
        return self._index["seed"]

    @property
    def episode_ends(self) -> np.ndarray:
        """Index of the last transition of each episode."""
        return self._index["start"] + self._index["length"] - 1

    # -- bulk arrays -------------------------------------------------------------------

    def _read(self, names: list[str]) -> list[np.ndarray]:
        missing = [n for n in names if n not in self._cache]
        if missing:
            with self._open() as f:
                for name in missing:
                    out = f.read(name)
                    if name in (fmt.TERMINATED, fmt.TRUNCATED):
                        self._check_flags(name, out, None)
                    out.flags.writeable = False  # shared by every caller: copy before changing
                    self._cache[name] = out
        return [self._cache[n] for n in names]

    def _field_names(self) -> list[str]:
        """HDF5 names of every stored field (per-step and final observations)."""
        names = [fmt.h5_name(fmt.OBSERVATIONS, p) for p, _, _ in fmt.leaf_specs(self.observation_space)]
        names += [fmt.h5_name(fmt.ACTIONS, p) for p, _, _ in fmt.leaf_specs(self.action_space)]
        names += [fmt.h5_name(fmt.FINAL_OBSERVATIONS, p) for p, _, _ in fmt.leaf_specs(self.observation_space)]
        names += [fmt.REWARDS] if self._has_rewards else []
        names += [fmt.TERMINATED, fmt.TRUNCATED]
        return names + [f"{fmt.EXTRAS}/{n}" for n in self._extras_spec]

    def _nested(self, root: str, space: spaces.Space) -> Any:
        leaves = fmt.leaf_specs(space)
        return fmt.assemble(space, self._read([fmt.h5_name(root, pth) for pth, _, _ in leaves]))

    @property
    def observations(self) -> Any:
        return self._nested(fmt.OBSERVATIONS, self.observation_space)

    @property
    def actions(self) -> Any:
        return self._nested(fmt.ACTIONS, self.action_space)

    @property
    def final_observations(self) -> Any:
        """One row per episode: the observation after its last step."""
        return self._nested(fmt.FINAL_OBSERVATIONS, self.observation_space)

    @property
    def rewards(self) -> np.ndarray | None:
        """(N,) float64, or None for a reward-free dataset."""
        return self._read([fmt.REWARDS])[0] if self._has_rewards else None

    @property
    def terminated(self) -> np.ndarray:
        return self._read([fmt.TERMINATED])[0]

    @property
    def truncated(self) -> np.ndarray:
        return self._read([fmt.TRUNCATED])[0]

    @property
    def extras(self) -> dict[str, np.ndarray]:
        names = list(self._extras_spec)
        return dict(zip(names, self._read([f"{fmt.EXTRAS}/{n}" for n in names])))

    @property
    def next_observations(self) -> Any:
        """Observation after each step: ``obs[i + 1]`` inside an episode, the final observation at its end."""
        key = "__next_observations__"
        if key not in self._cache:
            ends = self.episode_ends

            def derive(obs: np.ndarray, final: np.ndarray) -> np.ndarray:
                out = np.empty_like(obs)
                out[:-1] = obs[1:]
                out[ends] = final
                return out

            obs_leaves = fmt.leaves_of(self.observation_space, self.observations)
            final_leaves = fmt.leaves_of(self.observation_space, self.final_observations)
            leaves = [derive(o, fo) for o, fo in zip(obs_leaves, final_leaves)]
            for leaf in leaves:
                leaf.flags.writeable = False
            self._cache[key] = fmt.assemble(self.observation_space, leaves)
        return self._cache[key]

    def load(self) -> DemoDataset:
        """Read every array now (one storage read per field); returns ``self``."""
        self._read(self._field_names())  # one open for all fields
        _ = self.observations, self.actions, self.rewards, self.terminated, self.truncated, self.extras
        _ = self.next_observations
        return self

    def flat_observations(self) -> np.ndarray:
        """Observations flattened for networks: float32 ``(N, flat_dim)``."""
        return flatten_batch(self.observation_space, self.observations)

    # -- row reads (no caching: for data larger than memory) ----------------------------

    def field_names(self) -> list[str]:
        """Names :meth:`read` and :meth:`iter_batches` take: the per-step fields of this dataset."""
        return [fmt.OBSERVATIONS, fmt.ACTIONS, *([fmt.REWARDS] if self._has_rewards else []), fmt.TERMINATED,
                fmt.TRUNCATED, NEXT_OBSERVATIONS,
                *(f"{fmt.EXTRAS}/{n}" for n in self._extras_spec)]

    def _check_fields(self, fields: str | Sequence[str]) -> list[str]:
        names = [fields] if isinstance(fields, str) else list(fields)
        known = self.field_names()
        for name in names:
            if name not in known:
                raise UserError(f"dataset {self.path} has no field {name!r}; fields: {', '.join(known)}")
        if not names:
            raise UserError("name at least one field to read")
        return names

    def read(self, fields: str | Sequence[str], rows: Any = None) -> dict[str, Any]:
        """The rows ``rows`` of ``fields`` (see :meth:`field_names`) as ``{name: array}``.

        ``rows``: None (all), a slice / range (contiguous, read as one range per field) or
        transition indices (any order; read chunk by chunk). Arrays have the stored
        dtypes, shape ``(len(rows), *row_shape)``; observations of Dict / Tuple spaces are
        dicts / tuples of arrays; ``next_observations`` is derived (see the format doc).
        Fields already cached by the whole-field properties are taken from the cache.
        The arrays are fresh (writable) unless they are whole cached fields.
        """
        names = self._check_fields(fields)
        with self._open() as st:
            return self._read_rows(st, names, rows)

    def _read_rows(self, st: Storage, names: list[str], rows: Any) -> dict[str, Any]:
        n = len(self)
        rng = rows_range(rows, n)
        idx = None if rng is not None else index_array(rows, n)
        want_next = NEXT_OBSERVATIONS in names
        obs_leaves = [fmt.h5_name(fmt.OBSERVATIONS, p) for p, _, _ in fmt.leaf_specs(self.observation_space)]

        def leaf(name: str, sel: Any) -> np.ndarray:
            cached = self._cache.get(name)
            if cached is not None:
                return cached if sel is None or (isinstance(sel, tuple) and sel == (0, n)) else \
                    np.asarray(cached[slice(*sel) if isinstance(sel, tuple) else sel])
            return st.read(name, slice(*sel) if isinstance(sel, tuple) else sel)

        out: dict[str, Any] = {}
        extended: list[np.ndarray] | None = None  # observations of rows [lo, hi + 1) (range reads with next_obs)
        if rng is not None and want_next:
            lo, hi = rng
            extended = [leaf(name, (lo, min(hi + 1, n))) for name in obs_leaves]
        for name in names:
            if name == NEXT_OBSERVATIONS:
                continue
            if name == fmt.OBSERVATIONS:
                if extended is not None:
                    k = rng[1] - rng[0]
                    out[name] = fmt.assemble(self.observation_space, [e[:k] for e in extended])
                else:
                    out[name] = fmt.assemble(self.observation_space, [leaf(o, rng if idx is None else idx)
                                                                      for o in obs_leaves])
            elif name == fmt.ACTIONS:
                out[name] = fmt.assemble(self.action_space, [leaf(fmt.h5_name(fmt.ACTIONS, p), rng if idx is None else idx)
                                                             for p, _, _ in fmt.leaf_specs(self.action_space)])
            else:
                out[name] = leaf(name, rng if idx is None else idx)
                if name in (fmt.TERMINATED, fmt.TRUNCATED) and name not in self._cache:
                    self._check_flags(name, out[name], np.arange(*rng, dtype=np.int64) if idx is None else idx)
        if want_next:
            sel = np.arange(*rng, dtype=np.int64) if idx is None else idx
            episode = np.searchsorted(self.episode_starts, sel, side="right") - 1
            is_end = sel == self.episode_ends[episode] if sel.size else np.zeros(0, dtype=bool)
            if extended is not None:
                # the file's last row is an episode end: its next observation is a final one
                nxt = [np.array(e[1:]) if e.shape[0] > sel.size else np.concatenate([e[1:], e[-1:]])
                       for e in extended]
            else:
                nxt = [leaf(o, np.minimum(sel + 1, max(n - 1, 0))) for o in obs_leaves]
                nxt = [a if a.flags.writeable else np.array(a) for a in nxt]
            if is_end.any():
                finals = [leaf(fmt.h5_name(fmt.FINAL_OBSERVATIONS, p), episode[is_end])
                          for p, _, _ in fmt.leaf_specs(self.observation_space)]
                for a, f in zip(nxt, finals):
                    a[is_end] = f
            out[NEXT_OBSERVATIONS] = fmt.assemble(self.observation_space, nxt)
        return {name: out[name] for name in names}

    def read_final_observations(self, episodes: Any = None) -> Any:
        """The final observations of ``episodes`` (None: all; a slice / range or episode indices),
        read without caching (nested for Dict / Tuple spaces), like :meth:`read` reads rows."""
        e = self.num_episodes
        rng = rows_range(episodes, e)
        sel = slice(*rng) if rng is not None else index_array(episodes, e)
        names = [fmt.h5_name(fmt.FINAL_OBSERVATIONS, p) for p, _, _ in fmt.leaf_specs(self.observation_space)]
        with self._open() as st:
            return fmt.assemble(self.observation_space, [st.read(name, sel) for name in names])

    @cached_property
    def compression(self) -> str | None:
        """The compression of the stored observations (None, ``gzip``, ``lzf``, ``blosc``)."""
        first = fmt.h5_name(fmt.OBSERVATIONS, fmt.leaf_specs(self.observation_space)[0][0])
        with self._open() as st:
            spec = st.fields().get(first)
        return None if spec is None else spec.compression

    def iter_batches(self, batch_size: int, *, fields: str | Sequence[str] = (fmt.OBSERVATIONS, fmt.ACTIONS),
                     shuffle: bool = False, seed: int | None = None, rows: Any = None,
                     buffer_rows: int | None = None, drop_last: bool = False) -> Iterator[dict[str, Any]]:
        """Batches ``{name: array}`` of ``batch_size`` transitions of ``rows`` (default: all), streamed.

        The selected rows are cut into blocks aligned with the storage's chunks (block
        ``k`` covers file rows ``[k * B, (k + 1) * B)``, ``B`` = the largest chunk of the
        fields read, at least 4096 rows) and each block is read with one read per chunk.
        Without ``shuffle`` batches follow the row order. With ``shuffle`` the block order
        is a seeded permutation and a shuffle buffer of ``buffer_rows`` rows (default
        ``max(8 * B, 16 * batch_size)``) is filled with whole blocks, permuted and emitted;
        the rows left over (fewer than ``batch_size``) are mixed into the next fill. Same
        seed, same batches.

        Memory bound: at most ``buffer_rows + B + batch_size`` rows of the requested fields
        are held at once (one block being read, the buffer, one batch), plus one storage
        chunk per field during a read, whatever the size of the dataset. The storage is
        opened when iteration starts and closed when it ends (each DataLoader worker
        that iterates opens its own handle; no handle crosses a fork).
        """
        names = self._check_fields(fields)
        if batch_size < 1:
            raise UserError(f"batch_size must be >= 1, got {batch_size}")
        return self._iter_batches(names, int(batch_size), RowRuns.of(rows, len(self)), shuffle, seed, buffer_rows,
                                  drop_last)

    def block_rows(self, fields: str | Sequence[str] = (fmt.OBSERVATIONS, fmt.ACTIONS)) -> int:
        """Rows per read block of :meth:`iter_batches` of ``fields`` (their largest chunk, >= 4096)."""
        names = self._check_fields(fields)
        with self._open() as st:
            return self._block_rows(names, st)

    def _block_rows(self, names: list[str], st: Storage) -> int:
        """The largest chunk (in rows, at least 4096) of the stored fields behind ``names`` (all per-step
        fields when empty): a block then never splits a chunk of what is read, and the fields not read
        (e.g. a bool flag whose 1 MiB chunk spans a million rows) do not inflate the memory bound."""
        specs = st.fields()
        stored: set[str] = set()
        for name in names:
            if name in (fmt.OBSERVATIONS, NEXT_OBSERVATIONS):
                stored.update(fmt.h5_name(fmt.OBSERVATIONS, p) for p, _, _ in fmt.leaf_specs(self.observation_space))
            elif name == fmt.ACTIONS:
                stored.update(fmt.h5_name(fmt.ACTIONS, p) for p, _, _ in fmt.leaf_specs(self.action_space))
            else:
                stored.add(name)
        chunks = [spec.chunks or 0 for spec in specs.values()
                  if (spec.name in stored if names else
                      not spec.name.startswith((fmt.EPISODES + "/", fmt.FINAL_OBSERVATIONS)))]
        return max([4096, *chunks])

    def _iter_batches(self, names: list[str], batch_size: int, sel: RowRuns, shuffle: bool, seed: int | None,
                      buffer_rows: int | None, drop_last: bool) -> Iterator[dict[str, Any]]:
        if len(sel) == 0:
            return
        with self._open() as st:
            block = self._block_rows(names, st)
            blocks = sel.blocks(block)  # the selection per storage block: O(runs + blocks), never O(rows)
            rng = np.random.default_rng(seed)
            if shuffle:
                blocks = [blocks[i] for i in rng.permutation(len(blocks))]
            capacity = buffer_rows if buffer_rows is not None else max(8 * block, 16 * batch_size)
            pending: list[dict[str, Any]] = []
            held = 0
            for k, (starts, stops) in enumerate(blocks):
                if starts.size == 1:  # one contiguous piece: a range read
                    part: Any = slice(int(starts[0]), int(stops[0]))
                    size = int(stops[0] - starts[0])
                else:
                    part = np.concatenate([np.arange(a, b, dtype=np.int64) for a, b in zip(starts, stops)])
                    size = part.size
                pending.append(self._read_rows(st, names, part))
                held += size
                if held < (capacity if shuffle else batch_size) and k + 1 < len(blocks):
                    continue
                pool = _concat_batches(pending)
                if shuffle:
                    pool = _take(pool, rng.permutation(held))
                last = k + 1 == len(blocks)
                full = held // batch_size * batch_size
                for lo in range(0, full, batch_size):
                    yield _take(pool, slice(lo, lo + batch_size))
                rest = held - full
                if last:
                    if rest and not drop_last:
                        yield _take(pool, slice(full, held))
                    return
                pending = [_take(pool, slice(full, held))] if rest else []
                held = rest

    # -- windows (demokit.data.windows) -------------------------------------------------

    def sample_windows(self, batch_size: int, length: int, *, rng: RngLike = None, pad: str = "edge",
                       before: int = 0, fields: str | Sequence[str] = (fmt.OBSERVATIONS, fmt.ACTIONS)
                       ) -> dict[str, Any]:
        """``batch_size`` windows of ``length`` consecutive steps inside one episode: ``{field: (batch,
        length, ...)}`` plus ``mask`` (False outside the episode); see :mod:`demokit.data.windows`."""
        from demokit.data.windows import sample_windows

        return sample_windows(self, batch_size, length, rng=rng, pad=pad, before=before, fields=fields)  # type: ignore[arg-type]

    def iter_windows(self, batch_size: int, length: int, *, shuffle: bool = False, seed: int | None = None,
                     pad: str = "edge", before: int = 0, fields: str | Sequence[str] = (fmt.OBSERVATIONS, fmt.ACTIONS),
                     rows: Any = None, drop_last: bool = False) -> Iterator[dict[str, Any]]:
        """Every window of ``rows`` once, in batches, streamed block by block (see :mod:`demokit.data.windows`)."""
        from demokit.data.windows import iter_windows

        return iter_windows(self, batch_size, length, shuffle=shuffle, seed=seed, pad=pad, before=before,  # type: ignore[arg-type]
                            fields=fields, rows=rows, drop_last=drop_last)

    # -- episodes ----------------------------------------------------------------------

    def _episode_slice(self, i: int) -> slice:
        if not -self.num_episodes <= i < self.num_episodes:
            raise IndexError(f"episode {i} out of range: dataset {self.path} has {self.num_episodes} episodes")
        i %= self.num_episodes
        start = int(self._index["start"][i])
        return slice(start, start + int(self._index["length"][i]))

    def episode(self, i: int) -> Episode:
        """Episode ``i`` as an :class:`Episode` (read by slicing; cached arrays are used when loaded)."""
        sl = self._episode_slice(i)
        i %= self.num_episodes
        if all(name in self._cache for name in self._field_names()):
            return self._episode_from(i, sl, self._cached_rows)
        with self._open() as f:
            return self._episode_from(i, sl, f.read)

    def _cached_rows(self, name: str, rows: slice) -> np.ndarray:
        return np.asarray(self._cache[name][rows])

    def _episode_from(self, i: int, sl: slice, read: Any) -> Episode:
        def nested(root: str, space: spaces.Space, idx: Any) -> Any:
            return fmt.assemble(space, [read(fmt.h5_name(root, p), idx) for p, _, _ in fmt.leaf_specs(space)])

        return Episode(
            observations=nested(fmt.OBSERVATIONS, self.observation_space, sl),
            actions=nested(fmt.ACTIONS, self.action_space, sl),
            rewards=read(fmt.REWARDS, sl) if self._has_rewards else None,
            terminated=read(fmt.TERMINATED, sl),
            truncated=read(fmt.TRUNCATED, sl),
            final_observation=nested(fmt.FINAL_OBSERVATIONS, self.observation_space, slice(i, i + 1)),
            extras={n: read(f"{fmt.EXTRAS}/{n}", sl) for n in self._extras_spec},
            seed=int(self._index["seed"][i]),
        )

    def iter_episodes(self) -> Iterator[Episode]:
        """All episodes in order (arrays are read in bulk once)."""
        self.load()
        for i in range(self.num_episodes):
            yield self._episode_from(i, self._episode_slice(i), self._cached_rows)

    # -- sampling ----------------------------------------------------------------------

    def sample(self, batch_size: int, *, rng: RngLike = None, torch: bool = False, device: Any = None) -> dict[str, Any]:
        """A uniform random batch of transitions (with replacement).

        Returns ``{"obs", "action", "reward", "next_obs", "terminated", "truncated"}``
        (no ``"reward"`` for a reward-free dataset)
        as numpy arrays (stored dtypes), or torch tensors on ``device`` when ``torch``.
        ``rng`` is a ``numpy.random.Generator`` or a seed (same seed -> same batch).
        """
        if len(self) == 0:
            raise self._fail("is empty; there is nothing to sample")
        if batch_size < 1:
            raise UserError(f"batch_size must be >= 1, got {batch_size}")
        gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        idx = gen.integers(0, len(self), size=int(batch_size))
        if self._sample_source is None:
            self._sample_source = {"obs": self.observations, "action": self.actions, "reward": self.rewards,
                                   "next_obs": self.next_observations, "terminated": self.terminated,
                                   "truncated": self.truncated}
            if not self._has_rewards:
                del self._sample_source["reward"]
        batch = {k: (v[idx] if type(v) is np.ndarray else obs_index(v, idx)) for k, v in self._sample_source.items()}
        if torch:
            import torch as _torch

            return {k: obs_map(lambda a: _torch.from_numpy(np.ascontiguousarray(a)).to(device), v) for k, v in batch.items()}
        return batch

    # -- checks and frames -------------------------------------------------------------

    def check_env(self, env: Any) -> None:
        """Raise :class:`SpaceMismatchError` unless env (an id or a gymnasium env) has this dataset's spaces
        and, for an id, is not another version of the dataset's env (Hopper-v4 data in Hopper-v5: same
        spaces, other dynamics)."""
        if isinstance(env, str):
            from demokit.envs import make_env

            env_id = env
            self._check_env_version(env_id)
            made = make_env(env_id)
            try:
                obs_space, act_space = made.observation_space, made.action_space
            finally:
                made.close()
        else:
            env_id = getattr(getattr(env, "spec", None), "id", None) or repr(env)
            obs_space, act_space = env.observation_space, env.action_space
        check_same_spaces(what=f"dataset {self.path}", expected_obs=self.observation_space,
                          expected_act=self.action_space, actual_obs=obs_space, actual_act=act_space,
                          against=f"env {env_id}")

    def _check_env_version(self, env_id: str) -> None:
        """SpaceMismatchError when ``env_id`` names another version of the env the dataset records."""
        from gymnasium.envs.registration import parse_env_id

        from demokit.errors import SpaceMismatchError

        if not self.env_id or self.env_id == env_id:
            return
        try:
            recorded, wanted = parse_env_id(self.env_id), parse_env_id(env_id)
        except Exception:  # an id gymnasium cannot parse: left to make_env
            return
        if recorded[:2] == wanted[:2] and recorded[2] != wanted[2]:
            raise SpaceMismatchError(f"dataset {self.path} was recorded in {self.env_id}, not {env_id}: env "
                                     f"versions differ in dynamics and rewards even where the spaces match; use "
                                     f"--env {self.env_id} or collect data in {env_id}")

    def _columns(self, prefix: str, space: spaces.Space, batch: Any) -> dict[str, np.ndarray]:
        cols: dict[str, np.ndarray] = {}
        for (path, _, _), arr in zip(fmt.leaf_specs(space), fmt.leaves_of(space, batch)):
            cols.update(_flat_columns("_".join((prefix, *path)), arr))
        return cols

    def to_pandas(self) -> Any:
        """One row per transition: episode, step, obs_*, action[_*], reward, terminated, truncated, extras
        (no ``reward`` column for a reward-free dataset)."""
        import pandas as pd

        lengths = self.episode_lengths
        episode = np.repeat(np.arange(self.num_episodes, dtype=np.int64), lengths)
        step = np.arange(len(self), dtype=np.int64) - np.repeat(self.episode_starts, lengths)
        cols: dict[str, np.ndarray] = {"episode": episode, "step": step}
        cols.update(self._columns("obs", self.observation_space, self.observations))
        cols.update(self._columns("action", self.action_space, self.actions))
        if self._has_rewards:
            cols["reward"] = self.rewards
        cols.update({"terminated": self.terminated, "truncated": self.truncated})
        for name, arr in self.extras.items():
            cols.update(_flat_columns(f"extra_{name}", arr))
        return pd.DataFrame(cols)  # a copy: the cached arrays are read-only

    def episodes_frame(self) -> Any:
        """One row per episode: episode, start, length, return, terminated, truncated, seed (no ``return``
        column for a reward-free dataset)."""
        import pandas as pd

        frame = pd.DataFrame({
            "episode": np.arange(self.num_episodes, dtype=np.int64),
            "start": self.episode_starts,
            "length": self.episode_lengths,
            "return": self.episode_returns,
            "terminated": self.episode_terminated,
            "truncated": self.episode_truncated,
            "seed": self.episode_seeds,
        })
        return frame if self._has_rewards else frame.drop(columns="return")


def _flat_columns(base: str, arr: np.ndarray) -> dict[str, np.ndarray]:
    """One frame column per scalar of a row: ``base`` for scalar rows, else ``base_0``, ``base_1``, ..."""
    if arr.ndim == 1:
        return {base: arr}
    flat = arr.reshape(arr.shape[0], int(np.prod(arr.shape[1:], dtype=np.int64)))  # not -1: N may be 0
    return {f"{base}_{j}": flat[:, j] for j in range(flat.shape[1])}


def _take(batch: dict[str, Any], sel: Any) -> dict[str, Any]:
    return {k: obs_index(v, sel) for k, v in batch.items()}


def _concat_batches(parts: list[dict[str, Any]]) -> dict[str, Any]:
    if len(parts) == 1:
        return parts[0]
    from demokit.data.episode import obs_concat

    return {k: obs_concat([p[k] for p in parts]) for k in parts[0]}
