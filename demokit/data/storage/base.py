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


def rows_range(rows: Any, n: int) -> tuple[int, int] | None:
    """``(start, stop)`` of a contiguous ``rows`` selection (None, slice or range with step 1), else None."""
    if rows is None:
        return 0, n
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
