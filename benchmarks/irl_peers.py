"""AIRL, SQIL and GAIL from the same 10 expert episodes: demokit vs imitation 1.0.1, same run.

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

Off CartPole-v1 (``--envs Acrobot-v1 MountainCar-v0 Pendulum-v1``): the env's reference data
(``datasets/<env>-expert.h5``), both systems stopping at the same goal (Acrobot-v1 -100,
MountainCar-v0 -110, Pendulum-v1 -200); demokit at its per-env defaults (its learner for the
env: DQN on MountainCar-v0, SAC on Pendulum-v1; its own stop value), imitation's SQIL with the
env's rl-zoo row (DQN; SAC on Pendulum-v1) and its GAIL / AIRL with the tutorials' PPO
settings, capped by ``--peer-cap`` (env steps) and ``--peer-max-wall`` (seconds).

    .venv/bin/python benchmarks/irl_peers.py [--envs CartPole-v1 ...] [--algos sqil airl gail] [--seeds 0]
        [--systems demokit imitation] [--cache FILE]
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

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

from _peers import export_npz, run_peer  # noqa: E402
from bench_ppo import demokit_cmd, run_json  # noqa: E402

GOAL_RATIO = 0.5
#: the peer runner and its arguments per algorithm (time-to-threshold settings)
PEER = {"sqil": ("imitation_sqil.py", {"eval_every": 2_500}),
        "airl": ("imitation_gail.py", {"algo": "airl", "eval_every": 16_384}),
        "gail": ("imitation_gail.py", {"algo": "gail", "eval_every": 16_384})}
#: the goal both systems stop at (demokit's stop for the env: its reward threshold, Pendulum-v1 -200)
GOALS = {"CartPole-v1": 475.0, "Acrobot-v1": -100.0, "MountainCar-v0": -110.0, "Pendulum-v1": -200.0}
CAPS = {"sqil": 100_000, "airl": 196_608, "gail": 196_608}
#: imitation's tutorial demo batch (transitions per discriminator batch); capped at the data's size (Acrobot-v1's
#: 10 episodes are 870 transitions, Pendulum-v1's 2000), which imitation needs
DEMO_BATCH = {"airl": 2_048, "gail": 1_024}
#: env steps between imitation SQIL's checks: demokit SQIL's cadence on the env (CartPole-v1: its SQIL row; the
#: others: the env's tuned DQN / SAC row)
SQIL_EVAL_EVERY = {"CartPole-v1": 256, "Acrobot-v1": 5_000, "MountainCar-v0": 5_000, "Pendulum-v1": 1_000}


def dataset_of(env_id: str) -> Path:
    return ROOT / "datasets" / f"{env_id.lower()}-expert.h5"


def cap_pair(text: str) -> tuple[str, int]:
    algo, _, steps = text.partition("=")
    if algo not in PEER or not steps.isdigit() or int(steps) < 1:
        raise argparse.ArgumentTypeError(f"expected ALGO=STEPS with ALGO one of {', '.join(PEER)}, got {text!r}")
    return algo, int(steps)


def children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run_demokit(algo: str, seed: int, tmp: Path, env_id: str = "CartPole-v1", cap: int | None = None) -> dict:
    cpu0 = children_cpu()
    wall, res = run_json([*demokit_cmd(), "irl", "--reward-model", algo, "--expert", str(dataset_of(env_id)),
                          "--device", "cpu", "--seed", str(seed), "--out", str(tmp / f"{env_id}-{algo}-{seed}.pt"),
                          "--json", *(["--timesteps", str(cap)] if cap else [])], cwd=str(tmp))
    return {"process_wall_s": round(wall, 2), "process_cpu_s": round(children_cpu() - cpu0, 2),
            "env_steps": res["env_steps"], "mean_return": res["mean_return"], "reached": bool(res["converged"]),
            "learner": res["algo"]}


def run_imitation(algo: str, seed: int, npz: Path, cap: int, sqil_preset: str = "rl-zoo",
                  sqil_eval_every: int = 256, env_id: str = "CartPole-v1", max_wall: float | None = None) -> dict:
    script, extra = PEER[algo]
    if algo == "sqil":
        extra = {**extra, "preset": sqil_preset, "eval_every": sqil_eval_every}
    else:
        with np.load(npz) as z:
            extra = {**extra, "max_wall": max_wall, "demo_batch_size": min(DEMO_BATCH[algo], len(z["obs"]))}
    cpu0 = children_cpu()
    res = run_peer(script, {"demos": npz, "seed": seed, "total_timesteps": cap, "stop_at_threshold": True,
                            "threshold": GOALS[env_id], **extra}, timeout=3600)
    return {"process_wall_s": res["peer_process_wall_s"], "process_cpu_s": round(children_cpu() - cpu0, 2),
            "env_steps": res["env_steps"], "mean_return": res["mean_return"], "reached": bool(res.get("reached")),
            "reached_env_steps": res.get("reached_env_steps"), "train_wall_s": res["wall_s"],
            "checks": res.get("checks"), "settings": res["settings"],
            **({"demo_batch_size": extra["demo_batch_size"]} if "demo_batch_size" in extra else {})}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--envs", nargs="+", choices=sorted(GOALS), default=["CartPole-v1"],
                    help="tasks (default CartPole-v1); data: datasets/<env>-expert.h5")
    ap.add_argument("--algos", nargs="+", choices=sorted(PEER), default=["sqil", "airl"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0])
    ap.add_argument("--peer-cap", type=cap_pair, nargs="+", metavar="ALGO=STEPS", default=[],
                    help=f"env-step caps of imitation's runs (default {' '.join(f'{a}={n}' for a, n in CAPS.items())}"
                         f": 12 rounds for airl / gail)")
    ap.add_argument("--demokit-cap", type=int, default=None,
                    help="env-step budget of demokit's runs off CartPole-v1 (default: the pipeline's)")
    ap.add_argument("--peer-max-wall", type=float, default=None,
                    help="airl / gail: end imitation's training at the first round after S seconds")
    ap.add_argument("--systems", nargs="+", choices=("demokit", "imitation"), default=["demokit", "imitation"],
                    help="which side to run (the other side's cells come from the cache when there)")
    ap.add_argument("--sqil-preset", choices=("rl-zoo", "sb3"), default="rl-zoo",
                    help="imitation SQIL's learner settings: rl-zoo's tuned row of the env, or sb3 (its tutorial's)")
    ap.add_argument("--sqil-eval-every", type=int, default=None,
                    help="env steps between imitation SQIL's 20-episode checks (default: demokit SQIL's cadence on "
                         "the env: 256 on CartPole-v1, 5000 on Acrobot-v1 / MountainCar-v0, 1000 on Pendulum-v1)")
    ap.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "demokit-irl-peers.json")
    args = ap.parse_args()
    caps = {**CAPS, **dict(args.peer_cap)}
    cache = json.loads(args.cache.read_text()) if args.cache.exists() else {}
    suffix = lambda algo: "/sb3" if algo == "sqil" and args.sqil_preset == "sb3" else ""  # noqa: E731

    def every(env: str) -> int:
        return args.sqil_eval_every or SQIL_EVAL_EVERY[env]

    def cadence(algo: str, env: str) -> str:  # the peer SQIL's check cadence (2500: the previous session's keys)
        return f"/ev{every(env)}" if algo == "sqil" and every(env) != 2_500 else ""

    def key(env: str, algo: str, system: str, seed: int) -> str:  # CartPole-v1: the earlier sessions' keys
        head = "" if env == "CartPole-v1" else f"{env}/"
        tail = f"/cap{caps[algo]}{suffix(algo)}{cadence(algo, env)}" if system == "imitation" else ""
        if system == "demokit" and env != "CartPole-v1" and args.demokit_cap:
            tail = f"/cap{args.demokit_cap}"
        return f"{head}{algo}/{system}/{seed}{tail}"

    with tempfile.TemporaryDirectory(prefix="irl-peers-") as tmp_dir:
        tmp = Path(tmp_dir)
        for env in args.envs:
            npz = tmp / f"{env}.npz"
            export_npz(dataset_of(env), npz)
            demokit_cap = None if env == "CartPole-v1" else args.demokit_cap
            for algo in args.algos:
                for seed in args.seeds:  # alternate the systems per seed
                    runs = {"demokit": lambda: run_demokit(algo, seed, tmp, env, demokit_cap),
                            "imitation": lambda: run_imitation(algo, seed, npz, caps[algo], args.sqil_preset,
                                                               every(env), env, args.peer_max_wall)}
                    for system in args.systems:
                        k = key(env, algo, system, seed)
                        if k not in cache:
                            row = runs[system]()
                            row["loadavg_1m"] = round(os.getloadavg()[0], 1)
                            row["date"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
                            cache[k] = row
                            args.cache.write_text(json.dumps(cache, indent=1))
                        print(k, json.dumps({k2: v for k2, v in cache[k].items() if k2 != "checks"}), flush=True)

    for env in args.envs:
        goal = GOALS[env]
        print(f"\n{env} (goal {goal:g})\n\n| algo | system | seeds | reached the goal | env steps (median) | "
              f"wall s (median) | CPU s (median) | final return (median) |\n|---|---|---:|---:|---:|---:|---:|---:|")
        for algo in args.algos:
            med = {}
            for system in ("demokit", "imitation"):
                rows = [cache[key(env, algo, system, s)] for s in args.seeds if key(env, algo, system, s) in cache]
                if not rows:
                    continue
                m = {f: statistics.median(r[f] for r in rows) for f in ("env_steps", "process_wall_s",
                                                                       "process_cpu_s", "mean_return")}
                med[system] = (m, sum(r["reached"] for r in rows), len(rows))
                print(f"| {algo} | {system} | {len(rows)} | {med[system][1]}/{len(rows)} | {m['env_steps']:.0f} | "
                      f"{m['process_wall_s']:.1f} | {m['process_cpu_s']:.1f} | {m['mean_return']:.1f} |")
            if len(med) == 2:
                (d, d_ok, d_n), (p, p_ok, p_n) = med["demokit"], med["imitation"]
                if p_ok == p_n:
                    wall, cpu = d["process_wall_s"] / p["process_wall_s"], d["process_cpu_s"] / p["process_cpu_s"]
                    print(f"\n{algo}: demokit / imitation to {goal:g}: wall {wall:.2f}, CPU {cpu:.2f} "
                          f"(goal <= {GOAL_RATIO}: {'met' if wall <= GOAL_RATIO and d_ok == d_n else 'NOT met'})\n")
                else:
                    print(f"\n{algo}: imitation reached {goal:g} in {p_ok}/{p_n} runs within {caps[algo]} steps: "
                          f"return {p['mean_return']:.1f} at {p['env_steps']:.0f} steps, "
                          f"{1e3 * p['process_wall_s'] / p['env_steps']:.2f} "
                          f"ms wall per env step (demokit: {1e3 * d['process_wall_s'] / d['env_steps']:.2f})\n")


if __name__ == "__main__":
    main()
