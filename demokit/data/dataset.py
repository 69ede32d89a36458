"""DemoDataset: read a demokit ``.h5`` dataset (lazy metadata, bulk cached arrays).

``load_dataset(path)`` validates the file cheaply (attributes, dataset shapes and the
episode index only) and returns a :class:`DemoDataset`. Each per-step field is read
with one h5py call the first time it is used and cached.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from functools import cached_property
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from gymnasium import spaces

from demokit.data import format as fmt
from demokit.data.episode import Episode, obs_index, obs_map
from demokit.errors import DatasetError, UserError
from demokit.spaces import check_same_spaces, flatten_batch, space_from_json

RngLike = np.random.Generator | int | None


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
        self.path = Path(path)
        self._cache: dict[str, Any] = {}
        self._sample_source: dict[str, Any] | None = None
        self._validate()

    # -- opening and validation --------------------------------------------------------

    def _open(self, *, bulk: bool = False) -> h5py.File:
        # bulk reads of whole fields skip HDF5's chunk cache: whole chunks go straight into our arrays
        kwargs = {"rdcc_nbytes": 0} if bulk else {}
        try:
            return h5py.File(self.path, "r", **kwargs)
        except OSError as exc:
            raise DatasetError(f"dataset {self.path} cannot be opened as HDF5 ({exc}); the file is damaged or "
                               f"not a demokit dataset") from None

    def _fail(self, problem: str) -> DatasetError:
        return DatasetError(f"dataset {self.path}: {problem}")

    def _validate(self) -> None:
        p = self.path
        if not p.exists():
            raise DatasetError(f"dataset {p} does not exist; check the path (collect one with `demokit collect`)")
        if p.is_dir():
            raise DatasetError(f"dataset path {p} is a directory, not a .h5 file")
        if not os.access(p, os.R_OK):
            raise DatasetError(f"dataset {p} cannot be read (permission denied); check its permissions")
        try:
            is_h5 = h5py.is_hdf5(p)
        except OSError as exc:
            raise DatasetError(f"dataset {p} cannot be read: {exc}") from None
        if not is_h5:
            raise DatasetError(f"{p} is not an HDF5 file (expected a demokit .h5 dataset)")
        with self._open() as f:
            attrs = {k: fmt.decode_attr(v) for k, v in f.attrs.items()}
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
            self._attrs = attrs
            obs_leaves = fmt.leaf_specs(self.observation_space)
            act_leaves = fmt.leaf_specs(self.action_space)

            def shape_of(name: str) -> tuple[int, ...]:
                obj = f.get(name)
                if not isinstance(obj, h5py.Dataset):
                    raise self._fail(f"missing dataset '{name}'; the file is damaged")
                return tuple(obj.shape)

            n = shape_of(fmt.REWARDS)[0] if shape_of(fmt.REWARDS) else 0
            per_step = [(fmt.h5_name(fmt.OBSERVATIONS, pth), shp) for pth, _, shp in obs_leaves]
            per_step += [(fmt.h5_name(fmt.ACTIONS, pth), shp) for pth, _, shp in act_leaves]
            per_step += [(fmt.REWARDS, ()), (fmt.TERMINATED, ()), (fmt.TRUNCATED, ())]
            extras_spec: dict[str, tuple[tuple[int, ...], np.dtype]] = {}
            group = f.get(fmt.EXTRAS)
            if group is not None:
                for key, dset in group.items():
                    if isinstance(dset, h5py.Dataset):
                        extras_spec[key] = (tuple(dset.shape[1:]), dset.dtype)
                        per_step.append((f"{fmt.EXTRAS}/{key}", tuple(dset.shape[1:])))
            for name, row_shape in per_step:
                shp = shape_of(name)
                if shp[:1] != (n,):
                    raise self._fail(f"field arrays have inconsistent lengths: '{name}' has "
                                     f"{shp[0] if shp else 0} rows but 'rewards' has {n}")
                if shp[1:] != tuple(row_shape):
                    raise self._fail(f"'{name}' has rows of shape {shp[1:]} but the stored space says {tuple(row_shape)}")
            index = {}
            for key in fmt.EPISODE_FIELDS:
                shape_of(f"{fmt.EPISODES}/{key}")
                index[key] = f[f"{fmt.EPISODES}/{key}"][()]
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
    def episode_returns(self) -> np.ndarray:
        return self._index["return"]

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
            with self._open(bulk=True) as f:
                for name in missing:
                    dset = f[name]
                    out = np.empty(dset.shape, dtype=dset.dtype)
                    try:
                        if out.size:
                            dset.read_direct(out)
                    except OSError as exc:
                        raise self._fail(f"cannot read '{name}' ({exc}); the file is damaged") from None
                    out.flags.writeable = False  # shared by every caller: copy before changing
                    self._cache[name] = out
        return [self._cache[n] for n in names]

    def _field_names(self) -> list[str]:
        """HDF5 names of every stored field (per-step and final observations)."""
        names = [fmt.h5_name(fmt.OBSERVATIONS, p) for p, _, _ in fmt.leaf_specs(self.observation_space)]
        names += [fmt.h5_name(fmt.ACTIONS, p) for p, _, _ in fmt.leaf_specs(self.action_space)]
        names += [fmt.h5_name(fmt.FINAL_OBSERVATIONS, p) for p, _, _ in fmt.leaf_specs(self.observation_space)]
        names += [fmt.REWARDS, fmt.TERMINATED, fmt.TRUNCATED]
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
    def rewards(self) -> np.ndarray:
        return self._read([fmt.REWARDS])[0]

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
        """Read every array now (one h5py read per field); returns ``self``."""
        _ = self.observations, self.actions, self.rewards, self.terminated, self.truncated, self.extras
        _ = self.next_observations
        return self

    def flat_observations(self) -> np.ndarray:
        """Observations flattened for networks: float32 ``(N, flat_dim)``."""
        return flatten_batch(self.observation_space, self.observations)

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
            return self._episode_from(i, sl, self._cache)
        with self._open() as f:
            return self._episode_from(i, sl, f)

    def _episode_from(self, i: int, sl: slice, src: Any) -> Episode:
        def nested(root: str, space: spaces.Space, idx: Any) -> Any:
            return fmt.assemble(space, [np.asarray(src[fmt.h5_name(root, p)][idx]) for p, _, _ in fmt.leaf_specs(space)])

        return Episode(
            observations=nested(fmt.OBSERVATIONS, self.observation_space, sl),
            actions=nested(fmt.ACTIONS, self.action_space, sl),
            rewards=np.asarray(src[fmt.REWARDS][sl]),
            terminated=np.asarray(src[fmt.TERMINATED][sl]),
            truncated=np.asarray(src[fmt.TRUNCATED][sl]),
            final_observation=nested(fmt.FINAL_OBSERVATIONS, self.observation_space, slice(i, i + 1)),
            extras={n: np.asarray(src[f"{fmt.EXTRAS}/{n}"][sl]) for n in self._extras_spec},
            seed=int(self._index["seed"][i]),
        )

    def iter_episodes(self) -> Iterator[Episode]:
        """All episodes in order (arrays are read in bulk once)."""
        self.load()
        for i in range(self.num_episodes):
            yield self._episode_from(i, self._episode_slice(i), self._cache)

    # -- sampling ----------------------------------------------------------------------

    def sample(self, batch_size: int, *, rng: RngLike = None, torch: bool = False, device: Any = None) -> dict[str, Any]:
        """A uniform random batch of transitions (with replacement).

        Returns ``{"obs", "action", "reward", "next_obs", "terminated", "truncated"}``
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
        batch = {k: (v[idx] if type(v) is np.ndarray else obs_index(v, idx)) for k, v in self._sample_source.items()}
        if torch:
            import torch as _torch

            return {k: obs_map(lambda a: _torch.from_numpy(np.ascontiguousarray(a)).to(device), v) for k, v in batch.items()}
        return batch

    # -- checks and frames -------------------------------------------------------------

    def check_env(self, env: Any) -> None:
        """Raise :class:`SpaceMismatchError` unless env (an id or a gymnasium env) has this dataset's spaces."""
        if isinstance(env, str):
            from demokit.envs import make_env

            env_id = env
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

    def _columns(self, prefix: str, space: spaces.Space, batch: Any) -> dict[str, np.ndarray]:
        cols: dict[str, np.ndarray] = {}
        for (path, _, _), arr in zip(fmt.leaf_specs(space), fmt.leaves_of(space, batch)):
            cols.update(_flat_columns("_".join((prefix, *path)), arr))
        return cols

    def to_pandas(self) -> Any:
        """One row per transition: episode, step, obs_*, action[_*], reward, terminated, truncated, extras."""
        import pandas as pd

        lengths = self.episode_lengths
        episode = np.repeat(np.arange(self.num_episodes, dtype=np.int64), lengths)
        step = np.arange(len(self), dtype=np.int64) - np.repeat(self.episode_starts, lengths)
        cols: dict[str, np.ndarray] = {"episode": episode, "step": step}
        cols.update(self._columns("obs", self.observation_space, self.observations))
        cols.update(self._columns("action", self.action_space, self.actions))
        cols.update({"reward": self.rewards, "terminated": self.terminated, "truncated": self.truncated})
        for name, arr in self.extras.items():
            cols.update(_flat_columns(f"extra_{name}", arr))
        return pd.DataFrame(cols)  # a copy: the cached arrays are read-only

    def episodes_frame(self) -> Any:
        """One row per episode: episode, start, length, return, terminated, truncated, seed."""
        import pandas as pd

        return pd.DataFrame({
            "episode": np.arange(self.num_episodes, dtype=np.int64),
            "start": self.episode_starts,
            "length": self.episode_lengths,
            "return": self.episode_returns,
            "terminated": self.episode_terminated,
            "truncated": self.episode_truncated,
            "seed": self.episode_seeds,
        })


def _flat_columns(base: str, arr: np.ndarray) -> dict[str, np.ndarray]:
    """One frame column per scalar of a row: ``base`` for scalar rows, else ``base_0``, ``base_1``, ..."""
    if arr.ndim == 1:
        return {base: arr}
    flat = arr.reshape(arr.shape[0], int(np.prod(arr.shape[1:], dtype=np.int64)))  # not -1: N may be 0
    return {f"{base}_{j}": flat[:, j] for j in range(flat.shape[1])}
