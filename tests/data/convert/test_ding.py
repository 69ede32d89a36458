"""DI-engine expert data (pickled list of dicts of torch tensors) -> demokit."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from gymnasium import spaces
from tests.data.convert.sources import ding_transitions, write_pickle

from demokit.data.convert import convert, detect_source_kind, from_ding_pickle
from demokit.data.convert.safe_pickle import UnsafePickleError
from demokit.data.dataset import load_dataset
from demokit.errors import SpaceMismatchError, UserError
from demokit.spaces import same_space

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # notes are asserted where they matter


def _column(transitions: list[dict], key: str) -> np.ndarray:
    return np.stack([np.asarray(t[key]) for t in transitions])


@pytest.mark.parametrize("protocol", [2, pickle.DEFAULT_PROTOCOL, 5])
def test_pickled_tensors_convert_exactly(tmp_path: Path, protocol: int) -> None:
    trs = ding_transitions([4, 6, 3])
    src = write_pickle(tmp_path / "expert.pkl", trs, protocol=protocol)
    assert detect_source_kind(src) == "ding"
    res = from_ding_pickle(src, tmp_path / "out.h5")
    assert (res.source_kind, res.episodes, res.steps, res.spaces_inferred) == ("ding", 3, 13, True)
    ds = load_dataset(tmp_path / "out.h5")
    np.testing.assert_array_equal(ds.observations, _column(trs, "obs"))
    np.testing.assert_array_equal(ds.next_observations, _column(trs, "next_obs"))
    np.testing.assert_array_equal(ds.actions, _column(trs, "action")[:, 0])
    np.testing.assert_array_equal(ds.rewards, _column(trs, "reward")[:, 0].astype(np.float64))
    np.testing.assert_array_equal(ds.episode_lengths, [4, 6, 3])
    np.testing.assert_array_equal(ds.episode_terminated, [True, True, True])
    assert not ds.truncated.any()
    np.testing.assert_array_equal(ds.extras["logit"], _column(trs, "logit"))
    np.testing.assert_array_equal(ds.extras["value"], _column(trs, "value"))
    np.testing.assert_array_equal(ds.extras["collect_iter"], np.full(13, 3))
    assert same_space(ds.action_space, spaces.Discrete(2))
    assert ds.observation_space.shape == (4,) and ds.observation_space.dtype == np.float32
    assert ds.provenance["spaces_inferred"] is True
    assert any("every done counts as a termination" in n for n in ds.provenance["conversion_notes"])


def test_numpy_and_python_values_and_torch_save(tmp_path: Path) -> None:
    trs = [{k: (v.numpy() if isinstance(v, torch.Tensor) else v) for k, v in t.items()} for t in ding_transitions([3, 2])]
    for t in trs:
        t["reward"] = float(t["reward"][0])
        t["action"] = int(t["action"][0])
    write_pickle(tmp_path / "np.pkl", trs)
    torch.save(ding_transitions([3, 2]), tmp_path / "expert.pt")
    for name in ("np.pkl", "expert.pt"):
        res = convert(tmp_path / name, tmp_path / f"{name}.h5")
        assert (res.episodes, res.steps) == (2, 5)
    np.testing.assert_array_equal(load_dataset(tmp_path / "np.pkl.h5").observations,
                                  load_dataset(tmp_path / "expert.pt.h5").observations)


def test_env_time_limit_marks_truncation(tmp_path: Path) -> None:
    """With --env, an episode of exactly max_episode_steps ended by the time limit."""
    trs = ding_transitions([200, 7], obs_dim=2)  # MountainCar-v0: 2-d obs, limit 200, 3 actions
    src = write_pickle(tmp_path / "mc.pkl", trs)
    with pytest.warns(UserWarning, match="marked truncated"):
        res = convert(src, tmp_path / "mc.h5", env_id="MountainCar-v0")
    assert not res.spaces_inferred
    ds = load_dataset(tmp_path / "mc.h5")
    np.testing.assert_array_equal(ds.episode_truncated, [True, False])
    np.testing.assert_array_equal(ds.episode_terminated, [False, True])
    assert ds.env_id == "MountainCar-v0" and same_space(ds.action_space, spaces.Discrete(3))
    with pytest.raises(SpaceMismatchError, match="CartPole-v1"):
        convert(src, tmp_path / "bad.h5", env_id="CartPole-v1")
    assert not (tmp_path / "bad.h5").exists()


def test_explicit_truncation_key_and_trailing_piece(tmp_path: Path) -> None:
    trs = ding_transitions([3, 4, 2])
    trs[6]["timeout"] = True  # end of the second episode: a time limit
    for t in trs:
        t.setdefault("timeout", False)
    trs[-1]["done"] = False  # the last episode was cut by the collector
    src = write_pickle(tmp_path / "e.pkl", trs)
    with pytest.warns(UserWarning, match="no done at their end"):
        convert(src, tmp_path / "e.h5")
    ds = load_dataset(tmp_path / "e.h5")
    np.testing.assert_array_equal(ds.episode_terminated, [True, False, False])
    np.testing.assert_array_equal(ds.episode_truncated, [False, True, True])
    assert "timeout" not in ds.extras


def test_malicious_pickle_is_refused_and_nothing_runs_or_is_written(tmp_path: Path) -> None:
    pwned = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {pwned}",))

    trs = ding_transitions([2])
    trs[1]["logit"] = Evil()
    src = write_pickle(tmp_path / "evil.pkl", trs)
    with pytest.raises(UnsafePickleError, match=r"refers to posix\.system|refers to nt\.system"):
        convert(src, tmp_path / "out.h5")
    assert not pwned.exists() and not (tmp_path / "out.h5").exists()


@pytest.mark.parametrize("mutate, message", [
    (lambda trs: trs[2].pop("done"), r"transition 2 lacks 'done'"),
    (lambda trs: trs[3].update(obs=torch.zeros(5)), r"transition 3 has 'obs' of shape \(5,\) but transition 0 has shape \(4,\)"),
    (lambda trs: trs[1].update(reward=torch.zeros(2)), r"transition 1 has 'reward' of shape \(2,\)"),
    (lambda trs: trs.__setitem__(0, [1, 2]), r"transition 0 is a list, not a dict"),
])
def test_inconsistent_transitions_are_refused(tmp_path: Path, mutate, message: str) -> None:
    trs = ding_transitions([3, 2])
    mutate(trs)
    src = write_pickle(tmp_path / "bad.pkl", trs)
    with pytest.raises(UserError, match=message):
        convert(src, tmp_path / "out.h5")
    assert not (tmp_path / "out.h5").exists()


def test_not_a_list_and_empty(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="holds a int; DI-engine expert data is a list"):
        convert(write_pickle(tmp_path / "int.pkl", 3), tmp_path / "o.h5")
    with pytest.raises(UserError, match="empty"):
        convert(write_pickle(tmp_path / "empty.pkl", []), tmp_path / "o.h5")
    assert not (tmp_path / "o.h5").exists()


def test_inferred_spaces_are_replaced_by_the_env_later(tmp_path: Path) -> None:
    src = write_pickle(tmp_path / "expert.pkl", ding_transitions([3, 2]))
    convert(src, tmp_path / "inferred.h5")
    res = convert(tmp_path / "inferred.h5", tmp_path / "env.h5", env_id="CartPole-v1")
    assert not res.spaces_inferred
    ds = load_dataset(tmp_path / "env.h5")
    assert ds.env_id == "CartPole-v1" and ds.provenance["spaces_inferred"] is False
    assert np.isfinite(ds.observation_space.high[0])  # CartPole's bounds, not the inferred infinite ones
    assert [h["kind"] for h in ds.provenance["conversion_history"]] == ["ding"]
