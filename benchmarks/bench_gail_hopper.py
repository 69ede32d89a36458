"""GAIL on Hopper to 0.9 normalised: demokit's GAIL-PPO vs imitation's GAIL, side by side, same demonstrations.

Issue 11's GAIL speed goal: from the 25-episode reference dataset ``datasets/hopper-v5-expert.h5``,
train GAIL until its policy scores 0.9 normalised, ``(return - random) / (expert - random)`` with
the dataset's mean return as the expert's and a uniformly random policy's (50 episodes) as random;
goal <= 0.25x imitation's wall time. When imitation does not reach 0.9 within its budget (2M env
steps by default, the issue's), its return at that budget and the wall / CPU time per env step of
both are reported instead.

The same stopping rule for both: a quick deterministic evaluation of 5 episodes every 20,480 env
steps (``--every``; 5 of imitation's 4096-step rounds, 20 of demokit's 1024-step PPO rollouts), a
passing one confirmed on 50 episodes (those 5 and 45 more). demokit: ``benchmarks/hopper_gail.py
--algo ppo --stop 0.9 --eval-every 20480`` (GAIL-PPO at GAIL's Hopper-v5 defaults but that interval,
its 1M-step budget). imitation 1.0.1 (``.venv-imitation-mj``): ``peers/imitation_gail.py --preset
mujoco`` (its published seals/Hopper GAIL settings) on the same demonstrations (exported with
``_peers.export_npz``). **Its env is Hopper-v4** (imitation pins
gymnasium 0.29; v4 and v5 share the model and the 11-dimensional observation, not every detail).

Both whole processes start at the same moment, one torch thread each, one per core of a 2-core
machine (``_sidebyside``). ``--max-wall`` caps each; ``--stop-ratio R`` stops imitation once demokit has
reached 0.9 and imitation has run R times demokit's wall time (R = 4 decides the <= 0.25x goal).

    .venv/bin/python benchmarks/bench_gail_hopper.py --seeds 0 --log-dir DIR --json DIR/result.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]
from _sidebyside import json_lines, run_side_by_side  # noqa: E402

DATASET = ROOT / "datasets" / "hopper-v5-expert.h5"
IMITATION_VENV = ROOT / ".venv-imitation-mj"
GOAL = 0.9
#: both systems' check interval: 5 of imitation's 4096-env-step rounds, 20 of demokit's 1024-step rollouts
EVERY = 20_480


def commands(seed: int, *, npz: Path, threshold: float, peer_steps: int, log_dir: Path,
             every: int = EVERY, random_return: float | None = None) -> dict[str, list[str]]:
    """Both whole processes' command lines. ``random_return``: the parent's (passed to demokit's run, which
    would otherwise spend its first seconds on 50 random episodes; imitation's runner gets the threshold)."""
    known = [] if random_return is None else ["--random-return", repr(float(random_return))]
    return {
        "demokit": [sys.executable, str(ROOT / "benchmarks" / "hopper_gail.py"), "--algo", "ppo", "--seed", str(seed),
                    "--stop", str(GOAL), "--eval-every", str(every), "--data", str(DATASET),
                    "--log", str(log_dir / f"demokit-seed{seed}.jsonl"), *known],
        "imitation": [str(IMITATION_VENV / "bin" / "python"), str(ROOT / "benchmarks" / "peers" / "imitation_gail.py"),
                      "--preset", "mujoco", "--demos", str(npz), "--env-id", "Hopper-v4", "--seed", str(seed),
                      "--total-timesteps", str(peer_steps), "--eval-every", str(every), "--check-episodes", "5",
                      "--confirm-episodes", "50", "--threshold", f"{threshold:.3f}", "--stop-at-threshold",
                      "--eval-episodes", "50"],
    }


def summarise(name: str, run: dict[str, Any], checks: list[dict[str, Any]], expert: float,
              rand: float) -> dict[str, Any]:
    """One system's row: reached, env steps, wall / CPU, the final (or last checked) return, normalised, and the
    per-step costs: of the whole process when it finished; of a stopped one, its last check's env steps against
    that check's own wall / CPU seconds (both systems log them with each check), so that the steps after the last
    check, which no check counted, are not charged to it (the whole process's when a check has no times)."""
    result = run["result"] or {}
    last = checks[-1] if checks and not result else None
    steps = result.get("env_steps") or (last["env_steps"] if last else None)  # stopped: the last check's
    ret = result.get("mean_return")
    row = {"system": name, "reached": run["reached"], "finished": run["finished"], "env_steps": steps,
           "wall_s": run["wall_s"], "cpu_s": run["cpu_s"], "mean_return": ret, "std_return": result.get("std_return"),
           "normalised": None if ret is None else (ret - rand) / (expert - rand),
           "best_check": max((c.get("eval_return", c.get("mean_return")) for c in checks), default=None)}
    if steps:
        timed = last is not None and last.get("wall_s") and last.get("cpu_s")
        wall, cpu = (last["wall_s"], last["cpu_s"]) if timed else (run["wall_s"], run["cpu_s"])
        row.update(steps_per_s=steps / wall, cpu_ms_per_step=1000 * cpu / steps,
                   per_step_of="its last check" if timed else "the whole process")
    return row


def verdict(d: dict[str, Any], p: dict[str, Any]) -> str:
    """The comparison in words: the wall ratio when both reached the goal, a bound and per-step costs otherwise."""
    per_step = ""
    if d.get("cpu_ms_per_step") and p.get("cpu_ms_per_step"):
        per_step = (f"; per env step demokit / imitation: wall {p['steps_per_s'] / d['steps_per_s']:.2f}x, "
                    f"CPU {d['cpu_ms_per_step'] / p['cpu_ms_per_step']:.2f}x")
    if not d["reached"]:
        why = "within its budget" if d["finished"] else "before the wall cap"
        return f"demokit did not reach {GOAL} {why}: no ratio{per_step}"
    if p["reached"]:
        return f"wall demokit / imitation to {GOAL}: {d['wall_s'] / p['wall_s']:.2f}x (CPU {d['cpu_s'] / p['cpu_s']:.2f}x){per_step}"
    return (f"imitation did not reach {GOAL} ({p['env_steps']} env steps, {p['wall_s']:.0f} s): wall demokit / imitation "
            f"< {d['wall_s'] / p['wall_s']:.2f}x (an upper bound){per_step}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--peer-steps", type=int, default=2_000_000, help="imitation's budget in env steps (default 2M)")
    ap.add_argument("--every", type=int, default=EVERY, help=f"env steps between both systems' checks (default {EVERY})")
    ap.add_argument("--max-wall", type=float, default=7200.0, help="stop a process still running after this many s")
    ap.add_argument("--stop-ratio", type=float, default=None,
                    help="stop imitation after this many times demokit's wall time once demokit reached the goal")
    ap.add_argument("--log-dir", type=Path, default=None, help="keep the processes' logs here (default: a temp dir)")
    ap.add_argument("--json", type=Path, default=None, help="write every seed's rows here")
    args = ap.parse_args(argv)
    if not (IMITATION_VENV / "bin" / "python").exists():
        print(f"error: {IMITATION_VENV} is missing: run scripts/setup_peers.sh imitation-mj", file=sys.stderr)
        return 2
    from _peers import export_npz

    log_dir = args.log_dir or Path(tempfile.mkdtemp(prefix="bench-gail-hopper-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    from hopper_gail import normaliser

    _, expert, rand = normaliser(DATASET)
    threshold = rand + GOAL * (expert - rand)
    print(f"expert {expert:.1f}, random {rand:.1f}: {GOAL} normalised = {threshold:.1f}", file=sys.stderr)
    rows: dict[int, list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        npz = Path(tmp) / "hopper.npz"
        export_npz(DATASET, npz)
        for seed in args.seeds:
            cmds = commands(seed, npz=npz, threshold=threshold, peer_steps=args.peer_steps, log_dir=log_dir,
                            every=args.every, random_return=rand)
            logs = {name: log_dir / f"{name}-seed{seed}.log" for name in cmds}
            runs = run_side_by_side(
                cmds, cwd=tmp, logs=logs, max_wall=args.max_wall, leader="demokit", stop_ratio=args.stop_ratio,
                reached=lambda name, r: bool(r.get("converged")) if name == "demokit" else bool(r.get("reached")))
            checks = {"demokit": [c for c in json_lines(log_dir / f"demokit-seed{seed}.jsonl") if "eval_return" in c],
                      "imitation": json_lines(logs["imitation"])}
            rows[seed] = [summarise(name, runs[name], checks[name], expert, rand) for name in ("demokit", "imitation")]
            if args.json:
                args.json.write_text(json.dumps({"expert": expert, "random": rand, "threshold": threshold,
                                                 "rows": rows}, indent=1))
    print(f"load average at the end: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    print(f"| seed | system | reached {GOAL} | env steps | wall s | CPU s | env steps/s | CPU ms/step | "
          "return (50 eps) | normalised | best check |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for seed, pair in rows.items():
        for r in pair:
            fmt = lambda v, f: "-" if v is None else format(v, f)  # noqa: E731
            print(f"| {seed} | {r['system']} | {'yes' if r['reached'] else 'no'} | {fmt(r['env_steps'], ',')} | "
                  f"{r['wall_s']:.0f} | {r['cpu_s']:.0f} | {fmt(r.get('steps_per_s'), '.0f')} | "
                  f"{fmt(r.get('cpu_ms_per_step'), '.2f')} | {fmt(r['mean_return'], '.1f')} | "
                  f"{fmt(r['normalised'], '.3f')} | {fmt(r['best_check'], '.1f')} |")
        print(f"\nseed {seed}: {verdict(*pair)}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
