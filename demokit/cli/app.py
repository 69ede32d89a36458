"""The ``demokit`` command line (Typer).

Conventions for every command: ``--json`` makes the last stdout line one JSON
object of the result's figures; progress goes to stderr; a user mistake prints one
``error:`` line on stderr and exits 2 (never a traceback); an internal failure
exits 1; Ctrl-C / SIGTERM exit 130 after the command saved what it could.
"""

from __future__ import annotations

import importlib
import os
import signal
import sys
import traceback
from collections.abc import Sequence

import typer

try:  # typer >= 0.20 vendors click as typer._click
    from typer import _click as click  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - older typer depends on click
    import click  # type: ignore[no-redef]

from demokit.errors import UserError

app = typer.Typer(
    name="demokit",
    help="Expert data and imitation learning on Gymnasium tasks: train experts, collect HDF5 demonstrations, "
         "inspect and convert them, behavioral cloning, DAgger and GAIL.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

#: Command modules (demokit.cli.commands.<name>), each exposing register(app).
COMMAND_MODULES = ("collect", "inspect", "convert", "experts", "imitation", "gail", "pipeline", "doctor", "filter",
                   "plot")

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


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``demokit`` console script and of ``python cli.py``."""
    if threads := os.environ.get("DEMOKIT_THREADS"):
        import torch
        torch.set_num_threads(int(threads))
    try:
        signal.signal(signal.SIGTERM, _on_sigterm)
    except ValueError:  # not in the main thread (e.g. called from a test thread)
        pass
    try:
        rv = app(args=list(argv) if argv is not None else None, prog_name="demokit", standalone_mode=False)
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
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except click.exceptions.ClickException as exc:
        print(f"error: {exc.format_message()}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 1
    except Exception as exc:  # an internal failure: keep the traceback for the bug report
        traceback.print_exc()
        print(f"internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return int(rv) if isinstance(rv, int) else 0


def run() -> None:
    sys.exit(main())


if __name__ == "__main__":
    run()
