"""One seed for every random source."""

from __future__ import annotations

import random
import zlib

import numpy as np
import torch


def seed_everything(seed: int) -> np.random.Generator:
    """Seed Python's, NumPy's and torch's global generators from ``seed``.

    Returns a fresh NumPy ``Generator`` derived from the same seed, for code that
    prefers an explicit generator.
    """
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    random.seed(int(seed))
    np.random.seed(int(seed) % (2**32))
    torch.manual_seed(int(seed))
    return np.random.default_rng(int(seed))


def derive_seed(seed: int, *keys: int | str) -> int:
    """A deterministic child seed of ``seed`` for a named sub-stream (e.g. env 3, eval)."""
    parts = [int(seed)] + [k if isinstance(k, int) else zlib.crc32(str(k).encode()) for k in keys]
    return int(np.random.SeedSequence(parts).generate_state(1, dtype=np.uint32)[0])
