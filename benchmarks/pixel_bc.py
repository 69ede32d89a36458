"""BC from pixels on CartPole-v1: a privileged expert acts on the state, a CNN student learns from frames.

    python benchmarks/pixel_bc.py [--episodes 20] [--epochs 8] [--label-noise 0.3] [--out-dir /tmp/pixel-bc]

1. the expert: BC (MLP) on the reference dataset datasets/cartpole-v1-expert.h5 (return 500);
2. ``collect --render-obs``: the expert acts on CartPole's state while 84x84 grayscale frames,
   4 stacked, are recorded (lzf-compressed uint8);
   With ``--label-noise EPS`` (DART-style, Laskey et al. 2017) the frames come from this script's own loop
   instead: with probability EPS a random action is executed, and the recorded label is always the
   expert's action for the state (the data then shows the pole visibly off balance, with the expert's
   correction as the label; the dataset's provenance says so);
3. BC with the Nature CNN on the frames (``encoder`` auto -> nature_cnn, mean-frame centring), evaluated in
   ``pixels84-gray-stack4/CartPole-v1`` (the student sees frames only).

Prints one JSON object: the expert's return, the student's return and its ratio, episodes, steps,
dataset bytes per frame, and the wall time of each stage. Bounded: ``--epochs`` caps training.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

from demokit.data import DatasetWriter, Episode, load_dataset
from demokit.envs import make_env
from demokit.envs.pixels import pixel_env_id
from demokit.evaluation import evaluate_policy
from demokit.il import train_bc
from demokit.pipelines.collect import collect_demo_data
from demokit.policies import load_checkpoint

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--episodes", type=int, default=20)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--label-noise", type=float, default=0.0,
                    help="probability of executing a random action while recording the expert's label")
    ap.add_argument("--crop", type=lambda v: tuple(int(x) for x in v.split(",")), default=None,
                    help="TOP,BOTTOM,LEFT,RIGHT: crop the rendered 600x400 frame before resizing (collect --render-crop)")
    ap.add_argument("--encoder", default="auto", help="BC's encoder: auto (nature_cnn) or nature_cnn_diff")
    ap.add_argument("--eval-every", type=int, default=2, help="evaluate the student every N epochs")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads of the CNN training")
    ap.add_argument("--eval-episodes", type=int, default=10)
    ap.add_argument("--out-dir", default="/tmp/pixel-bc")
    ap.add_argument("--reuse", action="store_true", help="reuse the expert and the frames of an earlier run")
    args = ap.parse_args()
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    fig: dict = {"machine": f"{platform.machine()} {os.cpu_count()} cores", "episodes": args.episodes}

    data = out / "pixels.h5"
    if args.reuse and data.exists():
        ds = load_dataset(data)
        fig["expert_return"] = ds.provenance.get("policy_return")
        fig.update(steps=len(ds), collect_return=float(ds.episode_returns.mean()),
                   bytes_per_frame=data.stat().st_size / len(ds), reused=True)
        student_stage(args, out, data, fig, len(ds))
        return
    t = time.perf_counter()
    expert = train_bc(ROOT / "datasets" / "cartpole-v1-expert.h5", out=str(out / "expert.pt"), seed=0)
    fig["expert_return"], fig["expert_s"] = expert.mean_return, time.perf_counter() - t

    t = time.perf_counter()
    if args.label_noise > 0:
        steps, mean_return = collect_with_label_noise(out / "expert.pt", data, args.episodes, args.label_noise,
                                                      args.crop)
    else:
        res = collect_demo_data(str(out / "expert.pt"), "CartPole-v1", data, n_episodes=args.episodes, seed=100,
                                mode="overwrite", render_obs=True, render_size=84, grayscale=True, frame_stack=4,
                                render_crop=args.crop, eval_episodes=0)
        steps, mean_return = res.steps, res.mean_return
    fig.update(collect_s=time.perf_counter() - t, steps=steps, collect_return=mean_return,
               label_noise=args.label_noise, bytes_per_frame=data.stat().st_size / steps)
    student_stage(args, out, data, fig, steps)


def collect_with_label_noise(expert_path: Path, data: Path, episodes: int, eps: float,
                             crop: tuple[int, int, int, int] | None) -> tuple[int, float]:
    """Episodes seeded 100.. in the pixel env: the expert acts on ``state_obs``; with probability ``eps``
    a random action is executed instead; the recorded action is always the expert's. (steps, mean return)"""
    expert = load_checkpoint(expert_path).policy
    env_id = pixel_env_id("CartPole-v1", size=84, grayscale=True, frame_stack=4, crop=crop)
    env = make_env(env_id)
    rng = np.random.default_rng(0)
    returns = []
    note = {"label_noise": eps, "labels": "the expert's action on every step; executed: a uniformly random "
                                          "action with probability label_noise"}
    with DatasetWriter(data, observation_space=env.observation_space, action_space=env.action_space,
                       env_id=env_id, mode="overwrite", compression="lzf", provenance=note) as writer:
        for ep in range(episodes):
            obs, _ = env.reset(seed=100 + ep)
            frames, labels, rewards = [], [], []
            terminated = truncated = False
            while not (terminated or truncated):
                label = int(expert.act(np.asarray(env.get_wrapper_attr("state_obs"), np.float32)[None])[0])
                action = int(rng.integers(2)) if rng.random() < eps else label
                frames.append(obs)
                labels.append(label)
                obs, reward, terminated, truncated, _ = env.step(action)
                rewards.append(reward)
            last = np.arange(len(labels)) == len(labels) - 1
            writer.add_episodes([Episode(observations=np.array(frames), actions=np.array(labels),
                                         rewards=np.array(rewards, np.float64), terminated=last & terminated,
                                         truncated=last & truncated, final_observation=obs[None], seed=100 + ep)])
            returns.append(sum(rewards))
    env.close()
    return int(sum(returns)), float(np.mean(returns))  # CartPole: one reward per step


def student_stage(args: argparse.Namespace, out: Path, data: Path, fig: dict, steps: int) -> None:
    t = time.perf_counter()

    def show(rec: dict) -> None:
        print(json.dumps({k: rec.get(k) for k in ("epoch", "loss", "val_accuracy", "eval_mean", "time_s")}),
              flush=True)

    student = train_bc(data, out=str(out / "student.pt"), epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                       eval_every=args.eval_every, eval_episodes=args.eval_episodes,
                       encoder=args.encoder, stop_value=475.0, seed=0, callback=show,
                       num_threads=args.threads)
    fig.update(train_s=time.perf_counter() - t, epochs=student.epochs, samples_per_s=student.samples_per_s,
               updates=student.epochs * -(-int(0.9 * steps) // args.batch_size))
    ev = evaluate_policy(student.policy, load_dataset(data).env_id, episodes=20, seed=1000)
    fig.update(student_return=ev.mean_return, student_std=ev.std_return,
               ratio=ev.mean_return / fig["expert_return"] if fig["expert_return"] else None)
    print(json.dumps(fig))


if __name__ == "__main__":
    main()
