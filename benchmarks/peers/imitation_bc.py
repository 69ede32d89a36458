"""Peer runner: imitation 1.0.1 behavioural cloning (runs in .venv-imitation).

    .venv-imitation/bin/python benchmarks/peers/imitation_bc.py --demos demos.npz \
        --env-id CartPole-v1 --n-epochs 10

Trains `imitation.algorithms.bc.BC` at its defaults (FeedForward32Policy: 2x32 tanh
ActorCriticPolicy, Adam lr 1e-3, ent_weight 1e-3, l2_weight 0, batch_size 32) on the
demonstrations, then evaluates the policy deterministically with gymnasium 0.29.
Prints one JSON line: samples_per_s (batches x batch_size / train_wall_s),
train_wall_s, mean_return, std_return, ...
"""

from __future__ import annotations

import time

T_START = time.perf_counter()

import argparse  # noqa: E402
import tempfile  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

from _common import (PeerError, add_common_args, evaluate, imitation_trajectories, machine,  # noqa: E402
                     open_demos, run_main, setup_run, stdout_to_stderr, versions)


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--demos", required=True, help="demonstration .npz (layout: benchmarks/peers/README.md)")
    p.add_argument("--env-id", default=None, help="gymnasium env id (default: the npz's env_id)")
    length = p.add_mutually_exclusive_group()
    length.add_argument("--n-epochs", type=int, default=None, help="passes over the data (default 1)")
    length.add_argument("--n-batches", type=int, default=None, help="number of batches instead of epochs")
    p.add_argument("--batch-size", type=int, default=32, help="imitation's default: 32")
    p.add_argument("--log-interval", type=int, default=500,
                   help="imitation's train(log_interval) (default 500); the logger writes nowhere")
    add_common_args(p)
    return p.parse_args()


def main() -> dict[str, Any]:
    args = parse_args()
    if args.n_epochs is None and args.n_batches is None:
        args.n_epochs = 1
    if (args.n_epochs is not None and args.n_epochs < 1) or (args.n_batches is not None and args.n_batches < 1):
        raise PeerError("--n-epochs / --n-batches must be >= 1")
    if args.batch_size < 1:
        raise PeerError(f"--batch-size must be >= 1, got {args.batch_size}")
    setup_run(args.seed, args.threads)

    from imitation.algorithms import bc
    from imitation.data import rollout
    from imitation.util import logger as imit_logger
    t_imported = time.perf_counter()

    data, env_id, obs_space, act_space = open_demos(args.demos, args.env_id)
    transitions = rollout.flatten_trajectories(imitation_trajectories(data))
    if len(transitions) < args.batch_size:
        raise PeerError(f"only {len(transitions)} transitions, fewer than one batch of {args.batch_size}")

    with tempfile.TemporaryDirectory(prefix="peer-bc-") as logdir, stdout_to_stderr():
        trainer = bc.BC(
            observation_space=obs_space,
            action_space=act_space,
            demonstrations=transitions,
            rng=np.random.default_rng(args.seed),
            batch_size=args.batch_size,
            device="cpu",
            custom_logger=imit_logger.configure(logdir, format_strs=[]),
        )
        batches = 0

        def count_batch() -> None:
            nonlocal batches
            batches += 1

        t0, c0 = time.perf_counter(), time.process_time()
        setup_wall = t0 - t_imported
        trainer.train(n_epochs=args.n_epochs, n_batches=args.n_batches, on_batch_end=count_batch,
                      log_interval=args.log_interval, progress_bar=False)
        train_wall, train_cpu = time.perf_counter() - t0, time.process_time() - c0

    policy = trainer.policy
    policy.set_training_mode(False)

    def predict(obs: np.ndarray) -> Any:
        action, _ = policy.predict(obs, deterministic=True)
        return action

    ev = evaluate(predict, env_id, args.eval_episodes, seed=args.seed + 10_000)
    samples = batches * args.batch_size
    return {
        "peer": "imitation-bc",
        "env_id": env_id,
        "transitions": int(len(transitions)),
        "episodes": int(len(data["episode_lengths"])),
        "batch_size": args.batch_size,
        "n_epochs": args.n_epochs,
        "batches": batches,
        "samples": samples,
        "train_wall_s": round(train_wall, 4),
        "samples_per_s": round(samples / train_wall, 1),
        "train_cpu_s": round(train_cpu, 4),
        "samples_per_cpu_s": round(samples / train_cpu, 1),
        **ev,
        "import_wall_s": round(t_imported - T_START, 3),
        "setup_wall_s": round(setup_wall, 3),
        "total_wall_s": round(time.perf_counter() - T_START, 3),
        "seed": args.seed,
        "threads": args.threads,
        "machine": machine(),
        "versions": versions("imitation", "stable-baselines3", "gymnasium", "torch", "numpy"),
    }


if __name__ == "__main__":
    run_main(main)
