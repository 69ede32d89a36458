"""Shared CLI plumbing: stderr console, progress bars, --json results."""

from __future__ import annotations

import json
import math
import sys
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


#: Progress and human-readable tables for progress go to stderr; stdout carries results.
err_console = Console(stderr=True, highlight=False)
out_console = Console(highlight=False)


def make_progress(*, transient: bool = False) -> Progress:
    """A rich progress bar on stderr: description, bar, M/N, elapsed, remaining, free text."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[info]}"),
        console=err_console,
        transient=transient,
        disable=False,
    )


def _clean(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if hasattr(v, "item") and not isinstance(v, (list, dict, str)):
        try:
            return _clean(v.item())
        except (ValueError, AttributeError):
            return str(v)
    if isinstance(v, dict):
        return {str(k): _clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    return v


def emit_json(result: dict[str, Any]) -> None:
    """Print ``result`` as one JSON object: the last line of stdout."""
    sys.stdout.flush()
    print(json.dumps(_clean(result), sort_keys=False), flush=True)


class LazyProgress:
    """A rich progress bar on stderr that appears with the first update, so a command
    refused early prints its ``error:`` line without an empty bar before it.

    ``update(completed, total=None, info="", line=None)``: move the bar, optionally
    printing ``line`` above it.
    """

    def __init__(self, description: str, total: float | None = None) -> None:
        self.description, self.total = description, total
        self._progress: Progress | None = None
        self._task: Any = None

    def update(self, completed: float, *, total: float | None = None, info: str = "", line: str | None = None) -> None:
        if self._progress is None:
            self._progress = make_progress()
            self._progress.start()
            self._task = self._progress.add_task(self.description, total=total or self.total, info="")
        if line:
            self._progress.console.print(line)
        kwargs: dict[str, Any] = {"completed": completed, "info": info}
        if total is not None:
            kwargs["total"] = total
        self._progress.update(self._task, **kwargs)

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def __enter__(self) -> "LazyProgress":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
