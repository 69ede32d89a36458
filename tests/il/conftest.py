"""Fixtures for the imitation tests: generated expert-quality datasets (session-scoped, tiny)."""

from __future__ import annotations

from pathlib import Path

import pytest

import il_data


@pytest.fixture(scope="session")
def il_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("il-data")


@pytest.fixture(scope="session")
def cartpole10(il_dir: Path) -> Path:
    """10 episodes (5000 steps) of the hand-written CartPole controller (return 500 each)."""
    return il_data.write_cartpole(il_dir / "cartpole10.h5", 10)


@pytest.fixture(scope="session")
def cartpole3(il_dir: Path) -> Path:
    return il_data.write_cartpole(il_dir / "cartpole3.h5", 3, seed=100)


@pytest.fixture(scope="session")
def cartpole1(il_dir: Path) -> Path:
    return il_data.write_cartpole(il_dir / "cartpole1.h5", 1, seed=7)


@pytest.fixture(scope="session")
def pendulum(il_dir: Path) -> Path:
    """10 Pendulum-v1 episodes whose actions are a known linear map of the observation + N(0, 0.1^2)."""
    return il_data.write_pendulum(il_dir / "pendulum.h5", 10, noise=0.1)


@pytest.fixture(scope="session")
def expert_checkpoint(il_dir: Path) -> Path:
    return il_data.save_controller(il_dir / "controller.pt")
