#!/usr/bin/env bash
# Regenerate the committed reference datasets:
#   datasets/cartpole-v1-expert.h5, acrobot-v1-expert.h5 (PPO experts), pendulum-v1-expert.h5 (SAC),
#   mountaincar-v0-expert.h5 (DQN)
# Each holds 10 greedy episodes of the env's reference expert (episode k reset with seed k),
# gzip-compressed. A missing expert (experts/<env>-<algo>.pt) is trained first with the
# tuned settings (`demokit train-expert`). The script fails when an expert's collected
# mean return is below the env's reward threshold (CartPole-v1 475, Acrobot-v1 -100,
# MountainCar-v0 -110; Pendulum-v1 has none).
#
# Usage: bash scripts/make_reference_datasets.sh        (from anywhere; PYTHON=... to choose the interpreter)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY="${PYTHON:-.venv/bin/python}"

for pair in CartPole-v1:ppo Acrobot-v1:ppo Pendulum-v1:sac MountainCar-v0:dqn; do
    env="${pair%%:*}" algo="${pair##*:}"
    out="datasets/$(echo "$env" | tr '[:upper:]' '[:lower:]')-expert.h5"
    result=$("$PY" cli.py collect --policy "$algo" --env "$env" --episodes 10 --seed 0 --compression gzip \
        --force --out "$out" --json | tail -n 1)
    echo "$result"
    "$PY" - "$env" "$result" <<'PYEOF'
import json, sys
from demokit.envs import reward_threshold
env, result = sys.argv[1], json.loads(sys.argv[2])
goal = reward_threshold(env)
size = __import__("os").path.getsize(result["path"])
print(f"{result['path']}: {result['episodes']} episodes, mean return {result['mean_return']:.1f} "
      f"(threshold {goal}), {size / 1024:.0f} KiB", file=sys.stderr)
if goal is not None and result["mean_return"] < goal:
    sys.exit(f"error: the {env} expert's demonstrations average {result['mean_return']:.1f} < {goal}; "
             f"retrain it (rm experts/{env}-*.pt) before committing")
if size >= 1 << 20:
    sys.exit(f"error: {result['path']} is {size} bytes, over the 1 MB budget of a committed dataset")
PYEOF
done
