"""Fixtures of the collection tests: small policy checkpoints (random weights)."""

from __future__ import annotations

from pathlib import Path

import pytest
from collect_helpers import write_checkpoint


@pytest.fixture
def cartpole_ckpt(tmp_path: Path) -> Path:
    """A categorical CartPole policy (random weights) without training figures."""
    return write_checkpoint(tmp_path / "cartpole-bc.pt", "CartPole-v1", hidden_sizes=(16,))


@pytest.fixture
def pendulum_ckpt(tmp_path: Path) -> Path:
    """A Gaussian Pendulum policy (random weights) whose checkpoint records a training return."""
    return write_checkpoint(tmp_path / "pendulum-bc.pt", "Pendulum-v1", hidden_sizes=(16,),
                            training={"mean_return": -1234.5})
