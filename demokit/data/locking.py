"""Exclusive writer locks and atomic file replacement for datasets.

* :class:`WriterLock`: ``fcntl.flock`` on a sidecar ``<path>.lock`` file holding the
  writer's pid. The OS releases it when the process dies (even on ``kill -9``), so a
  crashed writer never blocks the next one. The sidecar is removed on release.
* :func:`temp_path_for` / :func:`remove_stale_temps`: a writer writes into
  ``.<name>.tmp-<pid>`` in the target's directory; leftovers of dead writers are removed.
* :func:`commit_file`: fsync the temp file, move it onto the target atomically, fsync
  the directory.
* :func:`signals_deferred`: hold Ctrl-C / SIGTERM back while a commit runs, so that an
  interrupt cannot throw away a commit half-way; the signal is delivered right after.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from demokit.errors import DatasetError, DatasetLockedError

try:  # POSIX only; elsewhere locking is skipped
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


def lock_path_for(path: Path) -> Path:
    return path.with_name(path.name + ".lock")


def temp_path_for(path: Path, pid: int | None = None) -> Path:
    return path.with_name(f".{path.name}.tmp-{os.getpid() if pid is None else pid}")


def pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def remove_dead_owners(folder: Path, pattern: re.Pattern[str], remove: Callable[[Path], None]) -> list[Path]:
    """Remove the entries of ``folder`` whose name matches ``pattern`` (group 1: the owner's pid) and whose
    owner process is dead (never this process's own); returns what was removed. Unreadable folders and
    entries that cannot be removed are left as they are."""
    removed = []
    try:
        entries = list(folder.iterdir())
    except OSError:
        return removed
    for entry in entries:
        m = pattern.match(entry.name)
        if m and int(m.group(1)) != os.getpid() and not pid_alive(int(m.group(1))):
            try:
                remove(entry)
                removed.append(entry)
            except OSError:
                pass
    return removed


def remove_stale_temps(path: Path) -> list[Path]:
    """Delete ``.<name>.tmp-<pid>`` files next to ``path`` whose writer process is dead."""
    pattern = re.compile(r"^\." + re.escape(path.name) + r"\.tmp-(\d+)$")
    return remove_dead_owners(path.parent, pattern, Path.unlink)


class WriterLock:
    """An exclusive, non-blocking lock on ``<path>.lock``; released on :meth:`release` or process death."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.lock_path = lock_path_for(self.path)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        if fcntl is None or self._fd is not None:  # pragma: no cover
            return
        for _ in range(50):
            try:
                fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                raise DatasetError(f"cannot create lock file {self.lock_path}: {exc.strerror}; "
                                   f"check that the directory exists and is writable") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                owner = _read_pid(fd)
                os.close(fd)
                if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    who = f"pid {owner}" if owner else "pid unknown"
                    raise DatasetLockedError(
                        f"dataset {self.path} is being written by another process ({who}); wait for it to "
                        f"finish or write to another path") from None
                raise DatasetError(f"cannot lock {self.lock_path}: {exc.strerror}") from None
            # The previous holder may have unlinked the sidecar between our open and flock:
            # then we locked a dead inode and must retry on the current file.
            try:
                same = os.stat(self.lock_path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if not same:
                os.close(fd)
                continue
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            self._fd = fd
            return
        raise DatasetLockedError(f"dataset {self.path}: could not take the writer lock {self.lock_path}")  # pragma: no cover

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:  # unlink while still holding the lock (waiters re-check the inode)
            os.unlink(self.lock_path)
        except OSError:
            pass
        os.close(fd)


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        return int(text) if text.isdigit() else None
    except OSError:
        return None


def fsync_path(path: Path, directory: bool = False) -> None:
    flags = os.O_RDONLY
    if directory:
        flags |= getattr(os, "O_DIRECTORY", 0)
    try:
        fd = os.open(path, flags)
    except OSError:  # pragma: no cover - e.g. directories on some platforms
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - fsync unsupported on this fs
        pass
    finally:
        os.close(fd)


def commit_file(tmp: Path, target: Path, *, no_clobber: bool) -> None:
    """Durably move ``tmp`` onto ``target`` in one atomic step.

    With ``no_clobber`` an existing ``target`` is never replaced (hard link + unlink,
    falling back to ``os.replace`` on file systems without hard links).
    """
    fsync_path(tmp)
    if no_clobber:
        try:
            os.link(tmp, target)
        except FileExistsError:
            raise DatasetError(f"dataset {target} appeared while it was being written; "
                               f"use --append to add to it or --force to replace it") from None
        except OSError:
            os.replace(tmp, target)
        else:
            os.unlink(tmp)
    else:
        os.replace(tmp, target)
    fsync_path(target.parent, directory=True)


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold SIGINT and SIGTERM back for the duration; a signal that came in is re-raised on exit.

    Works by swapping the Python-level handlers (main thread only; elsewhere a no-op),
    so it holds whichever thread the OS picks to deliver a process-directed signal to.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []
    previous: dict[int, object] = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        handler = signal.getsignal(sig)
        if handler is None:  # installed outside Python: cannot be restored, leave it alone
            continue
        try:
            previous[sig] = signal.signal(sig, lambda signum, frame: pending.append(signum))
        except (ValueError, OSError):  # pragma: no cover
            continue
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]
        for sig in dict.fromkeys(pending):
            signal.raise_signal(sig)
