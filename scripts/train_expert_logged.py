"""Train one expert for hours in the background, resumably: a progress line every --log-every env
steps; every --snapshot-every steps a snapshot of the current policy (``<out>.partial.pt``) and,
for learners with a training state (SAC), the whole training state (``<out>.state.pt``: replay
buffer, optimisers, random streams; ``BaseTrainer.learn(state_path=...)``); a snapshot of the best
policy so far (``<out>.best.pt``) whenever a goal check's quick evaluation beats the previous best.

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python scripts/train_expert_logged.py \\
        --env Hopper-v5 --algo sac --out experts/Hopper-v5-sac.pt --log experts/Hopper-v5-sac.log \\
        --resume --stop-at 23:25 &

--resume continues from ``<out>.state.pt`` when it exists (a later session, or after a stop);
the envs start fresh episodes there. --stop-at HH:MM (UTC): the state is saved at the next
progress report and the script exits 0 without a final checkpoint; SIGTERM / SIGINT: the same at
the end of the iteration in progress (learn's own handling). The final checkpoint goes to --out
(atomically) only when training ends (goal reached or budget spent); the partial/best snapshots'
``training`` figures say ``"partial": true``. Settings: the tuned table. (``demokit train-expert
--state`` is the same without the log and the snapshots.)
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import sys
import time
from pathlib import Path


class Stop(Exception):
    """Raised from the progress callback to end a run early (deadline or signal)."""


def utc_deadline(hhmm: str | None) -> dt.datetime | None:
    """The next moment (today or tomorrow) the UTC clock shows ``HH:MM``; None for None."""
    if not hhmm:
        return None
    now = dt.datetime.now(dt.timezone.utc)
    hh, mm = (int(x) for x in hhmm.split(":"))
    deadline = now.replace(hour=hh, minute=mm, second=0, microsecond=0)
    return deadline + dt.timedelta(days=1) if deadline <= now else deadline


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--env", required=True)
    ap.add_argument("--algo", default="sac", choices=("ppo", "dqn", "sac"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--timesteps", type=int, default=None, help="env-step budget (unset: the tuned one)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--log-every", type=int, default=10_000)
    ap.add_argument("--snapshot-every", type=int, default=50_000)
    ap.add_argument("--resume", action="store_true", help="continue from <out>.state.pt if it exists (sac)")
    ap.add_argument("--stop-at", default=None, help="HH:MM UTC: save the state and exit at that time")
    ap.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    ap.add_argument("--precision", default=None, choices=("float32", "bfloat16"), help="sac: matmul precision")
    args = ap.parse_args(argv)
    if args.resume and args.algo != "sac":
        ap.error("--resume needs --algo sac (the learner with a saved training state)")

    from demokit.rl.dqn import DQNTrainer
    from demokit.rl.hyperparams import tuned_config
    from demokit.rl.ppo import PPOTrainer
    from demokit.rl.sac import SACTrainer

    extra = {} if args.precision is None else {"precision": args.precision}
    if extra and args.algo != "sac":
        ap.error("--precision is a sac option")
    cfg = tuned_config(args.algo, args.env, seed=args.seed, total_timesteps=args.timesteps, device=args.device,
                       **extra)
    out = Path(args.out)
    partial = out.with_name(out.stem + ".partial" + out.suffix)
    best = out.with_name(out.stem + ".best" + out.suffix)
    state = out.with_name(out.stem + ".state" + out.suffix)
    deadline = utc_deadline(args.stop_at)
    log = open(args.log, "a", buffering=1)
    t0 = time.time()
    marks: dict[str, float] = {"log": 0, "snap": 0, "best": -math.inf}
    trainer_cls = {"ppo": PPOTrainer, "dqn": DQNTrainer, "sac": SACTrainer}[args.algo]
    trainer = None
    resumable = hasattr(trainer_cls, "save_training_state")

    def progress(info: dict[str, float]) -> None:
        steps = int(info["env_steps"])
        if steps - marks["log"] >= args.log_every:
            marks["log"] = steps
            recent = list(trainer.recent_returns) if trainer is not None else []
            mean20 = sum(recent) / len(recent) if recent else math.nan
            log.write(f"{time.strftime('%H:%M:%S')} steps {steps} train_return_mean20 {mean20:.1f} "
                      f"eval_return {info['eval_return']:.1f} steps_per_s {info['steps_per_s']:.1f} "
                      f"elapsed_s {time.time() - t0:.0f}\n")
        if trainer is None:
            return
        if info["eval_return"] > marks["best"]:  # a new best quick evaluation
            marks["best"] = info["eval_return"]
            trainer.save(best, training={"partial": True, "env_steps": steps, "quick_eval_return": marks["best"]})
            log.write(f"{time.strftime('%H:%M:%S')} best snapshot at {steps} steps: eval_return {marks['best']:.1f}\n")
        if steps - marks["snap"] >= args.snapshot_every:  # (learn saves the training state on the same cadence)
            marks["snap"] = steps
            trainer.save(partial, training={"partial": True, "env_steps": steps})
        if deadline is not None and dt.datetime.now(dt.timezone.utc) >= deadline:
            trainer.save(partial, training={"partial": True, "env_steps": steps})
            if resumable:
                trainer.save_training_state(state)
            raise Stop("deadline")

    resume = {"state_path": state, "state_every": args.snapshot_every} if resumable else {}
    if resume and not args.resume and state.exists():
        ap.error(f"{state} exists: pass --resume to continue from it, or delete it to start over")
    log.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} start {cfg}\n")
    trainer = trainer_cls(cfg, progress=progress)
    if resume and state.exists():
        if best.exists():
            marks["best"] = _best_of(best)
        log.write(f"{time.strftime('%H:%M:%S')} resumed from {state} at {_saved_steps(state)} steps\n")
    try:
        result = trainer.learn(out=out, **resume)
    except (Stop, KeyboardInterrupt) as why:  # learn saved the state (a signal) or progress did (the deadline)
        if not isinstance(why, Stop):
            trainer.save(partial, training={"partial": True, "env_steps": int(trainer.env_steps)})
        log.write(f"{time.strftime('%H:%M:%S')} stopped ({why if isinstance(why, Stop) else 'signal'}) at "
                  f"{trainer.env_steps} steps{f'; state in {state}' if resume else ''}\n")
        return 0
    finally:
        trainer.close()
    log.write(f"{time.strftime('%H:%M:%S')} done {result.as_dict()}\n")
    log.close()
    return 0


def _saved_steps(path: Path) -> int | str:
    """The env steps of a saved training state, read without loading its replay buffer ("?" when unreadable)."""
    import json

    import torch
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        return int(json.loads(payload["counters"])["env_steps"])
    except Exception:  # noqa: BLE001 - only the log line loses its figure; learn reports a bad file itself
        return "?"


def _best_of(path: Path) -> float:
    """The quick evaluation recorded in a best snapshot (-inf when unreadable)."""
    from demokit.policies import load_checkpoint
    try:
        return float(load_checkpoint(path).training.get("quick_eval_return", -math.inf))
    except Exception:  # noqa: BLE001 - an unreadable old snapshot just loses its rank
        return -math.inf


if __name__ == "__main__":
    sys.exit(main())
