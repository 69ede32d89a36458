"""The storage abstraction under the demokit dataset format.

A :class:`Storage` holds named fields (arrays that grow along their first axis) and
root attributes, in one place a backend knows how to reach (an HDF5 file, memory, ...).
The dataset reader (:mod:`demokit.data.dataset`) and writer (:mod:`demokit.data.writer`)
talk only to this interface; the format (which fields, which attributes) lives above it.

A backend is one module with one ``register_storage`` call (see
:mod:`demokit.data.storage.registry` and docs/architecture.md). Contract:

* ``open(location, "r")`` opens for reading; ``"create"`` (refuse an existing
  dataset), ``"overwrite"`` (replace it at commit) and ``"append"`` (extend it) open
  for writing and hold the writer's exclusive lock until ``close``. Opening a location
  that does not hold a dataset of this backend raises :class:`~demokit.errors.DatasetError`.
* Field names are ``/``-separated paths (``observations/pos``, ``episodes/start``).
  :meth:`read` takes ``rows`` as ``None`` (all), a ``slice`` / ``range`` (a contiguous
  range, step 1) or an integer index array (any order, repeats allowed), and returns a
  fresh ``(len(rows), *spec.shape)`` array of ``spec.dtype``.
* Writes (:meth:`create_field`, :meth:`append`, :meth:`truncate`, :meth:`set_attrs`)
  become visible to readers only at :meth:`commit`, atomically: a reader, or a writer
  killed at any moment, sees the last committed state. :meth:`commit` may be called
  several times (periodic commits); :meth:`abort` drops what was written since the
  last commit; :meth:`close` aborts what is uncommitted and releases the lock.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np

Mode = Literal["r", "create", "overwrite", "append"]
Rows = "slice | range | np.ndarray | None"


@dataclass(frozen=True)
class FieldSpec:
    """One stored field: rows of ``shape`` in ``dtype``.

    ``chunks``: rows per storage chunk (None: the backend's choice); ``compression``:
    ``None``, ``"gzip"`` or ``"lzf"`` (a backend without compression stores raw rows).
    """

    name: str
    dtype: np.dtype
    shape: tuple[int, ...] = ()
    chunks: int | None = None
    compression: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "dtype", np.dtype(self.dtype))
        object.__setattr__(self, "shape", tuple(int(s) for s in self.shape))
        if not self.name or self.name.startswith("/") or self.name.endswith("/"):
            raise ValueError(f"bad field name {self.name!r}")
        if self.chunks is not None and self.chunks < 1:
            raise ValueError(f"chunks must be >= 1 rows, got {self.chunks}")

    @property
    def row_bytes(self) -> int:
        return self.dtype.itemsize * int(np.prod(self.shape, dtype=np.int64))


class Storage(abc.ABC):
    """One open dataset location (see the module docstring for the contract)."""

    #: the registered name of the backend
    name: ClassVar[str] = ""

    location: Any  # a pathlib.Path for local files, else the location string
    mode: Mode
    #: writers: whether the location held a dataset when opened (``append`` then extends it)
    existed: bool = False

    # -- opening -----------------------------------------------------------------------

    @classmethod
    @abc.abstractmethod
    def open(cls, location: Any, mode: Mode = "r") -> Storage:
        """Open ``location``; raises DatasetError when it holds no readable dataset (mode ``"r"``)."""

    @classmethod
    def exists(cls, location: Any) -> bool:
        """Whether ``location`` holds something (a dataset or not)."""
        return False

    def __enter__(self) -> Storage:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- reading -----------------------------------------------------------------------

    @abc.abstractmethod
    def attrs(self) -> dict[str, Any]:
        """Root attributes as plain Python values (str, int, float, bool, lists)."""

    @abc.abstractmethod
    def fields(self) -> dict[str, FieldSpec]:
        """Every field, by name, with its dtype, row shape, chunking and compression."""

    @abc.abstractmethod
    def num_rows(self, name: str) -> int:
        """Rows of field ``name`` (KeyError when there is no such field)."""

    def groups(self) -> set[str]:
        """Names of the groups (field-name prefixes) that exist, also empty ones."""
        out: set[str] = set()
        for name in self.fields():
            parts = name.split("/")[:-1]
            out.update("/".join(parts[:i + 1]) for i in range(len(parts)))
        return out

    @abc.abstractmethod
    def read(self, name: str, rows: Any = None) -> np.ndarray:
        """A fresh array of the rows ``rows`` of field ``name`` (see the module docstring)."""

    # -- writing -----------------------------------------------------------------------

    def create_group(self, name: str) -> None:
        """Make ``name`` exist as an (empty) group; a backend without groups may ignore it."""

    @abc.abstractmethod
    def create_field(self, spec: FieldSpec) -> None:
        """Create an empty field."""

    @abc.abstractmethod
    def append(self, name: str, data: np.ndarray) -> None:
        """Add rows at the end of field ``name`` (``data`` already has its dtype and row shape)."""

    @abc.abstractmethod
    def truncate(self, name: str, rows: int) -> None:
        """Cut field ``name`` back to ``rows`` rows (undoing a half-written block)."""

    @abc.abstractmethod
    def set_attrs(self, values: Mapping[str, Any]) -> None:
        """Set root attributes, in the given order (str, int, float, bool or numpy scalars)."""

    @abc.abstractmethod
    def commit(self) -> None:
        """Make everything written so far durable and visible, atomically."""

    @abc.abstractmethod
    def abort(self) -> None:
        """Drop what was written since the last commit."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release the location (abort what is uncommitted; release a writer's lock). Idempotent."""


class RowRuns:
    """A sorted selection of rows held as runs ``[starts[i], stops[i])``: memory O(runs), not O(rows).

    The training rows of a dataset are whole episodes, so a selection of 40M rows in 40,000
    episodes is (at most) 40,000 runs instead of a 320 MB index array. Positions are the
    selection's own order (row ``take(p)`` is the p-th selected row). ``np.asarray(runs)`` gives
    the index array (for code that needs one); :meth:`blocks` cuts the selection at storage-block
    boundaries without it. Adjacent runs are merged; a row selected twice stays twice.
    """

    def __init__(self, starts: Any, stops: Any) -> None:
        starts, stops = np.asarray(starts, np.int64).reshape(-1), np.asarray(stops, np.int64).reshape(-1)
        keep = stops > starts
        starts, stops = starts[keep], stops[keep]
        if starts.size > 1:  # merge runs that continue each other
            cont = starts[1:] == stops[:-1]
            if cont.any():
                first = np.concatenate(([True], ~cont))
                starts, stops = starts[first], stops[np.concatenate((~cont, [True]))]
        self.starts, self.stops = starts, stops
        self._ends = np.cumsum(stops - starts)

    @classmethod
    def of_episodes(cls, starts: np.ndarray, lengths: np.ndarray, episodes: np.ndarray) -> RowRuns:
        """The rows of ``episodes`` (sorted episode indices) of an episode index."""
        e = np.asarray(episodes, np.int64)
        return cls(starts[e], starts[e] + lengths[e])

    @classmethod
    def of(cls, rows: Any, n: int) -> RowRuns:
        """Any row selection :meth:`Storage.read` takes (None: all ``n`` rows), sorted, as runs."""
        if isinstance(rows, RowRuns):
            return rows
        rng = rows_range(rows, n)
        if rng is not None:
            return cls([rng[0]], [rng[1]])
        idx = np.sort(index_array(rows, n))
        if idx.size == 0:
            return cls([], [])
        cuts = np.flatnonzero(np.diff(idx) != 1) + 1
        return cls(idx[np.concatenate(([0], cuts))], idx[np.concatenate((cuts - 1, [idx.size - 1]))] + 1)

    def __len__(self) -> int:
        return int(self._ends[-1]) if self._ends.size else 0

    @property
    def size(self) -> int:
        return len(self)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        lengths = self.stops - self.starts
        out = np.arange(len(self), dtype=np.int64) + np.repeat(self.starts - (self._ends - lengths), lengths)
        return out if dtype is None else out.astype(dtype)

    def single_range(self) -> tuple[int, int] | None:
        """``(start, stop)`` when the selection is one contiguous run."""
        return (int(self.starts[0]), int(self.stops[0])) if self.starts.size == 1 else None

    def take(self, positions: Any) -> np.ndarray:
        """The rows at ``positions`` of the selection."""
        pos = np.asarray(positions, np.int64)
        run = np.searchsorted(self._ends, pos, side="right")
        return self.starts[run] + pos - (self._ends[run] - (self.stops[run] - self.starts[run]))

    def __iter__(self) -> Any:
        return iter(np.asarray(self).tolist())

    def __getitem__(self, key: Any) -> Any:
        """Positions ``lo:hi`` of the selection (step 1) as runs; an integer (array) of positions: its rows."""
        if not isinstance(key, slice):
            pos = np.asarray(key)
            if pos.dtype.kind not in "iu":
                raise TypeError(f"RowRuns positions must be integers or a slice, got {pos.dtype}")
            pos = np.where(pos < 0, pos + len(self), pos)
            if pos.size and (pos.min() < 0 or pos.max() >= len(self)):
                raise IndexError(f"position out of range for {len(self)} selected rows")
            out = self.take(pos)
            return int(out) if out.ndim == 0 else out
        lo, hi, step = key.indices(len(self))
        if step != 1:
            raise ValueError("RowRuns slices take step 1")
        if hi <= lo:
            return RowRuns([], [])
        a = int(np.searchsorted(self._ends, lo, side="right"))
        b = int(np.searchsorted(self._ends, hi - 1, side="right"))
        starts, stops = self.starts[a:b + 1].copy(), self.stops[a:b + 1].copy()
        starts[0] = self.take(lo)
        stops[-1] = self.take(hi - 1) + 1
        return RowRuns(starts, stops)

    def split(self, parts: int) -> list[RowRuns]:
        """``parts`` contiguous shares of the selection, sized as ``np.array_split`` sizes them."""
        n, k = len(self), max(1, int(parts))
        sizes = [n // k + (1 if i < n % k else 0) for i in range(k)]
        edges = np.concatenate(([0], np.cumsum(sizes)))
        return [self[int(edges[i]):int(edges[i + 1])] for i in range(k)]

    def blocks(self, block: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """The selection cut at multiples of ``block`` rows: per storage block holding selected rows (in
        row order), the ``(starts, stops)`` of its pieces."""
        if not self.starts.size:
            return []
        first, last = self.starts // block, (self.stops - 1) // block
        count = last - first + 1
        run = np.repeat(np.arange(self.starts.size), count)
        blk = first[run] + np.arange(int(count.sum())) - np.repeat(np.cumsum(count) - count, count)
        a = np.maximum(self.starts[run], blk * block)
        b = np.minimum(self.stops[run], (blk + 1) * block)
        cuts = np.flatnonzero(np.diff(blk)) + 1
        return list(zip(np.split(a, cuts), np.split(b, cuts)))


def rows_range(rows: Any, n: int) -> tuple[int, int] | None:
    """``(start, stop)`` of a contiguous ``rows`` selection (None, slice or range with step 1, or
    :class:`RowRuns` of one run), else None."""
    if rows is None:
        return 0, n
    if isinstance(rows, RowRuns):
        rng = rows.single_range()
        if rng is not None and not (0 <= rng[0] <= n and rng[1] <= n):
            raise IndexError(f"rows {rng[0]}:{rng[1]} out of range for {n} rows")
        return rng if rng is not None or len(rows) else (0, 0)
    if isinstance(rows, (slice, range)):
        start, stop, step = (rows.indices(n) if isinstance(rows, slice) else (rows.start, rows.stop, rows.step))
        if step != 1:
            return None
        if not (0 <= start <= n and 0 <= stop <= n):
            raise IndexError(f"rows {start}:{stop} out of range for {n} rows")
        return start, max(start, stop)
    return None


def index_array(rows: Any, n: int) -> np.ndarray:
    """``rows`` (anything :meth:`Storage.read` takes) as an int64 index array, checked against ``n`` rows."""
    if isinstance(rows, (slice, range)):
        return np.arange(n, dtype=np.int64)[rows] if isinstance(rows, slice) else np.asarray(rows, dtype=np.int64)
    idx = np.asarray(rows)
    if idx.dtype == bool or (idx.size and idx.dtype.kind not in "iu"):
        raise TypeError(f"rows must be integer indices, a slice or a range, got {idx.dtype} values")
    idx = idx.astype(np.int64, copy=False).reshape(-1)
    if idx.size and (int(idx.min()) < 0 or int(idx.max()) >= n):
        raise IndexError(f"row index {int(idx.min()) if int(idx.min()) < 0 else int(idx.max())} out of range "
                         f"for {n} rows")
    return idx
