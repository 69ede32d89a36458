"""Minari 0.5's arrow and parquet storage (``data_format`` ``"arrow"`` / ``"parquet"``), read and written with pyarrow.

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

:func:`write_episode` writes one episode in that layout, as Minari's storage writes it (one part file
``part-0.<format>``; images raw, never JPEG-encoded: the dataset says ``jpeg_encoding: false``).

pyarrow is imported when such a dataset is read or written (one :class:`UserError` naming what to
install when it is missing); minari itself is not needed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from gymnasium import spaces

from demokit.data import format as fmt
from demokit.data.convert.common import METADATA_FILE, is_minari_episode_dir, read_json_object
from demokit.errors import UserError
from demokit.paths import write_file

#: the data formats of Minari's pyarrow storages
ARROW_FORMATS = ("arrow", "parquet")
#: the columns that Minari pads with one row after the last step
PADDED = ("actions", "rewards", "terminations", "truncations")
#: name prefixes of the files in an episode directory that are not part files (Minari's loader skips them too)
NOT_PARTS = (".", "_", METADATA_FILE)


def pyarrow_for(what: str) -> Any:
    """The pyarrow module (with its ipc and parquet parts); one UserError saying that ``what`` needs it
    and how to install it when it is missing."""
    try:
        import pyarrow
        import pyarrow.ipc  # noqa: F401
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        raise UserError(f"{what} needs pyarrow: pip install 'demokit[minari]' (or pip install pyarrow)") from None
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
        self.pa = pyarrow_for(f"reading a Minari dataset stored with data_format {data_format!r}")
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

    def episode(self, eid: int, *, whole: bool = False) -> tuple[Group, str]:
        """(the episode as a group, the name to give in messages); ``whole``: every column will be read,
        so they are read at once."""
        ep_dir = self.path / str(eid)
        where = str(ep_dir)
        parts = sorted(p for p in ep_dir.iterdir() if p.is_file() and not p.name.startswith(NOT_PARTS))
        if not parts:
            raise UserError(f"{where} holds no {self.format} files; the episode is missing (the dataset is "
                            f"incomplete)")
        table = _Table(self.pa, parts, self.format, where, whole=whole)
        members: dict[str, Any] = {}
        for field in table.schema:
            rows = max(table.num_rows - 1, 0) if field.name in PADDED else table.num_rows
            members[field.name] = _node(field, self.spaces.get(field.name), rows,
                                        lambda name=field.name: table.column(name), f"{where}/{field.name}")
        if not isinstance(members.get("infos"), Group):
            members["infos"] = Group({})  # no infos recorded (or none but {}): Minari's loader gives {}
        return Group(members, _episode_attrs(ep_dir / METADATA_FILE)), where


class _Table:
    """An episode's part files, each opened once: schema and row count from the files, columns read when
    asked for. Arrow files are memory-mapped (a column costs no copy); parquet columns are decoded one by
    one, or all at once when the episode is read ``whole``."""

    def __init__(self, pa: Any, parts: list[Path], data_format: str, where: str, *, whole: bool) -> None:
        self.pa, self.where = pa, where
        self._table: Any = None  # all columns, once read
        self._files: list[Any] = []  # the open parquet files, while columns are read one by one
        self._columns: dict[str, Any] = {}
        with self._reading():
            if data_format == "parquet":
                files = [pa.parquet.ParquetFile(str(p)) for p in parts]
                self.schema = files[0].schema_arrow
                self.num_rows = sum(f.metadata.num_rows for f in files)
                if whole:
                    self._table = self._concat([f.read() for f in files])
                else:
                    self._files = files
            else:
                tables = []
                for p in parts:
                    with pa.memory_map(str(p)) as source:  # closed at once: the table keeps the mapping
                        tables.append(pa.ipc.open_file(source).read_all())
                self._table = self._concat(tables)
                self.schema = self._table.schema
                self.num_rows = self._table.num_rows

    @contextmanager
    def _reading(self) -> Iterator[None]:
        try:
            yield
        except (OSError, self.pa.ArrowException) as exc:
            raise UserError(f"{self.where}: its files cannot be read ({type(exc).__name__}: {exc})") from None

    def _concat(self, tables: list[Any]) -> Any:
        return tables[0] if len(tables) == 1 else self.pa.concat_tables(tables)

    def column(self, name: str) -> Any:
        if name not in self._columns:
            with self._reading():
                if self._table is not None:
                    column = self._table.column(name)
                else:
                    column = self._concat([f.read(columns=[name]) for f in self._files]).column(name)
                self._columns[name] = column.combine_chunks()
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


# ---------------------------------------------------------------------------------------
# writing


def write_episode(ep_dir: Path, data_format: str, episode_spaces: tuple[spaces.Space, spaces.Space], *,
                  metadata: Mapping[str, Any], observations: Any, actions: Any, rewards: np.ndarray,
                  terminations: np.ndarray, truncations: np.ndarray,
                  infos: Sequence[tuple[tuple[str, ...], np.ndarray]] | None) -> None:
    """Write one episode as Minari's ``ArrowStorage`` / ``ParquetStorage`` does: the directory ``ep_dir``
    with the table ``part-0.<data_format>`` (the layout in the module docstring; actions, rewards and the
    flags padded with one zero row; the ``infos`` column only when there are infos) and ``metadata.json``
    (``metadata``, its ``a/b`` keys nested again as ``{"a": {"b": ...}}``). ``observations`` and ``infos``
    have T+1 rows, the rest T. Each file is built in memory and written with plain file I/O: a full disk
    is one OSError naming the file."""
    pa = pyarrow_for(f"writing a Minari dataset with data_format {data_format!r}")
    observation_space, action_space = episode_spaces
    columns = {"observations": _encode(pa, observation_space, observations, pad=0),
               "actions": _encode(pa, action_space, actions, pad=1)}
    for name, values in (("rewards", rewards), ("terminations", terminations), ("truncations", truncations)):
        columns[name] = pa.array(np.pad(np.asarray(values), (0, 1)))
    if infos:
        columns["infos"] = _encode_infos(pa, infos)
    table = pa.table(columns)
    sink = pa.BufferOutputStream()
    if data_format == "parquet":
        pa.parquet.write_table(table, sink)
    else:
        with pa.ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)
    ep_dir.mkdir()
    write_file(ep_dir / f"part-0.{data_format}", memoryview(sink.getvalue()))
    write_file(ep_dir / METADATA_FILE, fmt.to_json(_nested(metadata)).encode())


def _encode(pa: Any, space: spaces.Space, batch: Any, *, pad: int) -> Any:
    """A batch of ``space`` values (``pad`` zero rows added) as Minari's column: a struct per Dict (a field
    per key) or Tuple (fields "0", "1", ...), Discrete values as int64, the rest as fixed-size lists of
    the flattened value in the space's dtype."""
    if isinstance(space, spaces.Dict):
        return pa.StructArray.from_arrays([_encode(pa, sub, batch[key], pad=pad) for key, sub in space.spaces.items()],
                                          names=list(space.spaces))
    if isinstance(space, spaces.Tuple):
        return pa.StructArray.from_arrays([_encode(pa, sub, batch[i], pad=pad) for i, sub in enumerate(space.spaces)],
                                          names=[str(i) for i in range(len(space.spaces))])
    values = np.asarray(batch, dtype=space.dtype)
    if isinstance(space, spaces.Discrete):
        return pa.array(np.pad(values.reshape(-1), (0, pad)))
    rows = np.pad(values.reshape(len(values), -1), ((0, pad), (0, 0)))
    return pa.FixedSizeListArray.from_arrays(pa.array(rows.reshape(-1)), rows.shape[1])


def _encode_infos(pa: Any, infos: Sequence[tuple[tuple[str, ...], np.ndarray]]) -> Any:
    """The ``infos`` struct column of ``(path parts, rows)`` pairs (nested parts: nested structs)."""
    tree: dict[str, Any] = {}
    for parts, rows in infos:
        node = tree
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = rows
    return _info_struct(pa, tree)


def _info_struct(pa: Any, tree: Mapping[str, Any]) -> Any:
    """A struct of infos as Minari stores them: scalars per row as plain columns, arrays as fixed-size
    lists whose field metadata ``shape`` gives the per-row shape, members ``_index_0``, ``_index_1``, ...
    (a tuple of infos) as fields "0", "1", ... (the reader names those back)."""
    names = list(tree)
    tuple_names = [f"_index_{i}" for i in range(len(names))]
    labels = dict(zip(tuple_names, map(str, range(len(names))))) if set(names) == set(tuple_names) else {}
    arrays, fields = [], []
    for name in (tuple_names if labels else names):
        value, label = tree[name], labels.get(name, name)
        if isinstance(value, Mapping):
            array = _info_struct(pa, value)
            field = pa.field(label, array.type)
        elif value.ndim == 1:
            array = pa.array(value)
            field = pa.field(label, array.type)
        else:
            array = pa.FixedSizeListArray.from_arrays(pa.array(value.reshape(-1)), math.prod(value.shape[1:]))
            field = pa.field(label, array.type, metadata={"shape": ",".join(map(str, value.shape[1:]))})
        arrays.append(array)
        fields.append(field)
    return pa.StructArray.from_arrays(arrays, fields=fields)


def _nested(flat: Mapping[str, Any]) -> dict[str, Any]:
    """Inverse of the flattening in :func:`_episode_attrs`: ``{"a/b": 1}`` -> ``{"a": {"b": 1}}``."""
    out: dict[str, Any] = {}
    for key, value in flat.items():
        *parents, last = key.split("/")
        node = out
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return out
