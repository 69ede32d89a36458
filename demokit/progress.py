"""Progress text: one line per training update, shared by the CLI commands and the pipelines.

Plain strings (no rich markup), so library code can format progress without the CLI.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v)


def training_progress_text(info: Mapping[str, Any], *, return_label: str = "return") -> str:
    """The progress line of a training run (train-expert, GAIL, the pipeline's stages).

    ``info`` is a trainer's progress dict: ``episode_return`` (latest training episode,
    shown as ``-`` before the first), ``eval_return`` (latest evaluation, omitted before
    it), GAIL's ``reward_model/d_expert`` / ``d_policy`` / ``loss``, ``steps_per_s``.
    ``return_label``: what the training return is called ("env return" in GAIL, whose
    training reward is not the env's). Example: ``return 21.0 | eval 500.0 | 1234 steps/s``.
    """
    ret = info.get("episode_return")
    parts = [f"{return_label} {ret:.1f}" if _finite(ret) else f"{return_label} -"]
    if _finite(info.get("eval_return")):
        parts.append(f"eval {info['eval_return']:.1f}")
    if "reward_model/d_expert" in info:
        parts.append(f"D expert {info['reward_model/d_expert']:.2f} policy {info['reward_model/d_policy']:.2f} "
                     f"loss {info['reward_model/loss']:.3f}")
    if "steps_per_s" in info:
        parts.append(f"{info['steps_per_s']:.0f} steps/s")
    return " | ".join(parts)


def bc_progress_text(record: Mapping[str, Any]) -> str:
    """The progress line of a behavioral-cloning epoch record (``train_bc``'s callback):
    ``loss 0.1234 | val acc 0.981 | return 500.0`` (validation and return when present)."""
    parts = [f"loss {record['loss']:.4f}"] if "loss" in record else []
    if "val_accuracy" in record:
        parts.append(f"val acc {record['val_accuracy']:.3f}")
    if "val_error" in record:
        parts.append(f"val err {record['val_error']:.4f}")
    if "eval_mean" in record:
        parts.append(f"return {record['eval_mean']:.1f}")
    return " | ".join(parts)
