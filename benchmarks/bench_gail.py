"""GAIL on CartPole-v1 from 10 expert episodes: `demokit gail` vs imitation's GAIL, same run.

demokit: the whole process ``demokit gail --expert DATA --device cpu --seed S --json``
(defaults: PPO, logit reward with the absorbing state; stops once the deterministic
evaluation - 5 quick episodes, confirmed on 20 - reaches 475), start-up, evaluations
and checkpoint writing included. Its wall time is the time to reach >= 475.
imitation 1.0.1 (peer venv, ``benchmarks/peers/imitation_gail.py``): its documented
CartPole example (8 envs, SB3 PPO, 200k steps = 12 rounds of 16384 steps), the whole
process; and, in a second run with ``--eval-every 16384 --stop-at-threshold``, the
time at which its periodic 20-episode evaluation first reached 475 (it can only
evaluate between rounds). Both with one torch thread. Runs alternate per seed.

Data: the first 10 episodes of ``datasets/cartpole-v1-expert.h5``; when that file does
not exist, 10 episodes collected from the PPO expert (``experts/CartPole-v1-ppo.pt``,
trained first if missing) with ``collect_demo_data``.

    .venv/bin/python benchmarks/bench_gail.py [--seeds 0 1 2] [--no-peer] [--no-peer-stop]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

from _peers import PeerUnavailable, export_npz, peer_available, run_peer  # noqa: E402
from bench_bc import first_episodes, write_episodes  # noqa: E402
from bench_ppo import demokit_cmd, run_json  # noqa: E402

ENV = "CartPole-v1"
EPISODES = 10
GOAL_RATIO = 0.5
COMMITTED = ROOT / "datasets" / "cartpole-v1-expert.h5"


def expert_data(path: Path) -> str:
    """Write the benchmark's 10 expert episodes to ``path``; returns where they came from."""
    if COMMITTED.exists():
        source, what = COMMITTED, f"first {EPISODES} episodes of datasets/cartpole-v1-expert.h5"
    else:
        from demokit.pipelines.collect import collect_demo_data

        source = path.with_name("collected.h5")
        collect_demo_data("ppo", ENV, source, n_episodes=EPISODES, seed=0, mode="overwrite")
        what = f"{EPISODES} episodes of the PPO expert experts/{ENV}-ppo.pt"
    episodes = first_episodes(source, EPISODES)
    write_episodes(path, ENV, episodes)
    mean = statistics.fmean(float(e.episode_return) for e in episodes)
    return f"{what}: {sum(len(e) for e in episodes)} transitions, expert return {mean:.1f}"


def med(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--no-peer", action="store_true", help="skip imitation entirely")
    ap.add_argument("--no-peer-stop", action="store_true", help="skip imitation's stop-at-threshold run")
    ap.add_argument("--json", type=Path, default=None, help="also write every run's figures here")
    args = ap.parse_args()
    peer = not args.no_peer and peer_available("imitation")
    if not args.no_peer and not peer:
        print("imitation's venv is missing (scripts/setup_peers.sh): demokit only", file=sys.stderr)
    runs: dict[str, list[dict]] = {"demokit": [], "imitation_200k": [], "imitation_stop": []}
    with tempfile.TemporaryDirectory(prefix="bench-gail-") as tmp_dir:
        tmp = Path(tmp_dir)
        data = tmp / "cartpole-10.h5"
        print(f"data: {expert_data(data)}", file=sys.stderr)
        npz = tmp / "demos.npz"
        if peer:
            export_npz(data, npz)
        for seed in args.seeds:
            wall, res = run_json([*demokit_cmd(), "gail", "--expert", str(data), "--device", "cpu", "--seed",
                                  str(seed), "--out", str(tmp / f"gail-{seed}.pt"), "--json"], cwd=tmp_dir)
            runs["demokit"].append({**res, "process_wall_s": wall, "seed": seed})
            print(f"seed {seed} demokit: {wall:.1f} s, {res['env_steps']} steps, return {res['mean_return']:.1f}",
                  file=sys.stderr)
            if not peer:
                continue
            try:
                full = run_peer("imitation_gail.py", {"demos": npz, "seed": seed})
                runs["imitation_200k"].append(full)
                print(f"seed {seed} imitation 200k: {full['peer_process_wall_s']:.1f} s, "
                      f"return {full['mean_return']:.1f}", file=sys.stderr)
                if not args.no_peer_stop:
                    stop = run_peer("imitation_gail.py", {"demos": npz, "seed": seed, "eval_every": 16384,
                                                          "stop_at_threshold": True})
                    runs["imitation_stop"].append(stop)
                    print(f"seed {seed} imitation stop: reached {stop.get('reached')} at "
                          f"{stop.get('reached_env_steps')} steps, {stop['peer_process_wall_s']:.1f} s", file=sys.stderr)
            except PeerUnavailable as exc:
                print(f"imitation unavailable: {exc}", file=sys.stderr)
                peer = False

    ours = runs["demokit"]
    print(f"\nGAIL on {ENV} from {EPISODES} expert episodes, seeds {args.seeds} (medians; 2-core CPU, 1 torch thread)\n")
    print("| system | reached >= 475 | env steps | wall s (whole process) | final return |")
    print("|---|---:|---:|---:|---:|")
    print(f"| demokit gail (PPO, stop at 475) | {sum(r['converged'] for r in ours)}/{len(ours)} | "
          f"{med([r['env_steps'] for r in ours]):.0f} | {med([r['process_wall_s'] for r in ours]):.1f} | "
          f"{med([r['mean_return'] for r in ours]):.1f} |")
    full, stop = runs["imitation_200k"], runs["imitation_stop"]
    if full:
        print(f"| imitation GAIL, documented example (200k steps) | "
              f"{sum(r['mean_return'] >= 475 for r in full)}/{len(full)} | {med([r['env_steps'] for r in full]):.0f} | "
              f"{med([r['peer_process_wall_s'] for r in full]):.1f} | {med([r['mean_return'] for r in full]):.1f} |")
    if stop:
        reached = [r for r in stop if r.get("reached")]
        print(f"| imitation GAIL, stop at 475 (eval every 16384) | {len(reached)}/{len(stop)} | "
              f"{med([r['reached_env_steps'] for r in reached]):.0f} | "
              f"{med([r['peer_process_wall_s'] for r in stop]):.1f} | {med([r['mean_return'] for r in stop]):.1f} |")
    if full:
        ratio = med([r["process_wall_s"] for r in ours]) / med([r["peer_process_wall_s"] for r in full])
        verdict = "met" if ratio <= GOAL_RATIO else "NOT met"
        print(f"\nratio demokit / imitation (200k example), whole process: {ratio:.2f} "
              f"(goal <= {GOAL_RATIO}: {verdict})")
    print(f"load average (1 min) at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    if args.json:
        args.json.write_text(json.dumps(runs, indent=1, default=str))


if __name__ == "__main__":
    main()
