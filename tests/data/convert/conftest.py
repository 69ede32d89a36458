"""Fixtures of the converter tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.data.convert.sources import write_demokit_cartpole


@pytest.fixture
def demokit_cartpole(tmp_path: Path) -> Path:
    """A demokit CartPole-v1 dataset of 3 episodes (5, 7, 3 steps) with extras value/logit."""
    return write_demokit_cartpole(tmp_path / "cartpole.h5")
