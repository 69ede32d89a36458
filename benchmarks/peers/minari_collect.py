"""Peer runner: Minari's DataCollector collecting random-action episodes (runs in .venv).

    .venv/bin/python benchmarks/peers/minari_collect.py --steps 100000

Wraps gymnasium's env in `minari.DataCollector` (HDF5 storage, the default),
steps it with random actions for --steps env steps (finishing the last episode),
writes the dataset with `create_dataset`, then loads it back with
`minari.load_dataset` and iterates over all episodes. Needs `minari[create]`
(DataCollector imports jax.tree_util on every step). The dataset lives in a
temporary MINARI_DATASETS_PATH that is removed at the end unless --root is given.
Prints one JSON line: collect_steps_per_s, create_wall_s, read_steps_per_s, ...
"""

from __future__ import annotations

import time

T_START = time.perf_counter()

import argparse  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
from typing import Any  # noqa: E402

from _common import PeerError, machine, run_main, setup_run, stdout_to_stderr, versions  # noqa: E402


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--env-id", default="CartPole-v1")
    p.add_argument("--steps", type=int, default=100_000, help="env steps to collect (default 100000)")
    p.add_argument("--root", default=None, help="MINARI_DATASETS_PATH to keep the dataset in (default: temporary)")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args()


def main() -> dict[str, Any]:
    args = parse_args()
    if args.steps < 1:
        raise PeerError(f"--steps must be >= 1, got {args.steps}")
    setup_run(args.seed, 1)
    try:
        import jax.tree_util  # noqa: F401  (DataCollector needs it; fail early with the fix)
    except ImportError:
        raise PeerError("minari's DataCollector needs jax: run scripts/setup_peers.sh main "
                        "(installs minari[create])") from None
    root = args.root or tempfile.mkdtemp(prefix="peer-minari-")
    os.environ["MINARI_DATASETS_PATH"] = root  # read by minari when it locates datasets
    import gymnasium as gym
    import minari
    from minari import DataCollector
    t_imported = time.perf_counter()

    dataset_id = f"peers/{args.env_id.split('-')[0].lower()}/random-v0"
    try:
        env = DataCollector(gym.make(args.env_id))
        env.action_space.seed(args.seed)
        t0, cpu0 = time.perf_counter(), time.process_time()
        steps, episodes = 0, 0
        env.reset(seed=args.seed)
        while True:
            _, _, terminated, truncated, _ = env.step(env.action_space.sample())
            steps += 1
            if terminated or truncated:
                episodes += 1
                if steps >= args.steps:
                    break
                env.reset()
        collect_wall, collect_cpu = time.perf_counter() - t0, time.process_time() - cpu0

        t1 = time.perf_counter()
        with stdout_to_stderr():
            env.create_dataset(dataset_id=dataset_id, algorithm_name="random", author="demokit-benchmarks")
        create_wall = time.perf_counter() - t1
        env.close()

        t2 = time.perf_counter()
        dataset = minari.load_dataset(dataset_id)
        read_steps, read_episodes = 0, 0
        for episode in dataset.iterate_episodes():
            read_steps += len(episode.actions)
            read_episodes += 1
        read_wall = time.perf_counter() - t2
        if (read_steps, read_episodes) != (steps, episodes):
            raise RuntimeError(f"read back {read_steps} steps / {read_episodes} episodes, "
                               f"wrote {steps} / {episodes}")
        size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(root) for f in fs)
    finally:
        if args.root is None:
            shutil.rmtree(root, ignore_errors=True)

    return {
        "peer": "minari-datacollector",
        "env_id": args.env_id,
        "steps": steps,
        "episodes": episodes,
        "collect_wall_s": round(collect_wall, 3),
        "collect_steps_per_s": round(steps / collect_wall, 1),
        "collect_cpu_s": round(collect_cpu, 3),
        "create_wall_s": round(create_wall, 3),
        "collect_and_create_steps_per_s": round(steps / (collect_wall + create_wall), 1),
        "read_wall_s": round(read_wall, 3),
        "read_steps_per_s": round(steps / read_wall, 1),
        "read_episodes_per_s": round(episodes / read_wall, 1),
        "dataset_bytes": size,
        "import_wall_s": round(t_imported - T_START, 3),
        "total_wall_s": round(time.perf_counter() - T_START, 3),
        "seed": args.seed,
        "machine": machine(),
        "versions": versions("minari", "gymnasium", "jax", "h5py", "numpy"),
    }


if __name__ == "__main__":
    run_main(main)
