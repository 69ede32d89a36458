"""The ``demokit`` command line (Typer).

Conventions for every command: ``--json`` makes the last stdout line one JSON
object of the result's figures; progress goes to stderr; a user mistake prints one
``error:`` line on stderr and exits 2 (never a traceback); an internal failure
exits 1; Ctrl-C / SIGTERM exit 130 after the command saved what it could.
"""

from __future__ import annotations

import errno
import importlib
import os
import re
import shutil
import signal
import sys
import traceback
import warnings
from collections.abc import Sequence
from pathlib import Path

import typer
from typer.core import TyperGroup

try:  # typer >= 0.20 vendors click as typer._click
    from typer import _click as click  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - older typer depends on click
    import click  # type: ignore[no-redef]

from demokit.cli.checks import threads_from_env
from demokit.errors import UserError


class CommandInterrupted(Exception):
    """Ctrl-C / SIGTERM inside a command, carried past typer (which would turn it into a silent exit 130)
    so that :func:`main` prints what the command says it kept."""

    def __init__(self, interrupt: KeyboardInterrupt) -> None:
        super().__init__(*interrupt.args)
        self.interrupt = interrupt


class _Group(TyperGroup):
    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt as exc:
            raise CommandInterrupted(exc) from None


app = typer.Typer(
    cls=_Group,
    name="demokit",
    help="Expert data and imitation learning on Gymnasium tasks: train experts, collect HDF5 demonstrations, "
         "inspect and convert them, behavioral cloning, DAgger and GAIL.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

#: Command modules (demokit.cli.commands.<name>), each exposing register(app).
COMMAND_MODULES = ("collect", "inspect", "convert", "experts", "imitation", "gail", "irl", "pipeline", "doctor",
                   "filter", "plot")

for _name in COMMAND_MODULES:
    try:
        _mod = importlib.import_module(f"demokit.cli.commands.{_name}")
    except ModuleNotFoundError as _exc:  # a command group not written yet
        if _exc.name != f"demokit.cli.commands.{_name}":
            raise
        continue
    _mod.register(app)


def _on_sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


#: OSError numbers that are the user's situation (a full disk, permissions, bad names), not a bug
USER_ERRNOS = {errno.ENOSPC: "no space left on the device: free some space or write elsewhere",
               errno.EDQUOT: "disk quota exceeded: free some space or write elsewhere",
               errno.EROFS: "the file system is read-only: write elsewhere",
               errno.EACCES: "permission denied", errno.EPERM: "operation not permitted",
               errno.ENAMETOOLONG: "the file name is too long", errno.ENOTDIR: "a part of the path is not a directory",
               errno.EISDIR: "is a directory", errno.ENOENT: "no such file or directory",
               errno.EMLINK: "too many links", errno.ELOOP: "too many levels of symbolic links"}


def user_os_error(exc: BaseException) -> str | None:
    """The one-line message for an OSError that is the user's situation (None: an internal error).

    Recognises HDF5's wrapped write failures (``errno = 28``) and exceptions chained from one.
    """
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError):
            code = exc.errno
            text = str(exc)
            if code is None:
                for num in (errno.ENOSPC, errno.EDQUOT, errno.EROFS):
                    if f"errno = {num}," in text or os.strerror(num) in text:
                        code = num
                        break
            if code in USER_ERRNOS:
                where = _target_of(exc.filename if getattr(exc, "filename", None) else _hdf5_filename(text))
                fix = USER_ERRNOS[code]
                if code in (errno.ENOSPC, errno.EDQUOT) and where:
                    fix += _free_space(where)
                return f"{where}: {fix}" if where else f"{fix} ({' '.join(text.split())[:200]})"
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return None


def _hdf5_filename(text: str) -> str | None:
    """The file named in an HDF5 error text (``filename = '...'``)."""
    m = re.search(r"filename = '([^']+)'", text)
    return m.group(1) if m else None


def _target_of(path: str | os.PathLike[str] | None) -> str | None:
    """The file the user named for a writer's temporary file (``.<name>.tmp-<pid>`` and what lies in it)."""
    if path is None:
        return None
    p = Path(os.fsdecode(path))
    for part in (p, *p.parents):
        m = re.fullmatch(r"\.(.+)\.tmp-\d+", part.name)
        if m:
            return str(part.with_name(m.group(1)))
    return str(p)


def _free_space(path: str) -> str:
    probe = Path(path).parent
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        free = shutil.disk_usage(probe).free
    except OSError:
        return ""
    return f" ({free / 2**20:.1f} MiB free in {probe})"


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file: object = None, line: str | None = None) -> None:
    print(f"warning: {' '.join(str(message).split())}", file=sys.stderr)


def _interrupted(exc: KeyboardInterrupt) -> int:
    """The one ``error:`` line of Ctrl-C / SIGTERM, with what the command says it kept (e.g. a training
    state to continue from); exit status 130."""
    detail = exc.args[0] if exc.args and isinstance(exc.args[0], str) and not exc.args[0].startswith("signal ") else ""
    print(f"error: interrupted{': ' + detail if detail else ''}", file=sys.stderr)
    return 130


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``demokit`` console script and of ``python cli.py``."""
    try:
        signal.signal(signal.SIGTERM, _on_sigterm)
    except ValueError:  # not in the main thread (e.g. called from a test thread)
        pass
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning  # type: ignore[assignment]
            if (threads := threads_from_env()) is not None:
                import torch
                torch.set_num_threads(threads)
            rv = app(args=list(argv) if argv is not None else None, prog_name="demokit", standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError:  # bare `demokit`: the help was printed
        return 0
    except click.exceptions.UsageError as exc:
        msg = exc.format_message().replace("\n", " ")
        print(f"error: {msg} (see demokit {exc.ctx.command_path.split(' ', 1)[1] + ' ' if exc.ctx and ' ' in exc.ctx.command_path else ''}--help)", file=sys.stderr)
        return 2
    except typer.Abort:
        print("error: aborted", file=sys.stderr)
        return 130
    except typer.Exit as exc:
        return int(exc.exit_code)
    except UserError as exc:
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:  # while the commands load
        return _interrupted(exc)
    except CommandInterrupted as exc:
        return _interrupted(exc.interrupt)
    except click.exceptions.ClickException as exc:
        print(f"error: {exc.format_message()}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 1
    except Exception as exc:
        if (msg := user_os_error(exc)) is not None:  # a full disk, a read-only folder, ...
            print(f"error: {msg}", file=sys.stderr)
            return 2
        traceback.print_exc()  # an internal failure: keep the traceback for the bug report
        print(f"internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return int(rv) if isinstance(rv, int) else 0


def run() -> None:
    from demokit.cli import run as launch

    launch()


if __name__ == "__main__":
    run()
