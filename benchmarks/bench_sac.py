"""SAC expert on Pendulum-v1 to -200: demokit vs Stable-Baselines3 (rl-zoo settings), same run.

demokit: the whole process ``demokit train-expert --env Pendulum-v1 --algo sac --json``
(the tuned row: rl-zoo's 20k budget and lr 1e-3, 64x64 nets; stops once the deterministic
evaluation reaches -200: 5 quick episodes every 1000 steps, confirmed on 20), start-up,
evaluations and checkpoint writing included.
SB3 (``bench`` extra): the whole process of SAC at the rl-zoo Pendulum-v1 settings
(MlpPolicy 256x256, lr 1e-3, buffer 1M, learning_starts 100, batch 256, tau 0.005,
gamma 0.99, train_freq 1, gradient_steps 1, automatic entropy, 20k steps) with the same
stopping rule (a callback: every 1000 steps 5 deterministic episodes, confirmed on 20,
the same episode seeds). Both with one torch thread. Runs alternate (demokit, SB3, ...)
so load changes hit both. ``--sb3-full`` adds SB3's whole 20k-step run (no early stop).

``--hopper N``: training throughput on Hopper-v5 instead (mujoco extra), both at the rl-zoo
Hopper settings (256x256, batch 256, lr 3e-4, one gradient step per env step): after 1000
random steps, N env steps with training, timed inside each process (wall and CPU).
``--bf16`` adds demokit with ``precision="bfloat16"`` (mixed precision) as a third row.

    .venv/bin/python benchmarks/bench_sac.py [--seeds 0 1 2] [--sb3-full]
    .venv/bin/python benchmarks/bench_sac.py --hopper 1000 [--seeds 0 1 2] [--bf16]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: SB3 scripts' deterministic evaluation: episode i of ENV_ID reset with seed EVAL_SEED + i (as demokit's)
SB3_EVALUATE = r"""
def evaluate(model, first, n):
    env, out = gym.make(ENV_ID), []
    for i in range(first, first + n):
        obs, _ = env.reset(seed=EVAL_SEED + i)
        total, done = 0.0, False
        while not done:
            obs, r, term, trunc, _ = env.step(model.predict(obs, deterministic=True)[0])
            total, done = total + float(r), term or trunc
        out.append(total)
    env.close()
    return out
"""

SB3_SCRIPT = r"""
import json, sys, time, numpy as np, torch, gymnasium as gym
torch.set_num_threads(1)
from stable_baselines3 import SAC
from stable_baselines3.common.callbacks import BaseCallback
seed, early = int(sys.argv[1]), sys.argv[2] == "stop"
ENV_ID, EVAL_SEED, EVERY, QUICK, FULL, GOAL = "Pendulum-v1", seed + 1000, 1000, 5, 20, -200.0
""" + SB3_EVALUATE + r"""
class Goal(BaseCallback):
    final = None
    def _on_step(self):
        if not early or self.num_timesteps % EVERY:
            return True
        quick = evaluate(self.model, 0, QUICK)
        if np.mean(quick) < GOAL:
            return True
        full = quick + evaluate(self.model, QUICK, FULL - QUICK)
        if np.mean(full) < GOAL:
            return True
        Goal.final = full
        return False

env = gym.make("Pendulum-v1")
model = SAC("MlpPolicy", env, learning_rate=1e-3, buffer_size=1_000_000, learning_starts=100, batch_size=256,
            tau=0.005, gamma=0.99, train_freq=1, gradient_steps=1, ent_coef="auto", seed=seed, device="cpu",
            verbose=0)
model.learn(20_000, callback=Goal())
final = Goal.final if Goal.final is not None else evaluate(model, 0, FULL)
print(json.dumps({"mean_return": float(np.mean(final)), "env_steps": int(model.num_timesteps)}))
"""


HOPPER_SB3 = r"""
import json, sys, time, torch
torch.set_num_threads(1)
from stable_baselines3 import SAC
from stable_baselines3.common.callbacks import BaseCallback
seed, n = int(sys.argv[1]), int(sys.argv[2])
marks = {}
class Clock(BaseCallback):
    def _on_step(self):
        if self.num_timesteps == 1000:
            marks["t"], marks["c"] = time.perf_counter(), time.process_time()
        return True
model = SAC("MlpPolicy", "Hopper-v5", learning_rate=3e-4, buffer_size=100_000, learning_starts=1000, batch_size=256,
            tau=0.005, gamma=0.99, train_freq=1, gradient_steps=1, seed=seed, device="cpu", verbose=0)
model.learn(1000 + n, callback=Clock())
print(json.dumps({"wall_s": time.perf_counter() - marks["t"], "cpu_s": time.process_time() - marks["c"], "steps": n}))
"""

HOPPER_OURS = r"""
import json, sys, time, warnings
warnings.simplefilter("ignore")
from demokit.rl.hyperparams import tuned_config
from demokit.rl.sac import SACTrainer
from demokit.rl.common import torch_threads
seed, n, precision = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
trainer = SACTrainer(tuned_config("sac", "Hopper-v5", seed=seed, learning_starts=1000, buffer_size=100_000,
                                  device="cpu", precision=precision))
with torch_threads(1):
    trainer.collect(1000)
    t, c = time.perf_counter(), time.process_time()
    for _ in range(n):
        trainer.collect(1)
        trainer.train_steps(1)
print(json.dumps({"wall_s": time.perf_counter() - t, "cpu_s": time.process_time() - c, "steps": n}))
"""


def hopper(seeds: list[int], n: int, bf16: bool) -> None:
    runs = [("demokit", HOPPER_OURS, "float32"), ("sb3", HOPPER_SB3, "")]
    if bf16:
        runs.insert(1, ("demokit bfloat16", HOPPER_OURS, "bfloat16"))
    rows: dict[str, list[dict]] = {name: [] for name, _, _ in runs}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in seeds:
            for name, script, precision in runs:
                _, _, res = run_json([sys.executable, "-c", script, str(seed), str(n), precision], cwd=tmp)
                rows[name].append(res)
                print(f"seed {seed}: {name} {n / res['wall_s']:.1f} env steps/s wall, "
                      f"{1e3 * res['cpu_s'] / n:.2f} ms CPU per step", file=sys.stderr, flush=True)
    print(f"load average at the end: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    print("| system | runs | median env steps/s (wall) | median CPU ms per env step |")
    print("|---|---|---|---|")
    for name, rs in rows.items():
        print(f"| {name} SAC, Hopper-v5, 256x256 | {len(rs)} | {statistics.median(n / r['wall_s'] for r in rs):.1f} | "
              f"{statistics.median(1e3 * r['cpu_s'] / n for r in rs):.2f} |")
    for name in rows:
        if name != "sb3":
            cpu = statistics.median(r["cpu_s"] for r in rows[name]) / statistics.median(r["cpu_s"] for r in rows["sb3"])
            wall = statistics.median(r["wall_s"] for r in rows[name]) / statistics.median(r["wall_s"] for r in rows["sb3"])
            print(f"\n{name} / SB3 per env step (medians): CPU {cpu:.2f}, wall {wall:.2f}")


def demokit_cmd() -> list[str]:
    exe = shutil.which("demokit")
    return [exe] if exe else [sys.executable, "-m", "demokit.cli.app"]


def run_json(cmd: list[str], *, cwd: str) -> tuple[float, float, dict]:
    """(wall s, child CPU s, the last stdout line as JSON) of one whole process."""
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    before = os.times()
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = os.times()
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    if proc.returncode != 0:
        raise SystemExit(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr[-2000:]}")
    return wall, cpu, json.loads(proc.stdout.strip().splitlines()[-1])


def have_sb3() -> bool:
    try:
        import stable_baselines3  # noqa: F401
    except ImportError:
        return False
    return True


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--sb3-full", action="store_true", help="also run SB3 for its whole 20k steps")
    ap.add_argument("--hopper", type=int, default=0, metavar="N", help="measure Hopper-v5 training throughput "
                    "over N env steps instead (needs the mujoco extra and SB3)")
    ap.add_argument("--bf16", action="store_true", help="with --hopper: add demokit with precision bfloat16")
    args = ap.parse_args()
    if args.hopper:
        hopper(args.seeds, args.hopper, args.bf16)
        return
    sb3 = have_sb3()
    if not sb3:
        print("stable-baselines3 not installed (pip install 'stable-baselines3>=2.3'): demokit only", file=sys.stderr)
    rows: dict[str, list[tuple[float, float, dict]]] = {"ours": [], "sb3": [], "sb3_full": []}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            out = str(Path(tmp) / f"pendulum-{seed}.pt")
            r = run_json([*demokit_cmd(), "train-expert", "--env", "Pendulum-v1", "--algo", "sac", "--seed", str(seed),
                          "--device", "cpu", "--out", out, "--json"], cwd=tmp)
            rows["ours"].append(r)
            line = f"seed {seed}: demokit {r[0]:6.1f} s (cpu {r[1]:6.1f}) {r[2]['env_steps']:6d} steps " \
                   f"return {r[2]['mean_return']:7.1f}"
            if sb3:
                r = run_json([sys.executable, "-c", SB3_SCRIPT, str(seed), "stop"], cwd=tmp)
                rows["sb3"].append(r)
                line += f" | SB3 {r[0]:6.1f} s (cpu {r[1]:6.1f}) {r[2]['env_steps']:6d} steps " \
                        f"return {r[2]['mean_return']:7.1f}"
                if args.sb3_full:
                    r = run_json([sys.executable, "-c", SB3_SCRIPT, str(seed), "full"], cwd=tmp)
                    rows["sb3_full"].append(r)
                    line += f" | SB3 20k {r[0]:6.1f} s return {r[2]['mean_return']:7.1f}"
            print(line, file=sys.stderr, flush=True)

    def med(rs: list[tuple[float, float, dict]], i: int, key: str | None = None) -> float:
        return statistics.median(r[i] if key is None else r[2][key] for r in rs)

    print(f"load average at the end: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    print("| system | runs | median wall s | median CPU s | median env steps | median return | reached -200 |")
    print("|---|---|---|---|---|---|---|")
    names = {"ours": "demokit SAC (tuned row, stops at -200)", "sb3": "SB3 SAC (rl-zoo, stops at -200)",
             "sb3_full": "SB3 SAC (rl-zoo, whole 20k steps)"}
    for key, rs in rows.items():
        if rs:
            reached = sum(r[2]["mean_return"] >= -200 for r in rs)
            print(f"| {names[key]} | {len(rs)} | {med(rs, 0):.1f} | {med(rs, 1):.1f} | {med(rs, 2, 'env_steps'):.0f} | "
                  f"{med(rs, 2, 'mean_return'):.1f} | {reached}/{len(rs)} |")
    if rows["sb3"]:
        print(f"\nwall-time ratio demokit / SB3 (medians): {med(rows['ours'], 0) / med(rows['sb3'], 0):.2f} "
              f"(goal <= 0.5); CPU-time ratio {med(rows['ours'], 1) / med(rows['sb3'], 1):.2f}")


if __name__ == "__main__":
    main()
