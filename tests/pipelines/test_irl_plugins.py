"""A toy reward model plugged in from outside the package (one registration) and run through the IRL
pipelines; the seeds' pipeline switches (pretrain_reward, cooptrain_reward) and DI-engine's config pair."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from demokit.data import load_dataset
from demokit.errors import ConfigError
from demokit.pipelines import serial_pipeline_reward_model_offpolicy, serial_pipeline_reward_model_onpolicy
from demokit.policies import load_checkpoint
from demokit.reward_models import BaseRewardModel, register_reward_model, with_rewards
from tests.helpers import cartpole_controller
from tests.reward_models.experts import write_cartpole_expert


@pytest.fixture(scope="module")
def expert(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(write_cartpole_expert(tmp_path_factory.mktemp("expert") / "cartpole-expert.h5", episodes=4))


@register_reward_model("expert_action_test")
class ExpertActionReward(BaseRewardModel):
    """Written to seed 002's contract only (the four abstract methods and ``__init__(config, device,
    tb_logger)``): a logistic regression learns the expert's action from the observation on the expert
    data; the reward of (s, a) is 1 when a is the action it predicts, else 0. No state_dict /
    load_expert_data of its own."""

    def __init__(self, config: dict[str, Any], device: Any, tb_logger: Any) -> None:
        data = load_dataset(config["expert_data_path"])
        self.obs = torch.as_tensor(np.array(data.observations), dtype=torch.float32)
        self.actions = torch.as_tensor(np.array(data.actions), dtype=torch.long)
        torch.manual_seed(0)
        scale = nn.Linear(4, 4)  # fixed standardisation with the expert data's statistics
        with torch.no_grad():
            scale.weight.copy_(torch.diag(1.0 / self.obs.std(0)))
            scale.bias.copy_(-self.obs.mean(0) / self.obs.std(0))
        scale.requires_grad_(False)
        self.reward_model = nn.Sequential(scale, nn.Linear(self.obs.shape[1], 2))
        self.calls: list[str] = []
        self.train_data: list[Any] = []

    def train(self) -> None:
        self.calls.append("train")
        opt = torch.optim.Adam(self.reward_model.parameters(), lr=0.05)
        for _ in range(500):
            loss = nn.functional.cross_entropy(self.reward_model(self.obs), self.actions)
            opt.zero_grad()
            loss.backward()
            opt.step()

    def collect_data(self, data: Any) -> None:
        self.calls.append("collect_data")
        self.train_data.append(data)

    def clear_data(self, iter: int) -> None:
        self.calls.append("clear_data")
        self.train_data.clear()

    def estimate(self, data: Any) -> Any:
        self.calls.append("estimate")
        with torch.no_grad():
            predicted = self.reward_model(data["obs"].float()).argmax(-1)
        return with_rewards(data, (predicted == data["action"].reshape(-1)).float())


def _agreement(actor: Any, reference: Any, obs: np.ndarray) -> float:
    """How often ``actor`` (a policy or a logits network) picks ``reference(obs)``'s action on ``obs``."""
    with torch.no_grad():
        chosen = actor.act(obs) if hasattr(actor, "act") else actor(torch.as_tensor(obs)).argmax(-1).numpy()
        return float((chosen == reference(obs)).mean())


def test_toy_reward_model_pretrained_and_frozen_through_the_onpolicy_pipeline(expert: str, tmp_path: Path) -> None:
    cfg = {"expert_data_path": expert, "reward_model": {"type": "expert_action_test"}, "device": "cpu",
           "total_timesteps": 12_000, "stop_at_threshold": False}
    result = serial_pipeline_reward_model_onpolicy(cfg, seed=0, pretrain_reward=True, cooptrain_reward=False,
                                                   out=tmp_path / "toy.pt")
    model = result.reward_model
    assert isinstance(model, ExpertActionReward)
    # pretrain_reward: one train() before RL; cooptrain_reward=False: no collect/train/clear during RL
    assert model.calls[0] == "train" and set(model.calls[1:]) == {"estimate"}
    assert model.calls.count("estimate") == result.rounds >= 40
    assert result.algo == "expert_action_test-ppo"
    ckpt = load_checkpoint(tmp_path / "toy.pt")
    assert ckpt.algo == "expert_action_test-ppo"
    # the default state_dict: the weights of every nn.Module attribute
    torch.testing.assert_close(ckpt.extra["reward_model"]["reward_model.1.weight"], model.reward_model[1].weight.detach())
    states = np.array(load_dataset(expert).observations)  # where the expert (and a good imitator) goes
    assert _agreement(model.reward_model, cartpole_controller, states) > 0.9  # the classifier knows the expert
    preferred = _agreement(result.policy, lambda obs: model.reward_model(torch.as_tensor(obs)).argmax(-1).numpy(),
                           states)
    assert preferred > 0.8  # the policy learned the actions the toy reward pays for (a random one: ~0.5)


def test_toy_reward_model_cotrained_through_the_offpolicy_pipeline(expert: str) -> None:
    cfg = {"expert_data_path": expert, "reward_model": {"type": "expert_action_test"}, "device": "cpu",
           "total_timesteps": 1_500, "stop_at_threshold": False,
           "rl": {"learning_starts": 500, "train_freq": 250, "gradient_steps": 2}}
    result = serial_pipeline_reward_model_offpolicy(cfg, seed=0)
    calls = result.reward_model.calls
    assert result.algo == "expert_action_test-dqn" and result.rounds == 5
    assert calls[:3] == ["collect_data", "collect_data", "train"]
    assert calls[3:8] == ["clear_data", "estimate", "estimate", "collect_data", "train"]


def test_a_reward_model_that_needs_log_probs_refuses_a_learner_without_them(expert: str) -> None:
    @register_reward_model("needs_log_probs_test")
    class NeedsLogProbs(ExpertActionReward):
        needs = frozenset({"log_probs"})

    cfg = {"expert_data_path": expert, "reward_model": {"type": "needs_log_probs_test"}, "device": "cpu"}
    with pytest.raises(ConfigError, match="needs log_probs.*learners that do: ppo"):
        serial_pipeline_reward_model_offpolicy(cfg, seed=0)


def test_di_engine_config_pair(expert: str, tmp_path: Path) -> None:
    main_config = {
        "exp_name": "cartpole_ppo_gail_seed0",
        "env": {"collector_env_num": 4, "evaluator_env_num": 5, "n_evaluator_episode": 3, "stop_value": 600},
        "policy": {"cuda": False, "discount_factor": 0.97, "learn": {"learning_rate": 1e-3, "batch_size": 64}},
        "reward_model": {"input_size": 5, "hidden_size": 32, "batch_size": 32, "update_per_collect": 3,
                         "data_path": expert, "collect_count": 1000, "reward_model_path": "x.pth"},
    }
    create_config = {"env": {"type": "cartpole", "import_names": ["dizoo.classic_control.cartpole.envs"]},
                     "env_manager": {"type": "base"}, "policy": {"type": "ppo"}, "reward_model": {"type": "gail"}}
    with pytest.warns(UserWarning, match="exp_name.*reward_model_path|reward_model_path.*exp_name") as record:
        result = serial_pipeline_reward_model_onpolicy((main_config, create_config), seed=0, max_env_step=2000,
                                                       out=tmp_path / "ding.pt")
    assert any("input_dims=5" in str(w.message) for w in record)  # DI-engine's raw-index width: explained
    rm = result.reward_model
    assert rm.cfg.hidden_dims == (32,) and rm.cfg.collect_count == 1000 and rm.expert_x.shape[0] == 1000
    assert rm.cfg.gamma == pytest.approx(0.97)  # the learner's discount reaches the reward model
    ckpt = load_checkpoint(tmp_path / "ding.pt")
    assert ckpt.algo == "gail-ppo" and ckpt.training["config"]["num_envs"] == 4
    assert ckpt.training["config"]["learning_rate"] == 1e-3 and ckpt.training["config"]["eval_episodes"] == 3
    assert ckpt.training["config"]["stop_value"] == 600 and ckpt.training["config"]["device"] == "cpu"
    assert ckpt.training["config"]["total_timesteps"] == 2000  # DI-engine's max_env_step


@pytest.mark.parametrize(("main_config", "create_config", "match"), [
    ({"policy": {"learn": {"lerning_rate": 1e-3}}}, {}, "did you mean 'policy.learn.learning_rate'"),
    ({"envs": {}}, {}, "'envs' .*has no demokit meaning.*did you mean 'env\."),
    ({"reward_model": {"hiden_size": 3}}, {}, "did you mean 'hidden_size'|did you mean 'hidden_dims'"),
    ({}, {"policy": {"type": "r2d2"}}, "unknown learner 'r2d2'"),
    ({"reward_model": {"type": "gail"}}, {"reward_model": {"type": "trex"}}, "differ"),
])
def test_di_engine_config_errors(expert: str, main_config: dict, create_config: dict, match: str) -> None:
    main_config = {**main_config, "reward_model": {"data_path": expert, **main_config.get("reward_model", {})}}
    with pytest.raises(ConfigError, match=match):
        serial_pipeline_reward_model_onpolicy((main_config, create_config), seed=0)
