#!/usr/bin/env bash
# Regenerate the committed reference datasets.
#
#   bash scripts/make_reference_datasets.sh           classic control (default):
#       datasets/cartpole-v1-expert.h5, acrobot-v1-expert.h5 (PPO experts), pendulum-v1-expert.h5
#       (SAC), mountaincar-v0-expert.h5 (DQN): 10 greedy episodes of the env's expert (episode k
#       reset with seed k), gzip-compressed. A missing expert (experts/<env>-<algo>.pt) is trained
#       first with the tuned settings (`demokit train-expert`).
#   bash scripts/make_reference_datasets.sh mujoco [ENV ...]
#       datasets/<env>-expert.h5 for Hopper-v5, HalfCheetah-v5, Walker2d-v5 (or the ENVs given):
#       25 greedy episodes of the env's SAC expert experts/<env>-sac.pt (train it first:
#       scripts/make_mujoco_experts.sh), gzip-compressed, after a 50-episode evaluation of it.
#       An env whose expert is missing is skipped with a note.
#
# The script fails when a classic expert's collected mean return is below the goal (CartPole-v1 475,
# Acrobot-v1 -100, MountainCar-v0 -110, Pendulum-v1 none), when a MuJoCo expert's 50-episode
# evaluation is below the zoo's level (Hopper-v5 3000, HalfCheetah-v5 5000, Walker2d-v5 4000: the
# issue's criterion; a 25-episode dataset below it, e.g. one episode where the walker fell, is kept
# and said), or when a file is over its size budget (1 MB classic, 5 MB MuJoCo).
#
# Usage: from anywhere; PYTHON=... to choose the interpreter.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY="${PYTHON:-.venv/bin/python}"
MODE="${1:-classic}"

check() {  # check ENV RESULT_JSON GOAL BUDGET_BYTES ALGO [EVAL_JSON: the goal is the evaluation's]
    "$PY" - "$@" <<'PYEOF'
import json, os, sys
env, result, goal, budget, algo = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5]
evaluation = json.loads(sys.argv[6]) if len(sys.argv) > 6 else None
from demokit.envs import reward_threshold
goal = reward_threshold(env) if goal == "threshold" else float(goal)
size = os.path.getsize(result["path"])
print(f"{result['path']}: {result['episodes']} episodes, mean return {result['mean_return']:.1f} "
      f"(goal {goal}), {size / 1024:.0f} KiB", file=sys.stderr)
judged, what = (evaluation, f"{evaluation['episodes']}-episode evaluation") if evaluation else (result, "demonstrations")
if goal is not None and judged["mean_return"] < goal:
    sys.exit(f"error: the {env} expert's {what} average {judged['mean_return']:.1f} < {goal}; "
             f"retrain it (rm experts/{env}-{algo}.pt) before committing")
if evaluation and goal is not None and result["mean_return"] < goal:
    print(f"note: the {env} expert's {what} average {judged['mean_return']:.1f} >= {goal}; its "
          f"{result['episodes']} demonstrations average {result['mean_return']:.1f} ({result['steps']} steps: "
          f"some episodes ended early): kept as the expert's own data", file=sys.stderr)
if size >= budget:
    sys.exit(f"error: {result['path']} is {size} bytes, over the {budget} byte budget of a committed dataset")
PYEOF
}

case "$MODE" in
  classic)
    for pair in CartPole-v1:ppo Acrobot-v1:ppo Pendulum-v1:sac MountainCar-v0:dqn; do
        env="${pair%%:*}" algo="${pair##*:}"
        out="datasets/$(echo "$env" | tr '[:upper:]' '[:lower:]')-expert.h5"
        result=$("$PY" cli.py collect --policy "$algo" --env "$env" --episodes 10 --seed 0 --compression gzip \
            --force --out "$out" --json | tail -n 1)
        echo "$result"
        check "$env" "$result" threshold $((1 << 20)) "$algo"
    done
    ;;
  mujoco)
    shift || true
    envs=("$@")
    [[ ${#envs[@]} -gt 0 ]] || envs=(Hopper-v5 HalfCheetah-v5 Walker2d-v5)
    declare -A GOAL=([Hopper-v5]=3000 [HalfCheetah-v5]=5000 [Walker2d-v5]=4000)
    for env in "${envs[@]}"; do
        expert="experts/$env-sac.pt"
        if [[ ! -f "$expert" ]]; then
            echo "note: $expert missing: skipped (train it: bash scripts/make_mujoco_experts.sh $env)" >&2
            continue
        fi
        evaluation=$("$PY" cli.py eval --policy "$expert" --episodes 50 --seed 1000 --json | tail -n 1)
        echo "$evaluation"
        out="datasets/$(echo "$env" | tr '[:upper:]' '[:lower:]')-expert.h5"
        result=$("$PY" cli.py collect --policy sac --env "$env" --episodes 25 --seed 0 --compression gzip \
            --force --out "$out" --json | tail -n 1)
        echo "$result"
        check "$env" "$result" "${GOAL[$env]:-threshold}" $((5 << 20)) sac "$evaluation"
    done
    ;;
  *)
    echo "usage: $0 [classic | mujoco [ENV ...]]" >&2
    exit 2
    ;;
esac
