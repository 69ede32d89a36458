"""Peer runner: Stable-Baselines3 PPO at rl-zoo's CartPole-v1 settings (runs in .venv).

    .venv/bin/python benchmarks/peers/sb3_ppo.py                      # 100k steps
    .venv/bin/python benchmarks/peers/sb3_ppo.py --eval-every 10000 --stop-at-threshold

rl-zoo hyperparams/ppo.yml, CartPole-v1: 8 envs (DummyVecEnv), MlpPolicy, n_steps 32,
batch_size 256, n_epochs 20, gamma 0.98, gae_lambda 0.8, learning rate linear 1e-3,
clip range linear 0.2, ent_coef 0, 1e5 steps. After training, a deterministic
evaluation. Prints one JSON line: wall_s (training), eval_wall_s, total_wall_s,
mean_return, std_return, env_steps; with --eval-every K the policy is evaluated
every K env steps and the steps / wall time (evaluation time included) at which the
mean return first reached the threshold (default: the env's reward_threshold, 475).
--export-demos writes expert demonstrations in the peers' .npz layout.
"""

from __future__ import annotations

import time

T_START = time.perf_counter()

import argparse  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

from _common import (ThresholdTracker, add_common_args, add_training_args, check_training_args,  # noqa: E402
                     evaluate, machine, run_main, setup_run, stdout_to_stderr, versions, write_demos)


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--env-id", default="CartPole-v1", help="default CartPole-v1 (the settings are its zoo row)")
    add_training_args(p, total_timesteps=100_000)
    p.add_argument("--export-demos", default=None, help="write expert demonstrations (.npz) after training")
    p.add_argument("--demo-episodes", type=int, default=60, help="episodes for --export-demos (default 60)")
    p.add_argument("--demo-seed", type=int, default=None, help="reset seed of the first exported episode "
                   "(default: seed + 20000)")
    add_common_args(p)
    return p.parse_args()


def linear(start: float) -> Any:
    """rl-zoo's `lin_<value>`: value * progress_remaining (1 -> 0 over training)."""
    def schedule(progress_remaining: float) -> float:
        return progress_remaining * start
    return schedule


def export_demos(model: Any, env_id: str, path: str, episodes: int, seed: int) -> dict[str, Any]:
    """Roll the trained policy out deterministically (episode i resets with seed + i)."""
    import gymnasium as gym

    env = gym.make(env_id)
    cols: dict[str, list[Any]] = {k: [] for k in ("obs", "next_obs", "acts", "rews", "terminated", "truncated")}
    lengths = []
    for i in range(episodes):
        obs, _ = env.reset(seed=seed + i)
        steps, done = 0, False
        while not done:
            action, _ = model.predict(obs, deterministic=True)
            next_obs, reward, terminated, truncated, _ = env.step(action)
            for key, value in (("obs", obs), ("next_obs", next_obs), ("acts", action), ("rews", reward),
                               ("terminated", terminated), ("truncated", truncated)):
                cols[key].append(value)
            obs, steps, done = next_obs, steps + 1, terminated or truncated
        lengths.append(steps)
    env.close()
    arrays = {k: np.asarray(v) for k, v in cols.items()}
    arrays["obs"] = arrays["obs"].reshape(len(arrays["obs"]), -1)
    arrays["next_obs"] = arrays["next_obs"].reshape(len(arrays["next_obs"]), -1)
    summary = write_demos(path, episode_lengths=np.asarray(lengths), env_id=env_id, **arrays)
    summary["mean_return"] = float(np.mean([arrays["rews"][s:s + n].sum()
                                            for s, n in zip(np.cumsum(lengths) - lengths, lengths)]))
    return summary


def main() -> dict[str, Any]:
    args = parse_args()
    check_training_args(args)
    setup_run(args.seed, args.threads)

    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env
    t_imported = time.perf_counter()
    tracker = ThresholdTracker(args, args.env_id)

    venv = make_vec_env(args.env_id, n_envs=args.n_envs, seed=args.seed)
    model = PPO("MlpPolicy", venv, n_steps=32, batch_size=256, n_epochs=20, gamma=0.98, gae_lambda=0.8,
                learning_rate=linear(1e-3), clip_range=linear(0.2), ent_coef=0.0,
                seed=args.seed, device="cpu", verbose=0)

    class ThresholdCheck(BaseCallback):
        def _on_step(self) -> bool:
            if not tracker.due(self.num_timesteps):
                return True
            reached = tracker.check(self.num_timesteps, lambda o: self.model.predict(o, deterministic=True)[0])
            return not (reached and args.stop_at_threshold)

    t0, cpu0 = time.perf_counter(), time.process_time()
    tracker.start()
    with stdout_to_stderr():
        model.learn(total_timesteps=args.total_timesteps, callback=ThresholdCheck())
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0

    ev = evaluate(lambda o: model.predict(o, deterministic=True)[0], args.env_id, args.eval_episodes,
                  seed=args.seed + 10_000)
    result: dict[str, Any] = {
        "peer": "sb3-ppo",
        "env_id": args.env_id,
        "settings": "rl-zoo CartPole-v1: 8 envs, n_steps 32, batch 256, 20 epochs, gamma 0.98, gae 0.8, "
                    "lr lin 1e-3, clip lin 0.2, ent 0",
        "n_envs": args.n_envs,
        "env_steps": int(model.num_timesteps),
        "wall_s": round(wall, 3),
        "cpu_s": round(cpu, 3),
        "steps_per_s": round(model.num_timesteps / wall, 1),
        **ev,
        "total_wall_s": round(wall + ev["eval_wall_s"], 3),
    }
    result.update(tracker.summary())
    if args.export_demos:
        demo_seed = args.seed + 20_000 if args.demo_seed is None else args.demo_seed
        result["demos"] = export_demos(model, args.env_id, args.export_demos, args.demo_episodes, demo_seed)
    result.update(import_wall_s=round(t_imported - T_START, 3), script_wall_s=round(time.perf_counter() - T_START, 3),
                  seed=args.seed, threads=args.threads,
                  machine=machine(), versions=versions("stable-baselines3", "gymnasium", "torch", "numpy"))
    return result


if __name__ == "__main__":
    run_main(main)
