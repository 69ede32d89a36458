#!/usr/bin/env bash
# Set up the peer systems demokit's benchmarks compare against. Idempotent.
#
#   scripts/setup_peers.sh            # both parts
#   scripts/setup_peers.sh imitation  # only .venv-imitation
#   scripts/setup_peers.sh main       # only the benchmark packages in .venv
#   scripts/setup_peers.sh lerobot    # only .venv-lerobot (not part of "all")
#   scripts/setup_peers.sh imitation-mj  # .venv-imitation, then .venv-imitation-mj (not part of "all")
#   scripts/setup_peers.sh ding       # only .venv-ding (not part of "all")
#
# 1. .venv-imitation (git-ignored, repo root): imitation==1.0.1 with its own pins
#    (gymnasium ~=0.29, stable-baselines3 ~=2.2.1), numpy<2 (gymnasium 0.29 uses
#    np.bool8, removed in numpy 2) with pyarrow<21 and datasets<4.1 (newer ones need numpy 2) and the CPU torch==2.13.0 from constraints.txt.
#    torch is installed first, alone, under the constraint, so resolving imitation
#    never pulls a CUDA build (imitation only asks for torch>=1.4).
# 2. .venv (demokit's own venv): the `bench` extra's stable-baselines3>=2.3, and
#    minari[create] 0.5 for benchmarks/peers/minari_collect.py: Minari's DataCollector
#    imports jax.tree_util on every step, so `create` (jax[cpu], ~130 MB of wheels,
#    ~500 MB installed, no CUDA) is needed. SKIP_MINARI=1 leaves minari/jax out.
#
# 3. .venv-lerobot (git-ignored): lerobot==0.4.4 (the newest release on the index here; writes
#    codebase v3.0) for tests/data/convert/test_lerobot_real.py. lerobot pins torch<2.11 and
#    torchvision<0.26, which clash with the CPU torch 2.13.0, so lerobot goes in with --no-deps
#    plus what its dataset module imports (datasets<5, huggingface-hub<0.36, av<16, accelerate,
#    draccus, ...), torchvision 0.28.0 (the release for torch 2.13) and numpy<2.4 (lerobot 0.4.4's
#    (1,)-shaped features go through float(array), which numpy 2.4 refuses). On a CPU-only torch the
#    PyPI torchvision/torchcodec wheels cannot load their C extensions (CUDA builds), so LeRobot's own
#    video decoders do not run here: lerobot_peer.py declares torchvision's two op schemas and decodes
#    with PyAV instead (see its docstring).
#
# 4. .venv-imitation-mj (git-ignored): imitation's MuJoCo runs (benchmarks/peers/imitation_gail.py
#    --preset mujoco). imitation 1.0.1 pins gymnasium 0.29, whose MuJoCo envs are v4 and want the
#    mujoco bindings 2.3.x (mujoco 3 renamed fields gymnasium 0.29 reads). The venv reuses
#    .venv-imitation's packages through a .pth file (nothing of it is copied or changed) and adds only
#    mujoco==2.3.7 and imageio (gymnasium 0.29's MuJoCo envs import it), ~20 MB.
#
# 5. .venv-ding (git-ignored): DI-engine==0.5.3 (the newest release on the index) for
#    tests/data/convert/test_ding_real.py (ding_peer.py: DI-engine's collect_demo_data writes the
#    fixtures; NaiveRLDataset, HDF5Dataset, GailRewardModel, PwilRewardModel and serial_pipeline_bc
#    read demokit's exports). DI-engine pins a dozen packages it does not need for that (wandb,
#    matplotlib's extras, setuptools<=66, werkzeug<=2.0.3, ...), so it goes in with --no-deps plus
#    what ding.entry, ding.utils.data and ding.reward_model import; gym==0.25.1 (dizoo's envs call
#    env.seed, gone in gym 0.26) and numpy<2 (gym 0.25 uses np.bool8), as DI-engine pins them.
#
# Environment: PYTHON (interpreter for the new venv; default: the one .venv was
# made from, else python3).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
CONSTRAINTS="$ROOT/constraints.txt"
IMITATION_VENV="$ROOT/.venv-imitation"
MAIN_VENV="$ROOT/.venv"
WHAT="${1:-all}"

case "$WHAT" in
  all|imitation|main|lerobot|imitation-mj|ding) ;;
  *) echo "usage: $0 [all|imitation|main|lerobot|imitation-mj|ding]" >&2; exit 2 ;;
esac

pick_python() {
  if [[ -n "${PYTHON:-}" ]]; then echo "$PYTHON"; return; fi
  if [[ -x "$MAIN_VENV/bin/python" ]]; then
    # the base interpreter .venv was created from
    "$MAIN_VENV/bin/python" -c 'import sys; print(sys._base_executable)'
    return
  fi
  command -v python3
}

pip_in() {  # pip_in <venv> <args...>
  local venv="$1"; shift
  "$venv/bin/python" -m pip install --disable-pip-version-check -q -c "$CONSTRAINTS" "$@"
}

check_cpu_torch() {  # refuse a venv that ended up with a CUDA torch
  "$1/bin/python" - <<'EOF'
import importlib.metadata as md, sys, torch
cuda = [d.metadata["Name"] for d in md.distributions()
        if (d.metadata["Name"] or "").lower().startswith("nvidia-")]
if torch.version.cuda is not None or cuda:
    sys.exit(f"error: CUDA packages were installed ({torch.__version__}, {cuda}); "
             "check constraints.txt")
print(f"  torch {torch.__version__} (CPU build), no nvidia-* packages")
EOF
}

setup_imitation() {
  echo "== .venv-imitation (imitation 1.0.1)"
  if [[ ! -x "$IMITATION_VENV/bin/python" ]]; then
    "$(pick_python)" -m venv "$IMITATION_VENV"
  fi
  if "$IMITATION_VENV/bin/python" - <<'EOF' 2>/dev/null
import importlib.metadata as md
assert md.version("imitation") == "1.0.1"
assert md.version("torch").startswith("2.13.0")
assert md.version("gymnasium").startswith("0.29")
assert md.version("stable-baselines3").startswith("2.2")
import imitation.algorithms.bc, imitation.algorithms.adversarial.gail  # noqa: F401
import imitation.data.serialize  # noqa: F401  (datasets -> pyarrow: fails when pyarrow wants numpy 2)
EOF
  then
    echo "  already installed"
  else
    pip_in "$IMITATION_VENV" --upgrade pip
    pip_in "$IMITATION_VENV" "torch==2.13.0"
    # pyarrow 21+ needs numpy 2, which gymnasium 0.29 cannot use; datasets 4.1+ needs pyarrow 21+.
    pip_in "$IMITATION_VENV" "imitation==1.0.1" "numpy<2" "pyarrow<21" "datasets<4.1"
  fi
  check_cpu_torch "$IMITATION_VENV"
  "$IMITATION_VENV/bin/python" -c 'import importlib.metadata as m; print("  " + ", ".join(f"{p} {m.version(p)}" for p in ("imitation", "gymnasium", "stable-baselines3", "numpy")))'
}

setup_main() {
  local pkgs=("stable-baselines3>=2.3")
  [[ "${SKIP_MINARI:-0}" == 1 ]] || pkgs+=("minari[create]>=0.5,<0.6")
  echo "== .venv (bench: ${pkgs[*]})"
  if [[ ! -x "$MAIN_VENV/bin/python" ]]; then
    echo "error: $MAIN_VENV is missing; create demokit's venv first (python3 -m venv .venv && .venv/bin/pip install -c constraints.txt -e '.[dev]')" >&2
    exit 1
  fi
  if SKIP_MINARI="${SKIP_MINARI:-0}" "$MAIN_VENV/bin/python" - <<'EOF' 2>/dev/null
import importlib.metadata as md, os
v = tuple(int(x) for x in md.version("stable-baselines3").split(".")[:2])
assert v >= (2, 3)
import stable_baselines3  # noqa: F401
if os.environ["SKIP_MINARI"] != "1":
    assert md.version("minari").startswith("0.5")
    import minari, jax.tree_util  # noqa: F401
EOF
  then
    echo "  already installed"
  else
    pip_in "$MAIN_VENV" "${pkgs[@]}"
  fi
  check_cpu_torch "$MAIN_VENV"
  "$MAIN_VENV/bin/python" - <<'EOF'
import importlib.metadata as m
found = []
for p in ("stable-baselines3", "minari", "jax", "gymnasium", "numpy"):
    try:
        found.append(f"{p} {m.version(p)}")
    except m.PackageNotFoundError:
        pass
print("  " + ", ".join(found))
EOF
}

# venv_without_pins <venv> <name==version> <python check> <packages...>: the CPU torch first, the package
# without its own pins (--no-deps), then the packages its used modules import; skipped when the check passes
venv_without_pins() {
  local venv="$1" pkg="$2" check="$3"
  shift 3
  if [[ ! -x "$venv/bin/python" ]]; then
    "$(pick_python)" -m venv "$venv"
  fi
  if "$venv/bin/python" -c "import importlib.metadata as md; assert md.version('${pkg%%==*}') == '${pkg##*==}'; $check" 2>/dev/null; then
    echo "  already installed"
  else
    pip_in "$venv" --upgrade pip
    pip_in "$venv" "torch==2.13.0"
    pip_in "$venv" --no-deps "$pkg"
    pip_in "$venv" "$@"
  fi
  check_cpu_torch "$venv"
}

LEROBOT_VENV="$ROOT/.venv-lerobot"
setup_lerobot() {
  echo "== .venv-lerobot (lerobot 0.4.4)"
  venv_without_pins "$LEROBOT_VENV" "lerobot==0.4.4" "import av, datasets, accelerate, torchvision" \
    "torchvision==0.28.0" "numpy<2.4" "datasets>=4,<5" "huggingface-hub>=0.34.2,<0.36" \
    "av>=15,<16" "accelerate>=1.10,<2" "draccus==0.10.0" pandas pyarrow jsonlines "deepdiff>=7,<9" termcolor \
    "imageio[ffmpeg]" "packaging<26" einops "gymnasium>=1.1.1,<2" pillow
  "$LEROBOT_VENV/bin/python" -c 'import importlib.metadata as m; print("  " + ", ".join(f"{p} {m.version(p)}" for p in ("lerobot", "torch", "torchvision", "av", "datasets", "numpy")))'
}

IMITATION_MJ_VENV="$ROOT/.venv-imitation-mj"
setup_imitation_mj() {
  echo "== .venv-imitation-mj (.venv-imitation + mujoco 2.3.7: gymnasium 0.29's MuJoCo v4 envs)"
  if [[ ! -x "$IMITATION_MJ_VENV/bin/python" ]]; then
    "$(pick_python)" -m venv "$IMITATION_MJ_VENV"
  fi
  local base own
  base="$("$IMITATION_VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
  own="$("$IMITATION_MJ_VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
  echo "$base" > "$own/_imitation_peer.pth"
  if "$IMITATION_MJ_VENV/bin/python" -c 'import importlib.metadata as md, gymnasium as gym; assert md.version("mujoco") == "2.3.7"; gym.make("Hopper-v4").reset(seed=0)' 2>/dev/null; then
    echo "  already installed"
  else
    pip_in "$IMITATION_MJ_VENV" "mujoco==2.3.7" "imageio>=2.14.1"
  fi
  "$IMITATION_MJ_VENV/bin/python" -c 'import importlib.metadata as m, gymnasium as gym; gym.make("Hopper-v4").reset(seed=0); print("  " + ", ".join(f"{p} {m.version(p)}" for p in ("imitation", "gymnasium", "mujoco", "numpy")) + ": Hopper-v4 resets")'
}

DING_VENV="$ROOT/.venv-ding"
setup_ding() {
  echo "== .venv-ding (DI-engine 0.5.3)"
  venv_without_pins "$DING_VENV" "DI-engine==0.5.3" \
    "import ding.entry, ding.utils.data, ding.reward_model.gail_irl_model, dizoo.classic_control.cartpole.envs" \
    "numpy<2" "gym==0.25.1" gymnasium h5py easydict DI-toolkit DI-treetensor cloudpickle pyyaml requests flask \
    urlobject tabulate tensorboardX einops hickle mpire redis pynng yapf
  "$DING_VENV/bin/python" -c 'import importlib.metadata as m; print("  " + ", ".join(f"{p} {m.version(p)}" for p in ("DI-engine", "torch", "gym", "numpy", "h5py")))'
}

if [[ "$WHAT" == ding ]]; then setup_ding; fi
if [[ "$WHAT" == lerobot ]]; then setup_lerobot; fi
if [[ "$WHAT" == imitation-mj ]]; then setup_imitation; setup_imitation_mj; fi
if [[ "$WHAT" == all || "$WHAT" == imitation ]]; then setup_imitation; fi
if [[ "$WHAT" == all || "$WHAT" == main ]]; then setup_main; fi
echo "done"
