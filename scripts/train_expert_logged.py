"""Train one expert for hours in the background: a progress line every --log-every env steps and
a resumable-looking snapshot (``<out>.partial.pt``, the current policy) every --snapshot-every.

    OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python scripts/train_expert_logged.py \\
        --env Hopper-v5 --algo sac --out experts/Hopper-v5-sac.pt --log experts/Hopper-v5-sac.log &

The final checkpoint is written to --out (atomically) only when training ends; the partial
snapshot's ``training`` figures say ``"partial": true``. Settings: the tuned table.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path


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
    args = ap.parse_args(argv)

    from demokit.rl.dqn import DQNTrainer
    from demokit.rl.hyperparams import tuned_config
    from demokit.rl.ppo import PPOTrainer
    from demokit.rl.sac import SACTrainer

    cfg = tuned_config(args.algo, args.env, seed=args.seed, total_timesteps=args.timesteps, device="cpu")
    out = Path(args.out)
    partial = out.with_name(out.stem + ".partial" + out.suffix)
    log = open(args.log, "a", buffering=1)
    t0 = time.time()
    marks = {"log": 0, "snap": 0}
    trainer_cls = {"ppo": PPOTrainer, "dqn": DQNTrainer, "sac": SACTrainer}[args.algo]
    trainer = None

    def progress(info: dict[str, float]) -> None:
        steps = int(info["env_steps"])
        if steps - marks["log"] >= args.log_every:
            marks["log"] = steps
            recent = list(trainer.recent_returns) if trainer is not None else []
            mean20 = sum(recent) / len(recent) if recent else math.nan
            log.write(f"{time.strftime('%H:%M:%S')} steps {steps} train_return_mean20 {mean20:.1f} "
                      f"eval_return {info['eval_return']:.1f} steps_per_s {info['steps_per_s']:.1f} "
                      f"elapsed_s {time.time() - t0:.0f}\n")
        if trainer is not None and steps - marks["snap"] >= args.snapshot_every:
            marks["snap"] = steps
            trainer.save(partial, training={"partial": True, "env_steps": steps})

    log.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} start {cfg}\n")
    trainer = trainer_cls(cfg, progress=progress)
    try:
        result = trainer.learn(out=out)
    finally:
        trainer.close()
    log.write(f"{time.strftime('%H:%M:%S')} done {result.as_dict()}\n")
    log.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
