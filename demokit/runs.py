"""Run folders: what a training command leaves behind so runs can be compared and re-plotted.

A run folder is ``runs/<command>/<env>/<timestamp-or-name>/`` (or the ``--run-dir`` given)::

    config.json      {"command", "env_id", "config": the resolved config, "created", "demokit_version",
                      "argv", "reward_threshold", "expert_return", ...}
    metrics.jsonl    one JSON object per row (an evaluation, an epoch, a round, or at most ~200 rows of
                     training progress): "step" (the x axis: env steps, else epoch / round), "env_steps",
                     "wall_s", "eval_return" / "eval_return_std" when the row holds an evaluation,
                     "train_return", and the scalars logged since the previous row (losses,
                     "reward_model/d_expert", ...)
    summary.json     the final figures (the command's --json result) and "status": finished | interrupted
    checkpoint.pt    a copy of the checkpoint the command wrote
    tb/              TensorBoard event files of the same scalars (only with ``tensorboard=True``)

The folder is refused when it exists (``overwrite=True`` replaces a previous *run* folder; a folder that
is not one is never touched). A run that fails with an error removes the folder it created (nothing
written); an interrupted run (Ctrl-C) keeps what it recorded and says ``"status": "interrupted"``.

``RunFolder`` also has ``add_scalar(tag, value, step)``, so it is passed to the trainers as their
TensorBoard writer: the one logging path feeds the metrics file and, when asked, TensorBoard.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from demokit import _version
from demokit.errors import UserError

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"
SUMMARY_FILE = "summary.json"
CHECKPOINT_FILE = "checkpoint.pt"
TB_DIR = "tb"
RUN_FILES = (CONFIG_FILE, METRICS_FILE, SUMMARY_FILE, CHECKPOINT_FILE)
#: training-progress rows kept per run (evaluation rows are always kept)
PROGRESS_ROWS = 200
#: help texts of the run-folder options every training command has
RUN_DIR_HELP = "run folder to write (default: runs/<command>/<env>/<timestamp or --run-name>)"
RUN_NAME_HELP = "name of the run folder under runs/<command>/<env>/ (default: a UTC timestamp)"
OVERWRITE_HELP = "replace an existing run folder"
#: scalar tags that hold an evaluation's mean return, best first
EVAL_TAGS = ("eval/mean_return", "eval/quick_mean_return")


def default_run_dir(command: str, env_id: str, name: str | None = None, *, root: str | os.PathLike[str] = "runs"
                    ) -> Path:
    """``<root>/<command>/<env>/<name>``; without a name a UTC timestamp (``-2``, ``-3``... when taken)."""
    base = Path(root) / command / (env_id or "unknown-env").replace("/", "_")
    if name is not None:
        if not name or "/" in name or name in (".", ".."):
            raise UserError(f"--run-name {name!r}: give a plain folder name (no '/')")
        return base / name
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    path, k = base / stamp, 1
    while path.exists():
        k += 1
        path = base / f"{stamp}-{k}"
    return path


def is_run_dir(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a run folder (it holds a config.json written by a run)."""
    return (Path(path) / CONFIG_FILE).is_file()


def _missing_parents(path: Path) -> list[Path]:
    """The ancestors of ``path`` that do not exist yet, deepest first (what ``mkdir(parents=True)`` makes)."""
    missing = []
    for parent in path.absolute().parents:
        if parent.exists():
            break
        missing.append(parent)
    return missing


def _write_json_atomic(path: Path, value: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(_jsonable(value), f, indent=2, allow_nan=False)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _jsonable(v: Any) -> Any:
    """JSON-safe copy: numpy scalars -> numbers, tuples -> lists, NaN/inf -> None, others -> str."""
    if isinstance(v, Mapping):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if hasattr(v, "item") and not isinstance(v, (str, bytes)):
        try:
            v = v.item()
        except (ValueError, AttributeError):
            return str(v)
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    return str(v)


def final_row(env_steps: int, mean_return: float, std_return: float | None = None) -> dict[str, Any]:
    """The metrics row of a run's final evaluation (``RunFolder.finish(final_row=...)``)."""
    row: dict[str, Any] = {"step": int(env_steps), "env_steps": int(env_steps), "eval_return": mean_return}
    if std_return is not None:
        row["eval_return_std"] = std_return
    return {**row, "final": True}


class RunFolder:
    """One run's folder (see the module docstring). Use as a context manager::

        with RunFolder("train-expert", "CartPole-v1", config=cfg_dict) as run:
            ... trainer(tb_writer=run, progress=lambda info: run.progress(info)) ...
            run.finish(summary, checkpoint=path)

    Args:
        command: the command name (the first path part under ``root``).
        env_id: the env (second path part).
        config: the resolved config (a dict; dataclasses are converted by the caller).
        run_dir: the folder to use instead of ``root/command/env/<timestamp-or-name>``.
        name: the last path part instead of a timestamp.
        overwrite: replace an existing run folder (never a folder that is not a run).
        tensorboard: also write the scalars as TensorBoard events: True -> ``tb/`` in the folder, a path ->
            that directory (``--tensorboard DIR``).
        info: extra fields of config.json (``reward_threshold``, ``expert_return``, ...).
    """

    def __init__(self, command: str, env_id: str, *, config: Mapping[str, Any], run_dir: str | os.PathLike[str] | None
                 = None, name: str | None = None, root: str | os.PathLike[str] = "runs", overwrite: bool = False,
                 tensorboard: bool | str | os.PathLike[str] = False, info: Mapping[str, Any] | None = None) -> None:
        self.path = Path(run_dir) if run_dir is not None else default_run_dir(command, env_id, name, root=root)
        self._check_target(overwrite)
        self.command, self.env_id = command, env_id
        self._config = {"command": command, "env_id": env_id, "config": dict(config), "argv": list(sys.argv),
                        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                        "demokit_version": _version.__version__, **dict(info or {})}
        self._tensorboard = tensorboard
        self._tb: Any = None
        if tensorboard:  # refuse early, before anything is written, when the package is missing
            _summary_writer_class()
        self._pending: dict[str, float] = {}
        self._row_every = 0.0
        self._last_row_step = -math.inf
        self._t0 = time.perf_counter()
        self._metrics: Any = None
        self._created = False
        self._new_parents: list[Path] = []
        self.closed = False

    def _check_target(self, overwrite: bool) -> None:
        p = self.path
        if p.exists() and not p.is_dir():
            raise UserError(f"run folder {p} is a file; choose another --run-dir")
        if p.is_dir() and any(p.iterdir()):
            if not overwrite:
                raise UserError(f"run folder {p} already exists; pass --overwrite to replace it, or choose another "
                                f"--run-dir / --run-name")
            if not is_run_dir(p):
                raise UserError(f"{p} is a non-empty folder that is not a run folder (no {CONFIG_FILE}); it was "
                                f"left alone: choose another --run-dir")

    # -- lifecycle ---------------------------------------------------------------------

    def open(self) -> RunFolder:
        """Create the folder (clearing a previous run's files when overwriting) and write config.json."""
        p = self.path
        existed = p.is_dir()
        if existed:
            for name in RUN_FILES:
                (p / name).unlink(missing_ok=True)
            shutil.rmtree(p / TB_DIR, ignore_errors=True)
        self._new_parents = _missing_parents(p)
        p.mkdir(parents=True, exist_ok=True)
        self._created = not existed
        _write_json_atomic(p / CONFIG_FILE, self._config)
        self._metrics = open(p / METRICS_FILE, "a", encoding="utf-8")
        if self._tensorboard:
            tb_dir = p / TB_DIR if self._tensorboard is True else Path(self._tensorboard)
            self._tb = _summary_writer_class()(log_dir=str(tb_dir))
        return self

    def __enter__(self) -> RunFolder:
        return self.open()

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        if self.closed:
            return False
        if exc_type is None or issubclass(exc_type, (KeyboardInterrupt, SystemExit)):
            self.close(status="interrupted" if exc_type is not None else None)
        else:
            self.discard()
        return False

    def update_config(self, **fields: Any) -> None:
        """Add fields to config.json (e.g. the trainer's fully resolved config, known after training)."""
        self._config.update(fields)
        _write_json_atomic(self.path / CONFIG_FILE, self._config)

    def finish(self, summary: Mapping[str, Any], *, checkpoint: str | os.PathLike[str] | None = None,
               final_row: Mapping[str, Any] | None = None) -> None:
        """Record the final row (e.g. the final evaluation), copy the checkpoint, write summary.json, close."""
        self._flush_pending()
        if final_row:
            self.log_row(dict(final_row))
        if checkpoint is not None and Path(checkpoint).is_file():
            tmp = self.path / f".{CHECKPOINT_FILE}.tmp-{os.getpid()}"
            shutil.copyfile(checkpoint, tmp)
            os.replace(tmp, self.path / CHECKPOINT_FILE)
        self.close(summary=summary)

    def close(self, *, summary: Mapping[str, Any] | None = None, status: str | None = None) -> None:
        if self.closed:
            return
        self.closed = True
        self._flush_pending()
        if self._metrics is not None:
            self._metrics.close()
        if self._tb is not None:
            self._tb.close()
        record = {"status": status or ("finished" if summary is not None else "interrupted"),
                  "wall_s": time.perf_counter() - self._t0, **dict(summary or {})}
        _write_json_atomic(self.path / SUMMARY_FILE, record)

    def discard(self) -> None:
        """The run failed: remove the folder if this run created it (else just its run files)."""
        self.closed = True
        if self._metrics is not None:
            self._metrics.close()
        if self._tb is not None:
            self._tb.close()
        if self._created:
            shutil.rmtree(self.path, ignore_errors=True)
            for parent in self._new_parents:  # e.g. runs/bc-train/<env>/ made for this run: left empty
                try:
                    parent.rmdir()
                except OSError:  # another run wrote into it meanwhile
                    break

    # -- recording ---------------------------------------------------------------------

    def add_scalar(self, tag: str, value: float, step: int | float | None = None) -> None:
        """The TensorBoard-writer interface the trainers call: kept for the next metrics row and, with
        ``tensorboard=True``, written as an event at ``step``."""
        value = float(value)
        self._pending[tag] = value
        if self._tb is not None and math.isfinite(value):
            self._tb.add_scalar(tag, value, step)

    def progress(self, info: Mapping[str, float]) -> None:
        """A trainer's progress report (``demokit.rl.common.ProgressFn``): writes a row when an evaluation
        happened since the last row, or every ``total_timesteps / 200`` env steps."""
        steps = float(info["env_steps"])
        if not self._row_every and info.get("total_timesteps"):
            self._row_every = float(info["total_timesteps"]) / PROGRESS_ROWS
        evaluated = any(t in self._pending for t in EVAL_TAGS)
        if not evaluated and steps - self._last_row_step < self._row_every:
            return
        row: dict[str, Any] = {"step": steps, "env_steps": steps}
        for tag in EVAL_TAGS:
            if tag in self._pending:
                row["eval_return"] = self._pending[tag]
                break
        train = self._pending.get("rollout/ep_return_mean", info.get("episode_return", math.nan))
        if math.isfinite(train):
            row["train_return"] = train
        self.log_row(row)

    def tee(self, progress: Any) -> Any:
        """A progress function that records the report here (:meth:`progress`) and passes it on to ``progress``."""
        def report(info: Mapping[str, float]) -> None:
            self.progress(info)
            progress(info)

        return report

    def log_row(self, row: Mapping[str, Any]) -> None:
        """Write one metrics row (with ``wall_s``) holding ``row`` and the scalars logged since the last row.

        Called directly for epochs / rounds (e.g. ``{"step": epoch, "epoch": epoch, "eval_return": ...}``);
        its numeric fields also go to TensorBoard at ``step`` when that is on."""
        assert self._metrics is not None, "RunFolder.open() first"
        record: dict[str, Any] = {**self._pending, **dict(row)}
        self._pending = {}
        record.setdefault("wall_s", time.perf_counter() - self._t0)
        if self._tb is not None and "step" in row:
            for k, v in row.items():
                if k not in ("step", "wall_s", "env_steps") and isinstance(v, (int, float)) and not isinstance(v, bool) \
                        and math.isfinite(v):
                    self._tb.add_scalar(k, float(v), row["step"])
        self._metrics.write(json.dumps(_jsonable(record), allow_nan=False) + "\n")
        self._metrics.flush()
        if "step" in record:
            self._last_row_step = float(record["step"])

    def _flush_pending(self) -> None:
        if self._pending and self._metrics is not None and not self._metrics.closed:
            self.log_row({"step": self._last_row_step} if math.isfinite(self._last_row_step) else {})


def epoch_row(rec: Mapping[str, Any]) -> dict[str, Any]:
    """A metrics row of one BC epoch record (``train_bc``'s callback): the x axis is the epoch."""
    row = {k: v for k, v in rec.items() if k not in ("eval_mean", "eval_std", "max_epochs", "time_s")}
    row["step"] = rec["epoch"]
    if "eval_mean" in rec:
        row["eval_return"], row["eval_return_std"] = rec["eval_mean"], rec["eval_std"]
    return row


def _summary_writer_class() -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise UserError("--tensorboard: the tensorboard package is not installed; run `pip install tensorboard` "
                        "(or `pip install demokit[tensorboard]`), or leave out --tensorboard") from None
    return SummaryWriter


# ---------------------------------------------------------------------------------------
# reading runs back (demokit plot)


def read_run(path: str | os.PathLike[str]) -> dict[str, Any]:
    """``{"path", "config", "summary", "rows"}`` of a run folder; a UserError when it is not one."""
    p = Path(path)
    if not p.is_dir():
        raise UserError(f"{p}: no such run folder")
    if not is_run_dir(p):
        raise UserError(f"{p} is not a run folder (no {CONFIG_FILE}); give a folder written by a training command "
                        f"(runs/<command>/<env>/<run>/) or a .h5 dataset")
    try:
        config = json.loads((p / CONFIG_FILE).read_text(encoding="utf-8"))
        summary_path = p / SUMMARY_FILE
        summary = json.loads(summary_path.read_text(encoding="utf-8")) if summary_path.is_file() else {}
        rows = []
        metrics = p / METRICS_FILE
        if metrics.is_file():
            for line in metrics.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    try:
                        rows.append(json.loads(line))
                    except json.JSONDecodeError:  # a run killed mid-write leaves a partial last line
                        break
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{p}: the run folder cannot be read ({exc})") from None
    if not isinstance(config, dict):
        raise UserError(f"{p / CONFIG_FILE} is not a run's config (not a JSON object)")
    return {"path": p, "config": config, "summary": summary if isinstance(summary, dict) else {}, "rows": rows}
