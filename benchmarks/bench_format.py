"""Benchmark of the demokit dataset format against bare h5py, measured in the same run.

Data: ~1M CartPole-like transitions in ~10k episodes of 50-150 steps (obs float32 (4,),
action int64, reward float64, terminated/truncated bool, one final observation per episode).

* write: DatasetWriter from a list of Episode objects (per-episode checks, buffering,
  blocks assembled from the episodes' arrays, chunked resizable datasets, fsync, atomic
  rename), and from the same data as flat arrays
  (``add_columns``), vs bare h5py writing the same arrays (obs, actions, rewards, flags,
  final obs, episode starts/lengths) with one ``create_dataset(data=...)`` each into
  contiguous datasets, with fsync (the same durability as demokit) and without.
* full read: load_dataset + every array incl. derived next_observations vs bare h5py
  reading the same stored arrays; also vs a D4RL-style bare file that stores
  next_observations instead of final observations (written with fsync too).
* sampling: random batches of 256 (obs, action, reward, next_obs, terminated, truncated)
  vs the same fancy indexing on plain numpy arrays.
* to_pandas: 1M rows, one per transition.
* append: the last 10% of the episodes (``add_columns``) appended to a copy of the
  whole demokit file (or of a file holding ``--append-copies`` times the data), in
  place and journaled (docs/dataset-format.md), vs writing the same episodes to a new
  file: an append costs what it adds, not the size of the file.

Run: .venv/bin/python benchmarks/bench_format.py [--repeats 5] [--steps 1000000] [--dir /tmp] [--append-copies 1]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
from gymnasium import spaces

from demokit.data import DatasetWriter, Episode, load_dataset


def make_data(steps: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(50, 151, size=steps // 50)
    lengths = lengths[np.cumsum(lengths) <= steps]
    lengths = np.append(lengths, steps - lengths.sum()) if lengths.sum() < steps else lengths
    n, e = int(lengths.sum()), len(lengths)
    ends = np.cumsum(lengths) - 1
    terminated = np.zeros(n, dtype=bool)
    truncated = np.zeros(n, dtype=bool)
    cut = rng.random(e) < 0.2
    terminated[ends[~cut]] = True
    truncated[ends[cut]] = True
    return {
        "obs": rng.normal(size=(n, 4)).astype(np.float32),
        "actions": rng.integers(0, 2, size=n).astype(np.int64),
        "rewards": np.ones(n),
        "terminated": terminated,
        "truncated": truncated,
        "final_obs": rng.normal(size=(e, 4)).astype(np.float32),
        "starts": np.cumsum(lengths) - lengths,
        "lengths": lengths.astype(np.int64),
    }


def to_episodes(d: dict[str, np.ndarray]) -> list[Episode]:
    out = []
    for i, (s, n) in enumerate(zip(d["starts"].tolist(), d["lengths"].tolist())):
        sl = slice(s, s + n)
        out.append(Episode(observations=d["obs"][sl], actions=d["actions"][sl], rewards=d["rewards"][sl],
                           terminated=d["terminated"][sl], truncated=d["truncated"][sl],
                           final_observation=d["final_obs"][i:i + 1], seed=i))
    return out


def fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fresh_copy(src: Path, dst: Path) -> None:
    """A copy of ``src`` already on disk (fsynced), like a dataset written long ago: the timed
    append that follows must not pay for flushing the copy."""
    shutil.copyfile(src, dst)
    fsync(dst)


def bare_write(path: Path, d: dict[str, np.ndarray], *, sync: bool) -> None:
    with h5py.File(path, "w") as f:
        for k, v in d.items():
            f.create_dataset(k, data=v)
    if sync:
        fsync(path)


def bare_read(path: Path) -> dict[str, np.ndarray]:
    with h5py.File(path, "r") as f:
        return {k: f[k][()] for k in f}


CPU: dict[str, list[float]] = {}


def timed(fn: Callable[[], object], repeats: int, setup: Callable[[], object] | None = None,
          key: str | None = None) -> list[float]:
    """Wall times of ``repeats`` calls; the process CPU times go to ``CPU[key]``."""
    times = []
    for _ in range(repeats):
        if setup is not None:
            setup()
        c0, t0 = time.process_time(), time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
        if key is not None:
            CPU.setdefault(key, []).append(time.process_time() - c0)
    return times


def rate(fn: Callable[[], object], batch: int, seconds: float = 0.5) -> float:
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        fn()
        n += 1
    return n * batch / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--dir", default=None, help="where to write the files (default: a temp dir)")
    parser.add_argument("--append-copies", type=int, default=1,
                        help="the append row's base file holds the data this many times")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="bench_format_", dir=args.dir))
    try:
        d = make_data(args.steps)
        n, e = len(d["rewards"]), len(d["lengths"])
        t0 = time.perf_counter()
        episodes = to_episodes(d)
        t_episodes = time.perf_counter() - t0
        obs_space = spaces.Box(-np.inf, np.inf, (4,), np.float32)
        act_space = spaces.Discrete(2)
        dk_path, bare_path, d4rl_path = workdir / "demokit.h5", workdir / "bare.h5", workdir / "d4rl.h5"
        # a D4RL-style bare file stores next_observations instead of deriving them
        nxt = np.empty_like(d["obs"])
        nxt[:-1] = d["obs"][1:]
        nxt[d["starts"] + d["lengths"] - 1] = d["final_obs"]
        d4rl = {k: v for k, v in d.items() if k != "final_obs"} | {"next_obs": nxt}

        def dk_write() -> None:
            with DatasetWriter(dk_path, observation_space=obs_space, action_space=act_space,
                               env_id="CartPole-v1", mode="overwrite") as w:
                w.add_episodes(episodes)

        def dk_write_columns() -> None:
            with DatasetWriter(dk_path, observation_space=obs_space, action_space=act_space,
                               env_id="CartPole-v1", mode="overwrite") as w:
                w.add_columns(observations=d["obs"], actions=d["actions"], rewards=d["rewards"],
                              terminated=d["terminated"], truncated=d["truncated"], final_observations=d["final_obs"],
                              episode_lengths=d["lengths"])

        def dk_read() -> None:
            load_dataset(dk_path).load()

        k = max(1, e // 10)  # the appended episodes: the last 10%
        t0 = int(d["starts"][e - k])
        tail = {"observations": d["obs"][t0:], "actions": d["actions"][t0:], "rewards": d["rewards"][t0:],
                "terminated": d["terminated"][t0:], "truncated": d["truncated"][t0:],
                "final_observations": d["final_obs"][e - k:], "episode_lengths": d["lengths"][e - k:]}
        app_path, new_path = workdir / "append.h5", workdir / "new.h5"

        def dk_tail(path: Path, mode: str) -> None:
            with DatasetWriter(path, observation_space=obs_space, action_space=act_space, env_id="CartPole-v1",
                               mode=mode) as w:
                w.add_columns(**tail)

        def rm(p: Path) -> Callable[[], None]:
            return lambda: p.unlink(missing_ok=True)

        r = args.repeats
        res: dict[str, list[float]] = {}
        for _ in range(r):  # interleave the contenders so that drift hits both alike
            for key, fn, path in (("write demokit", dk_write, dk_path),
                                  ("write demokit columns", dk_write_columns, dk_path),
                                  ("write bare", lambda: bare_write(bare_path, d, sync=False), bare_path),
                                  ("write bare+fsync", lambda: bare_write(bare_path, d, sync=True), bare_path),
                                  ("write d4rl+fsync", lambda: bare_write(d4rl_path, d4rl, sync=True), d4rl_path)):
                res.setdefault(key, []).extend(timed(fn, 1, rm(path), key=key))
        base_path = dk_path
        if args.append_copies > 1:
            base_path = workdir / "base.h5"
            with DatasetWriter(base_path, observation_space=obs_space, action_space=act_space,
                               env_id="CartPole-v1") as w:
                for _ in range(args.append_copies):
                    w.add_columns(observations=d["obs"], actions=d["actions"], rewards=d["rewards"],
                                  terminated=d["terminated"], truncated=d["truncated"],
                                  final_observations=d["final_obs"], episode_lengths=d["lengths"])
        base_steps, base_mib = n * args.append_copies, base_path.stat().st_size / 2**20
        for _ in range(r):
            res.setdefault("append demokit", []).extend(timed(lambda: dk_tail(app_path, "append"), 1,
                                                              lambda: fresh_copy(base_path, app_path),
                                                              key="append demokit"))
            res.setdefault("write new", []).extend(timed(lambda: dk_tail(new_path, "overwrite"), 1, rm(new_path),
                                                         key="write new"))
        for _ in range(r):
            res.setdefault("read demokit", []).extend(timed(dk_read, 1, key="read demokit"))
            res.setdefault("read bare", []).extend(timed(lambda: bare_read(bare_path), 1, key="read bare"))
            res.setdefault("read d4rl", []).extend(timed(lambda: bare_read(d4rl_path), 1, key="read d4rl"))

        ds = load_dataset(dk_path).load()
        assert len(ds) == n and ds.num_episodes == e
        np.testing.assert_array_equal(ds.observations, d["obs"])
        res["to_pandas"] = timed(ds.to_pandas, r)
        frame = ds.to_pandas()
        assert len(frame) == n

        gen = np.random.default_rng(0)
        dk_rate = statistics.median(rate(lambda: ds.sample(256, rng=gen), 256) for _ in range(3))
        arrs = bare_read(bare_path)
        np.testing.assert_array_equal(ds.next_observations, nxt)

        def np_sample() -> dict[str, np.ndarray]:
            idx = gen.integers(0, n, size=256)
            return {"obs": arrs["obs"][idx], "action": arrs["actions"][idx], "reward": arrs["rewards"][idx],
                    "next_obs": nxt[idx], "terminated": arrs["terminated"][idx], "truncated": arrs["truncated"][idx]}

        np_rate = statistics.median(rate(np_sample, 256) for _ in range(3))
        size_dk, size_bare, size_d4rl = dk_path.stat().st_size, bare_path.stat().st_size, d4rl_path.stat().st_size
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    med = {k: statistics.median(v) for k, v in res.items()}
    print(f"# dataset format benchmark: {n:,} transitions, {e:,} episodes, {r} repeats (medians)")
    print(f"# machine: {platform.platform()}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}, "
          f"python {platform.python_version()}, h5py {h5py.__version__}, HDF5 {h5py.version.hdf5_version}, "
          f"numpy {np.__version__}")
    print(f"# (building the {e:,} Episode objects, not timed below: {t_episodes * 1e3:.0f} ms)")
    print()

    def ms(key: str) -> str:
        return f"{med[key] * 1e3:.0f} ms"

    cpu = {k: statistics.median(v) for k, v in CPU.items()}

    def row(label: str, ours: str, peer: str, limit: float | None = None) -> None:
        ratio = med[ours] / med[peer]
        goal = "" if limit is None else f"<= {limit:g}x {'ok' if ratio <= limit else 'MISSED'}"
        print(f"| {label} | {ms(ours)} | {peer.replace('write ', '').replace('read ', '')}: {ms(peer)} | "
              f"{ratio:.2f}x | {goal} | {cpu[ours] * 1e3:.0f} / {cpu[peer] * 1e3:.0f} ms |")

    print("| operation | demokit | bare h5py | ratio (wall) | goal | CPU demokit / bare |")
    print("|---|---|---|---|---|---|")
    row(f"write from {e:,} Episode objects (fsync + atomic rename)", "write demokit", "write bare+fsync", 2)
    row(f"write from {e:,} Episode objects (fsync + atomic rename)", "write demokit", "write bare")
    row("write flat arrays, `add_columns` (fsync + atomic rename)", "write demokit columns", "write bare+fsync", 2)
    row("write flat arrays, `add_columns` (fsync + atomic rename)", "write demokit columns", "write bare")
    row("full read (every array; demokit also validates and derives next_obs)", "read demokit", "read bare", 1.5)
    row("write, vs bare storing next_obs too (D4RL style)", "write demokit", "write d4rl+fsync")
    row("full read, vs bare storing next_obs too (D4RL style)", "read demokit", "read d4rl")
    print(f"| append {k:,} episodes ({n - t0:,} steps) to a {base_steps:,}-step file ({base_mib:.0f} MiB), vs the "
          f"same episodes to a new file "
          f"| {ms('append demokit')} | new file: {ms('write new')} | {med['append demokit'] / med['write new']:.2f}x "
          f"| <= 1.5x {'ok' if med['append demokit'] <= 1.5 * med['write new'] else 'MISSED'} "
          f"| {cpu['append demokit'] * 1e3:.0f} / {cpu['write new'] * 1e3:.0f} ms |")
    print(f"| sample batches of 256 | {dk_rate / 1e6:.2f} M samples/s | numpy fancy indexing: {np_rate / 1e6:.2f} M "
          f"samples/s | {np_rate / dk_rate:.2f}x slower | | |")
    print(f"| to_pandas, {n:,} rows | {ms('to_pandas')} | | | < 2 s {'ok' if med['to_pandas'] < 2 else 'MISSED'} | |")
    print(f"| file size | {size_dk / 2**20:.1f} MiB | {size_bare / 2**20:.1f} MiB (D4RL style {size_d4rl / 2**20:.1f} MiB) "
          f"| {size_dk / size_bare:.2f}x | | |")
    print()
    print("all timings (s):")
    for k, v in res.items():
        print(f"  {k:18s} " + " ".join(f"{x:.3f}" for x in v))


if __name__ == "__main__":
    main()
