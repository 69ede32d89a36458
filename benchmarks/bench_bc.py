"""Behavioral cloning speed: demokit's train_bc vs imitation 1.0.1's BC, same data, same run.

Data: 10 CartPole-v1 expert episodes (5000 transitions): the first 10 episodes of
datasets/cartpole-v1-expert.h5 when it exists, else 10 episodes of a hand-written
controller that scores 500 (``--dataset`` picks another file).

Measured (medians over ``--repeats``, runs interleaved so that machine load hits all):

* throughput, samples/s of the training loop (evaluation excluded), and samples per
  CPU-second of the training loop (less sensitive to other processes on a shared machine;
  demokit's counts epochs 2..E, read by ``train_bc``'s per-epoch callback; the peer's
  its ``train`` call); "paired" ratios are the median of each repeat's ratio to the peer
  run of the same repeat (the same moment's load):
  - demokit at its defaults (batch 256, 2x64 tanh, fused Adam, 1 torch thread);
  - demokit at imitation's defaults (batch 32, 2x32 tanh);
  - a bare torch loop (the same 2x64 net, batch 256, fused Adam, 1 thread, data
    gathered by index from a randperm): the limit of a Python training loop;
  - imitation's BC at its defaults (batch 32, 2x32 tanh ActorCriticPolicy), in
    .venv-imitation through benchmarks/_peers.py (skipped when the venv is missing);
* time to a >= 475 policy (20 deterministic episodes):
  - demokit: ``train_bc`` at its defaults (stops at the env's threshold; wall time
    includes loading the file and the periodic evaluations);
  - imitation: the training time of the smallest ``n_epochs`` in a sweep
    (2, 4, 6, 8, 12, 16) whose policy reaches >= 475 (an oracle choice of the
    epoch count; interpreter start and imports excluded).

Run: .venv/bin/python benchmarks/bench_bc.py [--repeats 3] [--dataset PATH] [--no-peer]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "benchmarks")]

import numpy as np  # noqa: E402
import torch  # noqa: E402

from demokit.data import DatasetWriter, load_dataset  # noqa: E402
from demokit.envs import make_env  # noqa: E402
from demokit.il import train_bc  # noqa: E402
from demokit.il.dagger import rollout_mixture  # noqa: E402
from demokit.policies import make_policy  # noqa: E402

ENV = "CartPole-v1"
COMMITTED = REPO / "datasets" / "cartpole-v1-expert.h5"
PEER_EPOCH_SWEEP = (2, 4, 6, 8, 12, 16)


def controller_policy():
    """theta + 0.5 theta_dot + 0.01 x + 0.1 x_dot > 0 -> push right, as a one-layer NeuralPolicy (scores 500)."""
    env = make_env(ENV)
    policy = make_policy(env.observation_space, env.action_space, hidden_sizes=())
    with torch.no_grad():
        policy.head.linear.weight.zero_()
        policy.head.linear.bias.zero_()
        policy.head.linear.weight[1] = torch.tensor([0.01, 0.1, 1.0, 0.5])
    return policy


def write_episodes(path: Path, env_id: str, episodes: list) -> None:
    env = make_env(env_id)
    with DatasetWriter(path, observation_space=env.observation_space, action_space=env.action_space, env_id=env_id,
                       mode="overwrite") as w:
        w.add_episodes(episodes)


def first_episodes(source: Path, k: int) -> list:
    """The first ``k`` episodes of a dataset file."""
    ds = load_dataset(source)
    return [ds.episode(i) for i in range(min(k, ds.num_episodes))]


def make_data(path: Path, source: Path | None, episodes: int) -> str:
    """Write ``episodes`` expert episodes to ``path``; returns a description of the source."""
    if source is not None and source.exists():
        eps = first_episodes(source, episodes)
        what = f"first {len(eps)} episodes of {source.relative_to(REPO) if source.is_relative_to(REPO) else source}"
    else:
        eps = rollout_mixture(ENV, expert=controller_policy(), learner=None, beta=1.0, episodes=episodes, seed=0,
                              rng=np.random.default_rng(0))
        what = f"{episodes} episodes of a hand-written controller (return 500)"
    write_episodes(path, ENV, eps)
    returns = [float(e.episode_return) for e in eps]
    return f"{what}; {sum(len(e) for e in eps)} transitions, expert return {np.mean(returns):.1f}"


def bare_loop(path: Path, epochs: int, seed: int = 0) -> tuple[float, float]:
    """(samples/s, samples per CPU-s) of a minimal torch BC loop on the same data (2x64 tanh, batch 256, fused Adam)."""
    ds = load_dataset(path)
    x = torch.from_numpy(np.array(ds.flat_observations()))
    y = torch.from_numpy(np.asarray(ds.actions, dtype=np.int64))
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(4, 64), torch.nn.Tanh(), torch.nn.Linear(64, 64), torch.nn.Tanh(),
                              torch.nn.Linear(64, 2))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, fused=True)
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(epochs):
            perm = torch.randperm(len(x))
            for k in range(0, len(x), 256):
                idx = perm[k:k + 256]
                loss = torch.nn.functional.cross_entropy(net(x[idx]), y[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        n = len(x) * epochs
        return n / (time.perf_counter() - t0), n / (time.process_time() - c0)
    finally:
        torch.set_num_threads(old)


def demokit_throughput(data: Path, epochs: int, seed: int, **kw) -> tuple[float, float]:
    """(samples/s of train_bc's training loop, samples per CPU-s of that loop).

    The CPU time is that of epochs 2..E (process time at the end of epoch 1 and of the
    last epoch, read by the per-epoch callback): the loop alone, as the peer's figure is,
    without the set-up (reading the file, building the policy) that the whole call adds."""
    n = len(load_dataset(data))
    marks: list[float] = []
    r = train_bc(data, epochs=epochs, eval_episodes=0, val_fraction=0.0, seed=seed,
                 callback=lambda rec: marks.append(time.process_time()), **kw)
    return r.samples_per_s, n * (epochs - 1) / (marks[-1] - marks[0])


def peer_time_to_threshold(npz: Path, seed: int, run_peer) -> dict:
    for n in PEER_EPOCH_SWEEP:
        r = run_peer("imitation_bc.py", {"demos": npz, "n_epochs": n, "seed": seed})
        if r["mean_return"] >= 475:
            return {"n_epochs": n, "train_wall_s": r["train_wall_s"], "mean_return": r["mean_return"]}
    return {"n_epochs": None, "train_wall_s": None, "mean_return": r["mean_return"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--dataset", type=Path, default=COMMITTED)
    ap.add_argument("--episodes", type=int, default=10)
    ap.add_argument("--throughput-epochs", type=int, default=40)
    ap.add_argument("--no-peer", action="store_true", help="skip imitation even when .venv-imitation exists")
    ap.add_argument("--json", type=Path, default=None, help="also write the raw figures here")
    args = ap.parse_args()

    peer = None
    if not args.no_peer:
        from _peers import export_npz, peer_available, run_peer
        if peer_available("imitation"):
            peer = run_peer
        else:
            print("imitation venv missing (scripts/setup_peers.sh): peer columns skipped", file=sys.stderr)

    keys = ("demokit", "demokit_small", "bare", "peer")
    raw: dict[str, list] = {k: [] for k in (*keys, *(f"{k}_cpu" for k in keys), "demokit_t475", "peer_t475")}
    with tempfile.TemporaryDirectory(prefix="bench-bc-") as tmp:
        data = Path(tmp) / "demos.h5"
        source = make_data(data, args.dataset, args.episodes)
        npz = Path(tmp) / "demos.npz"
        if peer is not None:
            export_npz(data, npz)
        print(f"data: {source}", file=sys.stderr)
        E = args.throughput_epochs
        demokit_throughput(data, 2, 0)  # warm-up: lazy imports and first-call initialisation
        bare_loop(data, 1)
        for rep in range(args.repeats):
            for key, figures in (("demokit", demokit_throughput(data, E, rep)),
                                 ("demokit_small", demokit_throughput(data, E, rep, batch_size=32,
                                                                      hidden_sizes=(32, 32))),
                                 ("bare", bare_loop(data, E, seed=rep))):
                raw[key].append(figures[0])
                raw[f"{key}_cpu"].append(figures[1])
            r = train_bc(data, seed=rep)
            raw["demokit_t475"].append({"wall_s": r.wall_s, "epochs": r.epochs, "mean_return": r.mean_return,
                                        "converged": r.converged})
            if peer is not None:
                p = peer("imitation_bc.py", {"demos": npz, "n_epochs": 4, "seed": rep, "eval_episodes": 0})
                raw["peer"].append(p["samples_per_s"])
                raw["peer_cpu"].append(p["samples_per_cpu_s"])
                raw["peer_t475"].append(peer_time_to_threshold(npz, rep, peer))
            print(f"repeat {rep + 1}/{args.repeats} done", file=sys.stderr)

    med = {k: statistics.median(v) for k, v in raw.items() if v and isinstance(v[0], float)}
    # paired: each repeat's ratio to the peer run right after it (the same moment's load), then the median
    paired = {k: statistics.median(a / b for a, b in zip(raw[k], raw[peer_key]))
              for k, peer_key in ((k, "peer_cpu" if k.endswith("_cpu") else "peer") for k in raw)
              if raw[k] and raw[peer_key] and isinstance(raw[k][0], float)}
    d475 = raw["demokit_t475"]
    p475 = [p for p in raw["peer_t475"] if p["train_wall_s"] is not None]
    load = os.getloadavg()
    print(f"\nBC on {source}; {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch "
          f"{torch.__version__}, {args.repeats} repeats (medians); load average {load[0]:.1f} / {load[1]:.1f} / "
          f"{load[2]:.1f} (1 / 5 / 15 min) at the end\n")
    print("vs imitation: ratio of the medians; paired: median of each repeat's ratio to the peer run of the same "
          "repeat\n")
    print("| throughput (training loop) | samples/s | vs imitation | paired | samples/CPU-s | vs imitation | paired |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    rows = [("demokit defaults (batch 256, 2x64)", "demokit"), ("demokit at batch 32, 2x32", "demokit_small"),
            ("bare torch loop (batch 256, 2x64, fused Adam)", "bare"), ("imitation BC defaults (batch 32, 2x32)", "peer")]
    for label, key in rows:
        if key in med:
            cpu = f"{key}_cpu"
            ratio = f"{med[key] / med['peer']:.1f}x" if "peer" in med else "n/a"
            cpu_ratio = f"{med[cpu] / med['peer_cpu']:.1f}x" if "peer_cpu" in med else "n/a"
            pair, cpu_pair = (f"{paired[k]:.1f}x" if k in paired else "n/a" for k in (key, cpu))
            print(f"| {label} | {med[key]:,.0f} | {ratio} | {pair} | {med[cpu]:,.0f} | {cpu_ratio} | {cpu_pair} |")
    print("\n| time to >= 475 (20 episodes) | wall s | epochs | final return |")
    print("|---|---:|---:|---:|")
    print(f"| demokit train_bc defaults (load + train + evaluations) | "
          f"{statistics.median(d['wall_s'] for d in d475):.2f} | {statistics.median(d['epochs'] for d in d475):.0f} | "
          f"{statistics.median(d['mean_return'] for d in d475):.1f} "
          f"({sum(d['converged'] for d in d475)}/{len(d475)} converged) |")
    if raw["peer_t475"]:
        if p475:
            print(f"| imitation BC, smallest n_epochs reaching 475 (training only) | "
                  f"{statistics.median(p['train_wall_s'] for p in p475):.2f} | "
                  f"{statistics.median(p['n_epochs'] for p in p475):.0f} | "
                  f"{statistics.median(p['mean_return'] for p in p475):.1f} ({len(p475)}/{len(raw['peer_t475'])} "
                  f"reached) |")
        else:
            print(f"| imitation BC | not reached within {PEER_EPOCH_SWEEP[-1]} epochs | | |")
    if args.json:
        args.json.write_text(json.dumps({"source": source, "raw": raw, "medians": med, "paired": paired,
                                         "loadavg": load}, indent=1))


if __name__ == "__main__":
    main()
