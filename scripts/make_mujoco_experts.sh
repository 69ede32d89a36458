#!/usr/bin/env bash
# One command for a session with a GPU or spare CPUs: train the three MuJoCo reference experts
# (SAC, the tuned rows of demokit/rl/hyperparams.py), then write their 25-episode datasets.
#
#   bash scripts/make_mujoco_experts.sh [ENV ...]       (default: HalfCheetah-v5 Hopper-v5 Walker2d-v5)
#
# Each env trains in its own background process (scripts/train_expert_logged.py) with --resume:
# experts/<env>-sac.state.pt (replay buffer, optimisers, random streams) is saved every
# SNAPSHOT steps, so a run stopped by STOP_AT, a signal or the end of a session continues where it
# was when the command is run again. Progress: experts/<env>-sac.log; the best policy so far:
# experts/<env>-sac.best.pt. A finished run writes experts/<env>-sac.pt (goal reached on 50
# episodes, or the 1M-step budget spent). When every run has finished, the datasets are written
# by `scripts/make_reference_datasets.sh mujoco` (it refuses an expert below the goal).
#
# Environment:
#   DEVICE=cpu|cuda|auto (default auto: cuda when present)   PRECISION=float32|bfloat16 (default float32)
#   JOBS=N      runs at once (default: all; with 2 CPUs or fewer: one at a time)
#   STOP_AT=HH:MM (UTC) save the state and stop then (unset: run to the end)
#   NICE=N      niceness of the runs (default 10)         SNAPSHOT=N (default 20000)
#   PYTHON=...  interpreter (default .venv/bin/python)
#
# Cost on CPU (measured here, 2 shared cores): ~11-13 ms per env step at 256x256 (float32), so
# ~1M steps (Hopper, Walker2d) take ~3-4 h of an idle core each; HalfCheetah needs ~300k.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY="${PYTHON:-.venv/bin/python}"
envs=("$@")
[[ ${#envs[@]} -gt 0 ]] || envs=(HalfCheetah-v5 Hopper-v5 Walker2d-v5)
ncpu=$(nproc)
JOBS="${JOBS:-$([[ $ncpu -le 2 ]] && echo 1 || echo ${#envs[@]})}"
mkdir -p experts

run_one() {
    local env="$1"
    local args=(--env "$env" --algo sac --out "experts/$env-sac.pt" --log "experts/$env-sac.log"
                --log-every 10000 --snapshot-every "${SNAPSHOT:-20000}" --resume
                --device "${DEVICE:-auto}" --precision "${PRECISION:-float32}")
    [[ -z "${STOP_AT:-}" ]] || args+=(--stop-at "$STOP_AT")
    OMP_NUM_THREADS=1 nice -n "${NICE:-10}" "$PY" scripts/train_expert_logged.py "${args[@]}"
}

pids=()
for env in "${envs[@]}"; do
    if [[ -f "experts/$env-sac.pt" ]]; then
        echo "experts/$env-sac.pt exists: not retrained (delete it to retrain)" >&2
        continue
    fi
    while [[ $(jobs -rp | wc -l) -ge $JOBS ]]; do sleep 10; done
    echo "training $env (log: experts/$env-sac.log)" >&2
    run_one "$env" &
    pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid"; done

done_envs=()
for env in "${envs[@]}"; do
    [[ -f "experts/$env-sac.pt" ]] && done_envs+=("$env")
done
if [[ ${#done_envs[@]} -eq 0 ]]; then
    echo "no expert finished yet (stopped early?): run this command again to resume" >&2
    exit 0
fi
bash scripts/make_reference_datasets.sh mujoco "${done_envs[@]}"
