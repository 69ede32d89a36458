"""Output paths: THE check every command runs before it writes, and the one atomic file writer.

:func:`check_output_path` refuses, *before* any work starts, an output that

* is one of the command's inputs (compared by device and inode, so through symlinks and
  hard links too),
* is a directory, a FIFO, a device or a socket (never replaced, even with ``force``),
* is an existing file of another kind (a dataset where a checkpoint goes, or a file
  demokit did not write) unless ``force``,
* is read-only (``mode`` without write bits) while it would be replaced or appended to,
* has a parent that is a file, or a name too long for the temporary and lock files
  written beside it.

It returns the path to write: a symlink is followed (also a dangling one), so the data
lands in the link's target and the link stays.

:func:`atomic_write_bytes` writes a small file (checkpoints, summaries) through a temporary
file + fsync + rename, with the same permissions a plain ``open(path, "w")`` gives (0666
less the umask; an existing file keeps its mode).
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

from demokit.errors import UserError

#: first bytes of the files demokit writes, by kind
MAGIC = {"dataset": b"\x89HDF\r\n\x1a\n", "checkpoint": b"PK\x03\x04"}
KIND_NAMES = {"dataset": "an HDF5 dataset", "checkpoint": "a checkpoint (torch archive)"}
#: the longest suffix the writers add to a file name (".<name>.tmp-<pid>", "<name>.lock", mkstemp's 8 chars)
TEMP_NAME_OVERHEAD = 24


def resolve_output(path: str | os.PathLike[str]) -> Path:
    """``path`` with symlinks followed (a dangling link gives its target), so writers replace the
    target and keep the link."""
    p = Path(path)
    for _ in range(40):
        if not p.is_symlink():
            return p
        target = Path(os.readlink(p))
        p = target if target.is_absolute() else p.parent / target
    raise UserError(f"{path}: too many levels of symbolic links")


def file_kind(path: Path) -> str | None:
    """``dataset``, ``checkpoint``, ``empty`` or None (another kind of file) by the first bytes."""
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError:
        return None
    if not head:
        return "empty"
    for kind, magic in MAGIC.items():
        if head.startswith(magic):
            return kind
    return None


def _special(mode: int) -> str | None:
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return None


def check_output_path(out: str | os.PathLike[str] | None, *, kind: str | None = None,
                      inputs: Iterable[str | os.PathLike[str] | None] = (), force: bool = False,
                      modify: bool = False, what: str = "--out") -> Path | None:
    """Refuse an output that cannot or must not be written, before any work starts.

    ``kind``: what will be written (``dataset`` / ``checkpoint``; None: do not compare kinds);
    ``inputs``: paths the command reads; ``force``: the user allowed replacing an existing
    file of another kind; ``modify``: the file is appended to (it must exist as a dataset).
    Returns the path to write (symlinks followed), or None for None.
    """
    if out is None:
        return None
    given = Path(out)
    p = resolve_output(given)
    shown = f"{what} {given}" + (f" (a link to {p})" if p != given else "")
    if not p.name or p.name in (".", ".."):
        raise UserError(f"{shown}: not a file name; give a path such as {Path(given) / 'out.pt'}")
    for src in inputs:
        if src is not None and _same_file(p, Path(src)):
            raise UserError(f"{shown} is the input {src}; writing it would destroy the input: choose another "
                            f"{what}")
    try:
        st = os.stat(p)
    except FileNotFoundError:
        st = None
    except NotADirectoryError:
        st = None
    except OSError as exc:
        raise UserError(f"{shown}: cannot be examined ({exc.strerror})") from None
    if st is not None:
        special = _special(st.st_mode)
        if special == "a directory":
            raise UserError(f"{shown} is a directory; give a file path such as "
                            f"{given / ('demos.h5' if kind == 'dataset' else 'policy.pt')}")
        if special is not None:
            raise UserError(f"{shown} is {special}, not a regular file; demokit never replaces it, even with "
                            f"--force: choose another {what}")
        if not st.st_mode & 0o222:
            raise UserError(f"{shown} is read-only; make it writable (chmod u+w) to "
                            f"{'add to' if modify else 'replace'} it, or choose another {what}")
        found = file_kind(p)
        if kind is not None and found not in (kind, "empty") and not force:
            found_text = KIND_NAMES.get(found or "", "a file demokit did not write")
            raise UserError(f"{shown} is {found_text}, not {KIND_NAMES.get(kind, kind)}; it was left alone: "
                            f"choose another {what} or pass --force to replace it")
    parent = p.parent
    probe = parent
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise UserError(f"{shown}: {probe} is a file, not a directory; choose another {what}")
    if probe.exists() and not os.access(probe, os.W_OK | os.X_OK):
        raise UserError(f"{shown}: directory {probe} is not writable; choose another {what}")
    limit = _name_max(probe if probe.exists() else Path("."))
    if len(os.fsencode(p.name)) + TEMP_NAME_OVERHEAD > limit:
        raise UserError(f"{shown}: the file name is {len(os.fsencode(p.name))} bytes long; this file system "
                        f"allows {limit} and demokit needs {TEMP_NAME_OVERHEAD} more for its temporary and "
                        f"lock files beside it: choose a shorter name")
    for part in p.parts:
        if len(os.fsencode(part)) > limit:
            raise UserError(f"{shown}: the path component {part[:40]}... is longer than {limit} bytes")
    return p


def _name_max(directory: Path) -> int:
    try:
        return int(os.pathconf(directory, "PC_NAME_MAX"))
    except (OSError, ValueError):
        return 255


def check_distinct_outputs(path: str | os.PathLike[str] | None, other: str | os.PathLike[str] | None, *,
                           what: str, other_what: str) -> None:
    """Refuse two outputs of one command that are the same file (written or not yet): one would replace the
    other (e.g. a training state and the final checkpoint)."""
    if path is None or other is None:
        return
    a, b = resolve_output(Path(path)), resolve_output(Path(other))
    if os.path.abspath(a) == os.path.abspath(b) or _same_file(a, b):
        raise UserError(f"{what} {path} is also the {other_what}; one would replace the other: choose another {what}")


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def check_input_path(path: str | os.PathLike[str], *, what: str = "input") -> Path:
    """An input that exists, is a readable regular file (or directory) - else one clear UserError."""
    p = Path(path)
    try:
        st = os.stat(p)
    except FileNotFoundError:
        raise UserError(f"{what} {p} does not exist (no such file or directory)") from None
    except OSError as exc:
        raise UserError(f"{what} {p}: cannot be read ({exc.strerror})") from None
    special = _special(st.st_mode)
    if special not in (None, "a directory"):
        raise UserError(f"{what} {p} is {special}, not a file")
    if not os.access(p, os.R_OK):
        raise UserError(f"{what} {p}: permission denied (not readable)")
    return p


def make_parents(path: Path) -> list[Path]:
    """Create the missing parent directories of ``path``; returns them (deepest last) so that a
    writer that fails can remove them again with :func:`remove_dirs`."""
    missing = []
    parent = Path(path).parent
    while not parent.exists() and parent != parent.parent:
        missing.append(parent)
        parent = parent.parent
    for d in reversed(missing):
        d.mkdir(exist_ok=True)
    return list(reversed(missing))


def remove_dirs(created: list[Path]) -> None:
    """Remove directories made by :func:`make_parents` (deepest first) while they are empty."""
    for d in reversed(created):
        try:
            d.rmdir()
        except OSError:
            break


def remove_empty_tree(top: Path) -> None:
    """Remove ``top`` and the directories below it, bottom-up, as far as they are empty (a
    failed run's empty folders; any file keeps its folders)."""
    if not top.is_dir() or top.is_symlink():
        return
    for root, _dirs, _files in os.walk(top, topdown=False):
        try:
            os.rmdir(root)
        except OSError:
            pass


def _creation_mode() -> int:
    """0666 less the process umask (what ``open(path, "w")`` gives a new file)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` via a temp file + fsync + os.replace (never half-written).

    A symlink is written through (its target is replaced); the file gets the mode a plain
    ``open`` would give it (an existing file keeps its own); the temporary file is removed on
    any failure, a full disk included.
    """
    path = resolve_output(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        mode = _creation_mode()
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write_all(f, data, path)
            os.fchmod(f.fileno(), mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_all(f: BinaryIO, data: bytes | memoryview, path: Path) -> None:
    """Write, flush and fsync ``data`` to the open file ``f``; an OSError (a full disk) names ``path``."""
    try:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, str(path)) from None


def write_file(path: Path, data: bytes | memoryview) -> None:
    """Create (or truncate) ``path`` and write ``data`` durably (see :func:`write_all`)."""
    with open(path, "wb") as f:
        write_all(f, data, path)
