"""SAC expert on Hopper-v5 to 3000: demokit vs Stable-Baselines3 (rl-zoo settings), side by side.

Issue 11's speed goal: the whole process of training a Hopper-v5 SAC expert to the zoo's level
(3000 over 50 deterministic episodes), demokit against SB3's SAC at the rl-zoo Hopper settings,
goal <= 0.5x SB3's wall time.

demokit: ``demokit train-expert --env Hopper-v5 --algo sac --seed S --json`` (the tuned row =
rl-zoo's settings: 256x256, lr 3e-4, batch 256, buffer 1M, learning_starts 10k, one gradient
step per env step, automatic entropy; every 10k env steps 5 deterministic episodes, and when
they average >= 3000 the other 45 of the 50 confirm it; stops on a confirmed 3000).
SB3 2.x (``bench`` extra): SAC("MlpPolicy") at rl-zoo's Hopper settings (its MuJoCo defaults:
learning_starts 10000, SB3's defaults otherwise: the same as above) with the same stopping rule
as a callback: every 10k env steps the same 5 episode seeds (seed + 1000 + i), confirmed on the
same 50.

Both whole processes, one torch thread each, started at the same moment and run concurrently
(one per core of a 2-core machine), so a change in the machine's load hits both. ``--max-wall``
caps each, and ``--stop-ratio R`` stops SB3 once demokit has reached the goal and SB3 has run
R times demokit's wall time (R = 2: enough to decide the <= 0.5x goal). A stopped process is
reported as "not reached" with its env steps and best quick check so far (SB3 logs every check
to stderr; demokit's run has no per-check log, only the result).

``--set KEY=VALUE`` (repeatable) runs demokit with that SAC setting over its tuned row (``train-expert
--set``), e.g. to measure a candidate row against SB3's rl-zoo settings before adopting it.

    .venv/bin/python benchmarks/bench_sac_hopper.py --seeds 0 --max-wall 6600 --stop-ratio 2 --log-dir DIR
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from _sidebyside import json_lines, run_side_by_side  # noqa: E402
from bench_sac import SB3_EVALUATE, demokit_cmd  # noqa: E402

GOAL = 3000.0

SB3_SCRIPT = r"""
import json, sys, time, numpy as np, torch, gymnasium as gym
torch.set_num_threads(1)
from stable_baselines3 import SAC
from stable_baselines3.common.callbacks import BaseCallback
seed, goal = int(sys.argv[1]), float(sys.argv[2])
ENV_ID, EVAL_SEED, EVERY, QUICK, FULL = "Hopper-v5", seed + 1000, 10_000, 5, 50
t0 = time.perf_counter()
""" + SB3_EVALUATE + r"""
class Goal(BaseCallback):
    final = None
    def _on_step(self):
        if self.num_timesteps % EVERY:
            return True
        quick = evaluate(self.model, 0, QUICK)
        rec = {"env_steps": int(self.num_timesteps), "quick": float(np.mean(quick)),
               "wall_s": time.perf_counter() - t0, "cpu_s": time.process_time()}
        ok = np.mean(quick) >= goal
        if ok:
            full = quick + evaluate(self.model, QUICK, FULL - QUICK)
            rec["full"] = float(np.mean(full))
            ok = np.mean(full) >= goal
            if ok:
                Goal.final = full
        print(json.dumps(rec), file=sys.stderr, flush=True)
        return not ok

model = SAC("MlpPolicy", "Hopper-v5", learning_rate=3e-4, buffer_size=1_000_000, learning_starts=10_000,
            batch_size=256, tau=0.005, gamma=0.99, train_freq=1, gradient_steps=1, ent_coef="auto", seed=seed,
            device="cpu", verbose=0)
model.learn(1_000_000, callback=Goal())
final = Goal.final if Goal.final is not None else evaluate(model, 0, FULL)
print(json.dumps({"mean_return": float(np.mean(final)), "env_steps": int(model.num_timesteps)}))
"""


def run_seed(seed: int, max_wall: float, log_dir: Path, stop_ratio: float | None = None,
             settings: tuple[str, ...] = ()) -> dict[str, dict]:
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        cmds = {
            "demokit": [*demokit_cmd(), "train-expert", "--env", "Hopper-v5", "--algo", "sac", "--seed", str(seed),
                        "--device", "cpu", "--out", str(Path(tmp) / "hopper.pt"), "--json",
                        *(arg for pair in settings for arg in ("--set", pair))],
            "sb3": [sys.executable, "-c", SB3_SCRIPT, str(seed), str(GOAL)],
        }
        logs = {name: log_dir / f"{name}-seed{seed}.log" for name in cmds}
        runs = run_side_by_side(cmds, cwd=tmp, logs=logs, max_wall=max_wall, leader="demokit", stop_ratio=stop_ratio,
                                reached=lambda name, result: result["mean_return"] >= GOAL)
    for name, run in runs.items():
        res = {**(run["result"] or {}), "reached": run["reached"], "wall_s": run["wall_s"], "cpu_s": run["cpu_s"]}
        if name == "sb3":
            checks = json_lines(logs["sb3"])
            res["checks"] = checks
            if checks and not res["reached"]:
                res["env_steps"] = checks[-1]["env_steps"]
                res["best_quick"] = max(c["quick"] for c in checks)
        results[name] = res
        print(f"seed {seed}: {name} done: {json.dumps({k: v for k, v in res.items() if k != 'checks'})}",
              file=sys.stderr, flush=True)
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--max-wall", type=float, default=6600.0, help="stop a process still running after this many s")
    ap.add_argument("--stop-ratio", type=float, default=None,
                    help="stop SB3 after this many times demokit's wall time once demokit reached the goal")
    ap.add_argument("--log-dir", type=Path, default=None, help="keep the processes' stderr here (default: a temp dir)")
    ap.add_argument("--json", type=Path, default=None, help="write every seed's results here")
    ap.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE",
                    help="a SAC setting over demokit's tuned row (passed to train-expert --set; repeatable), "
                         "e.g. --set 'hidden_sizes=[128,128]'")
    args = ap.parse_args()
    log_dir = args.log_dir or Path(tempfile.mkdtemp(prefix="bench-sac-hopper-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    all_results = {}
    for seed in args.seeds:
        all_results[seed] = run_seed(seed, args.max_wall, log_dir, args.stop_ratio, tuple(args.settings))
        if args.json:
            args.json.write_text(json.dumps(all_results, indent=1))
    print(f"load average at the end: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    if args.settings:
        print(f"demokit settings over the tuned row: {' '.join(args.settings)}")
    print("| seed | system | reached 3000 | env steps | wall s | CPU s | return (50 eps) or best quick check |")
    print("|---|---|---|---|---|---|---|")
    for seed, res in all_results.items():
        for name, r in res.items():
            ret = f"{r['mean_return']:.1f}" if "mean_return" in r else f"best quick {r.get('best_quick', float('nan')):.1f}"
            print(f"| {seed} | {name} | {'yes' if r['reached'] else 'no (stopped)'} | "
                  f"{r.get('env_steps', '?')} | {r['wall_s']:.0f} | {r['cpu_s']:.0f} | {ret} |")
        d, s = res["demokit"], res["sb3"]
        if not d["reached"]:
            print(f"\nseed {seed}: demokit did not reach 3000 within the cap: no ratio")
            continue
        bound = "" if s["reached"] else " (SB3 stopped at the cap: an upper bound)"
        print(f"\nseed {seed}: wall demokit / SB3 {d['wall_s'] / s['wall_s']:.2f}{bound}; "
              f"CPU {d['cpu_s'] / s['cpu_s']:.2f}")


if __name__ == "__main__":
    main()
