"""Command-line interface.

:func:`run` is the ``demokit`` console script: it imports the Typer app inside its own
guard, so Ctrl-C while the (heavy) command modules load, or while the interpreter shuts
down, ends with ``error: interrupted`` / exit 130 instead of a traceback.
"""

from __future__ import annotations

import signal
import sys


def run() -> None:
    """Run the command line on ``sys.argv`` and exit with its status."""
    try:
        from demokit.cli.app import main

        code = main()
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        code = 130
    try:  # a second Ctrl-C while atexit handlers run must not print their traceback
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:  # pragma: no cover - not the main thread
        pass
    sys.stdout.flush()
    sys.exit(code)
