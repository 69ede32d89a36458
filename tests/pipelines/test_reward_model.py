"""The GAIL pipelines: the three-stage round, configs, errors, and learning CartPole."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from demokit.errors import ConfigError, SpaceMismatchError
from demokit.pipelines.reward_model import (
    IRLConfig,
    IRLResult,
    serial_pipeline_reward_model_offpolicy,
    serial_pipeline_reward_model_onpolicy,
)
from demokit.policies import load_checkpoint
from demokit.reward_models import BaseRewardModel, GailRewardModel, register_reward_model, with_rewards
from tests.reward_models.experts import write_cartpole_expert


@pytest.fixture(scope="module")
def expert(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(write_cartpole_expert(tmp_path_factory.mktemp("expert") / "cartpole-expert.h5", episodes=10))


@register_reward_model("recording_test")
class RecordingRewardModel(BaseRewardModel):
    """Records the calls of the round; rewards action 0 with +1 and action 1 with -1."""

    calls: list[tuple[str, Any]] = []

    def __init__(self, config: Mapping[str, Any], device: Any, tb_logger: Any, **kwargs: Any) -> None:
        self.config = dict(config)
        self.data: list[int] = []

    def collect_data(self, data: Any) -> None:
        n = len(data["obs"])
        self.data.append(n)
        self.calls.append(("collect_data", n))

    def train(self) -> dict[str, float]:
        self.calls.append(("train", sum(self.data)))
        return {}

    def clear_data(self, iter: int) -> None:
        self.calls.append(("clear_data", iter))
        self.data.clear()

    def estimate(self, data: Any) -> Any:
        self.calls.append(("estimate", len(data["obs"])))
        action = torch.as_tensor(data["action"]).reshape(-1).float()
        return with_rewards(data, 1.0 - 2.0 * action)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"calls": torch.tensor(len(self.calls))}

    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        pass


def _recording_config(expert: str, **kw: Any) -> dict[str, Any]:
    return {"expert_data_path": expert, "reward_model": {"type": "recording_test"}, "device": "cpu",
            "stop_at_threshold": False, **kw}


def _rounds(calls: list[tuple[str, Any]]) -> list[list[str]]:
    rounds, current = [], []
    for name, _ in calls:
        if name == "collect_data" and current and current[-1] != "collect_data":
            rounds.append(current)
            current = []
        current.append(name)
    return rounds + [current]


def test_onpolicy_round_follows_the_three_stages(expert: str) -> None:
    RecordingRewardModel.calls.clear()
    result = serial_pipeline_reward_model_onpolicy(_recording_config(expert, total_timesteps=1024), seed=0)
    rounds = _rounds(RecordingRewardModel.calls)
    assert len(rounds) == result.rounds >= 4   # 1024 real transitions: 4 or 5 rollouts of 8 x 32 steps
    assert all(r == ["collect_data", "train", "clear_data", "estimate"] for r in rounds)
    assert [it for name, it in RecordingRewardModel.calls if name == "clear_data"] == list(range(1, result.rounds + 1))
    # the rollout (8 envs x 32 steps) is estimated whole; only real transitions are collected
    assert all(n == 256 for name, n in RecordingRewardModel.calls if name == "estimate")
    assert all(n <= 256 for name, n in RecordingRewardModel.calls if name == "collect_data")
    assert isinstance(result, IRLResult) and result.algo == "recording_test-ppo"
    policy, converged = result
    assert policy is result.policy and converged is False


def test_offpolicy_round_estimates_every_minibatch(expert: str) -> None:
    RecordingRewardModel.calls.clear()
    cfg = _recording_config(expert, total_timesteps=1500, rl={"learning_starts": 500, "train_freq": 250,
                                                              "gradient_steps": 3})
    result = serial_pipeline_reward_model_offpolicy(cfg, seed=0)
    names = [n for n, _ in RecordingRewardModel.calls]
    assert result.algo == "recording_test-dqn" and result.rounds == 5  # rounds start once learning_starts is reached
    assert names[:3] == ["collect_data", "collect_data", "train"]
    for r in _rounds(RecordingRewardModel.calls)[1:]:
        assert r == ["collect_data", "train", "clear_data", "estimate", "estimate", "estimate"]


def test_policy_learns_from_the_reward_model_not_the_env(expert: str) -> None:
    """The recording model pays +1 for action 0 and -1 for action 1: CartPole's reward says nothing of the kind."""
    RecordingRewardModel.calls.clear()
    policy, _ = serial_pipeline_reward_model_onpolicy(_recording_config(expert, total_timesteps=6000), seed=1)
    obs = np.random.default_rng(0).normal(scale=0.05, size=(200, 4)).astype(np.float32)
    assert (policy.act(obs) == 0).mean() > 0.95


def test_config_checks(expert: str) -> None:
    with pytest.raises(ConfigError, match="did you mean 'env_id'"):
        serial_pipeline_reward_model_onpolicy({"expert_data_path": expert, "env": "CartPole-v1"})
    with pytest.raises(ConfigError, match="hidden_dim"):
        IRLConfig(expert_data_path=expert, reward_model={"hidden_dim": 3})
    with pytest.raises(ConfigError, match="must not set seed"):
        IRLConfig(expert_data_path=expert, rl={"seed": 3})
    with pytest.raises(ConfigError, match="n_epoch"):
        IRLConfig(expert_data_path=expert, algo="ppo", rl={"n_epoch": 3})
    with pytest.raises(ConfigError, match="serial_pipeline_reward_model_onpolicy"):
        serial_pipeline_reward_model_offpolicy({"expert_data_path": expert, "algo": "ppo"})
    with pytest.raises(ConfigError, match="expert_data_path"):
        serial_pipeline_reward_model_onpolicy({"env_id": "CartPole-v1"})


def test_seeds_style_config_with_expert_path_inside_reward_model(expert: str, tmp_path: Path) -> None:
    cfg = {"env_id": "CartPole-v1", "device": "cpu", "total_timesteps": 600, "stop_at_threshold": False,
           "reward_model": {"type": "gail", "expert_data_path": expert, "hidden_dims": 64, "batch_size": 64,
                            "update_per_collect": 3}}
    result = serial_pipeline_reward_model_onpolicy(cfg, seed=0, out=tmp_path / "g.pt")
    assert isinstance(result.reward_model, GailRewardModel) and result.reward_model.cfg.hidden_dims == (64,)
    assert result.reward_model.cfg.gamma == pytest.approx(0.98)  # the tuned PPO discount reaches the reward model
    assert result.reward_model.cfg.update_per_collect == 3      # the user's settings win over GAIL's defaults
    ckpt = load_checkpoint(tmp_path / "g.pt")
    assert ckpt.algo == "gail-ppo" and ckpt.env_id == "CartPole-v1"
    assert "discriminator.net.0.weight" in ckpt.extra["reward_model"] and "critic" in ckpt.extra
    assert ckpt.training["irl"]["reward_model"]["update_per_collect"] == 3


def test_mismatched_spaces_fail_before_training(expert: str, tmp_path: Path) -> None:
    out = tmp_path / "never.pt"
    with pytest.raises(SpaceMismatchError, match="Acrobot-v1"):
        serial_pipeline_reward_model_onpolicy({"expert_data_path": expert, "env_id": "Acrobot-v1"}, out=out)
    assert not out.exists()


def test_gail_ppo_learns_cartpole(expert: str) -> None:
    result = serial_pipeline_reward_model_onpolicy({"expert_data_path": expert, "device": "cpu"}, seed=0)
    assert result.converged and result.mean_return >= 475


def test_gail_dqn_learns_cartpole(expert: str) -> None:
    result = serial_pipeline_reward_model_offpolicy({"expert_data_path": expert, "device": "cpu"}, seed=0)
    assert result.converged and result.mean_return >= 475


def test_python_api_checks_out_like_the_cli(expert: str, tmp_path: Path) -> None:
    """run_irl / the serial pipelines refuse an out that is the expert data or a file of another kind
    (force=True replaces the latter), before any training."""
    import shutil

    from demokit.errors import UserError

    cfg = {"expert_data_path": expert, "device": "cpu", "total_timesteps": 256}
    before = Path(expert).read_bytes()
    with pytest.raises(UserError, match="is the input"):
        serial_pipeline_reward_model_onpolicy(cfg, out=expert)
    other = tmp_path / "other.h5"
    shutil.copy(expert, other)
    notes = tmp_path / "notes.txt"
    notes.write_text("mine")
    for target in (other, notes):
        with pytest.raises(UserError, match="not a checkpoint"):
            serial_pipeline_reward_model_offpolicy(cfg, out=target)
    assert Path(expert).read_bytes() == before and other.read_bytes() == before and notes.read_text() == "mine"
    result = serial_pipeline_reward_model_onpolicy(cfg, out=notes, force=True)
    assert result.checkpoint is not None and notes.read_bytes()[:2] == b"PK"
