"""GAIL next to BC in the GAIL paper's classic-control setting (Ho & Ermon 2016).

For each env, 1, 4, 7 and 10 expert trajectories and seeds 0-2, on exactly the data of
``benchmarks/bc_paper_table.py``: 10 expert episodes collected per seed
(``collect_demo_data`` from ``experts/<env>-<algo>.pt``, deterministic, env seeds
``1000 * seed + k``), the first k of them. Each cell trains

* GAIL: ``run_irl`` at demokit's defaults (logit reward with the absorbing state; the
  env's default learner: PPO, DQN on MountainCar-v0; ``--algo`` picks one), stopping once
  its deterministic evaluation reaches ``STOP`` below (DI-engine's ``stop_value``, a margin above the goal) or the budget is spent;
* BC: ``train_bc`` at its defaults (as in bc_paper_table.py);

and evaluates both final policies on the same 100 fresh deterministic episodes (env seeds
``50_000 + 100 * seed + i``; a 20-episode mean of one GAIL Acrobot policy ranged from -80 to
-90 over different episode sets). The table shows mean ± std over seeds next to the paper's
figures (REFERENCES.md) and the goals.

Resumable: every cell's result is cached as JSON under ``benchmarks/results/gail_paper/``
(with the datasets and the trained policies); a re-run only trains missing cells and cells
trained with another budget, stop value or GAIL defaults, and re-evaluates cells evaluated
on another number of episodes (``--fresh`` retrains all).
``--quick``: seed 0 and 1 / 10 trajectories only.

Differences from the paper: CartPole-v1 (500 steps, threshold 475) instead of v0;
whole trajectories (no subsampling); PPO instead of TRPO; our PPO/DQN experts;
deterministic evaluation; training stops at the goal instead of a fixed 1.5M steps.

    .venv/bin/python benchmarks/gail_paper_table.py [--envs CartPole-v1,Acrobot-v1,MountainCar-v0]
        [--seeds 0 1 2] [--counts 1 4 7 10] [--quick] [--train-missing] [--fresh] [--no-bc]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "benchmarks")]

from bc_paper_table import EXPERT_ALGO, PAPER, TRAJECTORIES, expert_checkpoint  # noqa: E402
from bench_bc import first_episodes, write_episodes  # noqa: E402
from demokit.data import load_dataset  # noqa: E402
from demokit.evaluation import evaluate_policy  # noqa: E402
from demokit.pipelines.collect import collect_demo_data  # noqa: E402
from demokit.envs import make_env  # noqa: E402
from demokit.pipelines.reward_model import default_learner, irl_defaults, run_irl  # noqa: E402
from demokit.reward_models import GailRewardModel  # noqa: E402
from demokit.policies import file_sha256, load_policy  # noqa: E402

CACHE = REPO / "benchmarks" / "results" / "gail_paper"
#: the paper's GAIL returns for 1/4/7/10 trajectories (REFERENCES.md)
PAPER_GAIL = {"CartPole-v1": (200, 200, 200, 200), "Acrobot-v1": (-77, -83, -83, -79),
              "MountainCar-v0": (-102, -101, -100, -101)}
#: this project's goals for the table's mean returns
GOAL = {"CartPole-v1": 475.0, "Acrobot-v1": -85.0, "MountainCar-v0": -105.0}
#: GAIL's stop value (DI-engine's stop_value): a margin above the goal, because a policy stopped the
#: moment its evaluation crosses the goal lands just above or below it on fresh episodes
STOP = {"CartPole-v1": 500.0, "Acrobot-v1": -80.0, "MountainCar-v0": -102.0}
#: fresh deterministic episodes each final policy is evaluated on
EVAL_EPISODES = 100
#: GAIL env-step budget per cell
BUDGET = {"CartPole-v1": 300_000, "Acrobot-v1": 300_000, "MountainCar-v0": 200_000}


def expert(env_id: str, experts: Path | None, train_missing: bool) -> Path | None:
    """``<experts>/<env>-<algo>.pt`` when ``--experts`` is given, else bc_paper_table's expert."""
    if experts is None:
        return expert_checkpoint(env_id, train_missing)
    path = experts / f"{env_id}-{EXPERT_ALGO[env_id]}.pt"
    if not path.exists():
        print(f"{env_id}: no expert {path}: skipped", file=sys.stderr)
        return None
    return path


def expert_tag(ckpt: Path) -> str:
    """Short content hash of an expert checkpoint: cached data and cells are per expert."""
    return file_sha256(ckpt)[:8]


def dataset(env_id: str, seed: int, k: int, ckpt: Path) -> Path:
    """The first ``k`` of 10 expert episodes collected for ``seed`` (cached per expert)."""
    folder = CACHE / "data" / expert_tag(ckpt)
    full = folder / f"{env_id}-s{seed}.h5"
    if not full.exists():
        full.parent.mkdir(parents=True, exist_ok=True)
        collect_demo_data(str(ckpt), env_id=env_id, path=full, n_episodes=max(TRAJECTORIES), seed=1000 * seed,
                          mode="overwrite")
    sub = folder / f"{env_id}-s{seed}-k{k}.h5"
    if not sub.exists():
        write_episodes(sub, env_id, first_episodes(full, k))
    return sub


def evaluate(policy_path: str, env_id: str, seed: int) -> float:
    return evaluate_policy(load_policy(policy_path), env_id, episodes=EVAL_EPISODES, seed=50_000 + 100 * seed,
                           deterministic=True).mean_return


def train_cell(env_id: str, seed: int, k: int, ckpt: Path, *, algo: str, bc: bool, name: str) -> dict:
    """Train GAIL (and BC) for one cell; their policies are kept under ``CACHE/policies``."""
    data = dataset(env_id, seed, k, ckpt)
    policies = CACHE / "policies"
    policies.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    res = run_irl({"expert_data_path": str(data), "device": "cpu", "algo": algo, "stop_value": STOP[env_id],
                   "total_timesteps": BUDGET[env_id]}, seed, out=policies / f"{name}-gail.pt")
    cell = {"env_id": env_id, "seed": seed, "k": k, "algo": res.algo, "expert": str(ckpt),
            "expert_data_return": float(load_dataset(data).episode_returns.mean()),
            "gail_policy": str(res.checkpoint), "gail_env_steps": res.env_steps, "gail_converged": res.converged,
            "gail_wall_s": round(time.perf_counter() - t0, 1), **train_settings(env_id, algo)}
    if bc:
        from demokit.il import train_bc

        cell["bc_policy"] = str(train_bc(data, seed=seed, out=str(policies / f"{name}-bc.pt")).checkpoint)
    return cell


def evaluate_cell(cell: dict) -> dict:
    """``cell`` with its policies evaluated on ``EVAL_EPISODES`` fresh episodes."""
    out = {**cell, "eval_episodes": EVAL_EPISODES}
    for kind in ("gail", "bc"):
        if f"{kind}_policy" in cell:
            out[kind] = evaluate(cell[f"{kind}_policy"], cell["env_id"], cell["seed"])
    return out


def train_settings(env_id: str, algo: str) -> dict:
    """The training settings a cached cell was computed with (other settings: retrained),
    GAIL's per-env defaults included (a changed default retrains the env's cells)."""
    return {"budget": BUDGET[env_id], "stop_value": STOP[env_id],
            "gail_defaults": {part: irl_defaults(GailRewardModel, env_id, algo, part) for part in ("rl", "reward_model")}}


def cached_cell(path: Path, env_id: str, algo: str, *, fresh: bool) -> dict | None:
    """The cached cell at ``path`` if it was trained with today's settings and its policies exist."""
    if fresh or not path.exists():
        return None
    cell = json.loads(path.read_text())
    if any(cell.get(k) != v for k, v in train_settings(env_id, algo).items()) or "gail_policy" not in cell:
        return None
    if not all(Path(cell[key]).exists() for key in ("gail_policy", "bc_policy") if key in cell):
        return None
    return cell


def fmt(values: list[float]) -> str:
    if not values:
        return "-"
    std = statistics.pstdev(values) if len(values) > 1 else 0.0
    return f"{statistics.fmean(values):.1f} ± {std:.1f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--envs", default=",".join(EXPERT_ALGO))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--counts", type=int, nargs="+", default=list(TRAJECTORIES))
    ap.add_argument("--quick", action="store_true", help="seed 0, 1 and 10 trajectories")
    ap.add_argument("--train-missing", action="store_true", help="train missing experts (minutes each)")
    ap.add_argument("--fresh", action="store_true", help="recompute cached cells")
    ap.add_argument("--no-bc", action="store_true", help="GAIL only")
    ap.add_argument("--algo", default=None, choices=("ppo", "dqn"),
                    help="GAIL learner (default: the env's, as `demokit gail` picks it)")
    ap.add_argument("--experts", type=Path, default=None,
                    help="folder of <env>-<algo>.pt experts (default: bc_paper_table's experts/)")
    args = ap.parse_args()
    seeds, counts = ([0], [1, 10]) if args.quick else (args.seeds, args.counts)
    envs = [e for e in args.envs.split(",") if e]
    for env_id in envs:
        if env_id not in EXPERT_ALGO:
            sys.exit(f"error: --envs: {env_id!r} is not one of {', '.join(EXPERT_ALGO)}")
    cells: dict[tuple[str, int, int], dict] = {}
    for env_id in envs:
        ckpt = expert(env_id, args.experts, args.train_missing)
        if ckpt is None:
            continue
        for seed in seeds:
            for k in counts:
                algo = args.algo or default_learner(env_id, make_env(env_id).action_space)
                name = f"{env_id}-{expert_tag(ckpt)}-{algo}-s{seed}-k{k}"
                path = CACHE / "cells" / f"{name}.json"
                cell = cached_cell(path, env_id, algo, fresh=args.fresh)
                if cell is None:
                    cell = train_cell(env_id, seed, k, ckpt, algo=algo, bc=not args.no_bc, name=name)
                if cell.get("eval_episodes") != EVAL_EPISODES:
                    cell = evaluate_cell(cell)
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_text(json.dumps(cell))
                cells[(env_id, seed, k)] = cell
                print(f"{env_id} seed {seed} k={k}: GAIL {cell['gail']:.1f} ({cell['gail_env_steps']} steps, "
                      f"{cell['gail_wall_s']:.0f} s), BC {cell.get('bc', float('nan')):.1f}", file=sys.stderr)

    learner = args.algo or "each env's default learner"
    print(f"\nGAIL ({learner}) and BC, seeds {seeds}: mean ± std over seeds of the {EVAL_EPISODES}-episode "
          f"deterministic return\n")
    print("| env | trajectories | demokit GAIL | paper GAIL | demokit BC | paper BC | goal | GAIL env steps (median) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for env_id in envs:
        for k in counts:
            rows = [cells[(env_id, s, k)] for s in seeds if (env_id, s, k) in cells]
            if not rows:
                continue
            i = TRAJECTORIES.index(k) if k in TRAJECTORIES else None
            paper_gail = PAPER_GAIL[env_id][i] if i is not None else "-"
            paper_bc = PAPER[env_id]["bc"][i] if i is not None else "-"
            steps = statistics.median(r["gail_env_steps"] for r in rows)
            learners = "/".join(sorted({r["algo"].removeprefix("gail-") for r in rows}))
            print(f"| {env_id} ({learners}) | {k} | {fmt([r['gail'] for r in rows])} | {paper_gail} | "
                  f"{fmt([r['bc'] for r in rows if 'bc' in r])} | {paper_bc} | {GOAL[env_id]:g} | {steps:.0f} |")


if __name__ == "__main__":
    main()
