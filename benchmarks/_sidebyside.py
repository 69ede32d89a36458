"""Two (or more) whole training processes run side by side: started at the same moment, one per core,
each in its own session, timed by wall clock and by its own CPU seconds.

Shared by the side-by-side speed benchmarks (``bench_sac_hopper.py``, ``bench_gail_hopper.py``). Each
process prints its result as the last JSON line of its stdout; its stderr goes to a log file (the
peers' periodic checks are JSON lines there: ``json_lines``). A process still running after
``max_wall`` seconds, or, with ``stop_ratio`` R, after R times the leader's wall time once the leader
reached its goal, is stopped (its whole process group) and reported as not finished.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def launch(cmd: list[str], *, cwd: str, log: Path) -> tuple[subprocess.Popen, float]:
    """Start ``cmd`` in its own session (one torch / BLAS thread), stderr to ``log``; the process and its start."""
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    with open(log, "w") as err:  # the child keeps its own copy of the descriptor
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=err, text=True,
                                start_new_session=True)
    return proc, time.perf_counter()


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a running process so far (its own threads)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def reap(proc: subprocess.Popen) -> float | None:
    """The finished process's CPU seconds (from its rusage), or None while it runs."""
    pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
    if pid == 0:
        return None
    proc.returncode = os.waitstatus_to_exitcode(status)
    return usage.ru_utime + usage.ru_stime


def json_lines(log: Path) -> list[dict[str, Any]]:
    """The JSON objects that end a log's lines, text before them skipped (a progress bar's redraws share the
    line a check is printed on); lines without one are skipped."""
    out = []
    for line in log.read_text().splitlines():
        start = line.find("{")
        if start < 0:
            continue
        try:
            obj = json.loads(line[start:])
        except json.JSONDecodeError:
            continue
        if isinstance(obj, dict):
            out.append(obj)
    return out


def run_side_by_side(cmds: dict[str, list[str]], *, cwd: str, logs: dict[str, Path], max_wall: float,
                     reached: Callable[[str, dict[str, Any]], bool], leader: str | None = None,
                     stop_ratio: float | None = None, poll_s: float = 5.0) -> dict[str, dict[str, Any]]:
    """Run every command at once until each finishes or is stopped; per name: the result (the last stdout
    JSON line, None when stopped), ``finished``, ``reached`` (``reached(name, result)`` of a finished run),
    ``wall_s`` and ``cpu_s``. A run that exits non-zero or prints no JSON raises SystemExit naming its log."""
    running = {name: launch(cmd, cwd=cwd, log=logs[name]) for name, cmd in cmds.items()}
    cpu: dict[str, float] = {}
    results: dict[str, dict[str, Any]] = {}
    while running:
        time.sleep(poll_s)
        for name, (proc, t0) in list(running.items()):
            wall = time.perf_counter() - t0
            used = reap(proc)
            if used is None:
                try:
                    cpu[name] = cpu_seconds(proc.pid)
                except OSError:
                    pass
                cap = max_wall
                if stop_ratio and leader is not None and name != leader and results.get(leader, {}).get("reached"):
                    cap = min(cap, stop_ratio * results[leader]["wall_s"])
                if wall < cap:
                    continue
                os.killpg(proc.pid, signal.SIGTERM)
                os.wait4(proc.pid, 0)
                proc.stdout.close()
                res: dict[str, Any] = {"result": None, "finished": False, "reached": False, "wall_s": wall,
                                       "cpu_s": cpu.get(name, float("nan"))}
            else:
                out = proc.stdout.read().strip().splitlines()
                proc.stdout.close()
                if proc.returncode != 0 or not out:
                    for other, _ in running.values():
                        if other is not proc:
                            os.killpg(other.pid, signal.SIGTERM)
                            os.wait4(other.pid, 0)
                    raise SystemExit(f"{name} failed ({proc.returncode}); see {logs[name]}")
                result = json.loads(out[-1])
                res = {"result": result, "finished": True, "reached": bool(reached(name, result)), "wall_s": wall,
                       "cpu_s": used}
            results[name] = res
            del running[name]
    return results
