"""PPO expert on CartPole-v1: demokit vs Stable-Baselines3 (rl-zoo settings), same run.

demokit: the whole process ``demokit train-expert --env CartPole-v1 --algo ppo --json``
(tuned defaults; stops once the deterministic 20-episode evaluation reaches 475),
start-up, periodic evaluation and checkpoint writing included.
SB3 (optional ``bench`` extra): the whole process of PPO at the rl-zoo CartPole settings
(8 envs, n_steps 32, batch 256, 20 epochs, gamma 0.98, GAE 0.8, linear lr 1e-3, linear
clip 0.2, ent 0, 100k steps) followed by its deterministic 20-episode evaluation. Both
run with one torch thread (the faster setting for these small MLPs on 2 cores).
Runs alternate (demokit, SB3, demokit, ...) so load changes hit both. A third row runs
demokit for SB3's full 100k steps (``--timesteps 100000``: no early stop) to compare the
implementations' speed per step apart from stopping at the goal.

    .venv/bin/python benchmarks/bench_ppo.py [--seeds 0 1 2] [--repeats 1]
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

SB3_SCRIPT = r"""
import json, sys, torch
torch.set_num_threads(1)
from stable_baselines3 import PPO
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy
seed = int(sys.argv[1])
lin = lambda v: (lambda progress_remaining: progress_remaining * v)
env = make_vec_env("CartPole-v1", n_envs=8, seed=seed)
model = PPO("MlpPolicy", env, n_steps=32, batch_size=256, gae_lambda=0.8, gamma=0.98, n_epochs=20, ent_coef=0.0,
            learning_rate=lin(1e-3), clip_range=lin(0.2), device="cpu", seed=seed, verbose=0)
model.learn(100_000)
mean, std = evaluate_policy(model, make_vec_env("CartPole-v1", n_envs=1, seed=seed + 1000), n_eval_episodes=20,
                            deterministic=True)
print(json.dumps({"mean_return": float(mean), "std_return": float(std), "env_steps": int(model.num_timesteps)}))
"""


def demokit_cmd() -> list[str]:
    exe = shutil.which("demokit")
    return [exe] if exe else [sys.executable, "-m", "demokit.cli.app"]


def run_json(cmd: list[str], *, cwd: str) -> tuple[float, dict]:
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr[-2000:]}")
    return wall, json.loads(proc.stdout.strip().splitlines()[-1])


def have_sb3() -> bool:
    try:
        import stable_baselines3  # noqa: F401
    except ImportError:
        return False
    return True


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--repeats", type=int, default=1)
    args = ap.parse_args()
    sb3 = have_sb3()
    if not sb3:
        print("stable-baselines3 not installed (pip install 'stable-baselines3>=2.3'): demokit only", file=sys.stderr)
    ours: list[tuple[float, dict]] = []
    ours_full: list[tuple[float, dict]] = []
    theirs: list[tuple[float, dict]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(args.repeats):
            for seed in args.seeds:
                out = str(Path(tmp) / f"cartpole-{seed}-{rep}.pt")
                w, res = run_json([*demokit_cmd(), "train-expert", "--env", "CartPole-v1", "--algo", "ppo",
                                   "--seed", str(seed), "--device", "cpu", "--out", out, "--json"], cwd=tmp)
                ours.append((w, res))
                line = f"seed {seed}: demokit {w:6.1f} s {res['env_steps']:7d} steps return {res['mean_return']:6.1f}"
                w3, res3 = run_json([*demokit_cmd(), "train-expert", "--env", "CartPole-v1", "--algo", "ppo",
                                     "--seed", str(seed), "--device", "cpu", "--out", out, "--timesteps", "100000",
                                     "--json"], cwd=tmp)
                ours_full.append((w3, res3))
                line += f" | demokit 100k {w3:6.1f} s return {res3['mean_return']:6.1f}"
                if sb3:
                    w2, res2 = run_json([sys.executable, "-c", SB3_SCRIPT, str(seed)], cwd=tmp)
                    theirs.append((w2, res2))
                    line += f" | SB3 {w2:6.1f} s {res2['env_steps']:7d} steps return {res2['mean_return']:6.1f}"
                print(line, file=sys.stderr, flush=True)

    def med(rows: list[tuple[float, dict]], key: str | None = None) -> float:
        return statistics.median(w if key is None else r[key] for w, r in rows)

    print("| system | runs | median wall s | median env steps | median return | reached 475 |")
    print("|---|---|---|---|---|---|")
    for name, rows in (("demokit PPO (tuned, stops at 475)", ours), ("demokit PPO, full 100k steps", ours_full),
                       ("SB3 PPO (rl-zoo, 100k steps)", theirs)):
        if rows:
            reached = sum(r["mean_return"] >= 475 for _, r in rows)
            print(f"| {name} | {len(rows)} | {med(rows):.1f} | {med(rows, 'env_steps'):.0f} | "
                  f"{med(rows, 'mean_return'):.1f} | {reached}/{len(rows)} |")
    if theirs:
        ratio = med(ours) / med(theirs)
        print(f"\nwall-time ratio demokit / SB3 (medians): {ratio:.2f} (goal <= 0.5)")
        print(f"same 100k steps, demokit / SB3: {med(ours_full) / med(theirs):.2f}")


if __name__ == "__main__":
    main()
