"""Minari 0.5's arrow and parquet storage (``data_format`` ``"arrow"`` / ``"parquet"``), read with pyarrow.

Layout (what Minari's ``ArrowStorage`` / ``ParquetStorage`` write): ``data/metadata.json`` as for
the HDF5 storage, and one directory ``data/<episode id>/`` per episode holding the episode's
table in part files (``part-0.arrow`` / ``part-0.parquet``; every file there except hidden ones
and ``metadata.json``) and the episode's ``metadata.json`` (``id``, ``total_steps``, ``seed``,
``options``, the ``rewards_*`` statistics). The table has T+1 rows and the columns
``observations`` (the reset observation, then one per step), ``actions``, ``rewards``,
``terminations``, ``truncations`` (T rows, padded with a last row that is not data) and, when
the episode recorded non-empty infos, ``infos`` (one row per observation). Dict values are
struct columns with a field per key, Tuple values structs with fields ``"0"``, ``"1"``, ...;
Box / MultiDiscrete / MultiBinary values are fixed-size lists of the flattened value, Discrete
values integers, JPEG-encoded images binary. Array infos are fixed-size lists whose field
metadata ``shape`` gives the per-step shape.

:class:`ArrowEpisodes` shows each episode the way :mod:`demokit.data.convert.minari` sees an
episode group of the HDF5 storage, so both storages are checked and read by the same code: a
:class:`Group` of members ``observations/pos``, ``actions/_index_1``, ``infos/stats/dist``, ...
(Tuple fields named ``_index_<i>`` as in the HDF5 storage; so are the fields of an infos struct
whose fields are exactly ``"0"``, ``"1"``, ...: Minari's tuple of infos), :class:`Column` leaves whose shape
is known from the schema (actions to truncations without the padding row), and the episode's
metadata as the group's attributes (dict values such as ``options`` flattened to
``options/<key>``, as Minari stores them as HDF5 attributes). An episode without an ``infos``
column has an empty ``infos`` group: Minari's own loader returns ``{}`` for it.

pyarrow is imported when such a dataset is read (one :class:`UserError` naming what to install
when it is missing); minari itself is not needed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from gymnasium import spaces

from demokit.data.convert.common import METADATA_FILE, is_minari_episode_dir, read_json_object
from demokit.errors import UserError

#: the data formats of Minari's pyarrow storages
ARROW_FORMATS = ("arrow", "parquet")
#: the columns that Minari pads with one row after the last step
PADDED = ("actions", "rewards", "terminations", "truncations")
#: name prefixes of the files in an episode directory that are not part files (Minari's loader skips them too)
NOT_PARTS = (".", "_", METADATA_FILE)


def _pyarrow(data_format: str) -> Any:
    try:
        import pyarrow
        import pyarrow.dataset  # noqa: F401
    except ImportError:
        raise UserError(f"reading a Minari dataset stored with data_format {data_format!r} needs pyarrow: "
                        f"pip install 'demokit[minari]' (or pip install pyarrow)") from None
    return pyarrow


class Group(Mapping):
    """Members (:class:`Group` or :class:`Column`) found by ``"a/b"`` paths, like an h5py group; ``attrs``."""

    def __init__(self, members: Mapping[str, Any], attrs: Mapping[str, Any] | None = None) -> None:
        self._members = dict(members)
        self.attrs = dict(attrs or {})

    def __getitem__(self, path: str) -> Any:
        if path in self._members:  # a member (whose name may hold "/" itself)
            return self._members[path]
        node: Any = self
        for part in path.split("/"):
            if not isinstance(node, Group) or part not in node._members:
                raise KeyError(path)
            node = node._members[part]
        return node

    def __iter__(self) -> Iterator[str]:
        return iter(self._members)

    def __len__(self) -> int:
        return len(self._members)


class Column:
    """One leaf: ``shape`` (rows, *per-step shape) and ``dtype`` from the schema; ``col[()]`` reads it."""

    def __init__(self, load: Callable[[], Any], rows: int, step_shape: tuple[int, ...], dtype: np.dtype,
                 kind: str, where: str) -> None:
        self._load, self._kind, self._where = load, kind, where
        self.shape, self.dtype = (rows, *step_shape), dtype
        self.ndim = len(self.shape)
        self._values: np.ndarray | None = None

    def __getitem__(self, key: Any) -> Any:
        if self._values is None:
            self._values = self._read()
        return self._values[key]

    def _read(self) -> np.ndarray:
        rows = self.shape[0]
        arr = self._load().slice(0, rows)
        if self._kind == "other":  # not numeric: kept as objects (the reader skips such infos)
            return _objects(arr.to_pylist())
        if arr.null_count or (self._kind == "list" and arr.flatten().null_count):
            raise UserError(f"{self._where} holds missing (null) values; the dataset is damaged")
        if self._kind == "binary":  # JPEG bytes: one uint8 array per row, as the HDF5 storage holds them
            return _objects([np.frombuffer(b, dtype=np.uint8) for b in arr.to_pylist()])
        values = arr.flatten() if self._kind == "list" else arr
        return values.to_numpy(zero_copy_only=False).astype(self.dtype, copy=False).reshape(self.shape)


def _objects(values: list[Any]) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    for i, value in enumerate(values):
        out[i] = value
    return out


class ArrowEpisodes:
    """The episodes of a Minari arrow / parquet data directory, each as a :class:`Group`."""

    unit = "episode directories"

    def __init__(self, data_dir: Path, data_format: str, observation_space: spaces.Space,
                 action_space: spaces.Space) -> None:
        self.pa = _pyarrow(data_format)
        self.path, self.format = data_dir, data_format
        self.spaces = {"observations": observation_space, "actions": action_space}

    @contextmanager
    def open(self) -> Iterator[ArrowEpisodes]:
        yield self  # every episode is read from its own files

    def ids(self) -> list[int]:
        ids = []
        for child in self.path.iterdir():
            if is_minari_episode_dir(child):
                ids.append(int(child.name))
            elif child.is_dir() and not child.name.startswith(NOT_PARTS):
                raise UserError(f"{self.path}: unexpected directory {child.name!r} (the episodes of Minari's "
                                f"{self.format} storage are directories named by episode id)")
        return sorted(ids)

    def episode(self, eid: int) -> tuple[Group, str]:
        """(the episode as a group, the name to give in messages)."""
        ep_dir = self.path / str(eid)
        where = str(ep_dir)
        parts = sorted(p for p in ep_dir.iterdir() if p.is_file() and not p.name.startswith(NOT_PARTS))
        if not parts:
            raise UserError(f"{where} holds no {self.format} files; the episode is missing (the dataset is "
                            f"incomplete)")
        table = _Table(self.pa, parts, self.format, where)
        members: dict[str, Any] = {}
        for field in table.schema:
            rows = max(table.num_rows - 1, 0) if field.name in PADDED else table.num_rows
            members[field.name] = _node(field, self.spaces.get(field.name), rows,
                                        lambda name=field.name: table.column(name), f"{where}/{field.name}")
        if not isinstance(members.get("infos"), Group):
            members["infos"] = Group({})  # no infos recorded (or none but {}): Minari's loader gives {}
        return Group(members, _episode_attrs(ep_dir / METADATA_FILE)), where


class _Table:
    """An episode's part files: schema and row count up front, columns read when asked for."""

    def __init__(self, pa: Any, parts: list[Path], data_format: str, where: str) -> None:
        self.pa, self.where, self._columns = pa, where, {}
        with self._reading():
            self._dataset = pa.dataset.dataset([str(p) for p in parts], format=data_format)
            self.schema = self._dataset.schema
            self.num_rows = int(self._dataset.count_rows())

    @contextmanager
    def _reading(self) -> Iterator[None]:
        try:
            yield
        except (OSError, self.pa.ArrowException) as exc:
            raise UserError(f"{self.where}: its files cannot be read ({type(exc).__name__}: {exc})") from None

    def column(self, name: str) -> Any:
        if name not in self._columns:
            with self._reading():
                self._columns[name] = self._dataset.to_table(columns=[name]).column(name).combine_chunks()
        return self._columns[name]


def _node(field: Any, space: spaces.Space | None, rows: int, load: Callable[[], Any], where: str) -> Group | Column:
    """The member for an arrow ``field``: a :class:`Group` for a struct, else a :class:`Column`;
    ``space`` (when known) names Tuple fields and shapes Box-like leaves."""
    import pyarrow as pa

    kind = field.type
    if pa.types.is_struct(kind):
        is_tuple = isinstance(space, spaces.Tuple) or (space is None and _numbered(kind))
        members = {}
        for i in range(kind.num_fields):
            child = kind.field(i)
            sub = _subspace(space, child.name)
            name = f"_index_{child.name}" if is_tuple else child.name
            members[name] = _node(child, sub, rows, lambda i=i: load().field(i), f"{where}/{name}")
        return Group(members)
    if pa.types.is_fixed_size_list(kind) and _numeric(kind.value_type):
        return Column(load, rows, _step_shape(kind.list_size, space, field.metadata), _dtype(kind.value_type),
                      "list", where)
    if _numeric(kind):
        return Column(load, rows, (), _dtype(kind), "flat", where)
    if pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
        return Column(load, rows, (), np.dtype(object), "binary", where)
    return Column(load, rows, (), np.dtype(object), "other", where)


def _numbered(kind: Any) -> bool:
    """A struct with fields "0", "1", ...: how Minari stores a tuple (of infos)."""
    return kind.num_fields > 0 and [kind.field(i).name for i in range(kind.num_fields)] == [
        str(i) for i in range(kind.num_fields)]


def _subspace(space: spaces.Space | None, name: str) -> spaces.Space | None:
    if isinstance(space, spaces.Dict):
        return space.spaces.get(name)
    if isinstance(space, spaces.Tuple) and name.isdigit() and int(name) < len(space.spaces):
        return space.spaces[int(name)]
    return None


def _numeric(kind: Any) -> bool:
    import pyarrow as pa

    return pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind)


def _dtype(kind: Any) -> np.dtype:
    return np.dtype(kind.to_pandas_dtype())


def _step_shape(size: int, space: spaces.Space | None, metadata: Mapping[bytes, bytes] | None) -> tuple[int, ...]:
    """The per-step shape of a fixed-size list of ``size`` values: the space's shape, else the
    field metadata ``shape`` (array infos), when it holds ``size`` values; else ``(size,)``."""
    if space is not None and space.shape is not None and math.prod(space.shape) == size:
        return tuple(space.shape)
    text = (metadata or {}).get(b"shape")
    if text is not None:
        try:
            shape = tuple(int(d) for d in text.decode().split(",")) if text.strip() else ()
        except (UnicodeDecodeError, ValueError):
            shape = None
        if shape is not None and math.prod(shape) == size:
            return shape
    return (size,)


def _episode_attrs(path: Path) -> dict[str, Any]:
    """An episode's ``metadata.json`` as HDF5-style attributes (nested dicts as ``a/b``); {} when absent."""
    if not path.exists():
        return {}

    def flat(d: Mapping[str, Any], prefix: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in d.items():
            if isinstance(value, Mapping):
                out.update(flat(value, f"{prefix}{key}/"))
            elif value is not None:  # an HDF5 attribute cannot be null
                out[f"{prefix}{key}"] = value
        return out

    return flat(read_json_object(path), "")
