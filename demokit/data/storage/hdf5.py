"""The HDF5 storage backend: one ``.h5`` file, one chunked resizable HDF5 dataset per field.

This is the only module of demokit that imports h5py. Besides :class:`HDF5Storage` it
offers the converters plain HDF5 access to foreign files (:func:`open_file`,
:data:`Dataset`, :data:`Group`, :func:`is_hdf5`).

Writing (see docs/dataset-format.md, "Writing"): ``create`` / ``overwrite`` write a
temporary file ``.<name>.tmp-<pid>`` next to the target and move it into place at the
first commit; ``append`` (and every later commit of the same writer) writes into the
file in place through a :class:`~demokit.data.storage.journal.JournaledFile`: the
committed bytes change only at commit, behind a rollback journal, so a commit costs
what it adds, not the size of the file. Every writer holds the exclusive lock
``<path>.lock`` (:mod:`demokit.data.locking`); readers hold a shared ``flock`` on the
file while they have it open and roll back what a dead writer left half-committed.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import shutil
import stat
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from demokit.data.locking import WriterLock, commit_file, lock_path_for, remove_stale_temps, temp_path_for
from demokit.data.storage.base import FieldSpec, Mode, Storage, index_array, rows_range
from demokit.data.storage.journal import JournaledFile, journal_path_for, recover
from demokit.data.storage.registry import register_storage
from demokit.errors import DatasetError, DatasetLockedError

#: h5py's own classes, for code that reads foreign HDF5 files (the converters)
Dataset = h5py.Dataset
Group = h5py.Group
File = h5py.File

_FILL_TIME = h5py.version.version_tuple[:2] >= (3, 12)  # create_dataset(fill_time=...)#: HDF5 filter id of Blosc (registered by hdf5plugin, imported only when a file uses it)
_BLOSC_FILTER = "32001"


def open_file(path: Any, mode: str = "r", **kwargs: Any) -> h5py.File:
    """A plain HDF5 file (foreign formats: D4RL, Minari); raises OSError like h5py."""
    return h5py.File(path, mode, **kwargs)


def is_hdf5(path: Any) -> bool:
    return bool(h5py.is_hdf5(path))


def _decode(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def _load_blosc() -> None:
    """Register the Blosc filter with HDF5 (hdf5plugin, the blosc extra) before a blosc field is read."""
    try:
        import hdf5plugin  # noqa: F401
    except ImportError:
        raise DatasetError("this dataset stores blosc-compressed fields: reading them needs the hdf5plugin "
                           "package (pip install demokit[blosc])") from None


def _datasets(h5: h5py.File) -> dict[str, h5py.Dataset]:
    out: dict[str, h5py.Dataset] = {}
    h5.visititems(lambda name, obj: out.__setitem__(name, obj) if isinstance(obj, h5py.Dataset) else None)
    if any(_BLOSC_FILTER in d._filters for d in out.values() if d.chunks):
        _load_blosc()
    return out


class HDF5Storage(Storage):
    """A demokit dataset in one HDF5 file (see the module docstring)."""

    def __init__(self, path: Path, mode: Mode) -> None:
        self.location = Path(path)
        self.mode = mode
        self._h5: h5py.File | None = None
        self._fo: JournaledFile | None = None  # the file object a writer's h5py writes through
        self._rfd: int | None = None  # a reader's descriptor holding the shared flock
        self._dsets: dict[str, h5py.Dataset] = {}
        self._lock: WriterLock | None = None
        self._tmp = temp_path_for(self.location)
        self.existed = False  # writers: the target held a file when opened

    # -- opening -----------------------------------------------------------------------

    @classmethod
    def exists(cls, location: Any) -> bool:
        return Path(location).exists()

    @classmethod
    def open(cls, location: Any, mode: Mode = "r") -> HDF5Storage:
        st = cls(Path(location), mode)
        if mode == "r":
            st._open_read()
        elif mode in ("create", "overwrite", "append"):
            st._open_write()
        else:
            raise ValueError(f"unknown storage mode {mode!r}")
        return st

    def _open_read(self) -> None:
        p = self.location
        if not p.exists():
            raise DatasetError(f"dataset {p} does not exist; check the path (collect one with `demokit collect`)")
        if p.is_dir():
            raise DatasetError(f"dataset path {p} is a directory, not a .h5 file")
        if not os.access(p, os.R_OK):
            raise DatasetError(f"dataset {p} cannot be read (permission denied); check its permissions")
        try:
            ok = h5py.is_hdf5(p)
        except OSError as exc:
            raise DatasetError(f"dataset {p} cannot be read: {exc}") from None
        if not ok:
            raise DatasetError(f"{p} is not an HDF5 file (expected a demokit .h5 dataset)")
        _clean_after_dead_writer(p)
        try:
            self._rfd = os.open(p, os.O_RDONLY)
            fcntl.flock(self._rfd, fcntl.LOCK_SH)  # a writer applies its commit under LOCK_EX: wait for it
        except OSError as exc:
            self._close_rfd()
            raise DatasetError(f"dataset {p} cannot be read: {exc.strerror}") from None
        try:
            # no chunk cache: reads are whole rows ranges, chunks go straight into our arrays
            self._h5 = h5py.File(p, "r", rdcc_nbytes=0)
        except OSError as exc:
            self._close_rfd()
            raise DatasetError(f"dataset {p} cannot be opened as HDF5 ({exc}); the file is damaged or "
                               f"not a demokit dataset") from None
        self._dsets = _datasets(self._h5)

    def _close_rfd(self) -> None:
        fd, self._rfd = self._rfd, None
        if fd is not None:
            os.close(fd)

    def _open_write(self) -> None:
        p = self.location
        if p.is_dir():
            raise DatasetError(f"dataset path {p} is a directory; give a file name such as {p / 'demos.h5'}")
        if self.mode == "create" and p.exists():
            raise DatasetError(f"dataset {p} already exists; use --append to add episodes to it "
                               f"or --force to replace it (mode='append' / 'overwrite')")
        p.parent.mkdir(parents=True, exist_ok=True)
        self._lock = WriterLock(p)
        self._lock.acquire()
        try:
            if self.mode == "create" and p.exists():
                raise DatasetError(f"dataset {p} already exists; use --append to add episodes to it "
                                   f"or --force to replace it (mode='append' / 'overwrite')")
            remove_stale_temps(p)
            if journal_path_for(p).exists():
                recover(p)  # a writer died mid-transaction: back to its last commit
            self.existed = p.exists()
        except BaseException:
            self._lock.release()
            self._lock = None
            raise

    def _begin(self) -> h5py.File:
        """The writable file of this transaction (opened on first use)."""
        if self._h5 is None:
            try:
                self._tmp.unlink()
            except FileNotFoundError:
                pass
            # no chunk cache: whole chunks go straight to the file, nothing is left to flush at close
            with self._disk_errors():
                if self.mode == "append" and self.existed:
                    self._fo = JournaledFile(self.location)
                    self._h5 = h5py.File(self._fo, "r+", rdcc_nbytes=0)
                else:  # a new file: nothing to protect, HDF5's own driver
                    self._h5 = h5py.File(self._tmp, "w", rdcc_nbytes=0)
            self._dsets = _datasets(self._h5)
        return self._h5

    @contextlib.contextmanager
    def _disk_errors(self) -> Iterator[None]:
        """A full disk (however h5py reports it) becomes one DatasetError naming the path and the space."""
        try:
            yield
        except Exception as exc:
            failure = self._fo.failure if self._fo is not None else None
            if failure is None and isinstance(exc, OSError):
                failure = exc
            if failure is not None and (failure.errno in (errno.ENOSPC, errno.EDQUOT)
                                        or "No space left on device" in str(failure)):
                try:
                    free = f"{shutil.disk_usage(self.location.parent).free / 2**20:,.1f} MiB free"
                except OSError:
                    free = "free space unknown"
                raise DatasetError(f"no space left on the device of {self.location} ({free}): the dataset keeps "
                                   f"its last committed state; free some space or write to another disk") from None
            raise

    # -- reading -----------------------------------------------------------------------

    def _file(self) -> h5py.File:
        return self._begin() if self.mode != "r" else self._h5

    def attrs(self) -> dict[str, Any]:
        return {k: _decode(v) for k, v in self._file().attrs.items()}

    def fields(self) -> dict[str, FieldSpec]:
        self._file()
        out = {}
        for name, d in self._dsets.items():
            if d.ndim == 0:
                continue  # a scalar is no field (a damaged file): reported as missing
            compression = "blosc" if _BLOSC_FILTER in d._filters else d.compression
            out[name] = FieldSpec(name, d.dtype, d.shape[1:], chunks=d.chunks[0] if d.chunks else None,
                                  compression=compression)
        return out

    def groups(self) -> set[str]:
        out: set[str] = set()
        self._file().visititems(lambda name, obj: out.add(name) if isinstance(obj, h5py.Group) else None)
        return out

    def num_rows(self, name: str) -> int:
        self._file()
        return int(self._dsets[name].shape[0])

    def read(self, name: str, rows: Any = None) -> np.ndarray:
        self._file()
        d = self._dsets[name]
        n = int(d.shape[0])
        try:
            rng = rows_range(rows, n)
            if rng is not None:
                out = np.empty((rng[1] - rng[0], *d.shape[1:]), dtype=d.dtype)
                if out.size:
                    d.read_direct(out, source_sel=np.s_[rng[0]:rng[1]]) if rng != (0, n) else d.read_direct(out)
                return out
            return self._gather(d, index_array(rows, n))
        except OSError as exc:
            raise DatasetError(f"dataset {self.location}: cannot read '{name}' ({exc}); the file is damaged") from None

    @staticmethod
    def _gather(d: h5py.Dataset, idx: np.ndarray) -> np.ndarray:
        """Rows ``idx`` (any order): one read per touched chunk, of the span of the rows wanted there."""
        out = np.empty((idx.size, *d.shape[1:]), dtype=d.dtype)
        if idx.size == 0:
            return out
        order = np.argsort(idx, kind="stable")
        sidx = idx[order]
        chunk = d.chunks[0] if d.chunks else max(1, int(d.shape[0]))
        cid = sidx // chunk
        cuts = np.flatnonzero(np.diff(cid)) + 1
        for a, b in zip(np.concatenate(([0], cuts)), np.concatenate((cuts, [sidx.size]))):
            lo, hi = int(sidx[a]), int(sidx[b - 1]) + 1
            span = np.empty((hi - lo, *d.shape[1:]), dtype=d.dtype)
            if span.size:
                d.read_direct(span, source_sel=np.s_[lo:hi])
            out[order[a:b]] = span[sidx[a:b] - lo]
        return out

    # -- writing -----------------------------------------------------------------------

    def create_group(self, name: str) -> None:
        self._begin().create_group(name)

    def create_field(self, spec: FieldSpec) -> None:
        h5 = self._begin()
        # Every row within the extent is written, so HDF5 need not fill new chunks first: without a
        # fill it writes whole and partial chunks straight from our buffer (no chunk-sized staging
        # copy, no read-modify-write at block ends). Compressed chunks are always staged, so they
        # keep HDF5's default. (h5py < 3.12 cannot set the fill time: the default, just slower.)
        kwargs: dict[str, Any] = {"fill_time": "never"} if _FILL_TIME else {}
        if spec.compression == "blosc":
            import hdf5plugin

            kwargs = dict(hdf5plugin.Blosc(cname="lz4", clevel=5, shuffle=hdf5plugin.Blosc.SHUFFLE))
        elif spec.compression is not None:
            kwargs = {"compression": spec.compression, "shuffle": spec.dtype.itemsize > 1}
        chunks = (spec.chunks, *spec.shape) if spec.chunks else True
        with self._disk_errors():
            self._dsets[spec.name] = h5.create_dataset(spec.name, shape=(0, *spec.shape),
                                                       maxshape=(None, *spec.shape), dtype=spec.dtype, chunks=chunks,
                                                       **kwargs)

    def append(self, name: str, data: np.ndarray) -> None:
        """One resize and one HDF5 write (low-level: no h5py selection cost)."""
        self._begin()
        dset = self._dsets[name]
        n, k = dset.shape[0], data.shape[0]
        if k == 0:
            return
        data = np.ascontiguousarray(data, dtype=dset.dtype)
        with self._disk_errors():
            dset.resize(n + k, axis=0)
            fspace = dset.id.get_space()
            fspace.select_hyperslab((n,) + (0,) * (data.ndim - 1), data.shape)
            _write_rows(dset, fspace, data)

    def truncate(self, name: str, rows: int) -> None:
        self._begin()
        self._dsets[name].resize(int(rows), axis=0)

    def set_attrs(self, values: Mapping[str, Any]) -> None:
        a = self._begin().attrs
        with self._disk_errors():
            for key, value in values.items():
                a[key] = value

    def commit(self) -> None:
        """Make this transaction the file's committed state.

        In place (appending): close HDF5, then the journaled overlay commit. A new file:
        close it and move it onto the target atomically (an existing file keeps its
        permissions). Either way a later transaction appends in place.
        """
        if self.mode == "r" or self._lock is None:
            raise DatasetError(f"dataset {self.location} is not open for writing")
        self._begin()
        fo = self._fo
        with self._disk_errors():
            self._close_h5(check=True)
            if fo is not None:
                fo.commit()
        if fo is not None:
            fo.close()
            self._fo = None
        else:
            if self.mode != "create" and self.location.exists():  # keep the replaced file's permissions
                os.chmod(self._tmp, stat.S_IMODE(self.location.stat().st_mode))
            commit_file(self._tmp, self.location, no_clobber=self.mode == "create" and not self.existed)
        self.existed = True
        self.mode = "append"  # a later transaction extends what was committed

    def abort(self) -> None:
        self._close_h5()
        fo, self._fo = self._fo, None
        if fo is not None:
            fo.abort()
            fo.close()
        else:
            try:
                self._tmp.unlink()
            except OSError:
                pass

    def close(self) -> None:
        if self.mode == "r":
            self._close_h5()
            self._close_rfd()
            return
        self.abort()
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def _close_h5(self, check: bool = False) -> None:
        """Close the open file; with ``check`` a failure (e.g. a full disk at the last flush) propagates."""
        self._dsets = {}  # h5py closes every still-referenced object at file close: drop them first
        h5, self._h5 = self._h5, None
        if h5 is not None:
            try:
                h5.close()
            except Exception:
                if check:
                    raise


def _write_rows(dset: h5py.Dataset, fspace: Any, data: np.ndarray) -> None:
    """One HDF5 write of ``data`` into the selection ``fspace`` (one place, so that tests can fill the disk)."""
    dset.id.write(h5py.h5s.create_simple(data.shape), fspace, data)


def _clean_after_dead_writer(path: Path) -> None:
    """A reader's share of the cleaning: roll back what a writer killed mid-commit left (a journal)
    and remove a stale lock sidecar, when no writer holds the lock now."""
    if not (journal_path_for(path).exists() or lock_path_for(path).exists()):
        return
    lock = WriterLock(path)
    try:
        lock.acquire()
    except (DatasetLockedError, DatasetError):
        return  # a live writer (its transaction has not touched the committed bytes), or no right to clean
    try:
        if journal_path_for(path).exists():
            try:
                recover(path)
            except OSError as exc:
                raise DatasetError(f"dataset {path} was left mid-commit by a writer that died and cannot be rolled "
                                   f"back ({exc.strerror}); open it once with write permission") from None
    finally:
        lock.release()


register_storage("hdf5", HDF5Storage, suffixes=(".h5", ".hdf5"))
