"""Collection throughput: demokit's collector against the limit of the same vector env, in the same run.

* limit: a random-action loop over the same ``make_vec_env`` SyncVectorEnv (one batched
  ``action_space.sample()`` + ``step`` per vector step, nothing recorded): the speed of
  stepping the envs alone, which no collector on this vector env can beat.
* demokit: ``collect_demo_data`` with the CartPole-v1 PPO expert (``experts/CartPole-v1-ppo.pt``,
  trained first when missing), greedy, ``--steps`` transitions, written to an HDF5 file
  (buffers, policy calls, Episode objects, the writer and its atomic commit all included).
* demokit random: the same with ``policy="random"`` (short episodes: per-episode costs show).
* Minari (optional, ``--minari``): ``benchmarks/peers/minari_collect.py``, its DataCollector
  recording random-action episodes in one env, plus ``create_dataset`` (run in its own
  interpreter; reported beside demokit's random collection with one env and its default).

Repeats alternate limit and collector runs so that load from other processes hits both;
the table shows medians of wall-clock steps/s and of steps per CPU-second (process time,
which contention barely changes) with their ratios.

Run: .venv/bin/python benchmarks/bench_collect.py [--steps 100000] [--repeats 5]
     [--num-envs 8,16,32] [--minari] [--json results.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402

from demokit.envs import make_vec_env  # noqa: E402
from demokit.pipelines import collect_demo_data  # noqa: E402
from demokit.pipelines.collect import CollectConfig, expert_checkpoint_path  # noqa: E402

ENV_ID = "CartPole-v1"


def expert(env_id: str) -> Path:
    path = ROOT / expert_checkpoint_path(env_id, "ppo")
    if not path.exists():
        from demokit.rl import train_expert

        print(f"training the PPO expert {path} (once) ...", file=sys.stderr, flush=True)
        train_expert({"env_id": env_id, "algo": "ppo", "out": str(path)})
    return path


def limit_run(num_envs: int, steps: int) -> tuple[float, float]:
    """Random actions through the same vector env; returns (steps/s wall, steps per CPU-second)."""
    venv = make_vec_env(ENV_ID, num_envs)
    venv.reset(seed=0)
    venv.action_space.seed(0)
    n = max(1, steps // num_envs)
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(n):
        venv.step(venv.action_space.sample())
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    venv.close()
    return n * num_envs / wall, n * num_envs / cpu


def collect_run(policy: str, num_envs: int, steps: int, tmp: Path) -> tuple[float, float]:
    out = tmp / f"bench-{num_envs}.h5"
    out.unlink(missing_ok=True)
    c0 = time.process_time()
    res = collect_demo_data(policy, ENV_ID, out, n_steps=steps, num_envs=num_envs, eval_episodes=0)
    cpu = time.process_time() - c0
    assert res.steps == steps
    return res.steps_per_s, res.steps / cpu


def median_pairs(runs: list[tuple[float, float]]) -> tuple[float, float]:
    return statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=100_000, help="transitions per run (default 100000)")
    p.add_argument("--repeats", type=int, default=5, help="alternating repeats (default 5)")
    p.add_argument("--num-envs", default="8,16,32", help="comma-separated env counts (default 8,16,32)")
    p.add_argument("--minari", action="store_true", help="also run Minari's DataCollector (peer runner)")
    p.add_argument("--json", default=None, help="also write the figures to this JSON file")
    args = p.parse_args()
    torch.set_num_threads(1)
    counts = [int(x) for x in args.num_envs.split(",")]
    ppo = str(expert(ENV_ID))
    default_envs = CollectConfig.__dataclass_fields__["num_envs"].default
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-collect-") as tmp_name:
        tmp = Path(tmp_name)
        collect_run(ppo, counts[0], 2000, tmp)  # warm-up (imports, first allocations)
        for k in counts:
            lim, col, rnd = [], [], []
            for _ in range(args.repeats):
                lim.append(limit_run(k, args.steps))
                col.append(collect_run(ppo, k, args.steps, tmp))
                rnd.append(collect_run("random", k, args.steps, tmp))
            (lw, lc), (cw, cc), (rw, rc) = median_pairs(lim), median_pairs(col), median_pairs(rnd)
            rows.append({"num_envs": k, "limit_steps_per_s": lw, "limit_steps_per_cpu_s": lc,
                         "ppo_steps_per_s": cw, "ppo_steps_per_cpu_s": cc, "ppo_ratio": cw / lw,
                         "ppo_cpu_ratio": cc / lc, "random_steps_per_s": rw, "random_ratio": rw / lw})
            print(f"num_envs {k}: limit {lw:,.0f}, ppo {cw:,.0f} ({cw / lw:.2f}), random {rw:,.0f} "
                  f"({rw / lw:.2f}) steps/s", file=sys.stderr, flush=True)
        minari = None
        if args.minari:
            from _peers import PeerUnavailable, run_peer

            try:
                minari = run_peer("minari_collect.py", {"steps": args.steps}, venv="main")
            except PeerUnavailable as exc:
                print(f"minari skipped: {exc}", file=sys.stderr)
            if minari is not None:
                one = [collect_run("random", 1, args.steps, tmp) for _ in range(args.repeats)]
                dflt = [collect_run("random", default_envs, args.steps, tmp) for _ in range(args.repeats)]
                minari["demokit_random_1env_steps_per_s"] = median_pairs(one)[0]
                minari["demokit_random_default_steps_per_s"] = median_pairs(dflt)[0]

    print(f"\nCollection on {ENV_ID}, {args.steps} transitions per run, medians of {args.repeats} "
          f"(cpus {os.cpu_count()}, load {os.getloadavg()[0]:.1f})\n")
    print("| num_envs | limit (random loop) steps/s | demokit PPO expert steps/s | ratio | ratio (CPU time) "
          "| demokit random steps/s | ratio |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['num_envs']} | {r['limit_steps_per_s']:,.0f} | {r['ppo_steps_per_s']:,.0f} | "
              f"{r['ppo_ratio']:.2f} | {r['ppo_cpu_ratio']:.2f} | {r['random_steps_per_s']:,.0f} | "
              f"{r['random_ratio']:.2f} |")
    if minari is not None:
        mc = minari["collect_and_create_steps_per_s"]
        print(f"\n| random-action collection | steps/s |\n|---|---:|\n"
              f"| Minari DataCollector (1 env, collect + create_dataset) | {mc:,.0f} |\n"
              f"| demokit collect, 1 env | {minari['demokit_random_1env_steps_per_s']:,.0f} |\n"
              f"| demokit collect, {default_envs} envs (default) | "
              f"{minari['demokit_random_default_steps_per_s']:,.0f} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "minari": minari, "steps": args.steps,
                                               "repeats": args.repeats}, indent=2))


if __name__ == "__main__":
    main()
