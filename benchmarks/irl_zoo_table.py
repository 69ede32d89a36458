"""The reward-model zoo on CartPole-v1 from the 10-episode reference dataset: return, env steps, wall time.

Every registered reward model of demokit's zoo runs through ``demokit irl`` (the whole
process: start-up, evaluations and the checkpoint included) at its defaults, seeds 0..2,
``--device cpu``, one torch thread, stopping at the env's threshold (475) as `demokit gail`
does. ``sqil`` runs with DQN (it needs a replay buffer; its default), AIRL / PWIL / RED /
D-REX with PPO (the default). T-REX needs ranked demonstrations (the reference dataset's
10 episodes all return 500): it runs on a ranked dataset made here (``make_ranked``: a BC
policy of the reference data rolled out with epsilon-greedy noise 1.0, 0.75, 0.5, 0.25,
0.0, two episodes each, every step's ``rank`` extra = -epsilon), or on ``--ranked FILE``.

    .venv/bin/python benchmarks/irl_zoo_table.py [--models airl sqil ...] [--seeds 0 1 2] [--ranked FILE]

Prints one JSON line per run and a markdown table (median over seeds) for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT / "datasets" / "cartpole-v1-expert.h5"
MODELS = ("sqil", "red", "pwil", "airl", "drex", "trex")


def run(model: str, seed: int, data: Path, workdir: Path) -> dict:
    cmd = [sys.executable, "-m", "demokit", "irl", "--reward-model", model, "--expert", str(data), "--seed",
           str(seed), "--device", "cpu", "--out", str(workdir / f"{model}-{seed}.pt"),
           "--run-dir", str(workdir / f"run-{model}-{seed}"), "--json"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=workdir)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        return {"model": model, "seed": seed, "error": proc.stderr.strip().splitlines()[-1:], "process_s": wall}
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    return {"model": model, "seed": seed, "algo": result["algo"], "mean_return": result["mean_return"],
            "env_steps": result["env_steps"], "wall_s": round(result["wall_s"], 1), "process_s": round(wall, 1),
            "converged": result["converged"]}


def make_ranked(path: Path, seed: int = 0) -> Path:
    """Ten CartPole-v1 episodes of a BC policy (trained on the reference data) at five noise levels, ranked."""
    import numpy as np

    from demokit.data import DatasetWriter, Episode
    from demokit.envs import make_env
    from demokit.il import train_bc

    policy = train_bc(str(DATA), {"epochs": 30, "eval_episodes": 0, "seed": seed, "device": "cpu"}).policy
    env = make_env("CartPole-v1")
    rng = np.random.default_rng(seed)
    with DatasetWriter(path, observation_space=env.observation_space, action_space=env.action_space,
                       env_id="CartPole-v1", provenance={"policy": "BC + epsilon-greedy noise (rank = -epsilon)"}) as w:
        for k, eps in enumerate((1.0, 1.0, 0.75, 0.75, 0.5, 0.5, 0.25, 0.25, 0.0, 0.0)):
            obs, _ = env.reset(seed=seed + k)
            rows, acts, rews, done = [], [], [], (False, False)
            while not any(done):
                a = int(rng.integers(2)) if rng.random() < eps else int(policy.act(obs[None])[0])
                rows.append(obs), acts.append(a)
                obs, r, term, trunc, _ = env.step(a)
                rews.append(r)
                done = (term, trunc)
            flags = np.zeros(len(rows), bool)
            te, tr = flags.copy(), flags.copy()
            te[-1], tr[-1] = done
            w.add_episode(Episode(observations=np.asarray(rows, np.float32), actions=np.asarray(acts),
                                  rewards=np.asarray(rews), terminated=te, truncated=tr,
                                  final_observation=np.asarray(obs, np.float32)[None],
                                  extras={"rank": np.full(len(rows), -eps, np.float32)}, seed=seed + k))
    env.close()
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--ranked", type=Path, default=None, help="ranked dataset for trex")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        if "trex" in args.models and args.ranked is None:
            args.ranked = make_ranked(Path(tmp) / "cartpole-ranked.h5")
        for model in args.models:
            data = args.ranked if model == "trex" else DATA
            for seed in args.seeds:
                row = run(model, seed, data, Path(tmp))
                print(json.dumps(row), flush=True)
                rows.append(row)
    print("\n| model | learner | seeds | return (median, min) | env steps (median) | wall s (median) | reached 475 |")
    print("|---|---|---|---|---|---|---|")
    for model in args.models:
        ok = [r for r in rows if r["model"] == model and "error" not in r]
        bad = [r for r in rows if r["model"] == model and "error" in r]
        if not ok:
            print(f"| {model} | - | {len(bad)} | refused: {bad[0]['error'][0] if bad and bad[0]['error'] else '?'} "
                  f"| - | - | - |")
            continue
        med = lambda k: statistics.median(r[k] for r in ok)  # noqa: E731
        print(f"| {model} | {ok[0]['algo'].split('-', 1)[1]} | {len(ok)} | {med('mean_return'):.1f}, "
              f"{min(r['mean_return'] for r in ok):.1f} | {med('env_steps'):.0f} | {med('wall_s'):.1f} | "
              f"{sum(r['converged'] for r in ok)}/{len(ok)} |")


if __name__ == "__main__":
    main()
