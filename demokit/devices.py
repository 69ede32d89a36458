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


def has_fast_bfloat16(device: torch.device) -> bool:
    """Whether bfloat16 matrix products run natively on ``device``: any CUDA device that torch
    reports as supporting bf16, or a CPU with AVX512-BF16 or AMX. Without them torch emulates the
    products (measured on an AVX2-only CPU: a SAC gradient step at 256x256 took ~16x float32's time)."""
    if device.type == "cuda":
        return bool(torch.cuda.is_bf16_supported())
    if device.type != "cpu":
        return True  # other backends: no check available
    cpu = getattr(torch, "cpu", None)
    checks = [getattr(cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    checks = [c for c in checks if callable(c)]
    if not checks:
        return True  # a torch without the probes: no claim either way
    return any(bool(c()) for c in checks)
