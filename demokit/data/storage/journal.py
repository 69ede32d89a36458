"""Crash-safe in-place writes of one file: a page overlay plus a rollback journal.

:class:`JournaledFile` is the file object the HDF5 backend hands h5py (its ``fileobj``
driver) when it writes. ``base`` is the file's committed length:

* a write at or beyond ``base`` goes straight to the file (new space: nothing
  committed lives there);
* a write below ``base`` (HDF5 updating its metadata, the last partly filled chunk)
  goes to an in-memory overlay of the affected pages; reads see the overlay.

Until :meth:`JournaledFile.commit` the committed bytes ``[0, base)`` are never touched,
so a process killed at any moment leaves them as they were; only a tail beyond ``base``
may have grown. The journal ``.<name>.journal`` (written and fsynced when the
transaction starts) records ``base``; at commit the original bytes of every overlaid
page are appended to it, with a checksummed trailer, and fsynced *before* the overlay
is written over the file. The journal's removal is the commit point. Recovery
(:func:`recover`, run by the next writer or reader of the file) therefore either finds
no journal (nothing to do), or a journal without a valid trailer (the file below
``base`` is untouched: cut the tail), or a complete one (write the original pages back,
cut the tail): in every case the file returns to its last committed state, byte for
byte. The file's own lock (``flock``; exclusive while the overlay is applied, shared
while a reader has it open) keeps readers from seeing a half-applied overlay.
"""

from __future__ import annotations

import errno
import fcntl
import os
import struct
import time
import zlib
from pathlib import Path

from demokit.data.locking import fsync_path
from demokit.errors import DatasetError, DatasetLockedError

PAGE = 4096
_HEAD = b"DMKJRNL1"
_TAIL = b"DMKJEND1"
_REC = struct.Struct("<QQ")  # offset, length
#: how long a commit waits for readers that hold the file open
COMMIT_WAIT_S = 30.0


def journal_path_for(path: Path) -> Path:
    return path.with_name(f".{path.name}.journal")


class JournaledFile:
    """A read/write file object over ``path`` whose committed bytes change only at :meth:`commit`."""

    def __init__(self, path: Path, *, journal: bool = True) -> None:
        self.path = Path(path)
        self.fd = os.open(self.path, os.O_RDWR)
        self.base = os.fstat(self.fd).st_size
        self.size = self.base
        self.pos = 0
        self.pages: dict[int, bytearray] = {}
        self.cut: int | None = None  # a truncation below base, applied at commit
        self.failure: OSError | None = None  # the first failed OS write (e.g. ENOSPC)
        self._journaled = False  # the original pages are in the journal: the file may get the overlay
        self.journal = journal_path_for(self.path) if journal else None
        if self.journal is not None:
            # Not fsynced: it only needs to reach the disk before the overlay does (the commit's fsync of the
            # journal sees to that). Lost in a power cut, it leaves a tail beyond base that the committed HDF5
            # metadata does not reach: the committed bytes are intact either way.
            try:
                _write_all(self.journal, _HEAD + struct.pack("<Q", self.base), sync=False)
            except OSError as exc:
                self._fail(exc)
                os.close(self.fd)
                try:
                    os.unlink(self.journal)
                except OSError:
                    pass
                raise

    # -- the file object h5py needs --------------------------------------------------

    def seek(self, offset: int, whence: int = 0) -> int:
        self.pos = offset if whence == 0 else (self.pos + offset if whence == 1 else self.size + offset)
        return self.pos

    def tell(self) -> int:
        return self.pos

    def readinto(self, buf: bytearray | memoryview) -> int:
        data = self._read_at(self.pos, len(buf))
        memoryview(buf).cast("B")[:len(data)] = data
        self.pos += len(data)
        return len(data)

    def read(self, n: int = -1) -> bytes:
        n = max(0, self.size - self.pos) if n is None or n < 0 else n
        data = self._read_at(self.pos, n)
        self.pos += len(data)
        return data

    def write(self, data: bytes | memoryview) -> int:
        view = memoryview(data).cast("B")
        n = len(view)
        off = self.pos
        low = max(0, min(off + n, self.base) - off)  # bytes that land below base
        if low:
            self._overlay(off, view[:low])
        if low < n:
            self._pwrite(view[low:], off + low)
        self.pos = off + n
        self.size = max(self.size, self.pos)
        return n

    def truncate(self, size: int | None = None) -> int:
        size = self.pos if size is None else int(size)
        if size < self.base:
            self.cut = size if self.cut is None else min(self.cut, size)
        else:
            try:
                os.ftruncate(self.fd, size)
            except OSError as exc:
                self._fail(exc)
                raise
        self.size = size
        return size

    def flush(self) -> None:
        pass

    # -- overlay ---------------------------------------------------------------------

    def _page(self, p: int) -> bytearray:
        page = self.pages.get(p)
        if page is None:
            start = p * PAGE
            page = self.pages[p] = bytearray(os.pread(self.fd, min(PAGE, self.base - start), start))
        return page

    def _overlay(self, off: int, view: memoryview) -> None:
        done = 0
        while done < len(view):
            p, inner = divmod(off + done, PAGE)
            page = self._page(p)
            k = min(len(page) - inner, len(view) - done)
            page[inner:inner + k] = view[done:done + k]
            done += k

    def _read_at(self, off: int, n: int) -> bytes:
        n = max(0, min(n, self.size - off))
        if n == 0:
            return b""
        if off >= self.base or not self.pages:
            return os.pread(self.fd, n, off)
        return self._read_mixed(off, n)

    def _read_mixed(self, off: int, n: int) -> bytes:
        out = bytearray()
        while len(out) < n:
            at = off + len(out)
            if at >= self.base:
                out += os.pread(self.fd, n - len(out), at)
                break
            p, inner = divmod(at, PAGE)
            page = self.pages.get(p)
            k = min(min(PAGE, self.base - p * PAGE) - inner, n - len(out))
            out += page[inner:inner + k] if page is not None else os.pread(self.fd, k, at)
        return bytes(out)

    def _pwrite(self, view: memoryview, off: int) -> None:
        try:
            while len(view):
                k = _pwrite(self.fd, view, off)
                view, off = view[k:], off + k
        except OSError as exc:
            self._fail(exc)
            raise

    def _fail(self, exc: OSError) -> None:
        if self.failure is None:
            self.failure = exc

    # -- commit / abort --------------------------------------------------------------

    def commit(self) -> None:
        """Journal the original pages, write the overlay over the file, fsync, drop the journal."""
        originals = [(p * PAGE, os.pread(self.fd, len(page), p * PAGE)) for p, page in sorted(self.pages.items())]
        if self.cut is not None:
            originals.append((self.cut, os.pread(self.fd, self.base - self.cut, self.cut)))
        if self.journal is not None:
            body = b"".join(_REC.pack(off, len(data)) + data for off, data in originals)
            trailer = _TAIL + struct.pack("<QI", len(originals), zlib.crc32(body))
            try:
                _append_all(self.journal, body + trailer)
            except OSError as exc:
                self._fail(exc)
                raise
            self._journaled = True
        _lock_exclusive(self.fd, self.path)
        try:
            for p, page in sorted(self.pages.items()):
                self._pwrite(memoryview(page), p * PAGE)
            if self.size != os.fstat(self.fd).st_size:
                os.ftruncate(self.fd, self.size)
            os.fsync(self.fd)
            if self.journal is not None:
                os.unlink(self.journal)  # the commit point
                fsync_path(self.path.parent, directory=True)
        finally:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
        self.base = self.size
        self.pages.clear()
        self.cut = None
        self._journaled = False

    def abort(self) -> None:
        """Forget the overlay, cut the tail back to ``base``, drop the journal (a commit that failed
        half-way through writing the overlay is rolled back from the journal)."""
        if self._journaled:
            recover(self.path)
            self._journaled = False
            self.pages.clear()
            self.size = self.base
            return
        self.pages.clear()
        self.cut = None
        try:
            os.ftruncate(self.fd, self.base)
        except OSError:
            pass
        if self.journal is not None:
            try:
                os.unlink(self.journal)
            except OSError:
                pass
        self.size = self.base

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def _pwrite(fd: int, view: memoryview, off: int) -> int:
    """``os.pwrite`` (one place, so that tests can simulate a full disk)."""
    return os.pwrite(fd, view, off)


def _write_all(path: Path, data: bytes, *, sync: bool = True) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        _pwrite(fd, memoryview(data), 0)
        if sync:
            os.fsync(fd)
    finally:
        os.close(fd)


def _append_all(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        view, off = memoryview(data), os.fstat(fd).st_size
        while len(view):
            k = _pwrite(fd, view, off)
            view, off = view[k:], off + k
        os.fsync(fd)
    finally:
        os.close(fd)


def _lock_exclusive(fd: int, path: Path) -> None:
    """flock(LOCK_EX) on the data file, waiting for readers up to COMMIT_WAIT_S."""
    deadline = time.monotonic() + COMMIT_WAIT_S
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES) or time.monotonic() > deadline:
                raise DatasetLockedError(f"dataset {path} is held open by a reader; the commit waited "
                                         f"{COMMIT_WAIT_S:.0f} s for it: close the reader and write again") from None
            time.sleep(0.02)


def recover(path: Path) -> bool:
    """Roll ``path`` back to its last committed state if a writer died mid-transaction.

    The caller holds the writer lock. Returns whether there was anything to undo.
    """
    journal = journal_path_for(path)
    try:
        raw = journal.read_bytes()
    except FileNotFoundError:
        return False
    if len(raw) < len(_HEAD) + 8 or not raw.startswith(_HEAD):
        # the header never made it to disk: no write of that transaction reached the file's committed bytes
        journal.unlink()
        return True
    (base,) = struct.unpack_from("<Q", raw, len(_HEAD))
    records: list[tuple[int, bytes]] = []
    body = raw[len(_HEAD) + 8:]
    tail_at = len(body) - (len(_TAIL) + 12)
    if tail_at >= 0 and body[tail_at:tail_at + len(_TAIL)] == _TAIL:
        count, crc = struct.unpack_from("<QI", body, tail_at + len(_TAIL))
        if zlib.crc32(body[:tail_at]) == crc:
            at = 0
            while at < tail_at:
                off, n = _REC.unpack_from(body, at)
                records.append((off, body[at + _REC.size:at + _REC.size + n]))
                at += _REC.size + n
            if len(records) != count:
                raise DatasetError(f"dataset {path}: its rollback journal {journal} is damaged; keep both files and "
                                   f"report it")
    fd = os.open(path, os.O_RDWR)
    try:
        _lock_exclusive(fd, path)
        for off, data in records:  # a complete journal: the overlay may have been written in part
            os.pwrite(fd, data, off)
        os.ftruncate(fd, base)
        os.fsync(fd)
        fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
    journal.unlink()
    fsync_path(path.parent, directory=True)
    return True
