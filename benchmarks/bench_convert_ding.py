"""DI-engine expert pickles -> demokit: ``demokit convert`` timed on the two inputs of docs/converters.md.

Inputs (built once, no DI-engine needed; the generators are the test suite's):

* **collector**: what DI-engine's ``collect_demo_data`` writes, made by
  ``tests/data/convert/ding_collector.py`` (its ``SampleSerialCollector`` loop: ``--env-num`` envs
  in lockstep, per-env chunks of ``--n-sample // env_num`` steps flushed in turn, ``next_obs``
  sharing the next transition's ``obs`` tensor, PPO transitions with ``logit`` / ``value``):
  ``--steps`` CartPole-v1 transitions. demokit re-links the interleaved pieces into episodes;
  converted with ``env_id="CartPole-v1"`` (time-limit ends become truncations).
* **flat**: ``--steps`` transitions of ``tests/data/convert/sources.ding_transitions`` (episodes
  of ``--episode-len`` steps, every value a tensor but ``done`` / ``collect_iter``), no env.

Measured, interleaved rounds so that load hits every case alike, medians of ``--repeats``:
wall and process CPU seconds of one in-process ``convert(src, dst, force=True)`` (imports done
before; safe unpickling, re-linking, checks, write, fsync, rename); the same conversion as a
``demokit convert`` process (wall, and the child's CPU from ``resource``: interpreter start and
imports included); and, as the reference the old figure compared against, plain
``pickle.loads`` of the same bytes (torch's own loader: one ``torch.load`` per tensor storage).

Run: .venv/bin/python benchmarks/bench_convert_ding.py [--repeats 3] [--steps 10000]
"""

from __future__ import annotations

import argparse
import os
import pickle
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO)]

import torch  # noqa: E402
from tests.data.convert import ding_collector, sources  # noqa: E402

from demokit.data.convert import convert  # noqa: E402


def count_tensors(transitions: list[dict]) -> int:
    """Distinct tensor objects in the list (a shared ``obs`` / ``next_obs`` tensor counts once)."""
    return len({id(v) for tr in transitions for v in tr.values() if isinstance(v, torch.Tensor)})


def timed(fn: object) -> tuple[float, float]:
    w0, c0 = time.perf_counter(), time.process_time()
    fn()  # type: ignore[operator]
    return time.perf_counter() - w0, time.process_time() - c0


def cli_timed(argv: list[str]) -> tuple[float, float]:
    """Wall and CPU (user + system) of one child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    w0 = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - w0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--steps", type=int, default=10_000, help="transitions per pickle (default 10000)")
    ap.add_argument("--env-num", type=int, default=8, help="collector envs (default 8)")
    ap.add_argument("--n-sample", type=int, default=64, help="policy n_sample: chunks of n_sample // env_num")
    ap.add_argument("--episode-len", type=int, default=100, help="episode length of the flat pickle")
    args = ap.parse_args()
    if args.steps < args.episode_len or args.repeats < 1:
        ap.error("need --steps >= --episode-len and --repeats >= 1")
    warnings.filterwarnings("ignore")  # conversion notes are not what is measured
    torch.set_num_threads(1)
    cli = [str(Path(sys.executable).with_name("demokit")), "convert"]

    with tempfile.TemporaryDirectory(prefix="bench-convert-ding-") as tmp:
        root = Path(tmp)
        trs, _ = ding_collector.collect("CartPole-v1", collect_count=args.steps, env_num=args.env_num,
                                        policy_n_sample=args.n_sample, ppo=True)
        n_lengths = args.steps // args.episode_len
        flat = sources.ding_transitions([args.episode_len] * n_lengths)
        inputs = {"collector": (ding_collector.write(root / "collector.pkl", trs), "CartPole-v1", count_tensors(trs)),
                  "flat": (sources.write_pickle(root / "flat.pkl", flat), None, count_tensors(flat))}
        del trs, flat
        sizes = {name: src.stat().st_size for name, (src, *_) in inputs.items()}
        episodes = {}
        for name, (src, env_id, _) in inputs.items():  # warm-up, and the episode counts
            episodes[name] = convert(src, root / f"{name}.h5", env_id=env_id, force=True).episodes
        res: dict[str, list[tuple[float, float]]] = {}
        for _ in range(args.repeats):
            for name, (src, env_id, _) in inputs.items():
                dst = root / f"{name}.h5"
                res.setdefault(f"{name}: convert()", []).append(
                    timed(lambda: convert(src, dst, env_id=env_id, force=True)))
                res.setdefault(f"{name}: demokit convert (process)", []).append(
                    cli_timed(cli + [str(src), str(dst), "--force"] + (["--env", env_id] if env_id else [])))
                data = src.read_bytes()
                res.setdefault(f"{name}: plain pickle.loads", []).append(timed(lambda: pickle.loads(data)))

    print(f"\nDI-engine pickles -> demokit, {args.steps} transitions, medians of {args.repeats} "
          f"(cpus {os.cpu_count()}, load {os.getloadavg()[0]:.1f}, Python {platform.python_version()}, "
          f"torch {torch.__version__})\n")
    for name, (_, _, tensors) in inputs.items():
        print(f"{name}: {sizes[name] / 2**20:.1f} MiB, {tensors:,} tensors, {episodes[name]} episodes")
    print("\n| case | wall s | CPU s |\n|---|---:|---:|")
    for name, runs in res.items():
        wall = statistics.median(r[0] for r in runs)
        cpu = statistics.median(r[1] for r in runs)
        spread = f"{min(r[0] for r in runs):.2f}-{max(r[0] for r in runs):.2f}"
        print(f"| {name} | {wall:.2f} ({spread}) | {cpu:.2f} |")


if __name__ == "__main__":
    main()
