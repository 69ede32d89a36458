"""to_pandas, episodes_frame and sample."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from gymnasium import spaces

from demokit.data import Episode, load_dataset
from tests.data.helpers import BOX, make_episodes, write


def test_to_pandas_columns_and_values(dataset_path: Path, episodes: list[Episode]) -> None:
    ds = load_dataset(dataset_path)
    df = ds.to_pandas()
    assert list(df.columns) == ["episode", "step", "obs_0", "obs_1", "obs_2", "action", "reward", "terminated", "truncated"]
    assert len(df) == len(ds)
    e = episodes[2]
    rows = df[df["episode"] == 2]
    np.testing.assert_array_equal(rows["step"], np.arange(len(e)))
    np.testing.assert_array_equal(rows[["obs_0", "obs_1", "obs_2"]].to_numpy(), e.observations)
    np.testing.assert_array_equal(rows["action"], e.actions)
    np.testing.assert_array_equal(rows["reward"], e.rewards)
    assert rows["terminated"].dtype == bool and rows["terminated"].iloc[-1] == e.is_terminated
    assert rows["truncated"].iloc[-1] == e.is_truncated
    assert df["obs_0"].dtype == np.float32


def test_to_pandas_nested_columns(tmp_path: Path) -> None:
    obs = spaces.Dict({"pos": spaces.Box(-1, 1, (2,), np.float32), "mode": spaces.Discrete(3)})
    act = spaces.MultiDiscrete([2, 3])
    eps = make_episodes(obs, act, n=2, extras={"value": lambda T, rng: rng.normal(size=T)})
    df = load_dataset(write(tmp_path / "d.h5", eps, obs, act)).to_pandas()
    assert list(df.columns) == ["episode", "step", "obs_mode", "obs_pos_0", "obs_pos_1", "action_0", "action_1",
                                "reward", "terminated", "truncated", "extra_value"]
    np.testing.assert_array_equal(df["obs_pos_1"][: len(eps[0])], eps[0].observations["pos"][:, 1])
    np.testing.assert_array_equal(df["extra_value"], np.concatenate([e.extras["value"] for e in eps]))


def test_episodes_frame(dataset_path: Path, episodes: list[Episode]) -> None:
    df = load_dataset(dataset_path).episodes_frame()
    assert list(df.columns) == ["episode", "start", "length", "return", "terminated", "truncated", "seed"]
    np.testing.assert_array_equal(df["length"], [len(e) for e in episodes])
    np.testing.assert_allclose(df["return"], [e.episode_return for e in episodes])
    np.testing.assert_array_equal(df["terminated"], [True, False, True, False])
    np.testing.assert_array_equal(df["truncated"], [False, True, False, True])
    np.testing.assert_array_equal(df["seed"], [e.seed for e in episodes])
    np.testing.assert_array_equal(df["start"], np.cumsum([0] + [len(e) for e in episodes])[:-1])


def test_sample_reproducible_and_consistent(dataset_path: Path) -> None:
    ds = load_dataset(dataset_path)
    a = ds.sample(64, rng=123)
    b = load_dataset(dataset_path).sample(64, rng=np.random.default_rng(123))
    assert set(a) == {"obs", "action", "reward", "next_obs", "terminated", "truncated"}
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    assert not np.array_equal(a["obs"], ds.sample(64, rng=124)["obs"])
    assert a["obs"].shape == (64, 3) and a["action"].shape == (64,) and a["reward"].dtype == np.float64
    # every sampled transition is a real one: find its row and compare next_obs / flags
    for i in range(64):
        row = int(np.flatnonzero((ds.observations == a["obs"][i]).all(axis=1))[0])
        np.testing.assert_array_equal(a["next_obs"][i], ds.next_observations[row])
        assert a["terminated"][i] == ds.terminated[row] and a["reward"][i] == ds.rewards[row]


def test_sample_torch(dataset_path: Path) -> None:
    ds = load_dataset(dataset_path)
    t = ds.sample(8, rng=0, torch=True, device="cpu")
    n = ds.sample(8, rng=0)
    assert isinstance(t["obs"], torch.Tensor) and t["obs"].dtype == torch.float32
    assert t["terminated"].dtype == torch.bool
    np.testing.assert_array_equal(t["next_obs"].numpy(), n["next_obs"])


def test_sample_nested_and_empty(tmp_path: Path) -> None:
    obs = spaces.Tuple((spaces.Discrete(4), BOX))
    ds = load_dataset(write(tmp_path / "d.h5", make_episodes(obs, n=2), obs))
    s = ds.sample(5, rng=1)
    assert isinstance(s["obs"], tuple) and s["obs"][1].shape == (5, 3) and s["next_obs"][0].shape == (5,)
    write(tmp_path / "e.h5", [])
    with pytest.raises(ValueError, match="empty"):
        load_dataset(tmp_path / "e.h5").sample(4, rng=0)


def test_cached_arrays_are_read_only_but_results_are_not(dataset_path: Path) -> None:
    ds = load_dataset(dataset_path)
    with pytest.raises(ValueError, match="read-only"):
        ds.rewards[0] = 99.0  # would silently change every later reader of the cache
    with pytest.raises(ValueError, match="read-only"):
        ds.next_observations[0] = 0.0
    df = ds.to_pandas()
    df.loc[0, "reward"] = 99.0
    batch = ds.sample(4, rng=0)
    batch["reward"][:] = 99.0
    assert ds.rewards[0] != 99.0 and load_dataset(dataset_path).rewards[0] != 99.0
