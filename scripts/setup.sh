#!/usr/bin/env bash
# Set up (or refresh) the project's virtual environment in .venv.
# Idempotent: safe to run before every command. torch is pinned through
# constraints.txt (a CPU build here); pyproject.toml keeps a normal range for users.
# The mujoco extra (Gymnasium's MuJoCo v5 envs, the mujoco wheel from PyPI) is part of the set-up, and so is
# the minari extra (Minari 0.5 with its DataCollector's jax[cpu], Pillow): the Minari interop tests run in CI;
# and the lerobot extra (pyarrow, Pillow, PyAV with its own FFmpeg: LeRobot's image and video features decode).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-}"
if [ -z "$PY" ]; then
  for cand in python3.11 python3.12 python3.10 python3; do
    if command -v "$cand" >/dev/null 2>&1; then PY="$cand"; break; fi
  done
fi
[ -n "$PY" ] || { echo "error: no python3 found (need Python >= 3.10)" >&2; exit 2; }
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.demokit-setup
want="$(cat pyproject.toml constraints.txt | sha256sum | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ] || ! .venv/bin/python -c "import demokit, torch, h5py, gymnasium, pytest, xdist, mujoco, minari, jax, PIL, tensorboard, matplotlib, datasets, av, pyarrow" 2>/dev/null; then
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip >/dev/null 2>&1 || true
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[dev,mujoco,minari,tensorboard,plot,imitation-data,lerobot,render,blosc]"
  echo "$want" > "$stamp"
fi
