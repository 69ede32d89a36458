"""Policy checkpoints: one torch file, written atomically, read without running code.

Layout (a plain dict; ``torch.load(weights_only=True)`` accepts it):
  format: "demokit-policy", format_version: 2, demokit_version,
  algo: "ppo" | "dqn" | "bc" | "dagger" | "gail-ppo" | ...,
  env_id, env_spec (JSON or ""), observation_space / action_space (demokit space JSON),
  arch (JSON of PolicyArch), state_dict (policy weights, normalisation statistics
  included; version 2 keys ``encoder.*`` / ``head.*`` / ``obs_norm.*``; version 1 files,
  written before the encoder + head split with keys ``net.*`` / ``log_std``, load into the
  same tensors), training (JSON: figures such as mean_return, env_steps, wall_s, config),
  extra (dict of tensors: e.g. a critic's or a discriminator's weights).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from demokit._version import __version__
from demokit.errors import CheckpointError, torch_load_refusal
from demokit.paths import atomic_write_bytes
from demokit.policies.neural import NeuralPolicy, PolicyArch, build_policy
from demokit.spaces import space_from_json, space_to_json

FORMAT_NAME = "demokit-policy"
FORMAT_VERSION = 2


@dataclass(frozen=True)
class Checkpoint:
    """A loaded checkpoint: the policy plus everything known about its training."""

    policy: NeuralPolicy
    algo: str
    env_id: str | None
    env_spec: str
    training: dict[str, Any]
    extra: dict[str, Any] = field(default_factory=dict)
    demokit_version: str = ""
    path: str = ""
    sha256: str = ""


def file_sha256(path: str | os.PathLike[str]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def save_checkpoint(path: str | os.PathLike[str], policy: NeuralPolicy, *, algo: str, env_id: str | None,
                    env_spec: str = "", training: dict[str, Any] | None = None,
                    extra: dict[str, torch.Tensor | dict[str, torch.Tensor]] | None = None) -> str:
    """Save ``policy`` atomically to ``path``; returns the file's sha256."""
    payload = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "demokit_version": __version__,
        "algo": str(algo),
        "env_id": env_id or "",
        "env_spec": env_spec or "",
        "observation_space": space_to_json(policy.observation_space),
        "action_space": space_to_json(policy.action_space),
        "arch": json.dumps(policy.arch.to_dict()),
        "state_dict": {k: v.detach().cpu() for k, v in policy.state_dict().items()},
        "training": json.dumps(training or {}, default=_json_default),
        "extra": _cpu(extra or {}),
    }
    buf = io.BytesIO()
    torch.save(payload, buf)
    atomic_write_bytes(path, buf.getvalue())
    return hashlib.sha256(buf.getvalue()).hexdigest()


def _cpu(obj: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: _cpu(v) for k, v in obj.items()}
    return obj


def _json_default(o: Any) -> Any:
    if hasattr(o, "item"):
        return o.item()
    if isinstance(o, (set, tuple)):
        return list(o)
    return str(o)


def load_checkpoint(path: str | os.PathLike[str], *, map_location: str | torch.device = "cpu") -> Checkpoint:
    """Load a checkpoint safely (``weights_only=True``): a foreign or truncated file raises CheckpointError."""
    p = Path(path)
    if not p.exists():
        raise CheckpointError(f"{p}: no such checkpoint file")
    if p.is_dir():
        raise CheckpointError(f"{p}: is a directory, not a checkpoint file")
    if not zipfile.is_zipfile(p):  # every torch.save file since torch 1.6 is a zip archive
        raise CheckpointError(f"{p}: not a demokit checkpoint (not a torch checkpoint archive; truncated or foreign file)")
    try:
        payload = torch.load(p, map_location=map_location, weights_only=True)
    except (RuntimeError, pickle.UnpicklingError, zipfile.BadZipFile, EOFError, ValueError, OSError, KeyError,
            AttributeError, TypeError) as exc:
        raise CheckpointError(f"{p}: not a readable demokit checkpoint (truncated, foreign or unsafe file): "
                              f"{torch_load_refusal(exc)}") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT_NAME:
        raise CheckpointError(f"{p}: not a demokit policy checkpoint (no '{FORMAT_NAME}' format tag)")
    version = int(payload.get("format_version", 0))
    if version > FORMAT_VERSION:
        raise CheckpointError(f"{p}: written by checkpoint format version {version}; this demokit reads up to "
                              f"{FORMAT_VERSION}: upgrade demokit")
    try:
        obs_space = space_from_json(payload["observation_space"])
        act_space = space_from_json(payload["action_space"])
        arch = PolicyArch.from_dict(json.loads(payload["arch"]))
        policy = build_policy(obs_space, act_space, arch)
        policy.load_state_dict(payload["state_dict"])
        training = json.loads(payload.get("training") or "{}")
    except (KeyError, ValueError, RuntimeError, TypeError) as exc:
        raise CheckpointError(f"{p}: damaged demokit checkpoint: {str(exc).splitlines()[0][:200]}") from None
    policy.eval()
    return Checkpoint(policy=policy, algo=str(payload.get("algo", "")), env_id=payload.get("env_id") or None,
                      env_spec=payload.get("env_spec", ""), training=training, extra=payload.get("extra") or {},
                      demokit_version=str(payload.get("demokit_version", "")), path=str(p), sha256=file_sha256(p))


def load_policy(path: str | os.PathLike[str], *, map_location: str | torch.device = "cpu") -> NeuralPolicy:
    """Just the policy of a checkpoint."""
    return load_checkpoint(path, map_location=map_location).policy
