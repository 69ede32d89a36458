"""The seeds' reward-model API as a DI-engine user writes it, and GAIL's handling of DI-engine data
(issue 12's API items, issue 15's defects 3 and 4)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from gymnasium import spaces
from torch import nn

from demokit.errors import ConfigError, UserError
from demokit.pipelines import serial_pipeline_bc, serial_pipeline_il
from demokit.reward_models import (
    BaseRewardModel,
    GailRewardModel,
    TransitionBatch,
    as_transition_batch,
    create_reward_model,
    register_reward_model,
    reward_model_class,
)
from demokit.reward_models.gail import encode_actions
from tests.reward_models.experts import random_cartpole_batch


class SeedContractModel(BaseRewardModel):
    """Exactly seed 002's abstract methods, nothing else."""

    def __init__(self, config: Any, device: Any, tb_logger: Any) -> None:
        self.cfg = config
        self.net = nn.Linear(4, 1)

    def estimate(self, data: list) -> Any:
        return data

    def train(self) -> None:
        pass

    def collect_data(self, data: Any) -> None:
        pass

    def clear_data(self, iter: int) -> None:
        pass


def test_a_model_written_to_the_seed_contract_instantiates_and_round_trips() -> None:
    model = SeedContractModel({}, "cpu", None)
    model.load_expert_data()  # a working default
    state = model.state_dict()
    assert set(state) == {"net.weight", "net.bias"}
    other = SeedContractModel({}, "cpu", None)
    other.load_state_dict(state)
    torch.testing.assert_close(other.net.weight, model.net.weight)
    with pytest.raises(UserError, match="no module 'critic'"):
        other.load_state_dict({"critic.weight": torch.zeros(1)})


def test_only_the_four_seed_methods_are_abstract() -> None:
    assert BaseRewardModel.__abstractmethods__ == frozenset({"estimate", "train", "collect_data", "clear_data"})


def test_registration_sets_the_name_and_needs_no_registry_import_of_the_model() -> None:
    register_reward_model("seed_contract_test")(SeedContractModel)
    assert SeedContractModel.name == "seed_contract_test"
    assert reward_model_class("seed_contract_test") is SeedContractModel
    assert isinstance(create_reward_model({"type": "seed_contract_test"}, "cpu", None), SeedContractModel)


def test_di_engine_key_names(cartpole_expert: Path) -> None:
    di = {"input_size": 7, "hidden_size": 32, "data_path": str(cartpole_expert), "collect_count": 700,
          "batch_size": 16, "update_per_collect": 2}
    model = GailRewardModel(di, "cpu", None)
    assert model.cfg.hidden_dims == (32,) and model.cfg.input_dims == 7
    assert model.cfg.expert_data_path == str(cartpole_expert) and model.expert_x.shape[0] == 700
    with pytest.raises(ConfigError, match="not both"):
        GailRewardModel({**di, "hidden_dims": (8,)}, "cpu", None)
    with pytest.raises(ConfigError, match="collect_count must be >= 1"):
        GailRewardModel({**di, "collect_count": 0}, "cpu", None)
    with pytest.raises(ConfigError, match="did you mean 'hidden_dims'"):
        GailRewardModel({**di, "hiden_dims": 3}, "cpu", None)


def test_di_engine_key_names_of_trex_and_pwil(cartpole_expert: Path) -> None:
    from demokit.reward_models.pwil import PwilConfig
    from demokit.reward_models.trex import TrexConfig

    cfg = reward_model_class("trex").parse_config(
        {"type": "trex", "min_snippet_length": 20, "max_snippet_length": 40, "hidden_size": 32})
    assert isinstance(cfg, TrexConfig) and (cfg.snippet_min, cfg.snippet_max, cfg.hidden_dims) == (20, 40, (32,))
    with pytest.raises(ConfigError, match="'num_snippets' has no equivalent here: .*train_steps"):
        create_reward_model({"type": "trex", "data_path": str(cartpole_expert), "num_snippets": 6000}, "cpu", None)
    with pytest.raises(ConfigError, match="not both"):
        create_reward_model({"type": "drex", "snippet_min": 5, "min_snippet_length": 5}, "cpu", None)
    # PWIL: sample_size (a seeded random subset of the atoms), s_size / a_size checked against the data
    pwil = create_reward_model({"type": "pwil", "expert_data_path": str(cartpole_expert), "sample_size": 100,
                                "s_size": 4, "a_size": 2, "alpha": 5, "beta": 5}, "cpu", None, seed=3)
    again = create_reward_model({"type": "pwil", "expert_data_path": str(cartpole_expert), "sample_size": 100},
                                "cpu", None, seed=3)
    assert isinstance(pwil.cfg, PwilConfig) and pwil.atoms.shape == (100, 6)
    np.testing.assert_array_equal(pwil.atoms, again.atoms)
    pwil.load_state_dict(pwil.state_dict())
    np.testing.assert_array_equal(pwil.atoms, again.atoms)
    with pytest.raises(ConfigError, match="s_size is 3 but the expert data's width is 4"):
        create_reward_model({"type": "pwil", "expert_data_path": str(cartpole_expert), "s_size": 3}, "cpu", None)
    with pytest.raises(ConfigError, match="'clear_buffer_per_iters' has no equivalent here"):
        create_reward_model({"type": "pwil", "expert_data_path": str(cartpole_expert), "clear_buffer_per_iters": 1},
                            "cpu", None)


def test_serial_pipeline_bc_is_serial_pipeline_il(cartpole_expert: Path) -> None:
    cfg = {"epochs": 2, "device": "cpu", "eval_every": 0}
    a, _ = serial_pipeline_bc(cfg, seed=3, data_path=cartpole_expert)
    b, _ = serial_pipeline_il(cfg, seed=3, data_path=cartpole_expert)
    for x, y in zip(a.state_dict().values(), b.state_dict().values()):
        torch.testing.assert_close(x, y)


# -- issue 15, defect 3: out-of-range discrete actions are refused, not clamped ---------------

@pytest.mark.parametrize("bad", [2, -1])
def test_out_of_range_discrete_actions_are_refused(cartpole_expert: Path, bad: int) -> None:
    model = GailRewardModel({"expert_data_path": str(cartpole_expert)}, "cpu", None)
    batch = random_cartpole_batch(10, seed=1)
    batch["action"] = batch["action"].copy()
    batch["action"][3] = bad
    with pytest.raises(UserError, match=rf"action {bad} at row 3 .*Discrete\(2\).*valid: 0 \.\. 1"):
        model.collect_data(batch)
    with pytest.raises(UserError, match=f"action {bad}"):
        model.estimate(batch)


def test_discrete_actions_with_a_start_and_fractional_values() -> None:
    space = spaces.Discrete(3, start=-1)
    np.testing.assert_array_equal(encode_actions(space, torch.tensor([-1, 0, 1])).argmax(-1).numpy(), [0, 1, 2])
    with pytest.raises(UserError, match=r"action 2 .*valid: -1 \.\. 1"):
        encode_actions(space, torch.tensor([0, 2]))
    with pytest.raises(UserError, match="action 0.5"):
        encode_actions(space, torch.tensor([0.5]))
    md = spaces.MultiDiscrete([2, 3])
    with pytest.raises(UserError, match="action 3"):
        encode_actions(md, torch.tensor([[1, 3]]))


def test_input_dims_warning_names_what_differs(cartpole_expert: Path, tmp_path: Path) -> None:
    with pytest.warns(UserWarning) as record:
        GailRewardModel({"expert_data_path": str(cartpole_expert), "input_dims": 5}, "cpu", None)
    text = str(record[0].message)
    assert "one-hot" in text and "Discrete(2)" in text and "absorbing" in text
    # Box actions are NOT one-hot encoded: the warning must not say so
    from demokit.data import DatasetWriter, Episode

    box = spaces.Box(-2.0, 2.0, (1,), np.float32)
    obs_space = spaces.Box(-np.inf, np.inf, (3,), np.float32)
    path = tmp_path / "pendulum.h5"
    rng = np.random.default_rng(0)
    ep = Episode(observations=rng.normal(size=(20, 3)).astype(np.float32),
                 actions=rng.uniform(-2, 2, size=(20, 1)).astype(np.float32), rewards=np.zeros(20),
                 terminated=np.zeros(20, bool), truncated=np.r_[np.zeros(19, bool), True],
                 final_observation=np.zeros((1, 3), np.float32))
    with DatasetWriter(path, observation_space=obs_space, action_space=box, env_id="Pendulum-v1") as w:
        w.add_episode(ep)
    with pytest.warns(UserWarning) as record:
        model = GailRewardModel({"expert_data_path": str(path), "input_dims": 4}, "cpu", None)
    text = str(record[0].message)
    assert model.input_dim == 5 and "one-hot" not in text and "absorbing" in text


# -- issue 15, defect 4: DI-engine's `done` -----------------------------------------------------

def test_done_without_terminated_counts_as_termination(cartpole_expert: Path) -> None:
    batch = random_cartpole_batch(60, seed=2)
    assert batch["terminated"].any()
    di_style = {k: v for k, v in batch.items() if k not in ("terminated", "truncated")}
    di_style["done"] = batch["terminated"] | batch["truncated"]
    converted = as_transition_batch(di_style)
    torch.testing.assert_close(converted.terminated, torch.as_tensor(di_style["done"]))
    assert not converted.truncated.any()
    model = GailRewardModel({"expert_data_path": str(cartpole_expert), "gamma": 0.9}, "cpu", None)
    model.collect_data(di_style)
    model.train()
    with_flags = model.rewards(batch)
    with_done = model.rewards(di_style)
    torch.testing.assert_close(with_done, with_flags)  # the same absorbing-state value on the same steps
    r_abs = model.absorbing_reward()
    plain = model.rewards({k: v for k, v in di_style.items() if k != "done"})
    ended = torch.as_tensor(di_style["done"])
    torch.testing.assert_close(with_done[ended], plain[ended] + 9.0 * r_abs)
    # explicit flags win over done: truncated-only data has no termination
    both = {**di_style, "terminated": np.zeros(60, bool), "truncated": di_style["done"]}
    torch.testing.assert_close(model.rewards(both), plain)


def test_transition_batch_contract() -> None:
    batch = as_transition_batch(random_cartpole_batch(8, seed=0))
    assert isinstance(batch, TransitionBatch) and len(batch) == 8 and batch.observations.shape == (8, 4)
    assert batch["obs"] is batch.observations and set(dict(batch)) >= {"obs", "action", "reward", "next_obs"}
    torch.testing.assert_close(batch["done"], batch.terminated | batch.truncated)
    relabelled = batch.with_rewards(torch.arange(8.0))
    assert relabelled.rewards.tolist() == list(range(8)) and batch.rewards.tolist() != list(range(8))
    with pytest.raises(ValueError, match="has shape"):
        TransitionBatch(observations=torch.zeros(3, 4), actions=torch.zeros(2), rewards=torch.zeros(3),
                        next_observations=torch.zeros(3, 4), terminated=torch.zeros(3, dtype=torch.bool),
                        truncated=torch.zeros(3, dtype=torch.bool))
