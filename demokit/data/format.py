"""The demokit HDF5 dataset format: schema constants and helpers shared by the
writer and the reader. The specification is docs/dataset-format.md.

Layout of format version 1 (N transitions, E episodes)::

    /                         attrs: format="demokit", format_version=1, env_id, env_spec,
                              observation_space, action_space, provenance, appends,
                              created, modified, demokit_version, total_steps, total_episodes
    /observations             (N, *shape) leaf dataset, or a group for Dict/Tuple spaces
    /actions                  (N, *shape) likewise
    /rewards                  (N,) float64
    /terminated               (N,) bool
    /truncated                (N,) bool
    /final_observations       (E, *shape) (same structure as /observations)
    /extras/<name>            (N, *shape) optional per-step arrays
    /episodes/{start,length,return,terminated,truncated,seed}   (E,)

Reward-free datasets (data without rewards: teleoperation, robot logs) have no
``/rewards`` and no ``/episodes/return`` and carry the root attribute ``rewards="none"``;
a file without that attribute has rewards (every file written before it existed).

Nested (Dict / Tuple) observations and actions are groups: a Dict key is a member
of the same name, a Tuple element i is the member ``str(i)``; nesting recurses.
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Mapping
from typing import Any

import numpy as np
from gymnasium import spaces

from demokit.errors import DatasetError, UserError
from demokit.results import json_default

FORMAT_NAME = "demokit"
FORMAT_VERSION = 1

OBSERVATIONS = "observations"
ACTIONS = "actions"
REWARDS = "rewards"
TERMINATED = "terminated"
TRUNCATED = "truncated"
FINAL_OBSERVATIONS = "final_observations"
EXTRAS = "extras"
EPISODES = "episodes"

#: per-episode index datasets (name -> dtype), all of shape (E,)
EPISODE_FIELDS: dict[str, np.dtype] = {
    "start": np.dtype(np.int64),
    "length": np.dtype(np.int64),
    "return": np.dtype(np.float64),
    "terminated": np.dtype(bool),
    "truncated": np.dtype(bool),
    "seed": np.dtype(np.int64),
}

#: root attribute of reward-free datasets (value REWARDS_NONE); absent when the file has rewards
ATTR_REWARDS = "rewards"
REWARDS_NONE = "none"

#: root attributes every dataset carries
ATTR_FORMAT = "format"
ATTR_VERSION = "format_version"
JSON_ATTRS = ("env_spec", "observation_space", "action_space", "provenance", "appends")
REQUIRED_ATTRS = (ATTR_FORMAT, ATTR_VERSION, "observation_space", "action_space", "total_steps", "total_episodes")

#: target size of one HDF5 chunk (bytes): large chunks keep bulk I/O near bare h5py speed
CHUNK_TARGET_BYTES = 1 << 20
#: smallest chunk (bytes), so that a tiny dataset appended to many times stays efficient
CHUNK_MIN_BYTES = 4 << 10

COMPRESSIONS = (None, "gzip", "lzf", "blosc")  # blosc: LZ4 + byte shuffle through hdf5plugin (the blosc extra)


def episode_fields(has_rewards: bool) -> dict[str, np.dtype]:
    """The episode index datasets of a file with or without rewards (no ``return`` without)."""
    return EPISODE_FIELDS if has_rewards else {k: v for k, v in EPISODE_FIELDS.items() if k != "return"}

LeafPath = tuple[str, ...]


def utc_now() -> str:
    """The current time as an ISO 8601 UTC string (seconds precision)."""
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def to_json(value: Any) -> str:
    """JSON text of ``value``; numpy scalars/arrays become plain numbers/lists."""
    return json.dumps(value, default=json_default)


def check_compression(compression: str | None) -> str | None:
    if compression in ("none", "None", ""):
        compression = None
    if compression not in COMPRESSIONS:
        raise UserError(f"unknown compression {compression!r}: use one of gzip, lzf, blosc or none")
    if compression == "blosc":
        try:
            import hdf5plugin  # noqa: F401
        except ImportError:
            raise UserError("blosc compression needs the hdf5plugin package: pip install demokit[blosc]") from None
    return compression


# ---------------------------------------------------------------------------------------
# space structure <-> leaves


def leaf_specs(space: spaces.Space, path: LeafPath = ()) -> list[tuple[LeafPath, np.dtype, tuple[int, ...]]]:
    """The array leaves of ``space`` in a fixed order: (path, dtype, per-row shape)."""
    if isinstance(space, spaces.Dict):
        out = []
        for key, sub in space.spaces.items():
            if not isinstance(key, str) or not key or "/" in key or key == ".":
                raise UserError(f"Dict space key {key!r} cannot be stored: keys must be non-empty strings without '/'")
            out.extend(leaf_specs(sub, (*path, key)))
        return out
    if isinstance(space, spaces.Tuple):
        out = []
        for i, sub in enumerate(space.spaces):
            out.extend(leaf_specs(sub, (*path, str(i))))
        return out
    if isinstance(space, spaces.Discrete):
        return [(path, np.dtype(space.dtype), ())]
    if isinstance(space, (spaces.Box, spaces.MultiDiscrete, spaces.MultiBinary)):
        return [(path, np.dtype(space.dtype), tuple(int(s) for s in space.shape))]
    raise UserError(f"unsupported space {space!r}: demokit stores Box, Discrete, MultiDiscrete, MultiBinary, Dict and Tuple")


def leaves_of(space: spaces.Space, batch: Any, what: str = "observations") -> list[Any]:
    """The leaf arrays of a (possibly nested) batch, in :func:`leaf_specs` order."""
    if isinstance(space, spaces.Dict):
        if not isinstance(batch, Mapping):
            raise UserError(f"{what} must be a dict of arrays for a Dict space, got {type(batch).__name__}")
        out = []
        for key, sub in space.spaces.items():
            if key not in batch:
                raise UserError(f"{what} lacks key {key!r} of the Dict space (has {sorted(batch)})")
            out.extend(leaves_of(sub, batch[key], f"{what}[{key!r}]"))
        return out
    if isinstance(space, spaces.Tuple):
        if not isinstance(batch, (tuple, list)) or len(batch) != len(space.spaces):
            raise UserError(f"{what} must be a tuple of {len(space.spaces)} arrays for a Tuple space")
        out = []
        for i, sub in enumerate(space.spaces):
            out.extend(leaves_of(sub, batch[i], f"{what}[{i}]"))
        return out
    return [batch]


def assemble(space: spaces.Space, leaves: list[Any]) -> Any:
    """Inverse of :func:`leaves_of`: rebuild the nested batch from its leaves (consumed in order)."""
    return _assemble(space, iter(leaves))


def _assemble(sp: spaces.Space, it: Any) -> Any:
    # a module-level function, not a recursive closure: a closure that calls itself is a reference
    # cycle holding the leaves (whole read blocks) until the cyclic GC runs (streamed reads grew by
    # hundreds of MB between collections)
    if isinstance(sp, spaces.Dict):
        return {k: _assemble(s, it) for k, s in sp.spaces.items()}
    if isinstance(sp, spaces.Tuple):
        return tuple(_assemble(s, it) for s in sp.spaces)
    return next(it)


def h5_name(root: str, path: LeafPath) -> str:
    """HDF5 path of a leaf, e.g. ``observations/pos`` or ``observations`` for a flat space."""
    return "/".join((root, *path))


def chunk_rows(row_bytes: int, rows_hint: int) -> int:
    """Rows per HDF5 chunk: about ``rows_hint`` rows (the first block), bounded in bytes."""
    row_bytes = max(1, int(row_bytes))
    target = max(1, CHUNK_TARGET_BYTES // row_bytes)
    minimum = max(1, CHUNK_MIN_BYTES // row_bytes)
    want = 1 << max(0, int(rows_hint) - 1).bit_length()  # next power of two
    return int(min(target, max(minimum, want)))


def decode_attr(value: Any) -> Any:
    """An HDF5 attribute value as a plain Python value (bytes -> str, numpy -> Python)."""
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def decode_metadata(attrs: Mapping[str, Any], path: str) -> dict[str, Any]:
    """Root attributes as a dict, with the JSON-valued ones decoded."""
    out: dict[str, Any] = {}
    for key, value in attrs.items():
        value = decode_attr(value)
        if key in JSON_ATTRS and isinstance(value, str):
            try:
                value = json.loads(value) if value else None
            except json.JSONDecodeError:
                raise DatasetError(f"dataset {path}: attribute {key!r} is not valid JSON; the file is damaged") from None
        out[key] = value
    return out
