"""GAIL on Hopper-v5 from the 25-trajectory reference dataset: one run, its return by env step.

    nice -n 10 .venv/bin/python benchmarks/hopper_gail.py --algo sac --log /tmp/gail-sac.jsonl
    nice -n 10 .venv/bin/python benchmarks/hopper_gail.py --algo sac --budget 200000 \\
        --rm reward_form=positive --rm grad_penalty=10 --rl precision=bfloat16 --log /tmp/b.jsonl

``run_irl`` at GAIL's defaults for the env and learner (``GAIL_PIPELINE_DEFAULTS``), with
``--rm KEY=VALUE`` / ``--rl KEY=VALUE`` overrides of the reward model's and the learner's
settings. The stop value is a normalised score (``--stop 0.95``): ``random + s * (expert -
random)``, the expert's return being the dataset's mean (3023.8) and the random policy's the
mean of 50 random episodes (seeds 0-49). Training stops once the quick evaluation (5
deterministic episodes, every ``--eval-every`` env steps) passes it and the confirmation on
the final evaluation's episodes (50 for Hopper) holds, or at ``--budget`` env steps.

``--log`` gets one JSON line per evaluation (env steps, quick evaluation return and its
normalised score, the latest training episode's env return, the discriminator's statistics,
wall and process CPU seconds so far) and a last line with the final figures; so does stdout
(the final line only). ``--stop-at HH:MM`` (UTC) ends the run at that time (the log keeps
what was reached).
"""

from __future__ import annotations

import argparse
import ast
import datetime as dt
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "scripts")]

from train_expert_logged import utc_deadline  # noqa: E402

DATASET = ROOT / "datasets" / "hopper-v5-expert.h5"


def parse_kv(items: list[str]) -> dict[str, Any]:
    """["a=1", "b=x"] -> {"a": 1, "b": "x"} (values read as Python literals when they are one)."""
    out: dict[str, Any] = {}
    for item in items:
        key, _, text = item.partition("=")
        try:
            out[key] = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            out[key] = text
    return out


def random_return(env_id: str, episodes: int = 50) -> float:
    from demokit.envs import make_env
    from demokit.evaluation import evaluate_policy
    from demokit.policies import RandomPolicy

    env = make_env(env_id)
    policy = RandomPolicy(env.observation_space, env.action_space, seed=0)
    env.close()
    return float(evaluate_policy(policy, env_id, episodes=episodes, seed=0).mean_return)


def normaliser(data_path: Path, rand: float | None = None) -> tuple[str, float, float]:
    """(env id, expert return, random return) of a dataset: its env, the mean of its episode returns, and a
    uniformly random policy's mean over 50 episodes (seeds 0-49): the two ends of the normalised score.
    ``rand``: that random return when the caller has it already (not run again)."""
    from demokit.data import load_dataset

    data = load_dataset(data_path)
    env_id = str(data.env_id)
    return env_id, float(data.episode_returns.mean()), random_return(env_id) if rand is None else float(rand)


class _Deadline(Exception):
    pass


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DATASET)
    ap.add_argument("--algo", default=None, help="GAIL's learner (default: GAIL's for the env: ppo on Hopper-v5)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--budget", type=int, default=None, help="env steps (default: run_irl's)")
    ap.add_argument("--stop", type=float, default=0.95, help="normalised score that stops training")
    ap.add_argument("--eval-every", type=int, default=None, help="env steps between quick evaluations")
    ap.add_argument("--rm", action="append", default=[], help="reward-model setting KEY=VALUE (repeatable)")
    ap.add_argument("--rl", action="append", default=[], help="learner setting KEY=VALUE (repeatable)")
    ap.add_argument("--log", type=Path, default=None, help="JSON lines: one per evaluation, then the result")
    ap.add_argument("--stop-at", default=None, help="HH:MM (UTC): end the run then")
    ap.add_argument("--out", type=Path, default=None, help="write the GAIL checkpoint here")
    ap.add_argument("--random-return", type=float, default=None,
                    help="the random policy's return when known (a side-by-side benchmark's parent computed it: "
                         "the 50 random episodes are not run again inside the timed process)")
    args = ap.parse_args()

    import torch

    from demokit.pipelines.reward_model import run_irl

    torch.set_num_threads(1)
    env_id, expert, rand = normaliser(args.data, args.random_return)
    stop_value = rand + args.stop * (expert - rand)
    rl = parse_kv(args.rl)
    if args.eval_every is not None:
        rl["eval_every"] = args.eval_every
    config = {"expert_data_path": str(args.data), "device": "cpu", "stop_value": stop_value,
              "total_timesteps": args.budget, "reward_model": parse_kv(args.rm) or None, "rl": rl or None}
    deadline = utc_deadline(args.stop_at)
    log = open(args.log, "a") if args.log else None
    t0, cpu0 = time.perf_counter(), time.process_time()
    last_eval = [math.nan]
    head = {"env_id": env_id, "learner": args.algo, "seed": args.seed, "expert_return": expert, "random_return": rand,
            "stop_value": stop_value, "rm": parse_kv(args.rm), "rl": rl, "budget": args.budget,
            "start_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}

    def write(row: dict[str, Any]) -> None:
        if log is not None:
            log.write(json.dumps(row) + "\n")
            log.flush()

    write({"start": head})

    def progress(info: dict[str, float]) -> None:
        ev = info.get("eval_return", math.nan)
        if not (math.isnan(ev) and math.isnan(last_eval[0])) and ev != last_eval[0]:
            last_eval[0] = ev
            write({"env_steps": int(info["env_steps"]), "eval_return": ev,
                   "normalised": (ev - rand) / (expert - rand), "train_return": info.get("episode_return"),
                   **{k.split("/")[-1]: round(v, 4) for k, v in info.items() if k.startswith("reward_model/")},
                   "wall_s": round(time.perf_counter() - t0, 1), "cpu_s": round(time.process_time() - cpu0, 1)})
        if deadline is not None and dt.datetime.now(dt.timezone.utc) >= deadline:
            raise _Deadline

    try:
        res = run_irl(config, args.seed, algo=args.algo, progress=progress, out=args.out, force=True)
        final = {"mean_return": res.mean_return, "std_return": res.std_return,
                 "normalised": (res.mean_return - rand) / (expert - rand), "converged": res.converged,
                 "env_steps": res.env_steps, "algo": res.algo}
    except _Deadline:
        final = {"stopped": "deadline", "last_eval": last_eval[0]}
    final.update(wall_s=round(time.perf_counter() - t0, 1), cpu_s=round(time.process_time() - cpu0, 1), **head)
    write({"result": final})
    print(json.dumps(final))


if __name__ == "__main__":
    main()
