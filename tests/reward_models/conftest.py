from __future__ import annotations

from pathlib import Path

import pytest

from tests.reward_models.experts import write_cartpole_expert


@pytest.fixture(scope="session")
def cartpole_expert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """10 episodes of the hand-written CartPole controller (5000 transitions)."""
    return write_cartpole_expert(tmp_path_factory.mktemp("expert") / "cartpole-expert.h5", episodes=10)
