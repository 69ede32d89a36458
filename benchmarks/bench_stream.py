"""Streaming BC vs in-memory BC, and image compression, measured in the same run.

* BC: one synthetic MuJoCo-sized dataset (obs float64 (17,), actions float32 (6,), episodes of
  1000 steps; ``--steps`` transitions). Each mode trains ``--epochs`` epochs (no evaluation) in
  its own process: in memory (``stream=False``) and streamed (``stream=True``, the shuffle
  buffer sized by ``--max-memory`` MB). Reported: samples/s, peak RSS (ru_maxrss) of each
  process, and the ratio streamed / in-memory (median of ``--repeats``).
* Images: the frames of a rendered-frame dataset (``--frames PATH``, e.g. the one
  benchmarks/pixel_bc.py writes) rewritten with no compression, lzf, gzip and blosc: bytes per
  frame and frames/s of a full streamed read (``iter_batches``).

Run: .venv/bin/python benchmarks/bench_stream.py [--steps 200000] [--epochs 2] [--repeats 3]
     [--max-memory 64] [--frames /tmp/pixel-bc/pixels.h5] [--dir /tmp]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from gymnasium import spaces

from demokit.data import DatasetWriter, Episode, load_dataset

OBS = spaces.Box(-np.inf, np.inf, (17,), np.float64)  # as HalfCheetah-v5 declares it
ACT = spaces.Box(-1.0, 1.0, (6,), np.float32)


def make_dataset(path: Path, steps: int) -> None:
    rng = np.random.default_rng(0)
    w = rng.normal(size=(17, 6)) / 4
    with DatasetWriter(path, observation_space=OBS, action_space=ACT, env_id="HalfCheetah-v5") as out:
        for start in range(0, steps, 1000):
            n = min(1000, steps - start)
            obs = rng.normal(size=(n, 17))
            trunc = np.zeros(n, bool)
            trunc[-1] = True
            out.add_episode(Episode(observations=obs, actions=np.tanh(obs @ w).astype(np.float32), rewards=np.zeros(n),
                                    terminated=np.zeros(n, bool), truncated=trunc,
                                    final_observation=obs[-1:], extras={}, seed=start // 1000))


def child(path: str, stream: bool, epochs: int, max_memory: float) -> None:
    from demokit.il import train_bc

    res = train_bc(path, env_id="HalfCheetah-v5" if _has_mujoco() else None, epochs=epochs, eval_episodes=0,
                   stream=stream, max_memory_mb=max_memory, val_fraction=0.0)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"samples_per_s": res.samples_per_s, "peak_rss_mb": rss}))


def _has_mujoco() -> bool:
    try:
        import mujoco  # noqa: F401
    except ImportError:
        return False
    return True


def bench_bc(args: argparse.Namespace, tmp: Path) -> dict:
    path = tmp / "stream.h5"
    make_dataset(path, args.steps)
    out: dict = {"steps": args.steps, "file_mb": path.stat().st_size / 2**20, "max_memory_mb": args.max_memory}
    runs: dict[str, list[dict]] = {"in_memory": [], "streamed": []}
    for _ in range(args.repeats):
        for name, stream in (("in_memory", False), ("streamed", True)):
            got = subprocess.run([sys.executable, __file__, "--child", str(path), str(stream), str(args.epochs),
                                  str(args.max_memory)], capture_output=True, text=True)
            if got.returncode:
                raise SystemExit(f"{name} run failed:\n{got.stderr[-2000:]}")
            runs[name].append(json.loads(got.stdout.strip().splitlines()[-1]))
    for name, rs in runs.items():
        out[name] = {"samples_per_s": statistics.median(r["samples_per_s"] for r in rs),
                     "peak_rss_mb": max(r["peak_rss_mb"] for r in rs)}
    out["ratio_streamed_vs_in_memory"] = out["streamed"]["samples_per_s"] / out["in_memory"]["samples_per_s"]
    return out


def bench_images(frames: Path, tmp: Path) -> dict:
    src = load_dataset(frames)
    episodes = list(src.iter_episodes())
    out = {}
    for comp in ("none", "lzf", "gzip", "blosc"):
        path = tmp / f"frames-{comp}.h5"
        t = time.perf_counter()
        with DatasetWriter(path, observation_space=src.observation_space, action_space=src.action_space,
                           env_id=src.env_id, compression=comp) as w:
            w.add_episodes(episodes)
        write_s = time.perf_counter() - t
        ds = load_dataset(path)
        t = time.perf_counter()
        n = sum(len(b["actions"]) for b in ds.iter_batches(256))
        read_s = time.perf_counter() - t
        out[comp] = {"bytes_per_frame": path.stat().st_size / len(ds), "read_frames_per_s": n / read_s,
                     "write_frames_per_s": len(ds) / write_s}
    out["frame"] = list(src.observation_space.shape)
    return out


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3] == "True", int(sys.argv[4]), float(sys.argv[5]))
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=200_000)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--max-memory", type=float, default=16.0)
    ap.add_argument("--frames", type=Path, default=None)
    ap.add_argument("--dir", default=None)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as d:
        fig = {"machine": f"{platform.machine()} {os.cpu_count()} cores, {platform.python_version()}",
               "bc": bench_bc(args, Path(d))}
        if args.frames is not None:
            fig["images"] = bench_images(args.frames, Path(d))
    print(json.dumps(fig, indent=1))


if __name__ == "__main__":
    main()
