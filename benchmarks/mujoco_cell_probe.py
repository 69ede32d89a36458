"""Why a cached MuJoCo table cell scores what it scores: its policy's 50 evaluation episodes one by one.

For each cell name (``<env>-<method>-k<k>-s<seed>``, a policy under ``benchmarks/results/mujoco/policies/``) the
table's evaluation (``mujoco_table.evaluate``'s batched run: the same returns as the cell) gives each episode's
return and length: how many episodes end early (a fall: Hopper / Walker2d terminate) and the return per step of
the episodes that run to the 1000-step limit (the gait's speed). Then the same episodes are replayed one env at a
time (same env seeds; single-row actions differ from the batched ones in the last bits, so a few chaotic episodes
differ) to read what the returns cannot show: the mean forward velocity and, on HalfCheetah, the episodes whose
torso pitch |rooty| passes pi/2 (the cheetah turned onto its back, a "flip").

    .venv/bin/python benchmarks/mujoco_cell_probe.py Walker2d-v5-gail-ppo-k25-s2 [more cells] [--cache DIR]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "benchmarks")]


def replay(policy, env_id: str, seed0: int, episodes: int) -> list[tuple[float, int, int | None, float]]:
    """(return, length, first flip step or None, mean x-velocity) per episode, one env at a time."""
    import gymnasium as gym
    import torch

    env = gym.make(env_id)
    rows = []
    for i in range(episodes):
        obs, _ = env.reset(seed=seed0 + i)
        ret, flip, vel, t = 0.0, None, [], 0
        done = False
        while not done:
            with torch.inference_mode():
                action = policy.act(np.asarray(obs, dtype=np.float32)[None], deterministic=True)[0]
            obs, r, term, trunc, info = env.step(action)
            ret += float(r)
            vel.append(float(info["x_velocity"]))
            if flip is None and env_id.startswith("HalfCheetah") and abs(obs[1]) > np.pi / 2:
                flip = t
            t += 1
            done = term or trunc
        rows.append((ret, t, flip, float(np.mean(vel))))
    env.close()
    return rows


def main(argv: list[str] | None = None) -> int:
    import mujoco_table as mt

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("cells", nargs="+", help="cell names, e.g. Walker2d-v5-gail-ppo-k25-s2")
    ap.add_argument("--cache", type=Path, default=mt.CACHE)
    ap.add_argument("--episodes", type=int, default=mt.EVAL_EPISODES)
    args = ap.parse_args(argv)

    import torch

    from demokit.evaluation import evaluate_policy
    from demokit.policies import load_policy

    torch.set_num_threads(1)
    for name in args.cells:
        env_id = name.split("-")[0] + "-" + name.split("-")[1]
        seed = int(name.rsplit("-s", 1)[1])
        path = args.cache / "policies" / f"{name}.pt"
        if not path.exists():
            print(f"error: no policy {path}", file=sys.stderr)
            return 2
        policy = load_policy(str(path))
        ev = evaluate_policy(policy, env_id, episodes=args.episodes, seed=mt.eval_seed(seed), deterministic=True)
        full = ev.lengths >= 1000
        print(f"{name}: return {ev.mean_return:.1f} ± {ev.std_return:.1f} over {ev.episodes} episodes (the table's)")
        print(f"  ended early: {int((~full).sum())} (lengths {sorted(ev.lengths[~full].tolist())}, returns "
              f"{np.round(np.sort(ev.returns[~full])).astype(int).tolist()})")
        if full.any():
            print(f"  the {int(full.sum())} full-length episodes: return {ev.returns[full].mean():.1f}, "
                  f"{(ev.returns[full] / ev.lengths[full]).mean():.3f} per step")
        rows = replay(policy, env_id, mt.eval_seed(seed), args.episodes)
        rets = np.array([r[0] for r in rows])
        flips = [r for r in rows if r[2] is not None]
        print(f"  replayed one env at a time: return {rets.mean():.1f} ± {rets.std():.1f}, mean x-velocity "
              f"{np.mean([r[3] for r in rows]):.3f}")
        if env_id.startswith("HalfCheetah"):
            rest = [r for r in rows if r[2] is None]
            print(f"  flipped (|rooty| > pi/2): {len(flips)} episodes, first flip at steps {[r[2] for r in flips]}, "
                  f"returns {[round(r[0]) for r in flips]}; the {len(rest)} unflipped: return "
                  f"{np.mean([r[0] for r in rest]):.1f}, x-velocity {np.mean([r[3] for r in rest]):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
