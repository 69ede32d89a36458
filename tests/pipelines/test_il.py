"""serial_pipeline_il: the seeds' calling style on a generated dataset (and the committed one when present)."""

from __future__ import annotations

from pathlib import Path

import pytest

import il_data
from demokit.errors import ConfigError
from demokit.evaluation import evaluate_policy
from demokit.pipelines import serial_pipeline_il

REPO = Path(__file__).resolve().parents[2]
COMMITTED = REPO / "datasets" / "cartpole-v1-expert.h5"


@pytest.fixture(scope="module")
def cartpole(tmp_path_factory) -> Path:
    return il_data.write_cartpole(tmp_path_factory.mktemp("pipe") / "cp.h5", 10)


def test_seed_style_call_converges(cartpole):
    policy, converged = serial_pipeline_il({"env_id": "CartPole-v1"}, seed=314, data_path=str(cartpole))
    assert converged is True
    assert evaluate_policy(policy, "CartPole-v1", episodes=5, seed=99).mean_return >= 400


def test_every_key_is_optional_and_seed_is_reproducible(cartpole):
    a, _ = serial_pipeline_il({"epochs": 2, "eval_episodes": 0}, seed=1, data_path=cartpole)
    b, conv = serial_pipeline_il({"epochs": 2, "eval_episodes": 0, "seed": 1}, data_path=cartpole)
    assert conv is False  # never evaluated
    sa, sb = a.state_dict(), b.state_dict()
    assert all((sa[k] == sb[k]).all() for k in sa)


def test_unknown_key_and_missing_data_path_are_config_errors(cartpole):
    with pytest.raises(ConfigError, match="unknown BCConfig key 'epoch'"):
        serial_pipeline_il({"epoch": 3}, data_path=cartpole)
    with pytest.raises(ConfigError, match="data_path"):
        serial_pipeline_il({"env_id": "CartPole-v1"}, seed=0)


@pytest.mark.skipif(not COMMITTED.exists(), reason="datasets/cartpole-v1-expert.h5 not committed yet")
def test_committed_cartpole_expert_dataset_reaches_475():
    policy, converged = serial_pipeline_il({"env_id": "CartPole-v1"}, seed=314, data_path=COMMITTED)
    assert converged
