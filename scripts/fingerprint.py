"""Fingerprint of demokit's seeded outputs: one JSON of sha256 per array / tensor.

Runs a fixed set of short seeded jobs into a temporary directory (experts trained on a
fixed budget without early stop, collections with several ``num_envs``, BC, DAgger,
evaluations) and prints ``{"job/array": sha256, ...}``. Run it on two versions of the
code and compare the JSONs to see that the same seed still gives the same data::

    git worktree add /tmp/base main
    PYTHONPATH=/tmp/base .venv/bin/python scripts/fingerprint.py > /tmp/base.json
    .venv/bin/python scripts/fingerprint.py > /tmp/mine.json
    .venv/bin/python scripts/fingerprint.py --compare /tmp/base.json /tmp/mine.json

Checkpoint tensors are named by their state-dict key in the current layout: keys of the
one-MLP layout (checkpoint format 1: ``net.<i>.*``, ``log_std``) are renamed as the loader
renames them (``encoder.net.<i>.*``, ``head.linear.*``, ``head.log_std``), so the same tensor
under its old key keeps its fingerprint. Dataset arrays
are every HDF5 dataset of the file (attributes, which hold wall-clock provenance, are not).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np


def _sha(a: Any) -> str:
    arr = np.ascontiguousarray(np.asarray(a))
    h = hashlib.sha256(f"{arr.dtype.str}{arr.shape}".encode())
    h.update(arr.tobytes())
    return h.hexdigest()[:16]


def _tensor_sha(t: Any) -> str:
    return _sha(t.detach().cpu().numpy())


def _current_key(key: str, hidden_layers: int, output: str = "head.linear") -> str:
    """A policy (or critic: ``output="out"``) state-dict key in the encoder + head layout
    (keys of one ``nn.Sequential`` MLP renamed)."""
    if key[:1].isdigit():  # a critic written as one nn.Sequential: <i>.weight
        key = f"net.{key}"
    if key == "log_std":
        return "head.log_std"
    if key.startswith("net."):
        _, index, rest = key.split(".", 2)
        return f"{output}.{rest}" if int(index) == 2 * hidden_layers else f"encoder.net.{index}.{rest}"
    return key


def _checkpoint(path: Path, out: dict[str, str], name: str) -> None:
    import torch

    payload = torch.load(path, map_location="cpu", weights_only=True)
    hidden = len(json.loads(payload["arch"])["hidden_sizes"])
    for k, v in payload["state_dict"].items():
        out[f"{name}/state/{_current_key(k, hidden)}"] = _tensor_sha(v)

    def walk(prefix: str, obj: Any) -> None:
        if isinstance(obj, dict):
            for k in sorted(obj):
                key = k
                if prefix.endswith("/target"):
                    key = _current_key(k, hidden)
                elif prefix.endswith("/critic"):
                    key = _current_key(k, hidden, output="out")
                walk(f"{prefix}/{key}", obj[k])
        else:
            out[prefix] = _tensor_sha(obj)

    walk(f"{name}/extra", payload.get("extra") or {})


def _dataset(path: Path, out: dict[str, str], name: str) -> None:
    import h5py

    with h5py.File(path, "r") as f:
        def visit(key: str, obj: Any) -> None:
            if isinstance(obj, h5py.Dataset):
                out[f"{name}/{key}"] = _sha(obj[()])
        f.visititems(visit)


def run(tmp: Path) -> dict[str, str]:
    import torch

    from demokit.evaluation import evaluate_policy
    from demokit.il.bc import train_bc
    from demokit.il.dagger import train_dagger
    from demokit.pipelines.collect import collect_demo_data
    from demokit.policies import load_policy
    from demokit.rl import train_expert

    torch.set_num_threads(1)
    out: dict[str, str] = {}
    experts = {
        "ppo": dict(env_id="CartPole-v1", algo="ppo", total_timesteps=10_000),
        "dqn": dict(env_id="CartPole-v1", algo="dqn", total_timesteps=8_000),
        "ppo-mcc": dict(env_id="MountainCarContinuous-v0", algo="ppo", total_timesteps=4_096),  # gaussian + obs norm
    }
    ckpts: dict[str, Path] = {}
    for name, cfg in experts.items():
        ckpts[name] = tmp / f"{name}.pt"
        res = train_expert({**cfg, "seed": 3, "out": str(ckpts[name]), "stop_at_goal": False})
        out[f"expert-{name}/mean_return"] = _sha(np.float64(res.mean_return))
        _checkpoint(ckpts[name], out, f"expert-{name}")

    collections = [("random", "random", "CartPole-v1", n, True, 12) for n in (1, 5, 32)]
    collections += [("ppo", str(ckpts["ppo"]), "CartPole-v1", n, True, 6) for n in (1, 4, 16)]
    collections += [("ppo-sample", str(ckpts["ppo"]), "CartPole-v1", n, False, 6) for n in (1, 8)]
    collections += [("dqn", str(ckpts["dqn"]), "CartPole-v1", n, True, 6) for n in (3, 32)]
    collections += [("mcc-sample", str(ckpts["ppo-mcc"]), "MountainCarContinuous-v0", n, False, 2) for n in (1, 2)]
    collections += [("mcc-random", "random", "MountainCarContinuous-v0", 2, True, 2)]
    for label, policy, env_id, n, det, eps in collections:
        path = tmp / f"{label}-{n}.h5"
        collect_demo_data(policy, env_id, path, n_episodes=eps, seed=7, num_envs=n, deterministic=det,
                          eval_episodes=0)
        _dataset(path, out, f"collect-{label}-n{n}")
    steps_path = tmp / "random-steps.h5"
    collect_demo_data("random", "CartPole-v1", steps_path, n_steps=700, seed=2, num_envs=6)
    _dataset(steps_path, out, "collect-random-steps700")

    bc_out = tmp / "bc.pt"
    res = train_bc(tmp / "ppo-4.h5", {"epochs": 4, "eval_episodes": 3, "seed": 1, "out": str(bc_out),
                                      "device": "cpu"})
    out["bc/mean_return"] = _sha(np.float64(res.mean_return))
    _checkpoint(bc_out, out, "bc")
    bc_mcc = tmp / "bc-mcc.pt"
    train_bc(tmp / "mcc-sample-2.h5", {"epochs": 3, "eval_episodes": 1, "seed": 1, "out": str(bc_mcc),
                                       "device": "cpu"})
    _checkpoint(bc_mcc, out, "bc-mcc")

    dag = train_dagger({"expert": str(ckpts["ppo"]), "rounds": 2, "episodes_per_round": 3, "epochs": 2,
                        "eval_episodes": 2, "seed": 5, "out": str(tmp / "dagger.pt"),
                        "dataset_out": str(tmp / "dagger.h5"), "device": "cpu"})
    out["dagger/returns"] = _sha(np.asarray(dag.returns, np.float64))
    _dataset(tmp / "dagger.h5", out, "dagger-data")
    _checkpoint(tmp / "dagger.pt", out, "dagger")

    for name, path, env_id in (("ppo", ckpts["ppo"], "CartPole-v1"), ("dqn", ckpts["dqn"], "CartPole-v1"),
                               ("bc", bc_out, "CartPole-v1"), ("mcc", ckpts["ppo-mcc"], "MountainCarContinuous-v0")):
        policy = load_policy(path)
        for det in (True, False):
            if name == "dqn" and not det:
                continue
            ev = evaluate_policy(policy, env_id, episodes=7, seed=11, deterministic=det)
            out[f"eval-{name}-{'det' if det else 'sample'}/returns"] = _sha(ev.returns)
            out[f"eval-{name}-{'det' if det else 'sample'}/lengths"] = _sha(ev.lengths)
    return out


def compare(a_path: str, b_path: str) -> int:
    a, b = json.loads(Path(a_path).read_text()), json.loads(Path(b_path).read_text())
    differ = sorted(k for k in a.keys() & b.keys() if a[k] != b[k])
    only_a, only_b = sorted(a.keys() - b.keys()), sorted(b.keys() - a.keys())
    print(json.dumps({"same": len(a.keys() & b.keys()) - len(differ), "differ": differ,
                      "only_in_first": only_a, "only_in_second": only_b}, indent=1))
    return 1 if differ or only_a or only_b else 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--compare", nargs=2, metavar=("A.json", "B.json"), help="compare two fingerprints")
    args = ap.parse_args()
    if args.compare:
        return compare(*args.compare)
    warnings.simplefilter("ignore")
    with tempfile.TemporaryDirectory(prefix="demokit-fingerprint-") as tmp:
        print(json.dumps(run(Path(tmp)), indent=1, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
