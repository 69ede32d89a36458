"""AIRL and SQIL on CartPole-v1 from the same 10 expert episodes: demokit vs imitation 1.0.1, same run.

demokit: the whole process ``demokit irl --reward-model airl|sqil --expert DATA --device cpu
--seed S --json`` at its defaults (sqil: DQN; airl: PPO), stopping once its deterministic
evaluation reaches 475 (5 quick episodes, confirmed on 20). imitation (peer venv):
``benchmarks/peers/imitation_sqil.py`` (SQIL with rl-zoo's tuned DQN CartPole row, 1 env;
a 20-episode check every ``--sqil-eval-every`` env steps: 256, as often as demokit's SQIL checks
on CartPole-v1, or 2500, the previous session's cadence, at which imitation's checks cost less) and
``benchmarks/peers/imitation_gail.py --algo airl`` (its AIRL tutorial's settings, 8 envs; a
check after every round of 16384 steps, the earliest it can), both with
``--stop-at-threshold`` and a step cap (``--peer-cap``). Both with one torch thread.
``--sqil-preset sb3``: imitation's SQIL with SB3's DQN defaults, as its tutorial builds it.

Figures per run: the whole process's wall time and CPU time (children's user+sys: the
better figure on a loaded machine), env steps, final return, whether 475 was reached.
Ratio: demokit / imitation of the median wall (and CPU) time to the threshold; where the
peer never reaches it, its return at the cap and its wall time per env step instead.
Results are cached per cell in ``--cache`` (a JSON file): a rerun adds missing cells only.

    .venv/bin/python benchmarks/irl_peers.py [--algos sqil airl] [--seeds 0] [--cache FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

from _peers import export_npz, run_peer  # noqa: E402
from bench_ppo import demokit_cmd, run_json  # noqa: E402

DATA = ROOT / "datasets" / "cartpole-v1-expert.h5"
GOAL_RATIO = 0.5
#: the peer runner and its arguments per algorithm (time-to-threshold settings)
PEER = {"sqil": ("imitation_sqil.py", {"eval_every": 2_500}),
        "airl": ("imitation_gail.py", {"algo": "airl", "eval_every": 16_384})}


def children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run_demokit(algo: str, seed: int, tmp: Path) -> dict:
    cpu0 = children_cpu()
    wall, res = run_json([*demokit_cmd(), "irl", "--reward-model", algo, "--expert", str(DATA), "--device", "cpu",
                          "--seed", str(seed), "--out", str(tmp / f"{algo}-{seed}.pt"), "--json"], cwd=str(tmp))
    return {"process_wall_s": round(wall, 2), "process_cpu_s": round(children_cpu() - cpu0, 2),
            "env_steps": res["env_steps"], "mean_return": res["mean_return"], "reached": bool(res["converged"]),
            "learner": res["algo"]}


def run_imitation(algo: str, seed: int, npz: Path, cap: int, sqil_preset: str = "rl-zoo",
                  sqil_eval_every: int = 256) -> dict:
    script, extra = PEER[algo]
    if algo == "sqil":
        extra = {**extra, "preset": sqil_preset, "eval_every": sqil_eval_every}
    cpu0 = children_cpu()
    res = run_peer(script, {"demos": npz, "seed": seed, "total_timesteps": cap, "stop_at_threshold": True, **extra},
                   timeout=3600)
    return {"process_wall_s": res["peer_process_wall_s"], "process_cpu_s": round(children_cpu() - cpu0, 2),
            "env_steps": res["env_steps"], "mean_return": res["mean_return"], "reached": bool(res.get("reached")),
            "reached_env_steps": res.get("reached_env_steps"), "train_wall_s": res["wall_s"],
            "checks": res.get("checks"), "settings": res["settings"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--algos", nargs="+", choices=sorted(PEER), default=sorted(PEER, reverse=True))
    ap.add_argument("--seeds", nargs="+", type=int, default=[0])
    ap.add_argument("--peer-cap", type=int, nargs=2, metavar=("SQIL", "AIRL"), default=[100_000, 196_608],
                    help="env-step caps of imitation's runs (default 100000 for sqil, 12 rounds for airl)")
    ap.add_argument("--sqil-preset", choices=("rl-zoo", "sb3"), default="rl-zoo",
                    help="imitation SQIL's DQN settings: rl-zoo's tuned CartPole row, or sb3 (its tutorial's)")
    ap.add_argument("--sqil-eval-every", type=int, default=256,
                    help="env steps between imitation SQIL's 20-episode checks (default 256, demokit SQIL's cadence)")
    ap.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "demokit-irl-peers.json")
    args = ap.parse_args()
    caps = dict(zip(("sqil", "airl"), args.peer_cap))
    cache = json.loads(args.cache.read_text()) if args.cache.exists() else {}
    suffix = lambda algo: "/sb3" if algo == "sqil" and args.sqil_preset == "sb3" else ""  # noqa: E731

    def cadence(algo: str) -> str:  # the peer SQIL's check cadence (2500: the previous session's keys)
        return f"/ev{args.sqil_eval_every}" if algo == "sqil" and args.sqil_eval_every != 2_500 else ""

    with tempfile.TemporaryDirectory(prefix="irl-peers-") as tmp_dir:
        tmp = Path(tmp_dir)
        npz = tmp / "demos.npz"
        export_npz(DATA, npz)
        for algo in args.algos:
            for seed in args.seeds:  # alternate the systems per seed
                for system, fn in (("demokit", lambda: run_demokit(algo, seed, tmp)),
                                   ("imitation", lambda: run_imitation(algo, seed, npz, caps[algo], args.sqil_preset,
                                                                     args.sqil_eval_every))):
                    tail = f"/cap{caps[algo]}{suffix(algo)}{cadence(algo)}" if system == "imitation" else ""
                    key = f"{algo}/{system}/{seed}{tail}"
                    if key not in cache:
                        row = fn()
                        row["loadavg_1m"] = round(os.getloadavg()[0], 1)
                        row["date"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
                        cache[key] = row
                        args.cache.write_text(json.dumps(cache, indent=1))
                    print(key, json.dumps({k: v for k, v in cache[key].items() if k != "checks"}), flush=True)

    print(f"\n| algo | system | seeds | reached 475 | env steps (median) | wall s (median) | CPU s (median) | "
          f"final return (median) |\n|---|---|---:|---:|---:|---:|---:|---:|")
    for algo in args.algos:
        med = {}
        for system in ("demokit", "imitation"):
            rows = [cache[k] for k in cache if k.startswith(f"{algo}/{system}/") and int(k.split("/")[2]) in args.seeds
                    and (system == "demokit" or k.endswith(f"/cap{caps[algo]}{suffix(algo)}{cadence(algo)}"))]
            if not rows:
                continue
            m = {f: statistics.median(r[f] for r in rows) for f in ("env_steps", "process_wall_s", "process_cpu_s",
                                                                   "mean_return")}
            med[system] = (m, sum(r["reached"] for r in rows), len(rows))
            print(f"| {algo} | {system} | {len(rows)} | {med[system][1]}/{len(rows)} | {m['env_steps']:.0f} | "
                  f"{m['process_wall_s']:.1f} | {m['process_cpu_s']:.1f} | {m['mean_return']:.1f} |")
        if len(med) == 2:
            (d, d_ok, d_n), (p, p_ok, p_n) = med["demokit"], med["imitation"]
            if p_ok == p_n:
                wall, cpu = d["process_wall_s"] / p["process_wall_s"], d["process_cpu_s"] / p["process_cpu_s"]
                print(f"\n{algo}: demokit / imitation to 475: wall {wall:.2f}, CPU {cpu:.2f} "
                      f"(goal <= {GOAL_RATIO}: {'met' if wall <= GOAL_RATIO and d_ok == d_n else 'NOT met'})\n")
            else:
                print(f"\n{algo}: imitation reached 475 in {p_ok}/{p_n} runs within {caps[algo]} steps: return "
                      f"{p['mean_return']:.1f} at {p['env_steps']:.0f} steps, "
                      f"{1e3 * p['process_wall_s'] / p['env_steps']:.2f} "
                      f"ms wall per env step (demokit: {1e3 * d['process_wall_s'] / d['env_steps']:.2f})\n")


if __name__ == "__main__":
    main()
