"""demokit -> DI-engine expert data (``--to ding``): the pickle of collect_demo_data and the layout of its
hdf5_save, their round trips back to demokit, and DI-engine's hdf5 files as a source."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import gymnasium as gym
import h5py
import numpy as np
import pytest
import torch
from gymnasium import spaces

from demokit.cli.app import main
from demokit.data.convert import convert, detect_source_kind, detect_target_kind, from_ding_pickle, to_ding
from demokit.data.dataset import load_dataset
from demokit.data.episode import Episode
from demokit.data.writer import DatasetWriter
from demokit.errors import UserError

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # notes are asserted where they matter

FIXTURES = Path(__file__).parent / "fixtures" / "ding-0.5.3"


def _episode(rng: np.random.Generator, T: int, end: str, *, obs_dim: int = 4, dtype: type = np.float32,
             first: np.ndarray | None = None, final: np.ndarray | None = None) -> Episode:
    obs = rng.normal(size=(T, obs_dim)).astype(dtype)
    if first is not None:
        obs[0] = first
    return Episode(observations=obs, actions=rng.integers(0, 2, size=T),
                   rewards=rng.normal(size=T).astype(np.float32).astype(np.float64),
                   terminated=np.arange(T) == T - 1 if end == "term" else np.zeros(T, dtype=bool),
                   truncated=np.arange(T) == T - 1 if end == "trunc" else np.zeros(T, dtype=bool),
                   final_observation=(final if final is not None else rng.normal(size=obs_dim)).astype(dtype)[None],
                   extras={"value": rng.normal(size=T).astype(np.float32),
                           "logit": rng.normal(size=(T, 2)).astype(np.float32)})


def _write(path: Path, episodes: list[Episode], *, env_id: str | None = "CartPole-v0",
           obs_space: spaces.Space | None = None, action_space: spaces.Space | None = None) -> Path:
    env = gym.make("CartPole-v0")
    with DatasetWriter(path, observation_space=obs_space or env.observation_space,
                       action_space=action_space or env.action_space, env_id=env_id,
                       env_spec=env.spec if env_id else None) as w:
        w.add_episodes(episodes)
    return path


@pytest.fixture
def mixed(tmp_path: Path) -> Path:
    """CartPole-v0 (limit 200): terminated, truncated by the time limit, truncated early, terminated."""
    rng = np.random.default_rng(3)
    return _write(tmp_path / "mixed.h5", [_episode(rng, 5, "term"), _episode(rng, 200, "trunc"),
                                          _episode(rng, 7, "trunc"), _episode(rng, 3, "term")])


def _assert_same_episodes(a_path: Path, b_path: Path, *, extras: bool = True) -> None:
    a, b = load_dataset(a_path), load_dataset(b_path)
    np.testing.assert_array_equal(a.episode_lengths, b.episode_lengths)
    np.testing.assert_array_equal(a.observations, b.observations)
    np.testing.assert_array_equal(a.actions, b.actions)
    np.testing.assert_array_equal(a.rewards, b.rewards)
    np.testing.assert_array_equal(a.terminated, b.terminated)
    np.testing.assert_array_equal(a.truncated, b.truncated)
    np.testing.assert_array_equal(a.final_observations, b.final_observations)
    if extras:
        assert sorted(a.extras) == sorted(b.extras)
        for k in a.extras:
            np.testing.assert_array_equal(a.extras[k], b.extras[k])


def test_pickle_is_what_collect_demo_data_writes(tmp_path: Path, mixed: Path) -> None:
    res = to_ding(mixed, tmp_path / "expert_data.pkl")
    assert (res.target_kind, res.episodes, res.steps) == ("ding", 4, 215)
    with open(tmp_path / "expert_data.pkl", "rb") as f:
        trs = pickle.load(f)
    with open(FIXTURES / "cartpole.pkl", "rb") as f:  # written by DI-engine 0.5.3's collect_demo_data
        real = pickle.load(f)[0]
    assert isinstance(trs, list) and len(trs) == 215
    for key, value in real.items():  # every key DI-engine writes, with its type, dtype and shape
        ours = trs[0][key]
        assert type(ours) is type(value), key
        if isinstance(value, torch.Tensor):
            assert (ours.dtype, ours.shape) == (value.dtype, value.shape), key
    assert list(trs[0])[:5] == ["obs", "next_obs", "action", "reward", "done"] and list(trs[0])[-1] == "collect_iter"
    assert sorted(trs[0]) == sorted([*real, "logit", "value"])  # + the extras
    assert trs[0]["collect_iter"] == 0 and trs[0]["value"].shape == () and trs[0]["logit"].shape == (2,)
    ds = load_dataset(mixed)
    np.testing.assert_array_equal(torch.stack([t["obs"] for t in trs]).numpy(), ds.observations)
    np.testing.assert_array_equal(torch.stack([t["next_obs"] for t in trs]).numpy(), ds.next_observations)
    np.testing.assert_array_equal(torch.stack([t["action"] for t in trs]).numpy()[:, 0], ds.actions)
    np.testing.assert_array_equal(torch.stack([t["reward"] for t in trs]).numpy()[:, 0], ds.rewards)
    ends = np.cumsum(ds.episode_lengths) - 1
    done = np.array([t["done"] for t in trs])
    # terminated -> True, truncated by the 200-step limit -> True, truncated early -> False
    np.testing.assert_array_equal(np.flatnonzero(done), ends[[0, 1, 3]])
    assert trs[1]["next_obs"] is trs[2]["obs"]  # shared within an episode, as DI-engine's collector shares it
    notes = " ".join(res.notes)
    assert "time limit of CartPole-v0 (200 steps) end with done=True" in notes
    assert "1 truncated episode(s) end with done=False" in notes


@pytest.mark.parametrize("name", ["expert_data.pkl", "expert_demos.hdf5"])
def test_round_trip_gives_back_the_same_episodes(tmp_path: Path, mixed: Path, name: str) -> None:
    to_ding(mixed, tmp_path / name)
    assert detect_source_kind(tmp_path / name) == "ding"
    res = convert(tmp_path / name, tmp_path / "back.h5", env_id="CartPole-v0")
    _assert_same_episodes(mixed, tmp_path / "back.h5")
    assert load_dataset(tmp_path / "back.h5").env_id == "CartPole-v0"
    assert not any("ambiguous" in n for n in res.notes)


def test_without_env_a_pickle_reads_its_time_limit_end_as_a_termination(tmp_path: Path, mixed: Path) -> None:
    to_ding(mixed, tmp_path / "e.pkl")
    res = convert(tmp_path / "e.pkl", tmp_path / "back.h5")
    back = load_dataset(tmp_path / "back.h5")
    np.testing.assert_array_equal(back.episode_terminated, [True, True, False, True])  # the 200-step one
    np.testing.assert_array_equal(back.episode_truncated, [False, False, True, False])
    assert any("every done counts as a termination" in n for n in res.notes)
    # the hdf5 layout names the env in an attribute: its time limit applies without --env
    to_ding(mixed, tmp_path / "e.hdf5")
    convert(tmp_path / "e.hdf5", tmp_path / "back2.h5")
    _assert_same_episodes(mixed, tmp_path / "back2.h5")


def test_hdf5_is_the_layout_of_hdf5_save(tmp_path: Path, mixed: Path) -> None:
    to_ding(mixed, tmp_path / "expert_demos.hdf5")
    with h5py.File(tmp_path / "expert_demos.hdf5") as ours, h5py.File(FIXTURES / "cartpole_demos.hdf5") as real:
        for key in real:  # obs, action, reward, done, next_obs: dtype, per-row shape, gzip
            assert (ours[key].dtype, ours[key].shape[1:], ours[key].compression) == (
                real[key].dtype, real[key].shape[1:], real[key].compression), key
        assert sorted(ours) == sorted([*real, "logit", "value"])  # + the extras, as root datasets
        assert not [k for k in ours if isinstance(ours[k], h5py.Group)]  # HDF5Dataset slices every root key
        assert ours.attrs["demokit_env_id"] == "CartPole-v0"
        assert json.loads(ours.attrs["demokit_provenance"])["converted_from"]["kind"] == "demokit"
        ds = load_dataset(mixed)
        np.testing.assert_array_equal(ours["next_obs"][()], ds.next_observations)
        np.testing.assert_array_equal(ours["reward"][()][:, 0], ds.rewards)
    to_ding(mixed, tmp_path / "lzf.hdf5", compression="lzf")
    with h5py.File(tmp_path / "lzf.hdf5") as h5:
        assert h5["obs"].compression == "lzf"


def test_real_di_engine_files_read_alike_in_both_layouts(tmp_path: Path) -> None:
    """DI-engine 0.5.3's own collect_demo_data files (pickle and hdf5_save, the same collection)."""
    for name, env_id, episodes in (("cartpole", "CartPole-v0", 9), ("pendulum", "Pendulum-v1", 2)):
        assert detect_source_kind(FIXTURES / f"{name}_demos.hdf5") == "ding"
        a = convert(FIXTURES / f"{name}.pkl", tmp_path / f"{name}-pkl.h5", env_id=env_id)
        b = convert(FIXTURES / f"{name}_demos.hdf5", tmp_path / f"{name}-hdf5.h5", env_id=env_id)
        assert a.episodes == b.episodes == episodes
        _assert_same_episodes(tmp_path / f"{name}-pkl.h5", tmp_path / f"{name}-hdf5.h5")
        assert any("'collect_iter' is 0" in n for n in a.notes)
    pendulum = load_dataset(tmp_path / "pendulum-pkl.h5")  # 200 steps then 30 still running
    np.testing.assert_array_equal(pendulum.episode_lengths, [200, 30])
    np.testing.assert_array_equal(pendulum.episode_truncated, [True, True])


def test_real_pickle_through_demokit_and_back_keeps_every_transition(tmp_path: Path) -> None:
    convert(FIXTURES / "cartpole.pkl", tmp_path / "c.h5", env_id="CartPole-v0")
    to_ding(tmp_path / "c.h5", tmp_path / "again.pkl")
    with open(FIXTURES / "cartpole.pkl", "rb") as f:
        real = pickle.load(f)
    with open(tmp_path / "again.pkl", "rb") as f:
        again = pickle.load(f)

    def rows(trs: list[dict]) -> set[tuple]:
        return {(t["obs"].numpy().tobytes(), t["next_obs"].numpy().tobytes(), int(t["action"]), float(t["reward"]),
                 t["done"]) for t in trs}

    assert len(again) == len(real) and rows(again) == rows(real)  # re-linked into episodes, nothing changed


def test_float64_data_is_written_as_float32_with_a_note(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    box = spaces.Box(-np.inf, np.inf, shape=(3,), dtype=np.float64)
    eps = [_episode(rng, 4, "term", obs_dim=3, dtype=np.float64), _episode(rng, 3, "trunc", obs_dim=3, dtype=np.float64)]
    src = _write(tmp_path / "f64.h5", eps, env_id=None, obs_space=box, action_space=spaces.Discrete(2))
    res = to_ding(src, tmp_path / "f64.pkl")
    with open(tmp_path / "f64.pkl", "rb") as f:
        assert pickle.load(f)[0]["obs"].dtype == torch.float32
    assert any("observations (and next_obs) are float64 and were written as float32" in n for n in res.notes)
    convert(tmp_path / "f64.pkl", tmp_path / "back.h5")
    back = load_dataset(tmp_path / "back.h5")
    np.testing.assert_allclose(back.observations, load_dataset(src).observations, rtol=1e-6)
    np.testing.assert_array_equal(back.episode_truncated, [False, True])


def test_truncated_episode_ending_where_a_later_one_starts_keeps_done_true(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    joint = rng.normal(size=4).astype(np.float32)
    src = _write(tmp_path / "j.h5", [_episode(rng, 4, "trunc", final=joint), _episode(rng, 5, "term", first=joint)])
    res = to_ding(src, tmp_path / "j.pkl")
    assert any("end where a later episode starts" in n for n in res.notes)
    assert convert(tmp_path / "j.pkl", tmp_path / "back.h5").episodes == 2  # not joined into one


def test_reward_free_data_has_no_reward_key(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    eps = [_episode(rng, 4, "term"), _episode(rng, 3, "term")]
    eps = [Episode(observations=e.observations, actions=e.actions, rewards=None, terminated=e.terminated,
                   truncated=e.truncated, final_observation=e.final_observation) for e in eps]
    src = _write(tmp_path / "free.h5", eps)
    res = to_ding(src, tmp_path / "free.pkl")
    assert any("reward-free" in n for n in res.notes)
    with open(tmp_path / "free.pkl", "rb") as f:
        assert "reward" not in pickle.load(f)[0]
    to_ding(src, tmp_path / "free.hdf5")
    with h5py.File(tmp_path / "free.hdf5") as h5:
        assert "reward" not in h5
    for name in ("free.pkl", "free.hdf5"):
        back = load_dataset(convert(tmp_path / name, tmp_path / f"{name}.h5", env_id="CartPole-v0").path)
        assert not back.has_rewards and back.num_episodes == 2


def test_extras_named_like_di_engine_keys_are_skipped_with_a_note(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    ep = _episode(rng, 4, "term")
    ep = Episode(observations=ep.observations, actions=ep.actions, rewards=ep.rewards, terminated=ep.terminated,
                 truncated=ep.truncated, final_observation=ep.final_observation,
                 extras={"timeout": np.ones(4, dtype=bool), "collect_iter": np.arange(4)})
    res = to_ding(_write(tmp_path / "x.h5", [ep]), tmp_path / "x.pkl")
    assert any("extra 'timeout' skipped" in n for n in res.notes)
    with open(tmp_path / "x.pkl", "rb") as f:
        trs = pickle.load(f)
    assert "timeout" not in trs[0] and [t["collect_iter"] for t in trs] == [0, 1, 2, 3]  # Python ints


def test_nested_spaces_are_refused_in_one_line_and_nothing_is_written(tmp_path: Path, capsys) -> None:
    obs_space = spaces.Dict({"pos": spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)})
    ep = Episode(observations={"pos": np.zeros((3, 2), dtype=np.float32)}, actions=np.zeros(3, dtype=np.int64),
                 rewards=np.ones(3), terminated=np.array([False, False, True]), truncated=np.zeros(3, dtype=bool),
                 final_observation={"pos": np.zeros((1, 2), dtype=np.float32)})
    src = _write(tmp_path / "dict.h5", [ep], env_id=None, obs_space=obs_space, action_space=spaces.Discrete(2))
    with pytest.raises(UserError, match="holds one array per observation"):
        to_ding(src, tmp_path / "dict.pkl")
    assert main(["convert", str(src), str(tmp_path / "dict.hdf5"), "--to", "ding"]) == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(err) == 1 and err[0].startswith("error: ") and "Dict" in err[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dict.h5"]  # no output, no temp file


def test_cli_detects_pkl_and_refuses_compression_for_a_pickle(tmp_path: Path, mixed: Path, capsys) -> None:
    assert detect_target_kind(tmp_path / "x.pkl") == "ding"
    assert detect_target_kind(tmp_path / "x.hdf5", "ding") == "ding"
    assert main(["convert", str(mixed), str(tmp_path / "out.pkl"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["target_kind"] == "ding"
    assert main(["convert", str(mixed), str(tmp_path / "c.pkl"), "--compression", "gzip"]) == 2
    assert "--compression applies to HDF5 files" in capsys.readouterr().err
    assert not (tmp_path / "c.pkl").exists()


@pytest.mark.parametrize("mutate, message", [
    (lambda h5: h5.__delitem__("action") or h5.create_dataset("action", data=np.zeros(5, dtype=np.int64)),
     r"field 'action' has 5 rows but 'obs' has 6"),
    (lambda h5: h5.__delitem__("reward") or h5.create_dataset("reward", data=np.zeros((6, 2), dtype=np.float32)),
     r"'reward' has per-step shape \(2,\)"),
    (lambda h5: h5.__delitem__("done") or h5.create_dataset("done", data=True), r"dataset 'done' is a scalar"),
    (lambda h5: h5.__delitem__("obs") or h5.create_group("obs").create_dataset("a", data=np.zeros(6)),
     r"'obs' is a group \(Dict obs"),
    (lambda h5: h5.__delitem__("action"), r"no dataset 'action'"),
])
def test_malformed_di_engine_hdf5_is_refused_naming_file_and_field(tmp_path: Path, mutate, message: str) -> None:
    path = tmp_path / "bad_demos.hdf5"
    with h5py.File(path, "w") as h5:
        h5["obs"] = np.zeros((6, 4), dtype=np.float32)
        h5["next_obs"] = np.ones((6, 4), dtype=np.float32)
        h5["action"] = np.zeros((6, 1), dtype=np.int64)
        h5["reward"] = np.ones((6, 1), dtype=np.float32)
        h5["done"] = np.arange(6) == 5
        mutate(h5)
    with pytest.raises(UserError, match=f"{path}: .*{message}|{path}: {message}"):
        from_ding_pickle(path, tmp_path / "out.h5")
    assert not (tmp_path / "out.h5").exists()
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".")]
