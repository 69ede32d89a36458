"""GAIL trains on a reward-free expert dataset (the discriminator needs observations and actions only)."""

from __future__ import annotations

from pathlib import Path

import pytest

from demokit.data import load_dataset
from demokit.pipelines.reward_model import serial_pipeline_reward_model_onpolicy
from tests.helpers_reward_free import reward_free_copy
from tests.reward_models.experts import write_cartpole_expert


@pytest.fixture(scope="module")
def free_expert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("free-expert")
    return reward_free_copy(write_cartpole_expert(root / "expert.h5", episodes=10), root / "free.h5")


def test_gail_ppo_trains_on_a_reward_free_expert(free_expert: Path) -> None:
    cfg = {"expert_data_path": str(free_expert), "env_id": "CartPole-v1", "device": "cpu", "total_timesteps": 1200,
           "stop_at_threshold": False, "reward_model": {"type": "gail", "hidden_dims": 64, "batch_size": 64}}
    result = serial_pipeline_reward_model_onpolicy(cfg, seed=0)
    assert result.rounds >= 1 and result.env_steps >= 1200
    assert result.reward_model.expert_rows == len(load_dataset(free_expert))


@pytest.mark.slow
def test_gail_ppo_learns_cartpole_from_a_reward_free_expert(free_expert: Path) -> None:
    result = serial_pipeline_reward_model_onpolicy({"expert_data_path": str(free_expert), "device": "cpu"}, seed=0)
    assert result.converged and result.mean_return >= 475


def test_trex_ranking_by_returns_says_the_dataset_has_none(free_expert: Path) -> None:
    from demokit.errors import UserError
    from demokit.reward_models import create_reward_model

    with pytest.raises(UserError, match="has no rewards.*T-REX rankings"):
        create_reward_model({"type": "trex", "expert_data_path": str(free_expert), "ranking": "returns"}, "cpu", None,
                            seed=0)
