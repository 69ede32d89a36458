"""Run the peer systems' runners (benchmarks/peers/) from demokit's benchmarks.

    from _peers import export_npz, run_peer      # in a script under benchmarks/

    export_npz("datasets/cartpole-v1-expert.h5", tmp / "demos.npz")
    bc = run_peer("imitation_bc.py", {"demos": tmp / "demos.npz", "n_epochs": 5}, venv="imitation")
    ppo = run_peer("sb3_ppo.py", {"total_timesteps": 100_000}, venv="main")

Each runner prints one JSON line; `run_peer` returns it as a dict with
`peer_process_wall_s` (the subprocess's wall time, interpreter start included)
added. Peer venvs come from `scripts/setup_peers.sh`.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Literal

REPO_ROOT = Path(__file__).resolve().parent.parent
PEERS_DIR = REPO_ROOT / "benchmarks" / "peers"
VENVS: dict[str, Path] = {"imitation": REPO_ROOT / ".venv-imitation", "main": REPO_ROOT / ".venv",
                          "imitation-mj": REPO_ROOT / ".venv-imitation-mj"}
SETUP_HINT = "run scripts/setup_peers.sh"


class PeerUnavailable(RuntimeError):
    """The peer's venv (or runner script) is missing: run scripts/setup_peers.sh."""


class PeerFailed(RuntimeError):
    """The peer runner exited with an error, timed out, or printed no JSON line."""


def peer_python(venv: Literal["imitation", "main", "imitation-mj"]) -> Path:
    """Interpreter of a peer venv; raises PeerUnavailable if it is not set up."""
    if venv not in VENVS:
        raise ValueError(f"unknown peer venv {venv!r}; expected one of {sorted(VENVS)}")
    python = VENVS[venv] / "bin" / "python"
    if not python.exists():
        raise PeerUnavailable(f"peer venv {VENVS[venv]} is missing; {SETUP_HINT} "
                              f"({venv} part)")
    return python


def peer_available(venv: Literal["imitation", "main", "imitation-mj"]) -> bool:
    """True when the venv exists (lets a benchmark skip its peer column instead of failing)."""
    try:
        peer_python(venv)
    except PeerUnavailable:
        return False
    return True


def _argv(args: dict[str, Any]) -> list[str]:
    """{"n_epochs": 5, "stop_at_threshold": True, "env_id": None} -> ["--n-epochs", "5", "--stop-at-threshold"]."""
    out: list[str] = []
    for key, value in args.items():
        flag = "--" + key.replace("_", "-")
        if value is None or value is False:
            continue
        if value is True:
            out.append(flag)
        else:
            out.extend([flag, str(value)])
    return out


def run_peer(script_name: str, args: dict[str, Any] | None = None, *,
             venv: Literal["imitation", "main", "imitation-mj"] = "imitation",
             timeout: float | None = 1800) -> dict[str, Any]:
    """Run benchmarks/peers/<script_name> in the peer venv and return its JSON result.

    `args` maps option names (underscores or dashes) to values; True is a bare flag,
    None/False omit the option. The runner's stderr (library logs, progress bars) is
    kept and shown, last 3000 characters, if it fails.
    """
    script = PEERS_DIR / script_name
    if not script.is_file():
        raise PeerUnavailable(f"no peer runner {script}; available: "
                              f"{', '.join(sorted(p.name for p in PEERS_DIR.glob('[!_]*.py')))}")
    cmd = [str(peer_python(venv)), str(script), *_argv(dict(args or {}))]
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)  # the peer venvs must not see demokit's source tree or its packages
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=REPO_ROOT)
    except subprocess.TimeoutExpired as exc:
        tail = (exc.stderr or b"")[-3000:]
        tail = tail.decode(errors="replace") if isinstance(tail, bytes) else tail
        raise PeerFailed(f"peer {script_name} timed out after {timeout} s: {' '.join(cmd)}\n{tail}") from None
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise PeerFailed(f"peer {script_name} exited with {proc.returncode}: {' '.join(cmd)}\n"
                         f"{proc.stderr[-3000:]}")
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    try:
        result = json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        raise PeerFailed(f"peer {script_name} printed no JSON line: {' '.join(cmd)}\nstdout: "
                         f"{proc.stdout[-1000:]}\nstderr: {proc.stderr[-2000:]}") from None
    if not isinstance(result, dict):
        raise PeerFailed(f"peer {script_name} printed {lines[-1][:200]!r}, not a JSON object")
    result["peer_process_wall_s"] = round(wall, 3)
    return result


def _peers_common() -> Any:
    """benchmarks/peers/_common.py (the npz layout's writer and reader), loaded by path."""
    name = "demokit_benchmarks_peers_common"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, PEERS_DIR / "_common.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def export_npz(dataset_path: str | os.PathLike[str], out_npz: str | os.PathLike[str]) -> dict[str, Any]:
    """Write a demokit HDF5 dataset as the peers' demonstration .npz (benchmarks/peers/README.md).

    Needs flat (1-D Box) observations and Discrete or 1-D Box actions, as the peer
    runners compare against a gymnasium env with those spaces. Returns
    {"path", "transitions", "episodes"}.
    """
    import numpy as np
    from gymnasium import spaces

    from demokit import load_dataset
    from demokit.spaces import flatten_batch

    ds = load_dataset(dataset_path)
    obs_space, act_space = ds.observation_space, ds.action_space
    if not (isinstance(obs_space, spaces.Box) and len(obs_space.shape) == 1):
        raise ValueError(f"{dataset_path}: the peers need 1-D Box observations, the dataset has {obs_space}")
    n = len(ds)
    if isinstance(act_space, spaces.Discrete):
        acts = np.asarray(ds.actions, dtype=np.int64).reshape(n)
    elif isinstance(act_space, spaces.Box) and len(act_space.shape) == 1:
        acts = np.asarray(ds.actions, dtype=np.float32).reshape(n, act_space.shape[0])
    else:
        raise ValueError(f"{dataset_path}: the peers need Discrete or 1-D Box actions, the dataset has {act_space}")
    return _peers_common().write_demos(
        os.fspath(out_npz),
        obs=ds.flat_observations(),
        next_obs=flatten_batch(obs_space, ds.next_observations),
        acts=acts,
        rews=ds.rewards,
        terminated=ds.terminated,
        truncated=ds.truncated,
        episode_lengths=ds.episode_lengths,
        env_id=ds.env_id,
    )
