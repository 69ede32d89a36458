"""Fixtures of the dataset-format tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.data.helpers import make_episodes, write

from demokit.data import Episode


@pytest.fixture
def episodes() -> list[Episode]:
    return make_episodes()


@pytest.fixture
def dataset_path(tmp_path: Path, episodes: list[Episode]) -> Path:
    return write(tmp_path / "demos.h5", episodes, provenance={"policy": "random", "seed": 7})
