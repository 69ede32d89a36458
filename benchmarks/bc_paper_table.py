"""BC in the GAIL paper's classic-control setting (Ho & Ermon 2016, Table/Fig. of classic control).

For each env, 1, 4, 7 and 10 expert trajectories, 3 seeds: collect 10 expert episodes
per seed (``collect_demo_data`` from the expert checkpoint, deterministic, env seeds
``1000 * seed + k``), train BC on the first k (``train_bc`` at its defaults: 2x64 tanh,
batch 256, up to 100 epochs, stopping at the env's reward_threshold), evaluate the
final policy on 100 fresh deterministic episodes; print mean and std over the seeds
next to the paper's BC figures and both experts' returns (REFERENCES.md).

Experts: ``experts/<env>-<algo>.pt`` (CartPole-v1 and Acrobot-v1: ppo, MountainCar-v0:
dqn). A missing one is trained with ``demokit.rl.train_expert`` (tuned settings) when
``--train-missing`` is given, otherwise that env is skipped. Equivalent CLI:
``demokit train-expert --env MountainCar-v0 --algo dqn``.

Differences from the paper: CartPole-v1 (500 steps, threshold 475) instead of v0
(200 steps); whole trajectories (no subsampling of pairs); experts are our PPO/DQN,
not TRPO; evaluation is deterministic.

Run: .venv/bin/python benchmarks/bc_paper_table.py [--envs CartPole-v1,Acrobot-v1,MountainCar-v0]
         [--seeds 3] [--train-missing] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "benchmarks")]

import numpy as np  # noqa: E402

from bench_bc import first_episodes, write_episodes  # noqa: E402
from demokit.evaluation import evaluate_policy  # noqa: E402
from demokit.il import train_bc  # noqa: E402
from demokit.pipelines.collect import collect_demo_data  # noqa: E402

EXPERT_ALGO = {"CartPole-v1": "ppo", "Acrobot-v1": "ppo", "MountainCar-v0": "dqn"}
TRAJECTORIES = (1, 4, 7, 10)
#: The GAIL paper's BC returns for 1/4/7/10 trajectories and its TRPO expert (REFERENCES.md).
PAPER = {
    "CartPole-v1": {"label": "CartPole-v0 (200 max)", "bc": (72, 169, 189, 177), "expert": 200.0},
    "Acrobot-v1": {"label": "Acrobot", "bc": (-131, -93, -97, -95), "expert": -75.3},
    "MountainCar-v0": {"label": "MountainCar", "bc": (-137, -133, -127, -123), "expert": -98.8},
}


def expert_checkpoint(env_id: str, train_missing: bool) -> Path | None:
    algo = EXPERT_ALGO[env_id]
    path = REPO / "experts" / f"{env_id}-{algo}.pt"
    if path.exists():
        return path
    if not train_missing:
        print(f"{env_id}: no expert {path.relative_to(REPO)} (pass --train-missing to train it): skipped",
              file=sys.stderr)
        return None
    from demokit.rl import train_expert

    t0 = time.perf_counter()
    res = train_expert({"env_id": env_id, "algo": algo, "out": str(path)})
    print(f"{env_id}: trained {algo} expert in {time.perf_counter() - t0:.0f} s, return {res.mean_return:.1f}",
          file=sys.stderr)
    return path


def run_env(env_id: str, ckpt: Path, seeds: int, tmp: Path) -> dict:
    rows: dict[int, list[float]] = {k: [] for k in TRAJECTORIES}
    expert_returns: list[float] = []
    walls: list[float] = []
    for s in range(seeds):
        full = tmp / f"{env_id}-s{s}.h5"
        col = collect_demo_data(str(ckpt), env_id=env_id, path=full, n_episodes=max(TRAJECTORIES), seed=1000 * s,
                                mode="overwrite")
        expert_returns.append(col.mean_return)
        for k in TRAJECTORIES:
            sub = tmp / f"{env_id}-s{s}-k{k}.h5"
            write_episodes(sub, env_id, first_episodes(full, k))
            res = train_bc(sub, seed=s)
            ev = evaluate_policy(res.policy, env_id, episodes=100, seed=50_000 + 100 * s, deterministic=True)
            rows[k].append(ev.mean_return)
            walls.append(res.wall_s)
            print(f"{env_id} seed {s} k={k}: BC {ev.mean_return:.1f} ({res.epochs} epochs, {res.wall_s:.1f} s)",
                  file=sys.stderr)
    return {"bc": {k: rows[k] for k in TRAJECTORIES}, "expert": expert_returns, "bc_wall_s": walls}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--envs", default=",".join(EXPERT_ALGO))
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--train-missing", action="store_true", help="train missing experts (minutes each)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="bc-paper-") as tmp:
        for env_id in [e for e in args.envs.split(",") if e]:
            if env_id not in EXPERT_ALGO:
                sys.exit(f"error: --envs: {env_id!r} is not one of {', '.join(EXPERT_ALGO)}")
            ckpt = expert_checkpoint(env_id, args.train_missing)
            if ckpt is not None:
                results[env_id] = run_env(env_id, ckpt, args.seeds, Path(tmp))

    print(f"\nBC, {args.seeds} seeds: mean ± std over seeds of the 100-episode deterministic return\n")
    print("| env (expert) | trajectories | demokit BC | paper BC | demokit expert | paper expert (env) |")
    print("|---|---:|---:|---:|---:|---:|")
    for env_id, res in results.items():
        paper = PAPER[env_id]
        expert = float(np.mean(res["expert"]))
        for i, k in enumerate(TRAJECTORIES):
            vals = res["bc"][k]
            std = statistics.pstdev(vals) if len(vals) > 1 else 0.0
            print(f"| {env_id} ({EXPERT_ALGO[env_id]}) | {k} | {np.mean(vals):.1f} ± {std:.1f} | {paper['bc'][i]} | "
                  f"{expert:.1f} | {paper['expert']} ({paper['label']}) |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
