"""BC from pixels on CartPole-v1: a privileged expert acts on the state, a CNN student learns from frames.

    python benchmarks/pixel_bc.py [--episodes 20] [--epochs 8] [--out-dir /tmp/pixel-bc]

1. the expert: BC (MLP) on the reference dataset datasets/cartpole-v1-expert.h5 (return 500);
2. ``collect --render-obs``: the expert acts on CartPole's state while 84x84 grayscale frames,
   4 stacked, are recorded (lzf-compressed uint8);
3. BC with the Nature CNN on the frames (``encoder`` auto -> nature_cnn), evaluated in
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

from demokit.data import load_dataset
from demokit.evaluation import evaluate_policy
from demokit.il import train_bc
from demokit.pipelines.collect import collect_demo_data

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--episodes", type=int, default=20)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=3e-4)
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
    res = collect_demo_data(str(out / "expert.pt"), "CartPole-v1", data, n_episodes=args.episodes, seed=100,
                            mode="overwrite", render_obs=True, render_size=84, grayscale=True, frame_stack=4,
                            eval_episodes=0)
    fig.update(collect_s=time.perf_counter() - t, steps=res.steps, collect_return=res.mean_return,
               bytes_per_frame=data.stat().st_size / res.steps)
    student_stage(args, out, data, fig, res.steps)


def student_stage(args: argparse.Namespace, out: Path, data: Path, fig: dict, steps: int) -> None:
    t = time.perf_counter()

    def show(rec: dict) -> None:
        print(json.dumps({k: rec.get(k) for k in ("epoch", "loss", "val_accuracy", "eval_mean", "time_s")}),
              flush=True)

    student = train_bc(data, out=str(out / "student.pt"), epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                       eval_every=2, eval_episodes=args.eval_episodes, stop_value=475.0, seed=0, callback=show)
    fig.update(train_s=time.perf_counter() - t, epochs=student.epochs, samples_per_s=student.samples_per_s,
               updates=student.epochs * -(-int(0.9 * steps) // args.batch_size))
    ev = evaluate_policy(student.policy, load_dataset(data).env_id, episodes=20, seed=1000)
    fig.update(student_return=ev.mean_return, student_std=ev.std_return,
               ratio=ev.mean_return / fig["expert_return"] if fig["expert_return"] else None)
    print(json.dumps(fig))


if __name__ == "__main__":
    main()
