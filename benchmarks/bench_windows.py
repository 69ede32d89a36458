"""Window sampling: demokit's sample_windows (from disk and from RAM) vs Minari 0.5, in the same run.

Data: ``--episodes`` CartPole-shaped episodes of ``--length`` steps (obs float32 (4,), int64
actions), written by demokit and converted to a Minari dataset with ``demokit convert``.
Each sampler returns 256 windows of ``L`` consecutive steps (observations and actions) inside
one episode, for L = 16 and 64:

* demokit, disk: ``ds.sample_windows(256, L, rng=rng, pad="none")`` on a dataset whose arrays
  are not loaded (each call reads the windows' rows from the file);
* demokit, RAM: the same after ``ds.load()``;
* Minari: what a user must do there (Minari does not sample sub-trajectories):
  ``mds.sample_episodes(256)`` then cut one random window of L steps from each episode.

Reported: windows/s (median of ``--repeats`` timings of ``--calls`` calls) and the ratios.
Run: .venv/bin/python benchmarks/bench_windows.py [--episodes 400] [--length 250] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from gymnasium import spaces

from demokit.data import DatasetWriter, Episode, load_dataset

OBS = spaces.Box(-np.inf, np.inf, (4,), np.float32)
ACT = spaces.Discrete(2)
BATCH = 256


def make(path: Path, episodes: int, length: int) -> None:
    rng = np.random.default_rng(0)
    with DatasetWriter(path, observation_space=OBS, action_space=ACT, env_id="CartPole-v1") as w:
        for k in range(episodes):
            trunc = np.zeros(length, bool)
            trunc[-1] = True
            obs = rng.normal(size=(length, 4)).astype(np.float32)
            w.add_episode(Episode(observations=obs, actions=rng.integers(0, 2, length), rewards=np.ones(length),
                                  terminated=np.zeros(length, bool), truncated=trunc,
                                  final_observation=obs[-1:], extras={}, seed=k))


def timed(fn, calls: int, repeats: int) -> float:
    fn()  # warm-up
    rates = []
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(calls):
            fn()
        rates.append(calls * BATCH / (time.perf_counter() - t))
    return statistics.median(rates)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--episodes", type=int, default=400)  # Minari samples without replacement: >= 256
    ap.add_argument("--length", type=int, default=250)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--calls", type=int, default=5)
    args = ap.parse_args()
    import minari

    fig: dict = {"machine": f"{platform.machine()} {os.cpu_count()} cores", "minari": minari.__version__,
                 "episodes": args.episodes, "episode_length": args.length, "batch": BATCH}
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "w.h5"
        make(path, args.episodes, args.length)
        mroot = Path(d) / "minari"
        subprocess.run([sys.executable, "-m", "demokit", "convert", str(path), str(mroot / "bench-windows-v0")],
                       check=True, capture_output=True)
        os.environ["MINARI_DATASETS_PATH"] = str(mroot)
        mds = minari.load_dataset("bench-windows-v0")
        mds.set_seed(0)
        disk = load_dataset(path)
        ram = load_dataset(path)
        ram.load()
        for length in (16, 64):
            rng = np.random.default_rng(0)
            cut = np.random.default_rng(1)

            def minari_windows() -> None:
                eps = mds.sample_episodes(BATCH)
                starts = cut.integers(0, [e.actions.shape[0] - length + 1 for e in eps])
                np.stack([e.observations[s:s + length] for e, s in zip(eps, starts)])
                np.stack([e.actions[s:s + length] for e, s in zip(eps, starts)])

            row = {"demokit_disk": timed(lambda: disk.sample_windows(BATCH, length, rng=rng, pad="none"),
                                         args.calls, args.repeats),
                   "demokit_ram": timed(lambda: ram.sample_windows(BATCH, length, rng=rng, pad="none"),
                                        args.calls, args.repeats),
                   "minari": timed(minari_windows, max(1, args.calls // 5), args.repeats)}
            row["ratio_disk_vs_minari"] = row["demokit_disk"] / row["minari"]
            row["ratio_ram_vs_minari"] = row["demokit_ram"] / row["minari"]
            fig[f"L{length}"] = row
    print(json.dumps(fig, indent=1))


if __name__ == "__main__":
    main()
