"""Converter speeds: ``demokit.data.convert.convert`` both ways for each format, and the same-run floor.

Data: ``--steps`` (default 1,000,000) HalfCheetah-sized transitions in ``--episodes`` (default
1000) equal episodes: observations float32 (17,), actions float32 (6,) in [-1, 1], rewards
float64, the last step of each episode terminated for every other episode and truncated for
the rest. Written once with ``add_columns``; every other format's input is made from it by
the converter under test (demokit -> X, then X -> demokit).

Measured, each conversion in this process (imports done before), medians of ``--repeats``
runs interleaved so that machine load hits all alike: wall seconds and process CPU seconds of
one ``convert(src, dst)`` call (checks, read, write, fsync and rename included); and, in the
same rounds, **the floor**: bare h5py reading every stored array of the demokit file and
writing them to a new file with one ``create_dataset`` each, then fsync (no checks, no
episode logic): what a copy of the same bytes costs on this machine at this moment. Ratios
to the floor are the figures to compare across machines and loads.

``--one-step``: also the 1M one-step-episodes case (demokit -> D4RL, demokit -> demokit).

Run: .venv/bin/python benchmarks/bench_convert.py [--repeats 3] [--steps 1000000] [--episodes 1000]
     [--formats d4rl,minari,robomimic,imitation,lerobot] [--one-step] [--dir /tmp]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO)]

import h5py  # noqa: E402
import numpy as np  # noqa: E402
from gymnasium import spaces  # noqa: E402

from demokit.data import DatasetWriter  # noqa: E402
from demokit.data.convert import convert  # noqa: E402

FORMATS = ("d4rl", "minari", "robomimic", "imitation", "lerobot")
#: how convert() is told to write each format (path suffix or ``to=``)
TARGET = {"demokit": (".h5", None), "d4rl": (".hdf5", "d4rl"), "minari": ("", None),
          "robomimic": (".hdf5", "robomimic"), "imitation": ("", "imitation"), "lerobot": ("", "lerobot")}


def write_source(path: Path, steps: int, episodes: int, seed: int = 0) -> None:
    """``steps`` transitions in ``episodes`` episodes of equal length (the last one takes the rest)."""
    rng = np.random.default_rng(seed)
    base = steps // episodes
    lengths = np.full(episodes, base, dtype=np.int64)
    lengths[-1] += steps - lengths.sum()
    ends = np.cumsum(lengths) - 1
    terminated = np.zeros(steps, dtype=bool)
    truncated = np.zeros(steps, dtype=bool)
    terminated[ends[::2]] = True
    truncated[ends[1::2]] = True
    obs_space = spaces.Box(-np.inf, np.inf, (17,), np.float32)
    act_space = spaces.Box(-1.0, 1.0, (6,), np.float32)
    with DatasetWriter(path, observation_space=obs_space, action_space=act_space, mode="overwrite") as w:
        w.add_columns(observations=rng.normal(size=(steps, 17)).astype(np.float32),
                      actions=rng.uniform(-1, 1, size=(steps, 6)).astype(np.float32),
                      rewards=rng.normal(size=steps), terminated=terminated, truncated=truncated,
                      final_observations=rng.normal(size=(episodes, 17)).astype(np.float32),
                      episode_lengths=lengths)


def bare_copy(src: Path, dst: Path) -> None:
    """Every stored array of ``src`` read and written to ``dst`` with bare h5py, then fsync."""
    arrays: dict[str, np.ndarray] = {}

    def grab(name: str, obj: object) -> None:
        if isinstance(obj, h5py.Dataset):
            arrays[name] = obj[()]

    with h5py.File(src, "r") as f:
        f.visititems(grab)
    with h5py.File(dst, "w") as f:
        for name, a in arrays.items():
            f.create_dataset(name, data=a)
    fd = os.open(dst, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


def timed(fn: object) -> tuple[float, float]:
    w0, c0 = time.perf_counter(), time.process_time()
    fn()  # type: ignore[operator]
    return time.perf_counter() - w0, time.process_time() - c0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--steps", type=int, default=1_000_000)
    ap.add_argument("--episodes", type=int, default=1000)
    ap.add_argument("--formats", default=",".join(FORMATS), help=f"comma-separated, of {','.join(FORMATS)}")
    ap.add_argument("--one-step", action="store_true", help="also 1M one-step episodes -> d4rl / demokit")
    ap.add_argument("--dir", default=None, help="where to write (default: a temp dir)")
    args = ap.parse_args()
    formats = [f for f in args.formats.split(",") if f]
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown:
        ap.error(f"unknown formats {unknown}; choose from {','.join(FORMATS)}")
    warnings.filterwarnings("ignore")  # conversion notes (e.g. no env id) are not what is measured

    with tempfile.TemporaryDirectory(prefix="bench-convert-", dir=args.dir) as tmp:
        root = Path(tmp)
        src = root / "src.h5"
        write_source(src, args.steps, args.episodes)
        cases: list[tuple[str, Path, Path, str | None]] = [("demokit -> demokit", src, root / "copy.h5", None)]
        for f in formats:
            suffix, to = TARGET[f]
            made = root / f"made-{f}{suffix or '-v0'}"
            convert(src, made, to=to)  # the input of "f -> demokit" (and a warm-up of both directions)
            cases.append((f"demokit -> {f}", src, root / f"out-{f}{suffix or '-v0'}", to))
            cases.append((f"{f} -> demokit", made, root / f"back-{f}.h5", None))
        if args.one_step:
            one = root / "one-step.h5"
            write_source(one, args.steps, args.steps)
            cases.append(("demokit (one-step episodes) -> d4rl", one, root / "one-out.hdf5", "d4rl"))
            cases.append(("demokit (one-step episodes) -> demokit", one, root / "one-copy.h5", None))
        for name, s, d, to in cases:  # warm-up: first-call imports (pyarrow, minari, ...)
            convert(s, d, to=to, force=True)
        results: dict[str, list[tuple[float, float]]] = {name: [] for name, *_ in cases}
        floor: list[tuple[float, float]] = []
        for rep in range(args.repeats):
            remove(root / "bare.h5")
            floor.append(timed(lambda: bare_copy(src, root / "bare.h5")))
            for name, s, d, to in cases:
                remove(d)
                results[name].append(timed(lambda: convert(s, d, to=to)))
            print(f"repeat {rep + 1}/{args.repeats} done", file=sys.stderr)

    fw, fc = (statistics.median(x[i] for x in floor) for i in (0, 1))
    load = os.getloadavg()
    print(f"\n{args.steps:,} steps in {args.episodes:,} episodes (obs float32 (17,), actions float32 (6,)); "
          f"{platform.machine()}, {os.cpu_count()} CPUs, load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} "
          f"(1 / 5 / 15 min) at the end; medians of {args.repeats}\n")
    print("| conversion | wall s | CPU s | wall / floor | CPU / floor |")
    print("|---|---:|---:|---:|---:|")
    print(f"| floor: bare h5py copy of the demokit file's arrays + fsync | {fw:.2f} | {fc:.2f} | 1.0 | 1.0 |")
    for name, xs in results.items():
        w, c = (statistics.median(x[i] for x in xs) for i in (0, 1))
        print(f"| {name} | {w:.2f} | {c:.2f} | {w / fw:.1f} | {c / fc:.1f} |")


if __name__ == "__main__":
    main()
