"""Minari 0.5 datasets <-> demokit (read and written: the hdf5, arrow and parquet storages).

A Minari dataset is a directory ``<name>-v<N>/data/`` holding ``metadata.json`` and
``main_data.hdf5``. The HDF5 file has one group ``episode_<id>`` per episode with
``observations`` (T+1 rows: the reset observation, then one per step),
``actions``, ``rewards``, ``terminations``, ``truncations`` (T rows) and an optional
``infos`` group (one row per observation); attributes ``id``, ``total_steps`` and,
when known, ``seed``. Dict observations/actions are subgroups per key, Tuple ones
subgroups ``_index_0``, ``_index_1``, ... . ``metadata.json`` carries the spaces as
JSON text in Minari's own space format (:func:`space_to_minari` /
:func:`space_from_minari`), the gymnasium ``env_spec`` JSON and descriptive fields.

The arrow and parquet storages (``data_format`` ``"arrow"`` / ``"parquet"``) hold one
directory ``data/<id>/`` per episode instead; :mod:`demokit.data.convert.minari_arrow` shows
each of those episodes as an episode group of the HDF5 layout, so both are checked and read by
the same code here, and writes them from the same episode content as the HDF5 writer
(:class:`MinariEpisode`).

Reading: the last observation row of an episode becomes the demokit final
observation; ``infos/<key>`` (nested keys joined with ``.``) with T+1 rows become
extras of T rows (row 0, the reset info, is dropped; T rows are taken as they are).
Writing: extras become ``infos/<key>`` with T+1 rows, row 0 being zeros, so a
demokit -> Minari -> demokit round trip is exact. Image spaces are written raw
(``jpeg_encoding: false``); JPEG-encoded Minari images are decoded with Pillow, in each layout
Minari stores them in (:func:`_is_jpeg_layout`).
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any, Protocol

from demokit.data.storage import hdf5 as h5io
import numpy as np
from gymnasium import spaces

from demokit.data import format as fmt
from demokit.data.convert.common import (
    ConvertResult,
    MAIN_FILE,
    METADATA_FILE,
    MINARI_FORMATS,
    MemoryHDF5,
    Source,
    check_declared_spaces,
    env_info,
    minari_data_dir,
    open_hdf5,
    prepare_target,
    read_json_object,
    require_rewards,
)
from demokit.data.convert.minari_arrow import ARROW_FORMATS, ArrowEpisodes, pyarrow_for
from demokit.data.convert.minari_arrow import write_episode as write_arrow_episode
from demokit.data.convert.minari_arrow import Column as ArrowColumn
from demokit.data.convert.minari_arrow import Group as ArrowGroup
from demokit.data.episode import Episode, obs_index
from demokit.data.locking import temp_path_for
from demokit.errors import UserError
from demokit.paths import make_parents, remove_dirs, write_file

#: the Minari version written into metadata.json when minari is not installed
DEFAULT_MINARI_VERSION = "0.5.4"
DATASET_NAME_RE = re.compile(r"^[-_\w]+?-v\d+$")
INT64_MAX = 2**63 - 1
UINT64_MAX = 2**64 - 1
#: the uint64 extra holding episode seeds >= 2**63 (Minari's 64-bit auto-seeds; see docs/converters/minari.md)
SEED_EXTRA = "minari_seed"
#: per-episode attributes Minari's default EpisodeMetadataCallback derives from the rewards
DERIVED_EPISODE_ATTRS = ("rewards_sum", "rewards_mean", "rewards_std", "rewards_max", "rewards_min")
#: metadata.json fields that describe the files written (recomputed on export), not where the data came from
FILE_FIELDS = ("total_episodes", "total_steps", "data_format", "jpeg_encoding", "observation_space", "action_space",
               "env_spec", "dataset_id", "minari_version", "dataset_size", "demokit_provenance")


# ---------------------------------------------------------------------------------------
# Minari's JSON space format


def space_to_minari(space: spaces.Space) -> dict[str, Any]:
    """``space`` as Minari 0.5 serialises it (``minari.serialization.serialize_space``)."""
    if isinstance(space, spaces.Box):
        return {"type": "Box", "dtype": str(space.dtype), "shape": list(space.shape),
                "low": space.low.tolist(), "high": space.high.tolist()}
    if isinstance(space, spaces.Discrete):
        return {"type": "Discrete", "dtype": "int64", "start": int(space.start), "n": int(space.n)}
    if isinstance(space, spaces.MultiDiscrete):
        return {"type": "MultiDiscrete", "dtype": str(space.dtype), "nvec": space.nvec.tolist(),
                "start": space.start.tolist()}
    if isinstance(space, spaces.MultiBinary):
        n = space.n
        return {"type": "MultiBinary", "n": np.asarray(n).tolist() if not isinstance(n, int) else n}
    if isinstance(space, spaces.Dict):
        return {"type": "Dict", "subspaces": {k: space_to_minari(s) for k, s in space.spaces.items()}}
    if isinstance(space, spaces.Tuple):
        return {"type": "Tuple", "subspaces": [space_to_minari(s) for s in space.spaces]}
    raise UserError(f"space {space!r} cannot be written to a Minari dataset by demokit")


def space_from_minari(d: Any, *, where: str) -> spaces.Space:
    """Inverse of :func:`space_to_minari`; ``d`` may be the JSON text."""
    try:
        if isinstance(d, str):
            d = json.loads(d)
        kind = d["type"]
        if kind == "Box":
            dtype = np.dtype(d["dtype"])
            shape = tuple(int(x) for x in d["shape"])
            low = np.broadcast_to(np.array(d["low"], dtype=np.float64), shape).astype(dtype)
            high = np.broadcast_to(np.array(d["high"], dtype=np.float64), shape).astype(dtype)
            return spaces.Box(low=low, high=high, shape=shape, dtype=dtype)
        if kind == "Discrete":
            return spaces.Discrete(int(d["n"]), start=int(d.get("start", 0)))
        if kind == "MultiDiscrete":
            return spaces.MultiDiscrete(np.array(d["nvec"]), dtype=np.dtype(d.get("dtype", "int64")),
                                        start=np.array(d["start"]) if "start" in d else None)
        if kind == "MultiBinary":
            n = d["n"]
            return spaces.MultiBinary(n if isinstance(n, int) else list(n))
        if kind == "Dict":
            return spaces.Dict({k: space_from_minari(v, where=where) for k, v in d["subspaces"].items()})
        if kind == "Tuple":
            return spaces.Tuple([space_from_minari(v, where=where) for v in d["subspaces"]])
    except UserError:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise UserError(f"{where} is not a valid Minari space description ({type(exc).__name__}: {exc})") from None
    raise UserError(f"{where} has space type {kind!r}, which demokit does not support "
                    f"(Box, Discrete, MultiDiscrete, MultiBinary, Dict, Tuple)")


# ---------------------------------------------------------------------------------------
# reading


def _env_id_of_spec(spec_text: Any, where: str) -> str | None:
    if not isinstance(spec_text, str):
        return None
    try:
        spec = json.loads(spec_text)
    except json.JSONDecodeError:
        raise UserError(f"{where}: env_spec is not valid JSON") from None
    return spec.get("id") if isinstance(spec, dict) else None


def _leaf_paths(space: spaces.Space, prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], spaces.Space]]:
    """HDF5 member paths of the leaves of ``space`` in Minari's layout, in space order."""
    if isinstance(space, spaces.Dict):
        return [lp for k, s in space.spaces.items() for lp in _leaf_paths(s, (*prefix, k))]
    if isinstance(space, spaces.Tuple):
        return [lp for i, s in enumerate(space.spaces) for lp in _leaf_paths(s, (*prefix, f"_index_{i}"))]
    return [(prefix, space)]


def _is_image(space: spaces.Space) -> bool:
    return (isinstance(space, spaces.Box) and len(space.shape) in (2, 3) and space.shape[0] >= 32
            and space.shape[1] >= 32 and space.dtype == np.uint8
            and bool(np.all(space.low == 0)) and bool(np.all(space.high == 255)))


def _is_jpeg_layout(dset: Any, space: spaces.Space, jpeg: bool) -> bool:
    """Whether ``dset`` holds the JPEG bytes of an image leaf, one entry per row: variable-length
    bytes (the hdf5 storage when the frames' JPEGs differ in length; arrow/parquet binary), a 2-D
    uint8 array (frames x bytes: what h5py makes of the hdf5 storage's frames when all their JPEGs
    happen to have the same length) or fixed-length byte strings (not written by Minari 0.5's
    storages, but its loader decodes them alike). Only for an image space of a dataset whose
    metadata says ``jpeg_encoding``; a raw image has a per-step shape of 2 or 3 dimensions, so
    none of these layouts can be one."""
    if not (jpeg and _is_image(space)):
        return False
    kind = dset.dtype.kind
    return (kind in "OS" and dset.ndim == 1) or (dset.dtype == np.uint8 and dset.ndim == 2)


def _decode_jpeg(data: Any, space: spaces.Space, where: str) -> np.ndarray:
    """The frames of JPEG bytes ``data`` (one entry per row: bytes, or a uint8 array of them) as
    Pillow decodes them, which must have the shape of the image ``space``."""
    try:
        from PIL import Image
    except ImportError:
        raise UserError(f"{where} holds JPEG-encoded images; install Pillow (pip install pillow) to convert it") from None
    frames = np.empty((len(data), *space.shape), dtype=np.uint8)
    for i, item in enumerate(data):
        try:
            raw = bytes(item) if isinstance(item, bytes) else np.asarray(item, dtype=np.uint8).tobytes()
            with Image.open(io.BytesIO(raw)) as image:
                frame = np.asarray(image, dtype=np.uint8)
        except (OSError, ValueError, TypeError, Image.DecompressionBombError) as exc:  # not an image
            raise UserError(f"{where}: the JPEG-encoded image in row {i} cannot be decoded "
                            f"({type(exc).__name__}: {exc})") from None
        if frame.shape != space.shape:
            raise UserError(f"{where}: the JPEG-encoded image in row {i} decodes to shape {frame.shape} but the "
                            f"declared image space has {space.shape}")
        frames[i] = frame
    return frames


def _flat_infos(group: Any, prefix: tuple[str, ...] = ()) -> dict[str, tuple[tuple[str, ...], Any]]:
    """``{extra name: (path parts, array)}`` of an ``infos`` group (nested keys joined with ``.``)."""
    out: dict[str, tuple[tuple[str, ...], Any]] = {}
    for key, item in group.items():
        parts = (*prefix, key)
        if _is_group(item):
            out.update(_flat_infos(item, parts))
        else:
            out[".".join(parts)] = (parts, item)
    return out


def _json_value(value: Any) -> Any:
    """An HDF5 attribute value as JSON (numpy scalars/arrays -> Python, bytes -> str)."""
    value = fmt.decode_attr(value)
    if isinstance(value, np.ndarray):
        return [_json_value(v) for v in value.tolist()] if value.dtype.kind in "OSU" else value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value


def _seed_of(g: Any, where: str) -> int | None:
    if "seed" not in g.attrs:
        return None
    raw = g.attrs["seed"]
    if isinstance(raw, (bool, np.bool_)) or not isinstance(raw, (int, np.integer)):
        raise UserError(f"{where}: attribute seed is {raw!r}, not an integer")
    seed = int(raw)
    if not 0 <= seed <= UINT64_MAX:
        raise UserError(f"{where}: attribute seed {seed} is outside the range of reset seeds [0, 2**64)")
    return seed


def read_minari(path: str | os.PathLike[str], *, env_id: str | None = None) -> Source:
    """Validate a Minari dataset and return it as a :class:`Source`."""
    data_dir = minari_data_dir(path)
    if data_dir is None:
        raise UserError(f"{path} is not a Minari dataset: expected {Path(path) / 'data' / METADATA_FILE} and "
                        f"{Path(path) / 'data' / MAIN_FILE} (hdf5 storage) or episode directories "
                        f"{Path(path) / 'data' / '<id>'}/ (arrow / parquet storage)")
    meta_path = data_dir / METADATA_FILE
    meta = read_json_object(meta_path)
    data_format = meta.get("data_format", "hdf5")
    if data_format != "hdf5" and data_format not in ARROW_FORMATS:
        raise UserError(f"{meta_path}: data_format is {data_format!r}; demokit reads Minari's storages "
                        f"{', '.join(('hdf5', *ARROW_FORMATS))}")
    spec_text = meta.get("env_spec")
    source_env = _env_id_of_spec(spec_text, str(meta_path))
    declared = {}
    for key in ("observation_space", "action_space"):
        if key in meta:
            declared[key] = space_from_minari(meta[key], where=f"{meta_path}: {key}")
        else:
            fallback = env_id or source_env
            if fallback is None:
                raise UserError(f"{meta_path} has no {key} and no env_spec; pass --env to name the env")
            info = env_info(fallback)
            declared[key] = info.observation_space if key == "observation_space" else info.action_space
    obs_space, act_space = declared["observation_space"], declared["action_space"]
    jpeg = bool(meta.get("jpeg_encoding", True))

    info_fields = {k: v for k, v in meta.items()
                   if k not in ("observation_space", "action_space", "env_spec", "demokit_provenance")}
    own = meta.get("demokit_provenance")  # written by demokit's own Minari export
    source = Source(kind="minari", path=data_dir.parent if data_dir.name == "data" else data_dir,
                    observation_space=obs_space, action_space=act_space, episodes=(), num_episodes=0, num_steps=0,
                    env_id=source_env, env_spec=spec_text if source_env else None,
                    info={"dataset_id": meta.get("dataset_id"), "metadata": info_fields},
                    provenance=own if isinstance(own, dict) else None)
    check_declared_spaces(source, env_id)

    store: _Episodes = (_HDF5Episodes(data_dir / MAIN_FILE) if data_format == "hdf5"
                        else ArrowEpisodes(data_dir, data_format, obs_space, act_space))
    with store.open():
        ids = store.ids()
        infos_plan: dict[str, tuple[tuple[str, ...], bool]] | None = None
        skipped: dict[str, str] = {}
        scan = _Scan()
        total = 0
        for index, eid in enumerate(ids):
            steps, infos = _check_episode(*store.episode(eid), index, obs_space, act_space, jpeg, skipped,
                                          scan)
            if infos_plan is None:
                infos_plan = infos
            elif infos != infos_plan:
                for key in set(infos_plan) ^ set(infos):
                    skipped.setdefault(key, "is not present with the same layout in every episode")
                infos_plan = {k: v for k, v in infos_plan.items() if infos.get(k) == v}
            total += steps
    for key, why in sorted(skipped.items()):
        source.note(f"info {key!r} {why}; skipped")
    infos_plan = {k: v for k, v in (infos_plan or {}).items() if k not in skipped}
    for key in ("total_episodes", "total_steps"):
        if key in meta and (isinstance(meta[key], bool) or not isinstance(meta[key], int)):
            raise UserError(f"{meta_path}: {key} is {meta[key]!r}, not an integer")
    if "total_episodes" in meta and int(meta["total_episodes"]) != len(ids):
        raise UserError(f"{meta_path}: total_episodes is {meta['total_episodes']} but {store.path} holds {len(ids)} "
                        f"{store.unit}; the dataset is incomplete or inconsistent")
    if "total_steps" in meta and int(meta["total_steps"]) != total:
        raise UserError(f"{meta_path}: total_steps is {meta['total_steps']} but the episodes in {store.path} hold "
                        f"{total} steps; the dataset is incomplete or inconsistent")
    big_seeds = sum(1 for seed in scan.seeds if seed is not None and seed > INT64_MAX)
    if big_seeds:
        source.note(f"{big_seeds} episode seed(s) are 2**63 or more (Minari draws 64-bit reset seeds) and do not fit "
                    f"demokit's int64 seed column: those episodes have seed -1 there and their exact seed in the "
                    f"uint64 extra {SEED_EXTRA!r} (on every step of the episode)")
    source.info["minari_layout"] = scan.layout(infos_plan, source)
    source.num_episodes, source.num_steps = len(ids), total
    source.episodes = _iter_episodes(store, ids, obs_space, act_space, infos_plan, jpeg,
                                     scan.seeds if big_seeds else None)
    return source


class _Episodes(Protocol):
    """A Minari storage's episodes: ``open()`` (a context), ``ids()``, and ``episode(id)`` -> (a group
    of members ``observations``, ``actions``, ``rewards``, ... with the episode's attributes, the name
    to give in messages; ``whole=True``: every member will be read). ``path`` and ``unit`` name what
    holds the episodes."""

    path: Path
    unit: str

    def open(self) -> AbstractContextManager[Any]: ...

    def ids(self) -> list[int]: ...

    def episode(self, eid: int, *, whole: bool = False) -> tuple[Any, str]: ...


class _HDF5Episodes:
    """Minari's HDF5 storage: the groups ``episode_<id>`` of ``main_data.hdf5``."""

    unit = "episode groups"

    def __init__(self, path: Path) -> None:
        self.path = path

    @contextmanager
    def open(self) -> Iterator[_HDF5Episodes]:
        with open_hdf5(self.path) as self._h5:
            yield self

    def ids(self) -> list[int]:
        ids = []
        for name in (k for k in self._h5.keys() if k.startswith("episode_")):
            suffix = name[len("episode_"):]
            if not suffix.isdigit():
                raise UserError(f"{self.path}: unexpected group {name!r} (episode groups are episode_<id>)")
            ids.append(int(suffix))
        return sorted(ids)

    def episode(self, eid: int, *, whole: bool = False) -> tuple[h5io.Group, str]:
        name = f"episode_{eid}"
        where = f"{self.path}: {name}"
        g = self._h5[name]
        if not isinstance(g, h5io.Group):
            raise UserError(f"{where} is not a group")
        return g, where


def _is_group(item: Any) -> bool:
    return isinstance(item, (h5io.Group, ArrowGroup))


def _is_array(item: Any) -> bool:
    return isinstance(item, (h5io.Dataset, ArrowColumn))


class _Scan:
    """What the episode checks saw beyond the arrays: seeds, infos layout, reset infos, attributes."""

    def __init__(self) -> None:
        self.seeds: list[int | None] = []
        self.infos_groups = 0
        self.reset_rows: dict[str, list[Any]] = {}
        self.episode_meta: dict[str, dict[str, Any]] = {}

    def layout(self, infos_plan: Mapping[str, tuple[tuple[str, ...], bool]], source: Source) -> dict[str, Any]:
        """The provenance record that lets a Minari export rebuild what demokit's arrays cannot hold."""
        n = len(self.seeds)
        layout: dict[str, Any] = {"infos_group": bool(n) and self.infos_groups == n,
                                  "infos": {k: list(parts) for k, (parts, _) in infos_plan.items()}}
        reset: dict[str, Any] = {}
        for key, (_, has_reset_row) in infos_plan.items():
            rows = self.reset_rows.get(key, [])
            if not has_reset_row or not rows:
                continue
            if all(np.array_equal(rows[0], r) for r in rows[1:]):
                reset[key] = np.asarray(rows[0]).tolist()
            else:
                source.note(f"info {key!r}: the reset info (row 0, before the first step) differs between episodes "
                            f"and is not kept (demokit keeps one info row per step; a Minari export writes zeros "
                            f"there)")
        layout["reset_info"] = reset
        if self.episode_meta:
            layout["episode_metadata"] = self.episode_meta
        return layout


def _check_episode(g: Any, where: str, index: int, obs_space: spaces.Space, act_space: spaces.Space, jpeg: bool,
                   skipped: dict[str, str], scan: _Scan) -> tuple[int, dict[str, tuple[tuple[str, ...], bool]]]:
    """Check one episode group ``g`` (named ``where`` in messages); returns (T, {extra name: (infos
    path, has a reset row)}), records unusable infos in ``skipped`` and seeds, reset infos and
    attributes in ``scan``."""
    for key in ("observations", "actions", "rewards", "terminations", "truncations"):
        if key not in g:
            why = (": Minari always records rewards, and its own loader cannot read an episode without them "
                   "(its EpisodeData needs them), so this is not a complete Minari dataset") if key == "rewards" else ""
            raise UserError(f"{where} has no {key!r}{why}")
    T = int(g["rewards"].shape[0]) if g["rewards"].ndim else 0
    if T < 1:
        raise UserError(f"{where}/rewards has no steps; empty episodes cannot be converted")
    if "total_steps" in g.attrs:
        raw = g.attrs["total_steps"]
        if isinstance(raw, (bool, np.bool_)) or not isinstance(raw, (int, np.integer)):
            raise UserError(f"{where}: attribute total_steps is {raw!r}, not an integer")
        if int(raw) != T:
            raise UserError(f"{where}: attribute total_steps is {int(raw)} but rewards has {T} rows")
    scan.seeds.append(_seed_of(g, where))
    extra_attrs = {k: _json_value(v) for k, v in g.attrs.items()
                   if k not in ("id", "total_steps", "seed") and not (k in DERIVED_EPISODE_ATTRS
                                                                     and _derived_matches(k, v, g["rewards"]))}
    if extra_attrs:
        scan.episode_meta[str(index)] = extra_attrs
    for key in ("terminations", "truncations"):
        if g[key].shape[:1] != (T,):
            raise UserError(f"{where}/{key} has {g[key].shape[0] if g[key].ndim else 0} rows but rewards has {T}")
    for root, space, rows in (("observations", obs_space, T + 1), ("actions", act_space, T)):
        for path, leaf_space in _leaf_paths(space):
            member = "/".join((root, *path))
            if member not in g or not _is_array(g[member]):
                raise UserError(f"{where}/{member} is missing: the data does not match the declared {root[:-1]} space")
            dset = g[member]
            n = dset.shape[0] if dset.ndim else 0
            if n != rows:
                hint = " (Minari stores T+1 observations: the reset observation and one per step)" if root == "observations" else ""
                raise UserError(f"{where}/{member} has {n} rows but the episode has {T} steps, so {rows} were expected{hint}")
            if _is_jpeg_layout(dset, leaf_space, jpeg):
                continue  # JPEG-encoded images: checked when decoded
            if dset.dtype.kind not in "biuf" or (dset.dtype.kind == "f" and not isinstance(leaf_space, spaces.Box)):
                hint = (" (JPEG bytes? metadata.json says jpeg_encoding is false)"
                        if dset.dtype.kind in "OS" and _is_image(leaf_space) else "")
                raise UserError(f"{where}/{member} holds {dset.dtype} values, which do not fit the declared "
                                f"{type(leaf_space).__name__} space{hint}")
            want = () if isinstance(leaf_space, spaces.Discrete) else tuple(leaf_space.shape)
            if tuple(dset.shape[1:]) != want:
                raise UserError(f"{where}/{member} has per-step shape {tuple(dset.shape[1:])} but the declared space "
                                f"has {want}")
    infos: dict[str, tuple[tuple[str, ...], bool]] = {}
    if "infos" in g and _is_group(g["infos"]):
        scan.infos_groups += 1
        for key, (parts, dset) in _flat_infos(g["infos"]).items():
            n = dset.shape[0] if dset.ndim else 0
            if dset.dtype.kind not in "biuf" or n not in (T, T + 1):
                skipped.setdefault(key, f"(dtype {dset.dtype}, {n} rows for {T} steps in {where}) is not a "
                                        f"numeric per-step array")
                continue
            infos[key] = (parts, n == T + 1)
            if n == T + 1:
                scan.reset_rows.setdefault(key, []).append(np.array(dset[0]))  # a copy, not a view of the episode
    return T, infos


def _derived(name: str, rewards: np.ndarray) -> float:
    """The per-episode attribute ``name`` that Minari's default EpisodeMetadataCallback derives."""
    return float(getattr(np.asarray(rewards), name[len("rewards_"):])())


def _derived_matches(name: str, value: Any, rewards: Any) -> bool:
    try:
        return float(value) == _derived(name, rewards[()].astype(np.float64))
    except (TypeError, ValueError):
        return False


def _iter_episodes(store: _Episodes, ids: list[int], obs_space: spaces.Space, act_space: spaces.Space,
                   infos: Mapping[str, tuple[tuple[str, ...], bool]], jpeg: bool,
                   seeds: list[int | None] | None) -> Iterator[Episode]:
    """The episodes; ``seeds`` (when some exceed int64) also become the uint64 extra :data:`SEED_EXTRA`."""
    def read(g: Any, where: str, root: str, space: spaces.Space) -> Any:
        leaves = []
        for path, leaf_space in _leaf_paths(space):
            member = "/".join((root, *path))
            dset = g[member]
            if _is_jpeg_layout(dset, leaf_space, jpeg):
                leaves.append(_decode_jpeg(dset[()], leaf_space, f"{where}/{member}"))
            else:
                leaves.append(dset[()])
        return fmt.assemble(space, leaves)

    with store.open():
        for index, eid in enumerate(ids):
            g, where = store.episode(eid, whole=True)
            obs = read(g, where, "observations", obs_space)
            T = int(g["rewards"].shape[0])
            head, final = obs_index(obs, slice(None, T)), obs_index(obs, slice(T, None))
            extras = {}
            for key, (parts, has_reset_row) in infos.items():
                arr = g["infos"]["/".join(parts)][()]
                extras[key] = arr[1:] if has_reset_row else arr
            seed = _seed_of(g, where)
            if seeds is not None:  # the exact seed where it exceeds int64 (0: known from the seed column)
                extras[SEED_EXTRA] = np.full(T, seed if seed is not None and seed > INT64_MAX else 0, np.uint64)
            try:
                yield Episode(observations=head, actions=read(g, where, "actions", act_space), rewards=g["rewards"][()],
                              terminated=g["terminations"][()], truncated=g["truncations"][()],
                              final_observation=final, extras=extras,
                              seed=seed if seed is not None and seed <= INT64_MAX else -1)
            except UserError:
                raise
            except ValueError as exc:
                raise UserError(f"{where}: {exc}") from None


# ---------------------------------------------------------------------------------------
# writing


def minari_version() -> str:
    """The installed minari's version when it is a 0.5 release, else :data:`DEFAULT_MINARI_VERSION`."""
    try:
        version = importlib_metadata.version("minari")
    except importlib_metadata.PackageNotFoundError:
        return DEFAULT_MINARI_VERSION
    return version if version.startswith("0.5.") else DEFAULT_MINARI_VERSION


def default_dataset_id(dst: Path) -> str:
    """The dataset id for ``dst``: its path below ``$MINARI_DATASETS_PATH`` (so that
    ``minari.load_dataset(id)`` finds it) or else its directory name."""
    root = os.environ.get("MINARI_DATASETS_PATH")
    if root:
        try:
            return dst.resolve().relative_to(Path(root).resolve()).as_posix()
        except ValueError:
            pass
    return dst.name


def _minari_env_spec(source: Source) -> str | None:
    """An env spec JSON that ``gymnasium.EnvSpec.from_json`` accepts, or None."""
    from gymnasium.envs.registration import EnvSpec

    text = source.env_spec
    if isinstance(text, Mapping):
        text = json.dumps(dict(text))
    if isinstance(text, str):
        try:
            EnvSpec.from_json(text)
            return text
        except Exception:  # a minimal spec (id, max_episode_steps only)
            pass
    if source.env_id:
        import gymnasium as gym

        if source.env_id in gym.registry:
            try:
                return gym.spec(source.env_id).to_json()
            except Exception:
                return None
    return None


@dataclass
class MinariEpisode:
    """One episode as every Minari storage holds it: ``metadata`` (``id``, ``total_steps``, ``seed``,
    ``rewards_*`` and any other episode metadata; nested keys flat as ``options/<key>``, as HDF5
    attributes), ``observations`` (T+1 rows: the reset observation, then one per step), ``actions``
    (T rows; nested batches for Dict / Tuple spaces), ``rewards``, ``terminations``, ``truncations``
    (T rows) and ``infos`` (``(path parts, T+1 rows)`` per info, the reset info first; None: no infos
    recorded)."""

    metadata: dict[str, Any]
    observations: Any
    actions: Any
    rewards: np.ndarray
    terminations: np.ndarray
    truncations: np.ndarray
    infos: list[tuple[tuple[str, ...], np.ndarray]] | None


def _minari_episodes(source: Source) -> Iterator[MinariEpisode]:
    """``source``'s episodes as Minari stores them (see docs/converters/minari.md, writing): seeds
    (uint64 ones from :data:`SEED_EXTRA`), extras as infos with a reset row, and, for a dataset that
    came from Minari, its infos nesting, reset infos, derived ``rewards_*`` and episode metadata."""
    layout, origin_meta = _minari_origin(source)
    paths = {k: tuple(v) for k, v in (layout.get("infos") or {}).items()}
    reset_info = layout.get("reset_info") or {}
    episode_meta = layout.get("episode_metadata") or {}
    obs_space = source.observation_space
    for index, ep in enumerate(source.episodes):
        T = len(ep)
        meta: dict[str, Any] = {"id": index, "total_steps": T}
        extras = dict(ep.extras)
        big_seed = extras.pop(SEED_EXTRA, None)
        if ep.seed >= 0:
            meta["seed"] = ep.seed
        elif big_seed is not None and len(big_seed) and int(big_seed[0]) > INT64_MAX:
            meta["seed"] = np.uint64(big_seed[0])
        if origin_meta:  # back to Minari: what its default episode callback derived, again
            rewards = np.asarray(ep.rewards, dtype=np.float64)
            meta.update((name, _derived(name, rewards)) for name in DERIVED_EPISODE_ATTRS)
        meta.update(episode_meta.get(str(index)) or {})
        observations = fmt.assemble(obs_space, [np.concatenate([o, f]) for o, f in zip(
            fmt.leaves_of(obs_space, ep.observations), fmt.leaves_of(obs_space, ep.final_observation))])
        infos = None
        if extras or layout.get("infos_group"):
            infos = []
            for key, arr in extras.items():
                arr = np.asarray(arr)
                first = np.zeros((1, *arr.shape[1:]), dtype=arr.dtype)
                if key in reset_info:
                    first[0] = np.asarray(reset_info[key], dtype=arr.dtype)
                infos.append((paths.get(key, (key,)), np.concatenate([first, arr])))
        yield MinariEpisode(metadata=meta, observations=observations, actions=ep.actions, rewards=ep.rewards,
                            terminations=ep.terminated, truncations=ep.truncated, infos=infos)


def _write_nested(group: h5io.Group, name: str, space: spaces.Space, batch: Any, kwargs: dict[str, Any]) -> None:
    for path, leaf_space in _leaf_paths(space):
        arr = batch
        for part in path:
            arr = arr[int(part[len("_index_"):])] if part.startswith("_index_") else arr[part]
        arr = np.asarray(arr)
        if isinstance(leaf_space, spaces.Discrete):
            arr = arr.astype(np.int64)
        group.create_dataset("/".join((name, *path)), data=arr, chunks=True, maxshape=(None, *arr.shape[1:]), **kwargs)


def _write_hdf5_episodes(episodes: Iterator[MinariEpisode], data_dir: Path, source: Source,
                         compression: str | None) -> None:
    """Minari's hdf5 storage: ``data_dir/main_data.hdf5`` with one group ``episode_<id>`` per episode."""
    kwargs: dict[str, Any] = {"compression": compression} if compression else {}
    # built in memory, written with plain file I/O: a full disk is one OSError (see MemoryHDF5)
    memory = MemoryHDF5(track_order=True)
    with memory as h5:
        for ep in episodes:
            g = h5.create_group(f"episode_{ep.metadata['id']}")
            g.attrs.update(ep.metadata)
            _write_nested(g, "observations", source.observation_space, ep.observations, kwargs)
            _write_nested(g, "actions", source.action_space, ep.actions, kwargs)
            for name in ("rewards", "terminations", "truncations"):
                g.create_dataset(name, data=getattr(ep, name), chunks=True, maxshape=(None,), **kwargs)
            if ep.infos is not None:
                infos = g.create_group("infos")
                for parts, arr in ep.infos:
                    infos.create_dataset("/".join(parts), data=arr, chunks=True, maxshape=(None, *arr.shape[1:]),
                                         **kwargs)
    write_file(data_dir / MAIN_FILE, memory.image)


def check_minari_storage(data_format: str, compression: str | None) -> str | None:
    """Refuse a storage that demokit cannot write (or pyarrow missing for arrow / parquet) and
    ``compression`` for any storage but hdf5 (Minari's arrow / parquet files are written as Minari
    writes them); returns the checked compression."""
    if data_format not in MINARI_FORMATS:
        raise UserError(f"unknown Minari data format {data_format!r}: use one of {', '.join(MINARI_FORMATS)}")
    compression = fmt.check_compression(compression)
    if data_format == "hdf5":
        return compression
    if compression:
        raise UserError(f"--compression {compression} is HDF5 compression, but the Minari dataset is written in the "
                        f"{data_format} storage, whose files are written as Minari writes them; leave out "
                        f"--compression or write --minari-format hdf5")
    pyarrow_for(f"writing a Minari dataset with data_format {data_format!r}")
    return None


def write_minari(source: Source, dst: Path, *, force: bool, compression: str | None,
                 dataset_id: str | None = None, data_format: str = "hdf5") -> ConvertResult:
    """Write ``source`` as a Minari 0.5 dataset directory ``dst`` (atomically) in Minari's storage
    ``data_format``: ``hdf5`` (one HDF5 file; ``compression`` applies) or ``arrow`` / ``parquet``
    (one directory of part files per episode, as Minari's ArrowStorage writes them)."""
    compression = check_minari_storage(data_format, compression)
    require_rewards(source, target="Minari", why="episodes always have rewards (Minari's EpisodeData and its "
                    "loader read a 'rewards' array for every episode)")
    dataset_id = dataset_id or default_dataset_id(dst)
    if not DATASET_NAME_RE.match(dataset_id.rsplit("/", 1)[-1]):
        raise UserError(f"Minari dataset id {dataset_id!r} must end in <name>-v<version>, e.g. cartpole-expert-v0; "
                        f"name DST like that or pass --dataset-id")
    prepare_target(dst, is_dir=True, force=force)
    created = make_parents(dst)
    tmp = temp_path_for(dst)
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        data_dir = tmp / "data"
        data_dir.mkdir(parents=True)
        episodes = steps = 0

        def counted() -> Iterator[MinariEpisode]:
            nonlocal episodes, steps
            for ep in _minari_episodes(source):
                episodes, steps = episodes + 1, steps + len(ep.rewards)
                yield ep

        if data_format == "hdf5":
            _write_hdf5_episodes(counted(), data_dir, source, compression)
        else:
            for ep in counted():
                write_arrow_episode(data_dir / str(ep.metadata["id"]), data_format,
                                    (source.observation_space, source.action_space), metadata=ep.metadata,
                                    observations=ep.observations, actions=ep.actions, rewards=ep.rewards,
                                    terminations=ep.terminations, truncations=ep.truncations, infos=ep.infos)
        meta = _dataset_metadata(source, dataset_id, data_format, episodes, steps)
        meta["dataset_size"] = _size_mb(data_dir)
        write_file(data_dir / METADATA_FILE, fmt.to_json(meta).encode())
        _replace_dir(tmp, dst)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        remove_dirs(created)
        raise
    return ConvertResult(path=dst, source_kind=source.kind, episodes=episodes, steps=steps, target_kind="minari",
                         spaces_inferred=source.spaces_inferred, notes=tuple(source.notes))


def _dataset_metadata(source: Source, dataset_id: str, data_format: str, episodes: int,
                      steps: int) -> dict[str, Any]:
    """The dataset's ``metadata.json`` fields (all but ``dataset_size``)."""
    meta: dict[str, Any] = {
        "total_episodes": episodes,
        "total_steps": steps,
        "data_format": data_format,
        "jpeg_encoding": False,
        "observation_space": json.dumps(space_to_minari(source.observation_space)),
        "action_space": json.dumps(space_to_minari(source.action_space)),
    }
    spec = _minari_env_spec(source)
    if spec is not None:
        meta["env_spec"] = spec
    meta["dataset_id"] = dataset_id
    prov = source.output_provenance()
    algo = (source.provenance or {}).get("algo") or (source.provenance or {}).get("algorithm")
    if isinstance(algo, str):
        meta["algorithm_name"] = algo
    meta["description"] = f"Converted by demokit from the {source.kind} dataset {source.path.name}."
    # a dataset that came from Minari gets its own descriptive fields back (author, description, ...)
    meta.update({k: v for k, v in _minari_origin(source)[1].items() if k not in FILE_FIELDS and v is not None})
    meta["minari_version"] = minari_version()
    meta["demokit_provenance"] = prov
    return meta


def _size_mb(data_dir: Path) -> float:
    """Minari's ``dataset_size``: what lies below ``data_dir`` (files and directories), in MB to 0.1."""
    return round(sum(p.stat().st_size for p in data_dir.rglob("*")) / 1e6, 1)


def _minari_origin(source: Source) -> tuple[dict[str, Any], dict[str, Any]]:
    """(layout, metadata) of the Minari dataset ``source`` was converted from, if it was: the
    record :func:`read_minari` keeps (directly, or in a demokit file's provenance)."""
    record: Any = source.info if source.kind == "minari" else (source.provenance or {}).get("converted_from")
    if not isinstance(record, Mapping) or (source.kind != "minari" and record.get("kind") != "minari"):
        return {}, {}
    layout, metadata = record.get("minari_layout"), record.get("metadata")
    return (dict(layout) if isinstance(layout, Mapping) else {}), (dict(metadata) if isinstance(metadata, Mapping)
                                                                   else {})


def _replace_dir(tmp: Path, dst: Path) -> None:
    """Move the finished ``tmp`` onto ``dst`` (an existing dst is moved aside first, then removed)."""
    old = None
    if dst.is_dir() and not any(dst.iterdir()):
        dst.rmdir()  # an empty directory made for the dataset
    if dst.exists():
        old = dst.parent / f".{dst.name}.old-{os.getpid()}"
        shutil.rmtree(old, ignore_errors=True)
        os.replace(dst, old)
    try:
        os.replace(tmp, dst)
    except BaseException:
        if old is not None:
            os.replace(old, dst)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
