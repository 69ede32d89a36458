"""Data at scale (issue 13), each figure side by side with its peer in the same run.

* ``stream``: BC streamed from a synthetic Hopper-sized dataset (obs float64 (11,) as Hopper-v5
  declares it, actions float32 (3,), episodes of 1000 steps) at least 4x larger than the
  address space the training process may use (``RLIMIT_AS``, set in the child before it
  imports anything), next to the same training from RAM on a dataset that fits (no cap).
  Reported: samples/s (train_bc's figure: training time only), peak RSS (ru_maxrss) and VmPeak.
* ``append``: ``--episodes`` episodes appended to a dataset of ``--base-gb`` GB vs the same
  episodes written to a new file (interleaved, medians).
* ``shards``: ``demokit collect`` on 2 ranks (``--nproc 2``) vs one process, same seed:
  steps/s (end to end, processes included) and the equality of the arrays.

Run: nice -n 10 .venv/bin/python benchmarks/bench_scale.py stream|append|shards [options] [--dir /tmp]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from gymnasium import spaces

OBS = spaces.Box(-np.inf, np.inf, (11,), np.float64)  # Hopper-v5's observation space
ACT = spaces.Box(-1.0, 1.0, (3,), np.float32)
EP = 1000


def write_synthetic(path: Path, steps: int, *, mode: str = "create", seed: int = 0, first_seed: int = 0) -> float:
    """``steps`` transitions in episodes of 1000 steps (actions a fixed function of the observations),
    written with ``add_columns`` in blocks of 1M rows; returns the seconds."""
    from demokit.data import DatasetWriter

    rng = np.random.default_rng(seed)
    w = rng.normal(size=(11, 3)) / 3
    t0 = time.perf_counter()
    with DatasetWriter(path, observation_space=OBS, action_space=ACT, env_id="Hopper-v5", mode=mode,
                       commit_interval=None) as out:
        done = 0
        while done < steps:
            n = min(1_000_000, steps - done)
            lengths = np.full(n // EP, EP, np.int64)
            if n % EP:
                lengths = np.append(lengths, n % EP)
            obs = rng.normal(size=(n, 11))
            trunc = np.zeros(n, bool)
            trunc[np.cumsum(lengths) - 1] = True
            out.add_columns(observations=obs, actions=np.tanh(obs @ w).astype(np.float32), rewards=np.ones(n),
                            terminated=np.zeros(n, bool), truncated=trunc,
                            final_observations=rng.normal(size=(len(lengths), 11)), episode_lengths=lengths,
                            seeds=first_seed + done // EP + np.arange(len(lengths)))
            done += n
    return time.perf_counter() - t0


def machine() -> dict:
    return {"python": platform.python_version(), "cpus": os.cpu_count(), "load_avg": os.getloadavg(),
            "platform": platform.platform()}


# ---------------------------------------------------------------------------------------------
# stream


def stream_child(path: str, stream: bool, cap_mb: float, batch: int, max_memory: float, epochs: int) -> None:
    if cap_mb > 0:
        cap = int(cap_mb * 2**20)
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    import torch

    from demokit.il import train_bc

    torch.set_num_threads(1)
    res = train_bc(path, env_id=None, epochs=epochs, eval_episodes=0, stream=stream, batch_size=batch,
                   max_memory_mb=max_memory, val_fraction=0.0, num_threads=1)
    status = {k: v for k, v in (line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())}
    print(json.dumps({"samples_per_s": res.samples_per_s, "wall_s": res.wall_s,
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "vm_peak_mb": int(status["VmPeak"].split()[0]) / 1024}))


def bench_stream(args: argparse.Namespace, tmp: Path) -> dict:
    big, small = tmp / "hopper-big.h5", tmp / "hopper-ram.h5"
    out: dict = {"machine": machine(), "cap_mb": args.cap_mb, "batch_size": args.batch, "max_memory_mb": args.max_memory}
    if not big.exists():
        out["write_big_s"] = write_synthetic(big, args.big_steps)
    if not small.exists():
        write_synthetic(small, args.ram_steps, seed=1)
    out["big"] = {"steps": args.big_steps, "file_mb": big.stat().st_size / 2**20}
    out["ram"] = {"steps": args.ram_steps, "file_mb": small.stat().st_size / 2**20}
    out["file_over_cap"] = out["big"]["file_mb"] / args.cap_mb
    runs: dict[str, list[dict]] = {"in_ram": [], "streamed_capped": []}
    for _ in range(args.repeats):
        for name, path, stream, cap in (("in_ram", small, False, 0.0), ("streamed_capped", big, True, args.cap_mb)):
            got = subprocess.run([sys.executable, __file__, "stream-child", str(path), str(stream), str(cap),
                                  str(args.batch), str(args.max_memory), str(args.epochs)],
                                 capture_output=True, text=True)
            if got.returncode:
                raise SystemExit(f"{name} run failed:\n{got.stderr[-3000:]}")
            runs[name].append(json.loads(got.stdout.strip().splitlines()[-1]))
            print(name, runs[name][-1], file=sys.stderr, flush=True)
    for name, rs in runs.items():
        out[name] = {"samples_per_s": statistics.median(r["samples_per_s"] for r in rs),
                     "peak_rss_mb": max(r["peak_rss_mb"] for r in rs),
                     "vm_peak_mb": max(r["vm_peak_mb"] for r in rs), "runs": rs}
    out["ratio"] = out["streamed_capped"]["samples_per_s"] / out["in_ram"]["samples_per_s"]
    out["load_avg_after"] = os.getloadavg()
    if not args.keep:
        big.unlink()
        small.unlink()
    return out


# ---------------------------------------------------------------------------------------------
# append


def bench_append(args: argparse.Namespace, tmp: Path) -> dict:
    from demokit.data import DatasetWriter, load_dataset

    base = tmp / "base.h5"
    steps = args.episodes * args.episode_len
    if not base.exists():
        write_synthetic(base, int(args.base_gb * 2**30 / 110))
    ds = load_dataset(base)
    base_episodes = ds.num_episodes
    rng = np.random.default_rng(7)
    n, e = steps, args.episodes
    lengths = np.full(e, args.episode_len, np.int64)
    trunc = np.zeros(n, bool)
    trunc[np.cumsum(lengths) - 1] = True
    obs = rng.normal(size=(n, 11))
    cols = dict(observations=obs, actions=rng.normal(size=(n, 3)).astype(np.float32), rewards=np.ones(n),
                terminated=np.zeros(n, bool), truncated=trunc, final_observations=rng.normal(size=(e, 11)),
                episode_lengths=lengths, seeds=np.arange(e))
    size0 = base.stat().st_size
    times: dict[str, list[float]] = {"append": [], "new": []}
    cpu: dict[str, list[float]] = {"append": [], "new": []}
    for r in range(args.repeats):
        for kind in ("new", "append") if r % 2 else ("append", "new"):
            path = base if kind == "append" else tmp / "new.h5"
            if kind == "new" and path.exists():
                path.unlink()
            os.sync()
            c0, t0 = time.process_time(), time.perf_counter()
            with DatasetWriter(path, observation_space=OBS, action_space=ACT, env_id="Hopper-v5",
                               mode="append" if kind == "append" else "create", commit_interval=None) as w:
                w.add_columns(**cols)
            times[kind].append(time.perf_counter() - t0)
            cpu[kind].append(time.process_time() - c0)
            if kind == "append":  # back to the base size for the next repeat (outside the timing)
                _truncate_to(base, base_episodes)
    med = {k: statistics.median(v) for k, v in times.items()}
    out = {"machine": machine(), "base_mb": size0 / 2**20, "base_episodes": base_episodes, "episodes": e,
           "steps": n, "append_mb": (tmp / "new.h5").stat().st_size / 2**20, "times": times, "cpu": cpu,
           "median_s": med, "median_cpu_s": {k: statistics.median(v) for k, v in cpu.items()},
           "ratio": med["append"] / med["new"], "load_avg_after": os.getloadavg()}
    (tmp / "new.h5").unlink()
    if not args.keep:
        base.unlink()
    return out


def _truncate_to(path: Path, episodes: int) -> None:
    """Drop the episodes appended after the first ``episodes`` (benchmark reset, not a demokit feature)."""
    import h5py

    with h5py.File(path, "r+") as f:
        n = int(f["episodes/start"][episodes]) if episodes < f["episodes/length"].shape[0] else f["terminated"].shape[0]
        for name in ("observations", "actions", "rewards", "terminated", "truncated"):
            f[name].resize(n, axis=0)
        for name in ("final_observations", "episodes/start", "episodes/length", "episodes/return",
                     "episodes/terminated", "episodes/truncated", "episodes/seed"):
            f[name].resize(episodes, axis=0)
        f.attrs["total_steps"] = np.int64(n)
        f.attrs["total_episodes"] = np.int64(episodes)
        f.attrs["appends"] = "[]"


# ---------------------------------------------------------------------------------------------
# shards


def bench_shards(args: argparse.Namespace, tmp: Path) -> dict:
    from demokit.data import load_dataset

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    policy = args.policy
    if policy == "mlp":  # a random-weight 64x64 MLP checkpoint: the cost per step of a small expert
        import torch

        from demokit.envs import make_env
        from demokit.policies import make_policy, save_checkpoint

        probe = make_env(args.env)
        torch.manual_seed(0)
        policy = str(tmp / "mlp.pt")
        save_checkpoint(policy, make_policy(probe.observation_space, probe.action_space), algo="bc", env_id=args.env)
        probe.close()
    base = [sys.executable, "-m", "demokit", "collect", "--policy", policy, "--env", args.env, "--episodes",
            str(args.collect_episodes), "--seed", "0", "--json"]
    runs: dict[str, list[dict]] = {"one": [], "two": []}
    equal = []
    for r in range(args.repeats):
        for kind in ("one", "two") if r % 2 == 0 else ("two", "one"):
            out = tmp / f"{kind}.h5"
            if out.exists():
                out.unlink()
            cmd = base + ["--out", str(out)] + (["--nproc", "2"] if kind == "two" else [])
            t0 = time.perf_counter()
            got = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp)
            wall = time.perf_counter() - t0
            if got.returncode:
                raise SystemExit(f"{kind} failed:\n{got.stderr[-3000:]}")
            res = json.loads(got.stdout.strip().splitlines()[-1])
            runs[kind].append({"wall_s": wall, "steps": res["steps"], "steps_per_s_end_to_end": res["steps"] / wall,
                               "steps_per_s_collect": res["steps_per_s"]})
            print(kind, runs[kind][-1], file=sys.stderr, flush=True)
        a, b = load_dataset(tmp / "one.h5"), load_dataset(tmp / "two.h5")
        equal.append(all(np.array_equal(np.asarray(getattr(a, f)), np.asarray(getattr(b, f))) for f in (
            "observations", "actions", "rewards", "terminated", "truncated", "final_observations", "episode_seeds",
            "episode_lengths")))
    out = {"machine": machine(), "policy": args.policy, "env": args.env, "episodes": args.collect_episodes,
           "runs": runs, "equal": equal}
    for kind in runs:
        out[kind] = {k: statistics.median(r[k] for r in runs[kind]) for k in runs[kind][0]}
    out["ratio_end_to_end"] = out["two"]["steps_per_s_end_to_end"] / out["one"]["steps_per_s_end_to_end"]
    out["load_avg_after"] = os.getloadavg()
    return out


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "stream-child":
        p, s, cap, batch, mem, epochs = sys.argv[2:8]
        stream_child(p, s == "True", float(cap), int(batch), float(mem), int(epochs))
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=["stream", "append", "shards"])
    ap.add_argument("--dir", default=None)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--keep", action="store_true", help="keep the generated datasets")
    ap.add_argument("--big-steps", type=int, default=40_000_000)
    ap.add_argument("--ram-steps", type=int, default=2_000_000)
    ap.add_argument("--cap-mb", type=float, default=1024.0)
    ap.add_argument("--max-memory", type=float, default=64.0)
    ap.add_argument("--batch", type=int, default=2048)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--base-gb", type=float, default=5.0)
    ap.add_argument("--episodes", type=int, default=10_000)
    ap.add_argument("--episode-len", type=int, default=100)
    ap.add_argument("--policy", default="random")
    ap.add_argument("--env", default="CartPole-v1")
    ap.add_argument("--collect-episodes", type=int, default=4000)
    args = ap.parse_args()
    tmp = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="bench-scale-"))
    tmp.mkdir(parents=True, exist_ok=True)
    fn = {"stream": bench_stream, "append": bench_append, "shards": bench_shards}[args.what]
    print(json.dumps(fn(args, tmp), indent=1, default=str))


if __name__ == "__main__":
    main()
