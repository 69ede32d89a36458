"""MountainCar-v0: a ranked reward model's learned reward (T-REX / D-REX, refitted exactly as the IRL pipeline fits it)
along trajectories of different speeds, discounted at DQN's 0.98 and undiscounted.

The reward is built as ``run_irl`` builds it (the model's MountainCar-v0 defaults: ``reward_form`` negative; seed
``derive_seed(SEED, "reward_model")``; the expert data of the run) and fitted once (``pretrain_reward``). Rows: the
reference demonstrations, a bang-bang controller (``a = 2 if v >= 0 else 0``) and slower variants of it, and the
greedy episodes of any policy checkpoints given (e.g. the run's final policy), each on episodes 5000-5019; then a
grid of ``R(position, velocity)``. Does the learned reward prefer the expert's route, and by how much?

    .venv/bin/python benchmarks/ranked_reward_probe.py drex 1 [--data FILE] [--policies P.pt ...]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
GAMMA = 0.98  # DQN's discount on MountainCar-v0 (the tuned row)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", choices=("drex", "trex"))
    parser.add_argument("seed", type=int)
    parser.add_argument("--data", default=str(ROOT / "datasets" / "mountaincar-v0-expert.h5"),
                        help="the run's expert data (trex: its ranked dataset)")
    parser.add_argument("--policies", nargs="*", default=[], help="policy checkpoints to roll out greedily")
    args = parser.parse_args()
    torch.set_num_threads(1)

    from demokit.data.dataset import load_dataset
    from demokit.envs import make_env
    from demokit.policies.checkpoint import load_policy
    from demokit.reward_models import create_reward_model
    from demokit.seeding import derive_seed

    data = load_dataset(args.data)
    model = create_reward_model({"type": args.model, "expert_data_path": args.data, "reward_form": "negative"},
                                "cpu", None, seed=derive_seed(args.seed, "reward_model"), expert_data=data)
    print("fit:", model.train())

    def reward(obs: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            z = (model.r(torch.as_tensor(np.array(obs, dtype=np.float32))) - model.r_mean) / model.r_std
        return (torch.sigmoid(z) - 1).numpy()

    def show(name: str, episodes: list[np.ndarray]) -> None:
        rows = []
        for obs in episodes:
            r = reward(obs)
            rows.append((len(r), r.sum(), float(np.sum(r * GAMMA ** np.arange(len(r)))), r.mean()))
        a = np.array(rows)
        print(f"{name:30s} steps {a[:, 0].mean():6.1f} [{a[:, 0].min():.0f}-{a[:, 0].max():.0f}]  learned return "
              f"{a[:, 1].mean():7.2f}  discounted ({GAMMA}) {a[:, 2].mean():7.2f}  per step {a[:, 3].mean():.3f}")

    env = make_env("MountainCar-v0")

    def roll(act: Callable[[np.ndarray], int], n: int = 20) -> list[np.ndarray]:
        out = []
        for i in range(n):
            obs, _ = env.reset(seed=5000 + i)
            rows, done = [], False
            while not done:
                rows.append(obs)
                obs, _, terminated, truncated, _ = env.step(act(obs))
                done = terminated or truncated
            out.append(np.asarray(rows))
        return out

    reference = load_dataset(ROOT / "datasets" / "mountaincar-v0-expert.h5")
    show("demonstrations", [ep.observations for ep in reference.iter_episodes()])
    show("bang-bang (a=2 if v>=0)", roll(lambda o: 2 if o[1] >= 0 else 0))
    for slack in (0.002, 0.005):
        show(f"bang-bang, coast |v|<{slack}", roll(lambda o, s=slack: 1 if abs(o[1]) < s else (2 if o[1] > 0 else 0)))
    rng = np.random.default_rng(0)
    for p in (0.2, 0.4):
        show(f"bang-bang, {p:.0%} no-ops", roll(lambda o, p=p: 1 if rng.random() < p else (2 if o[1] >= 0 else 0)))
    for path in args.policies:
        policy = load_policy(path)
        show(Path(path).name, roll(lambda o: int(policy.act(np.asarray(o, np.float32)[None], deterministic=True)[0])))
    env.close()
    vel = np.linspace(-0.07, 0.07, 7)
    print("R(position rows -1.2 .. 0.5, velocity columns -0.07 .. 0.07):")
    for pos in np.linspace(-1.2, 0.5, 9):
        print(f"{pos:6.2f}", np.round(reward(np.stack([np.full_like(vel, pos), vel], 1)), 2))


if __name__ == "__main__":
    main()
