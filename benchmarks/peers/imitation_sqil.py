"""Peer runner: imitation 1.0.1 SQIL (DQN; SAC on Box actions) from a demonstration npz (runs in .venv-imitation).

    .venv-imitation/bin/python benchmarks/peers/imitation_sqil.py --demos demos.npz --eval-every 2500 \
        --stop-at-threshold [--preset rl-zoo|sb3]

imitation's SQIL tutorial (docs/tutorials/8_train_sqil.ipynb) builds
``SQIL(venv=DummyVecEnv([CartPole-v1]), demonstrations=..., policy="MlpPolicy")`` with SB3's
DQN defaults and says 1,000,000 steps are needed for good results. ``--preset rl-zoo``
(the default here) passes rl-zoo's tuned DQN CartPole-v1 row instead (the same row
demokit's tuned DQN uses): learning_rate 2.3e-3, batch 64, buffer 100k, learning_starts
1000, gamma 0.99, target_update_interval 10, train_freq 256, gradient_steps 128,
exploration_fraction 0.16, exploration_final_eps 0.04, net_arch [256, 256];
Off CartPole-v1 the rl-zoo preset takes the env's row (``RL_ZOO``: Acrobot-v1 and MountainCar-v0 DQN,
Pendulum-v1 SAC: imitation's SQIL accepts any SB3 off-policy learner).
``--preset sb3`` keeps SB3's defaults (the tutorial). One env (DummyVecEnv), as in the
tutorial. imitation's SQIL replay buffer draws half of every minibatch from the
demonstrations (reward 1) and half from the agent's transitions (reward 0).

Prints one JSON line: wall_s / cpu_s (training), env_steps, the final deterministic
evaluation, and with --eval-every K the env steps / wall time (evaluation time
included) at which a periodic evaluation first reached the threshold (checked after
every env step that crosses a multiple of K).
"""

from __future__ import annotations

import time

T_START = time.perf_counter()

import argparse  # noqa: E402
from typing import Any  # noqa: E402

from _common import (PeerError, ThresholdTracker, add_common_args, add_training_args, check_training_args,  # noqa: E402
                     evaluate, imitation_result, imitation_trajectories, open_demos, run_main, setup_run,
                     stdout_to_stderr)

#: SB3 DQN keyword arguments per preset (the rl-zoo preset: CartPole-v1's row; other envs: RL_ZOO)
PRESETS: dict[str, dict[str, Any]] = {
    "rl-zoo": {"learning_rate": 2.3e-3, "batch_size": 64, "buffer_size": 100_000, "learning_starts": 1000,
               "gamma": 0.99, "target_update_interval": 10, "train_freq": 256, "gradient_steps": 128,
               "exploration_fraction": 0.16, "exploration_final_eps": 0.04,
               "policy_kwargs": {"net_arch": [256, 256]}},
    "sb3": {},
}
#: the rl-zoo preset off CartPole-v1: (SB3 learner, keyword arguments) per env. DQN: the rows demokit's tuned
#: table (demokit/rl/hyperparams.py) gives its own DQN and SQIL there, target_update_interval converted from
#: gradient steps to SB3's env steps (x train_freq / gradient_steps); Pendulum-v1: rl-zoo's SAC row (learning
#: rate 1e-3, SB3's other SAC defaults)
RL_ZOO: dict[str, tuple[str, dict[str, Any]]] = {
    "Acrobot-v1": ("dqn", {"learning_rate": 6.3e-4, "batch_size": 128, "buffer_size": 50_000, "learning_starts": 0,
                           "gamma": 0.99, "target_update_interval": 500, "train_freq": 16, "gradient_steps": 8,
                           "exploration_fraction": 0.12, "exploration_final_eps": 0.1,
                           "policy_kwargs": {"net_arch": [128, 128]}}),
    "MountainCar-v0": ("dqn", {"learning_rate": 4e-3, "batch_size": 128, "buffer_size": 10_000,
                               "learning_starts": 1000, "gamma": 0.98, "target_update_interval": 600,
                               "train_freq": 16, "gradient_steps": 8, "exploration_fraction": 0.2,
                               "exploration_final_eps": 0.07, "policy_kwargs": {"net_arch": [256, 256]}}),
    "Pendulum-v1": ("sac", {"learning_rate": 1e-3}),
}


def learner_settings(preset: str, env_id: str, box_actions: bool) -> tuple[str, dict[str, Any]]:
    """(SB3 learner name, its keyword arguments) of ``preset`` on ``env_id``."""
    if preset == "sb3":
        return ("sac" if box_actions else "dqn"), {}
    if env_id == "CartPole-v1":
        return "dqn", dict(PRESETS["rl-zoo"])
    if env_id not in RL_ZOO:
        raise PeerError(f"no rl-zoo row for {env_id} here (known: CartPole-v1, {', '.join(RL_ZOO)}); "
                        f"use --preset sb3")
    return RL_ZOO[env_id][0], dict(RL_ZOO[env_id][1])


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--demos", required=True, help="demonstration .npz (layout: benchmarks/peers/README.md)")
    p.add_argument("--env-id", default=None, help="gymnasium env id (default: the npz's env_id)")
    p.add_argument("--preset", choices=sorted(PRESETS), default="rl-zoo", help="DQN settings (default rl-zoo)")
    add_training_args(p, total_timesteps=100_000)
    add_common_args(p)
    args = p.parse_args()
    args.n_envs = 1  # the tutorial's single env (SB3 DQN counts one step per env step)
    return args


def main() -> dict[str, Any]:
    args = parse_args()
    check_training_args(args)
    setup_run(args.seed, args.threads)

    import gymnasium as gym
    from imitation.algorithms.sqil import SQIL
    from stable_baselines3 import DQN, SAC
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.vec_env import DummyVecEnv
    t_imported = time.perf_counter()

    data, env_id, _, action_space = open_demos(args.demos, args.env_id)
    algo, rl_kwargs = learner_settings(args.preset, env_id, not hasattr(action_space, "n"))
    tracker = ThresholdTracker(args, env_id)
    trajectories = imitation_trajectories(data)

    class Check(BaseCallback):
        def _on_step(self) -> bool:
            if tracker.due(self.num_timesteps):
                reached = tracker.check(self.num_timesteps,
                                        lambda o: self.model.predict(o, deterministic=True)[0])
                return not (reached and args.stop_at_threshold)
            return True

    with stdout_to_stderr():
        venv = DummyVecEnv([lambda: gym.make(env_id)])
        venv.seed(args.seed)
        trainer = SQIL(venv=venv, demonstrations=trajectories, policy="MlpPolicy",
                       rl_algo_class={"dqn": DQN, "sac": SAC}[algo],
                       rl_kwargs={**rl_kwargs, "seed": args.seed, "device": "cpu", "verbose": 0})
        t0, cpu0 = time.perf_counter(), time.process_time()
        setup_wall = t0 - t_imported
        tracker.start()
        trainer.train(total_timesteps=args.total_timesteps, callback=Check())
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        venv.close()

    model = trainer.rl_algo
    ev = evaluate(lambda o: model.predict(o, deterministic=True)[0], env_id, args.eval_episodes,
                  seed=args.seed + 10_000)
    fields = {"peer": "imitation-sqil", "env_id": env_id,
              "settings": f"imitation SQIL, {algo.upper()} preset {args.preset}: {rl_kwargs or 'SB3 defaults'}, 1 env",
              "demo_transitions": int(len(data["obs"])), "demo_episodes": int(len(data["episode_lengths"])),
              "env_steps": int(model.num_timesteps)}
    result = imitation_result(fields, args=args, tracker=tracker, ev=ev, wall=wall, cpu=cpu, t_start=T_START,
                              t_imported=t_imported, setup_wall=setup_wall)
    return result


if __name__ == "__main__":
    run_main(main)
