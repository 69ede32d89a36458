"""Choosing the torch device for training (``auto`` | ``cpu`` | ``cuda[:N]``)."""

from __future__ import annotations

import torch

from demokit.errors import UserError


def resolve_device(device: str) -> torch.device:
    """'auto' -> cuda when available else cpu; 'cuda' without a GPU is a user error."""
    d = (device or "auto").lower()
    if d == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if d == "cpu":
        return torch.device("cpu")
    if d.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UserError(f"--device {device}: no CUDA device is available here; use --device cpu or auto")
        return torch.device(d)
    raise UserError(f"--device must be auto, cpu or cuda, got {device!r}")
