"""Peer runner: imitation 1.0.1 GAIL or AIRL with its documented CartPole settings (runs in .venv-imitation).

    .venv-imitation/bin/python benchmarks/peers/imitation_gail.py --demos demos.npz
    .venv-imitation/bin/python benchmarks/peers/imitation_gail.py --demos demos.npz --eval-every 16384
    .venv-imitation/bin/python benchmarks/peers/imitation_gail.py --algo airl --demos demos.npz --eval-every 16384
    .venv-imitation-mj/bin/python benchmarks/peers/imitation_gail.py --preset mujoco --demos hopper.npz \
        --env-id Hopper-v4 --total-timesteps 200000 --eval-every 20480 --threshold 2870

Settings of imitation's GAIL tutorial (docs/tutorials/3_train_gail.ipynb): 8 envs
(imitation.util.util.make_vec_env, DummyVecEnv); learner SB3 PPO MlpPolicy with
batch_size 64, ent_coef 0.0, learning_rate 4e-4, gamma 0.95, n_epochs 5 (n_steps
2048, the SB3 default, so one round = 8 x 2048 = 16384 env steps); reward net
BasicRewardNet with RunningNorm input normalisation; GAIL demo_batch_size 1024,
gen_replay_buffer_capacity 512, n_disc_updates_per_round 8; 200000 steps (12 rounds).
The tutorial uses seals/CartPole-v0 (fixed horizon); here the env is plain
CartPole-v1, so allow_variable_horizon=True.
``--algo airl``: the settings of imitation's AIRL tutorial (docs/tutorials/4_train_airl.ipynb):
PPO with batch_size 64, ent_coef 0.0, learning_rate 5e-4, gamma 0.95, clip_range 0.1,
vf_coef 0.1, n_epochs 5; reward net BasicShapedRewardNet with RunningNorm; AIRL
demo_batch_size 2048, gen_replay_buffer_capacity 512, n_disc_updates_per_round 16
(the tutorial trains 100k steps with FAST, 2M for the expert's level).
``--preset mujoco`` (GAIL only): imitation's published MuJoCo settings, those of its
benchmarking/example_gail_seals_hopper_best_hp_eval.json (the configs behind its seals/Hopper
benchmark): 8 envs; PPO with n_steps 512 (4096 per round), batch_size 512, clip_range 0.1,
ent_coef 0.00125, gae_lambda 0.98, gamma 0.995, learning_rate 4.4e-5, max_grad_norm 0.9,
n_epochs 20, vf_coef 0.203, a 64x64 ReLU MlpPolicy behind a RunningNorm feature extractor;
reward net BasicRewardNet with RunningNorm input and a RunningNorm output layer
(NormalizedRewardNet); demo_batch_size 128, gen_replay_buffer_capacity 4096, 8 discriminator
updates per round (the config trains 10M env steps). It needs a MuJoCo env: imitation 1.0.1
pins gymnasium 0.29, whose Hopper is v4 (``.venv-imitation-mj``: the imitation venv plus the
mujoco 2.3.7 wheel, scripts/setup_peers.sh imitation-mj). ``--max-wall S`` ends training
at the first round boundary after S seconds. Each periodic evaluation is also printed to
stderr as a JSON line (env steps, mean return, training wall and CPU seconds so far).
Prints one JSON line: wall_s (training), mean_return / std_return of the final
deterministic evaluation, and with --eval-every K the env steps / wall time
(evaluation time included) at which a periodic evaluation first reached the threshold.
Evaluations can only run between rounds (every 16384 steps at these settings).
"""

from __future__ import annotations

import time

T_START = time.perf_counter()

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

from _common import (PeerError, ThresholdTracker, add_common_args, add_training_args,  # noqa: E402
                     check_training_args, evaluate, imitation_result, imitation_trajectories, open_demos, run_main,
                     setup_run, stdout_to_stderr)


#: the tutorials' settings per trainer: PPO keyword arguments, demo batch, discriminator updates per round
PRESETS: dict[str, dict[str, Any]] = {
    "gail": {"ppo": {"batch_size": 64, "ent_coef": 0.0, "learning_rate": 0.0004, "gamma": 0.95, "n_epochs": 5},
             "demo_batch_size": 1024, "n_disc_updates_per_round": 8,
             "settings": "imitation GAIL tutorial: 8 envs, PPO(batch 64, ent 0, lr 4e-4, gamma 0.95, 5 epochs), "
                         "BasicRewardNet+RunningNorm, demo_batch 1024, gen_replay 512, 8 disc updates/round"},
    "airl": {"ppo": {"batch_size": 64, "ent_coef": 0.0, "learning_rate": 0.0005, "gamma": 0.95, "clip_range": 0.1,
                     "vf_coef": 0.1, "n_epochs": 5},
             "demo_batch_size": 2048, "n_disc_updates_per_round": 16,
             "settings": "imitation AIRL tutorial: 8 envs, PPO(batch 64, ent 0, lr 5e-4, gamma 0.95, clip 0.1, "
                         "vf 0.1, 5 epochs), BasicShapedRewardNet+RunningNorm, demo_batch 2048, gen_replay 512, "
                         "16 disc updates/round"},
}

#: imitation's MuJoCo GAIL settings (benchmarking/example_gail_seals_hopper_best_hp_eval.json); n_steps is
#: its rl.batch_size 4096 over the envs
MUJOCO_GAIL: dict[str, Any] = {
    "ppo": {"batch_size": 512, "clip_range": 0.1, "ent_coef": 0.001255299425412744, "gae_lambda": 0.98,
            "gamma": 0.995, "learning_rate": 4.3984856156897565e-5, "max_grad_norm": 0.9, "n_epochs": 20,
            "vf_coef": 0.20315938606555833},
    "round_steps": 4096, "demo_batch_size": 128, "gen_replay_buffer_capacity": 4096, "n_disc_updates_per_round": 8,
    "settings": "imitation's seals/Hopper GAIL benchmark config: 8 envs, PPO(n_steps 4096/envs, batch 512, clip 0.1, "
                "ent 0.00126, gae 0.98, gamma 0.995, lr 4.4e-5, max_grad_norm 0.9, 20 epochs, vf 0.203), 64x64 ReLU "
                "policy with RunningNorm features, BasicRewardNet+RunningNorm input+RunningNorm output, "
                "demo_batch 128, gen_replay 4096, 8 disc updates/round",
}


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--demos", required=True, help="demonstration .npz (layout: benchmarks/peers/README.md)")
    p.add_argument("--env-id", default=None, help="gymnasium env id (default: the npz's env_id)")
    p.add_argument("--algo", choices=sorted(PRESETS), default="gail", help="imitation's trainer (default gail)")
    p.add_argument("--preset", choices=("tutorial", "mujoco"), default="tutorial",
                   help="tutorial: the algo's CartPole tutorial settings; mujoco: imitation's MuJoCo GAIL benchmark "
                        "settings (gail only)")
    p.add_argument("--max-wall", type=float, default=None, help="end training at the first round after S seconds")
    add_training_args(p, total_timesteps=200_000)
    p.add_argument("--demo-batch-size", type=int, default=None, help="default: the algo's tutorial value")
    p.add_argument("--gen-replay-buffer-capacity", type=int, default=None,
                   help="default: 512 (tutorial), 4096 (mujoco)")
    p.add_argument("--n-disc-updates-per-round", type=int, default=None, help="default: the algo's tutorial value")
    add_common_args(p)
    return p.parse_args()


class _Reached(Exception):
    """Raised from the round callback to stop training early."""


def main() -> dict[str, Any]:
    args = parse_args()
    check_training_args(args)
    setup_run(args.seed, args.threads)

    from imitation.algorithms.adversarial.airl import AIRL
    from imitation.algorithms.adversarial.gail import GAIL
    import torch
    from imitation.policies.base import NormalizeFeaturesExtractor
    from imitation.rewards.reward_nets import BasicRewardNet, BasicShapedRewardNet, NormalizedRewardNet
    from imitation.util import logger as imit_logger
    from imitation.util.networks import RunningNorm
    from imitation.util.util import make_vec_env
    from stable_baselines3 import PPO
    from stable_baselines3.ppo import MlpPolicy
    t_imported = time.perf_counter()

    mujoco = args.preset == "mujoco"
    if mujoco and args.algo != "gail":
        raise PeerError("--preset mujoco is GAIL's (imitation's MuJoCo GAIL benchmark settings)")
    preset = MUJOCO_GAIL if mujoco else PRESETS[args.algo]
    demo_batch = args.demo_batch_size or preset["demo_batch_size"]
    replay = args.gen_replay_buffer_capacity or preset.get("gen_replay_buffer_capacity", 512)
    disc_updates = args.n_disc_updates_per_round or preset["n_disc_updates_per_round"]
    data, env_id, _, _ = open_demos(args.demos, args.env_id)
    tracker = ThresholdTracker(args, env_id)
    trajectories = imitation_trajectories(data)
    if len(data["obs"]) < demo_batch:
        raise PeerError(f"only {len(data['obs'])} demonstration transitions, fewer than "
                        f"--demo-batch-size {demo_batch}")

    with tempfile.TemporaryDirectory(prefix="peer-gail-") as logdir, stdout_to_stderr():
        venv = make_vec_env(env_id, rng=np.random.default_rng(args.seed), n_envs=args.n_envs)
        ppo_kwargs = dict(preset["ppo"])
        if mujoco:
            if preset["round_steps"] % args.n_envs:
                raise PeerError(f"--n-envs {args.n_envs} must divide {preset['round_steps']} (steps per round)")
            ppo_kwargs.update(n_steps=preset["round_steps"] // args.n_envs, policy_kwargs={
                "activation_fn": torch.nn.ReLU, "features_extractor_class": NormalizeFeaturesExtractor,
                "features_extractor_kwargs": {"normalize_class": RunningNorm},
                "net_arch": {"pi": [64, 64], "vf": [64, 64]}})
        learner = PPO(env=venv, policy=MlpPolicy, **ppo_kwargs, seed=args.seed, device="cpu", verbose=0)
        net_class, trainer_class = (BasicRewardNet, GAIL) if args.algo == "gail" else (BasicShapedRewardNet, AIRL)
        reward_net = net_class(observation_space=venv.observation_space, action_space=venv.action_space,
                               normalize_input_layer=RunningNorm)
        if mujoco:
            reward_net = NormalizedRewardNet(reward_net, RunningNorm)
        trainer = trainer_class(demonstrations=trajectories, demo_batch_size=demo_batch,
                                gen_replay_buffer_capacity=replay,
                                n_disc_updates_per_round=disc_updates, venv=venv, gen_algo=learner,
                                reward_net=reward_net, allow_variable_horizon=True, log_dir=logdir,
                                custom_logger=imit_logger.configure(logdir, format_strs=[]))
        round_steps = trainer.gen_train_timesteps
        if args.total_timesteps < round_steps:
            raise PeerError(f"--total-timesteps {args.total_timesteps} is less than one round "
                            f"({round_steps} env steps)")

        def on_round(round_num: int) -> None:
            steps = (round_num + 1) * round_steps
            if tracker.due(steps):
                reached = tracker.check(steps, lambda o: learner.predict(o, deterministic=True)[0])
                print(json.dumps({**tracker.checks[-1], "wall_s": round(time.perf_counter() - t0, 1),
                                  "cpu_s": round(time.process_time() - cpu0, 1)}), file=sys.stderr, flush=True)
                if reached and args.stop_at_threshold:
                    raise _Reached
            if args.max_wall is not None and time.perf_counter() - t0 >= args.max_wall:
                raise _Reached

        t0, cpu0 = time.perf_counter(), time.process_time()
        setup_wall = t0 - t_imported
        tracker.start()
        try:
            trainer.train(args.total_timesteps, callback=on_round)
        except _Reached:
            pass
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        venv.close()

    ev = evaluate(lambda o: learner.predict(o, deterministic=True)[0], env_id, args.eval_episodes,
                  seed=args.seed + 10_000)
    fields = {"peer": f"imitation-{args.algo}", "preset": args.preset, "env_id": env_id, "settings": preset["settings"],
              "demo_transitions": int(len(data["obs"])), "demo_episodes": int(len(data["episode_lengths"])),
              "round_env_steps": int(round_steps), "env_steps": int(learner.num_timesteps)}
    result = imitation_result(fields, args=args, tracker=tracker, ev=ev, wall=wall, cpu=cpu, t_start=T_START,
                              t_imported=t_imported, setup_wall=setup_wall)
    return result


if __name__ == "__main__":
    run_main(main)
