"""The BaseRewardModel contract, the registry and GailRewardModel's behaviour."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from demokit.data import load_dataset
from demokit.errors import ConfigError, DatasetError, UserError
from demokit.reward_models import (
    BaseRewardModel,
    GailConfig,
    GailRewardModel,
    create_reward_model,
    register_reward_model,
    registered_reward_models,
)
from tests.reward_models.experts import DEVICES, random_cartpole_batch


def _model(path: Path, device: str = "cpu", **cfg: Any) -> GailRewardModel:
    return GailRewardModel({"expert_data_path": str(path), **cfg}, device, None)


def _as_list(batch: dict[str, np.ndarray], *, tensors: bool) -> list[dict[str, Any]]:
    conv = torch.as_tensor if tensors else np.asarray
    n = len(batch["obs"])
    return [{"obs": conv(batch["obs"][i]), "action": conv(batch["action"][i:i + 1]),
             "reward": conv(batch["reward"][i:i + 1]), "next_obs": conv(batch["next_obs"][i]),
             "done": conv(batch["terminated"][i:i + 1])} for i in range(n)]


def _trained(path: Path, device: str = "cpu", **cfg: Any) -> GailRewardModel:
    model = _model(path, device, **cfg)
    model.collect_data(random_cartpole_batch(400, seed=1))
    model.train()
    return model


def _snapshot(data: Any) -> Any:
    return copy.deepcopy(data)


def _assert_same(a: Any, b: Any) -> None:
    if isinstance(a, Mapping):
        assert set(a) == set(b)
        for k in a:
            _assert_same(a[k], b[k])
    elif isinstance(a, list):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _assert_same(x, y)
    elif isinstance(a, torch.Tensor):
        assert type(b) is torch.Tensor and a.dtype == b.dtype and torch.equal(a, b)
    else:
        np.testing.assert_array_equal(a, b)


# -- estimate never mutates ------------------------------------------------------------

@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("tensors", [True, False], ids=["tensors", "numpy"])
def test_estimate_list_of_dicts_returns_new_data(cartpole_expert: Path, device: str, tensors: bool) -> None:
    model = _trained(cartpole_expert, device)
    data = _as_list(random_cartpole_batch(50, seed=3), tensors=tensors)
    before = _snapshot(data)
    ids = [id(d) for d in data]
    reward_ids = [id(d["reward"]) for d in data]
    out = model.estimate(data)
    _assert_same(data, before)                                   # values untouched
    assert [id(d) for d in data] == ids and [id(d["reward"]) for d in data] == reward_ids
    assert out is not data and all(o is not d for o, d in zip(out, data))
    assert len(out) == len(data) and set(out[0]) == set(data[0])
    assert type(out[0]["reward"]) is type(data[0]["reward"]) and out[0]["reward"].shape == data[0]["reward"].shape
    new = np.array([float(o["reward"][0]) for o in out])
    assert not np.allclose(new, 1.0)                             # env reward 1 replaced
    expected = model.rewards(data).cpu().numpy()
    np.testing.assert_allclose(new, expected, rtol=1e-6)
    again = model.estimate(out)                                  # estimating twice is stable
    np.testing.assert_allclose([float(o["reward"][0]) for o in again], new, rtol=1e-6)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("tensors", [True, False], ids=["tensors", "numpy"])
def test_estimate_batch_dict_returns_new_dict(cartpole_expert: Path, device: str, tensors: bool) -> None:
    model = _trained(cartpole_expert, device)
    batch = random_cartpole_batch(64, seed=4)
    if tensors:
        batch = {k: torch.as_tensor(v) for k, v in batch.items()}
    before = _snapshot(batch)
    reward_obj = batch["reward"]
    out = model.estimate(batch)
    _assert_same(batch, before)
    assert batch["reward"] is reward_obj and out is not batch and out["reward"] is not reward_obj
    assert out["obs"] is batch["obs"]                            # other fields shared, read-only
    assert type(out["reward"]) is type(reward_obj) and out["reward"].shape == (64,)
    assert out["reward"].dtype == reward_obj.dtype
    assert not np.allclose(np.asarray(out["reward"]), 1.0)


def test_estimate_does_not_touch_a_replay_like_buffer(cartpole_expert: Path) -> None:
    model = _trained(cartpole_expert)
    storage = {k: torch.as_tensor(v) for k, v in random_cartpole_batch(100, seed=5).items()}
    idx = torch.arange(0, 100, 3)
    sample = {k: v[idx] for k, v in storage.items()}
    view = {k: v[10:40] for k, v in storage.items()}            # views share memory with the buffer
    before = _snapshot(storage)
    model.estimate(sample)
    model.estimate(view)
    _assert_same(storage, before)


def test_estimate_empty_inputs(cartpole_expert: Path) -> None:
    model = _trained(cartpole_expert)
    assert model.estimate([]) == []


# -- the round: collect, train, clear --------------------------------------------------

def test_clear_data_honours_clear_buffer_per_iters(cartpole_expert: Path) -> None:
    model = _model(cartpole_expert, clear_buffer_per_iters=3, absorbing=False)
    model.collect_data(random_cartpole_batch(30, seed=1))
    model.collect_data(_as_list(random_cartpole_batch(20, seed=2), tensors=True))
    assert model.num_policy_transitions == 50
    for it in (1, 2, 4, 5):
        model.clear_data(it)
        assert model.num_policy_transitions == 50
    model.clear_data(6)
    assert model.num_policy_transitions == 0
    with pytest.raises(UserError, match="collect_data"):
        model.train()


def test_clear_every_round_by_default(cartpole_expert: Path) -> None:
    model = _model(cartpole_expert)
    model.collect_data(random_cartpole_batch(30, seed=1))
    model.clear_data(7)
    assert model.num_policy_transitions == 0


def test_clear_data_without_argument_clears_now(cartpole_expert: Path) -> None:
    """Seed 001 calls ``reward_model.clear_data()``; seed 002 passes ``iter=``."""
    model = _model(cartpole_expert, clear_buffer_per_iters=3)
    model.collect_data(random_cartpole_batch(30, seed=1))
    model.clear_data(iter=2)
    assert model.num_policy_transitions > 0
    model.clear_data()
    assert model.num_policy_transitions == 0


class _Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, float, int]] = []

    def add_scalar(self, tag: str, value: float, step: int) -> None:
        self.calls.append((tag, value, step))


@pytest.mark.parametrize("device", DEVICES)
def test_discriminator_separates_expert_from_random_play(cartpole_expert: Path, device: str) -> None:
    logger = _Recorder()
    model = GailRewardModel({"expert_data_path": str(cartpole_expert), "update_per_collect": 100}, device, logger)
    policy = random_cartpole_batch(2000, seed=1)
    model.collect_data(policy)
    stats = [model.train() for _ in range(3)]
    assert stats[-1]["d_expert"] > 0.8 and stats[-1]["d_policy"] < 0.2
    assert stats[-1]["loss"] < stats[0]["loss"]
    expert = load_dataset(cartpole_expert).sample(1000, rng=0, torch=True)
    fresh_random = random_cartpole_batch(1000, seed=9)
    r_expert = model.rewards(expert).cpu()
    r_random = model.rewards(fresh_random).cpu()
    assert r_expert.mean() > 2.0 and r_random.mean() < -2.0       # logit reward: sign tells expert from not
    assert (r_expert > 0).float().mean() > 0.9 and (r_random < 0).float().mean() > 0.8
    tags = {t for t, _, _ in logger.calls}
    assert tags == {"reward_model/loss", "reward_model/d_expert", "reward_model/d_policy"}
    assert [s for t, _, s in logger.calls if t == "reward_model/loss"] == [100, 200, 300]


def test_training_is_seeded(cartpole_expert: Path) -> None:
    policy = random_cartpole_batch(300, seed=1)
    probe = random_cartpole_batch(50, seed=2)
    out = []
    for seed in (0, 0, 1):
        model = GailRewardModel({"expert_data_path": str(cartpole_expert)}, "cpu", None, seed=seed)
        model.collect_data(policy)
        model.train()
        out.append(model.rewards(probe))
    assert torch.equal(out[0], out[1]) and not torch.equal(out[0], out[2])


# -- state -------------------------------------------------------------------------

def test_state_dict_round_trip_gives_identical_rewards(cartpole_expert: Path) -> None:
    model = _trained(cartpole_expert, normalize_reward=True)
    state = model.state_dict()
    assert all(isinstance(v, torch.Tensor) for v in state.values())
    other = GailRewardModel({"expert_data_path": str(cartpole_expert), "normalize_reward": True}, "cpu", None, seed=7)
    probe = random_cartpole_batch(100, seed=2)
    assert not torch.equal(other.rewards(probe), model.rewards(probe))
    other.load_state_dict(state)
    assert torch.equal(other.rewards(probe), model.rewards(probe))
    assert other.train_iter == model.train_iter and other.reward_scale == model.reward_scale


def test_state_dict_survives_a_weights_only_checkpoint(cartpole_expert: Path, tmp_path: Path) -> None:
    model = _trained(cartpole_expert)
    torch.save({"extra": model.state_dict()}, tmp_path / "s.pt")
    loaded = torch.load(tmp_path / "s.pt", weights_only=True)["extra"]
    other = _model(cartpole_expert)
    other.load_state_dict(loaded)
    probe = random_cartpole_batch(20, seed=2)
    assert torch.equal(other.rewards(probe), model.rewards(probe))


# -- registry -------------------------------------------------------------------------

@register_reward_model("constant_test")
class ConstantRewardModel(BaseRewardModel):
    """A custom model: every transition earns ``config["value"]``."""

    def __init__(self, config: Mapping[str, Any], device: Any, tb_logger: Any) -> None:
        self.value = float(config["value"])
        self.data: list[Any] = []

    def estimate(self, data: Any) -> Any:
        from demokit.reward_models import with_rewards

        n = len(data) if isinstance(data, list) else len(data["obs"])
        return with_rewards(data, torch.full((n,), self.value))

    def train(self) -> dict[str, float]:
        return {}

    def collect_data(self, data: Any) -> None:
        self.data.append(data)

    def clear_data(self, iter: int) -> None:
        self.data.clear()

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"value": torch.tensor(self.value)}

    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        self.value = float(state["value"])


def test_registry_round_trip(cartpole_expert: Path) -> None:
    assert {"gail", "constant_test"} <= set(registered_reward_models())
    gail = create_reward_model({"type": "gail", "expert_data_path": str(cartpole_expert)}, "cpu", None)
    assert isinstance(gail, GailRewardModel)
    typed = create_reward_model(GailConfig(expert_data_path=str(cartpole_expert), hidden_dims=(8,)), "cpu", None)
    assert isinstance(typed, GailRewardModel) and typed.cfg.hidden_dims == (8,)
    custom = create_reward_model({"type": "constant_test", "value": 2.5}, "cpu", None)
    assert isinstance(custom, ConstantRewardModel)
    out = custom.estimate({"obs": np.zeros((3, 4)), "reward": np.ones(3)})
    np.testing.assert_array_equal(out["reward"], [2.5, 2.5, 2.5])


def test_registry_errors() -> None:
    with pytest.raises(ConfigError, match=r"unknown reward model type 'nope'.*gail"):
        create_reward_model({"type": "nope"}, "cpu", None)
    with pytest.raises(ConfigError, match="no 'type' key"):
        create_reward_model({"expert_data_path": "x.h5"}, "cpu", None)
    with pytest.raises(ValueError, match="already registered"):
        register_reward_model("gail")(ConstantRewardModel)
    with pytest.raises(TypeError):
        register_reward_model("not_a_model")(dict)


# -- config ---------------------------------------------------------------------------

def test_config_keys_as_in_the_seeds(cartpole_expert: Path) -> None:
    seeds_cfg = {"hidden_dims": 64, "batch_size": 64, "update_per_collect": 100,
                 "expert_data_path": str(cartpole_expert)}
    model = GailRewardModel(seeds_cfg, "cpu", None)
    # 4 obs + one-hot of 2 actions + the absorbing-state indicator
    assert model.cfg.hidden_dims == (64,) and model.input_dim == 7
    with pytest.warns(UserWarning, match="one-hot"):                # DI-engine's raw-index width: warned, not fatal
        GailRewardModel({**seeds_cfg, "input_dims": 5}, "cpu", None)
    assert GailRewardModel({**seeds_cfg, "input_dims": 7}, "cpu", None).input_dim == 7
    with pytest.raises(ConfigError, match="input_dims=9"):
        GailRewardModel({**seeds_cfg, "input_dims": 9}, "cpu", None)
    assert GailRewardModel({**seeds_cfg, "use_next_obs": True}, "cpu", None).input_dim == 11
    assert GailRewardModel({**seeds_cfg, "absorbing": False}, "cpu", None).input_dim == 6


@pytest.mark.parametrize(("cfg", "match"), [
    ({"hidden_dim": 64}, "did you mean 'hidden_dims'"),
    ({"batch_size": 0}, "batch_size must be >= 1"),
    ({"reward_form": "-log(D)"}, "reward_form"),
    ({"learning_rate": -1.0}, "learning_rate"),
    ({"type": "airl"}, "type must be 'gail'"),
])
def test_config_errors(cartpole_expert: Path, cfg: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        GailRewardModel({"expert_data_path": str(cartpole_expert), **cfg}, "cpu", None)


def test_expert_data_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="expert_data_path"):
        GailRewardModel({}, "cpu", None)
    with pytest.raises(DatasetError, match="does not exist"):
        GailRewardModel({"expert_data_path": str(tmp_path / "none.h5")}, "cpu", None)
    (tmp_path / "expert_data.pkl").write_bytes(b"\x80\x04K\x01.")
    with pytest.raises(DatasetError, match="demokit convert"):
        GailRewardModel({"expert_data_path": str(tmp_path / "expert_data.pkl")}, "cpu", None)


def test_wrong_observation_width_is_a_clear_error(cartpole_expert: Path) -> None:
    model = _trained(cartpole_expert)
    with pytest.raises(ValueError, match="flattens to 4"):
        model.estimate({"obs": np.zeros((2, 6), np.float32), "action": np.zeros(2, np.int64), "reward": np.zeros(2)})


# -- the absorbing state -----------------------------------------------------------------

def _constant_logit(model: GailRewardModel, z: float) -> None:
    with torch.no_grad():
        for p in model.discriminator.parameters():
            p.zero_()
        model.discriminator.net[-1].bias.fill_(z)


@pytest.mark.parametrize(("form", "per_step"), [("logit", 0.5), ("positive", float(np.log1p(np.exp(0.5))))])
def test_terminations_earn_the_absorbing_states_value(cartpole_expert: Path, form: str, per_step: float) -> None:
    model = _model(cartpole_expert, reward_form=form, gamma=0.9)
    _constant_logit(model, 0.5)                  # r(s, a) = r_abs = per_step everywhere
    batch = random_cartpole_batch(40, seed=3)
    assert batch["terminated"].any() and not batch["terminated"].all()
    rewards = np.asarray(model.estimate(batch)["reward"])
    expected = np.where(batch["terminated"], per_step * (1 + 0.9 / (1 - 0.9)), per_step)
    np.testing.assert_allclose(rewards, expected, rtol=1e-5)
    assert model.absorbing_reward() == pytest.approx(per_step, rel=1e-5)
    no_flags = {k: v for k, v in batch.items() if k != "terminated"}   # DI-engine's `done` is not a termination
    np.testing.assert_allclose(np.asarray(model.estimate(no_flags)["reward"]), per_step, rtol=1e-5)
    plain = _model(cartpole_expert, reward_form=form, absorbing=False)
    _constant_logit(plain, 0.5)
    np.testing.assert_allclose(np.asarray(plain.estimate(batch)["reward"]), per_step, rtol=1e-5)


def test_absorbing_rows_one_per_termination(cartpole_expert: Path, tmp_path: Path) -> None:
    from tests.reward_models.experts import write_cartpole_expert

    falling = write_cartpole_expert(tmp_path / "falling.h5", episodes=3,
                                    controller=lambda obs: np.ones(len(np.atleast_2d(obs)), np.int64))
    model = _model(falling)
    ds = load_dataset(falling)
    assert ds.terminated.sum() == 3
    assert model.expert_x.shape == (len(ds) + 3, 7) and model.expert_x[:, -1].sum() == 3
    truncated_only = _model(cartpole_expert)     # the controller is never terminated: no absorbing rows
    assert truncated_only.expert_x.shape[0] == len(load_dataset(cartpole_expert))
    batch = random_cartpole_batch(60, seed=2)
    model.collect_data(batch)
    assert model.num_policy_transitions == 60 + int(batch["terminated"].sum())


def test_absorbing_indicator_value_is_the_absorbing_rows_last_input(cartpole_expert: Path, tmp_path: Path) -> None:
    from tests.reward_models.experts import write_cartpole_expert

    falling = write_cartpole_expert(tmp_path / "falling.h5", episodes=3,
                                    controller=lambda obs: np.ones(len(np.atleast_2d(obs)), np.int64))
    model = _model(falling, absorbing_indicator=20.0)
    absorbing = model.expert_x[model.expert_x[:, -1] != 0]
    assert absorbing.shape[0] == 3 and torch.equal(absorbing, model.absorbing_features(3))
    assert torch.equal(absorbing[:, -1], torch.full((3,), 20.0)) and not absorbing[:, :-1].any()
    plain = _model(falling)     # the default indicator 1: the same rows otherwise
    torch.testing.assert_close(plain.expert_x[:, :-1], model.expert_x[:, :-1], rtol=0, atol=0)
    with pytest.raises(ConfigError, match="absorbing_indicator must be > 0"):
        _model(falling, absorbing_indicator=0.0)
