"""BC from pixels on CartPole-v1: a privileged expert acts on the state, a CNN student learns from frames.

    python benchmarks/pixel_bc.py [--episodes 20] [--epochs 8] [--label-noise 0.3] [--crop 170,320,100,400]
        [--encoder nature_cnn_diff] [--aux-state 1.0] [--state-head state --state-head-fit recorded]
        [--keep-best] [--train-seed 0,1,2] [--final-episodes 50] [--out-dir /tmp/pixel-bc] [--reuse]

1. the expert: BC (MLP) on the reference dataset datasets/cartpole-v1-expert.h5 (return 500);
2. ``collect --render-obs``: the expert acts on CartPole's state while 84x84 grayscale frames,
   4 stacked, are recorded (lzf-compressed uint8);
   ``--crop T,B,L,R`` cuts the rendered 400x600 frame first (``collect --render-crop``);
   ``--label-noise EPS`` (``collect --label-noise``, DART-style, Laskey et al. 2017): with probability EPS a
   seeded random action is executed, and the recorded label is always the expert's action for the state
   (the data then shows the pole visibly off balance, with the expert's correction as the label);
   ``--aux-state W`` (> 0) also records the expert's state observation per step (``collect --record-state``);
3. BC with a CNN on the frames (``--encoder``: auto -> nature_cnn, or nature_cnn_diff; mean-frame
   centring; ``--aux-state W``: privileged state supervision, ``bc-train --aux-state``: a linear layer on the
   CNN's features regresses the standardised state, weight W, dropped after training; ``--state-head state``
   keeps that regressor in the policy and acts through an MLP on its predicted state, ``--state-head-fit
   recorded`` trains that MLP on the recorded states and the regressor on the state loss alone), evaluated in
   the dataset's env, e.g. ``pixels84-gray-stack4/CartPole-v1`` (the student sees frames only, made as in
   the dataset: its env id carries size, colour, stack and crop). ``--train-seed 0,1,2``: one student per BC
   seed on the same frames; each is evaluated on ``--final-episodes`` fresh episodes (seeds 1000, ...), none
   of them seen in training or in the evaluations during training (``--eval-episodes``, which stop training
   at ``--stop-value`` and, with ``--keep-best``, choose the epoch kept).

Prints one JSON line per epoch and per student, then one JSON object: the expert's return, each student's
return and ratio, episodes, steps, dataset bytes per frame, and the wall time of each stage. Bounded:
``--epochs`` caps training.
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
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--label-noise", type=float, default=0.0,
                    help="probability of executing a random action while recording the expert's label")
    ap.add_argument("--crop", type=lambda v: tuple(int(x) for x in v.split(",")), default=None,
                    help="TOP,BOTTOM,LEFT,RIGHT: crop the rendered 600x400 frame before resizing (collect --render-crop)")
    ap.add_argument("--encoder", default="auto", help="BC's encoder: auto (nature_cnn) or nature_cnn_diff")
    ap.add_argument("--aux-state", type=float, default=0.0,
                    help="BC's auxiliary state-regression weight (bc-train --aux-state); the frames are then "
                         "collected with the expert's state observations (collect --record-state)")
    ap.add_argument("--state-head", default="none", choices=("none", "state", "features+state"),
                    help="BC's state_head (bc-train --state-head; needs --aux-state): the policy's head acts "
                         "through an MLP on the predicted state (and the features)")
    ap.add_argument("--state-head-fit", default="end_to_end", choices=("end_to_end", "recorded", "estimated"),
                    help="BC's state_head_fit (bc-train --state-head-fit): train the head's MLP end to end, on the "
                         "recorded states or on the estimates held fixed")
    ap.add_argument("--keep-best", action="store_true",
                    help="BC's keep_best (bc-train --keep-best): end with the weights of the best evaluation during "
                         "training (the final evaluation is on other, fresh episodes)")
    ap.add_argument("--eval-every", type=int, default=2, help="evaluate the student every N epochs")
    ap.add_argument("--stop-value", type=float, default=475.0,
                    help="stop training once an evaluation (--eval-episodes) reaches this return (1e9: never)")
    ap.add_argument("--train-seed", type=lambda v: [int(x) for x in v.split(",")], default=[0],
                    help="BC's seed (split, initial weights, batch order, evaluations during training), or several "
                         "(0,1,2: one student per seed on the same frames); the expert and the frames do not "
                         "depend on it")
    ap.add_argument("--final-episodes", type=int, default=20,
                    help="fresh episodes (seeds 1000, 1001, ...) of each student's final evaluation")
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
    res = collect_demo_data(str(out / "expert.pt"), "CartPole-v1", data, n_episodes=args.episodes, seed=100,
                            mode="overwrite", render_obs=True, render_size=84, grayscale=True, frame_stack=4,
                            render_crop=args.crop, label_noise=args.label_noise, eval_episodes=0,
                            record_state=args.aux_state > 0)
    steps, mean_return = res.steps, res.mean_return
    fig.update(collect_s=time.perf_counter() - t, steps=steps, collect_return=mean_return,
               label_noise=args.label_noise, bytes_per_frame=data.stat().st_size / steps)
    student_stage(args, out, data, fig, steps)


def student_stage(args: argparse.Namespace, out: Path, data: Path, fig: dict, steps: int) -> None:
    """One student per BC seed (``--train-seed``), each evaluated on ``--final-episodes`` fresh episodes; the
    figures of one seed at the top level of ``fig``, of several under ``students`` (plus the worst seed's)."""
    env_id = load_dataset(data).env_id
    rows = []
    for seed in args.train_seed:
        t = time.perf_counter()

        def show(rec: dict, seed: int = seed) -> None:
            keys = ("epoch", "loss", "val_accuracy", "aux_state_loss", "val_state_mse", "eval_mean", "time_s")
            print(json.dumps({"train_seed": seed, **{k: rec[k] for k in keys if k in rec}}), flush=True)

        name = "student.pt" if len(args.train_seed) == 1 else f"student-seed{seed}.pt"
        student = train_bc(data, out=str(out / name), epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                           eval_every=args.eval_every, eval_episodes=args.eval_episodes,
                           encoder=args.encoder, stop_value=args.stop_value, seed=seed, callback=show,
                           num_threads=args.threads, aux_state=args.aux_state,
                           state_head=args.state_head, state_head_fit=args.state_head_fit,
                           keep_best=args.keep_best)
        kept = student.history[-1].get("kept_epoch", student.epochs) if student.history else student.epochs
        row = {"train_seed": seed, "train_s": time.perf_counter() - t, "epochs": student.epochs, "kept_epoch": kept,
               "samples_per_s": student.samples_per_s,
               "updates": student.epochs * -(-int(0.9 * steps) // args.batch_size)}
        t = time.perf_counter()
        ev = evaluate_policy(student.policy, env_id, episodes=args.final_episodes, seed=1000)
        row.update(student_return=ev.mean_return, student_std=ev.std_return, final_episodes=ev.episodes,
                   final_eval_s=time.perf_counter() - t,
                   ratio=ev.mean_return / fig["expert_return"] if fig["expert_return"] else None)
        print(json.dumps(row), flush=True)
        rows.append(row)
    if len(rows) == 1:
        fig.update({k: v for k, v in rows[0].items() if k != "train_seed"})
    else:
        fig.update(students=rows, worst_student_return=min(r["student_return"] for r in rows))
    print(json.dumps(fig))


if __name__ == "__main__":
    main()
