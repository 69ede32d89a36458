"""robomimic HDF5 <-> demokit: the documented layout read array for array, filter keys as episode subsets,
round trips exact, bad input refused with one error line."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
from gymnasium import spaces

from demokit.cli.app import main
from demokit.data import DatasetWriter, Episode, load_dataset
from demokit.data.convert import convert, detect_source_kind
from demokit.data.filter import filter_dataset
from demokit.errors import UserError
from tests.data.convert.sources import write_demokit_cartpole


def write_robomimic_by_hand(path: Path, lengths=(4, 6, 3), *, inner_done: bool = False, rewards: bool = True,
                            env_name: str = "Lift", masks=None) -> dict:
    """A robosuite-style robomimic file (robomimic's documented 'Dataset Structure'), made with h5py only."""
    rng = np.random.default_rng(0)
    demos = {}
    with h5py.File(path, "w") as f:
        data = f.create_group("data")
        data.attrs["total"] = sum(lengths)
        data.attrs["env_args"] = json.dumps({"env_name": env_name, "env_type": 1,
                                             "env_kwargs": {"robots": ["Panda"], "control_freq": 20}})
        for i, n in enumerate(lengths):
            g = data.create_group(f"demo_{i}")
            g.attrs["num_samples"] = n
            g.attrs["model_file"] = "<mujoco/>"
            traj = {"eef": rng.normal(size=(n + 1, 3)), "gripper": rng.normal(size=(n + 1, 2)).astype(np.float32),
                    "image": rng.integers(0, 256, size=(n + 1, 4, 4, 3), dtype=np.uint8)}
            for k, v in traj.items():
                g.create_dataset(f"obs/{k}", data=v[:-1])
                g.create_dataset(f"next_obs/{k}", data=v[1:])
            dones = np.zeros(n, dtype=np.int64)
            dones[-1] = 1 if i != 1 else 0  # demo 1 stops without success
            if inner_done and i == 0:
                dones[-2] = 1
            demo = {"obs": traj, "actions": rng.uniform(-1, 1, size=(n, 7)), "rewards": rng.normal(size=n),
                    "dones": dones, "states": rng.normal(size=(n, 9))}
            g.create_dataset("actions", data=demo["actions"])
            if rewards:
                g.create_dataset("rewards", data=demo["rewards"])
            g.create_dataset("dones", data=dones)
            g.create_dataset("states", data=demo["states"])
            demos[i] = demo
        for key, members in (masks or {}).items():
            f.create_dataset(f"mask/{key}", data=np.array(members, dtype="S"))
    return demos


def test_robosuite_style_file_converts_array_for_array(tmp_path):
    src = tmp_path / "lift.hdf5"
    demos = write_robomimic_by_hand(src, lengths=(4, 6, 3, 5, 2, 7, 8, 9, 10, 11, 12),
                                    masks={"train": ["demo_0", "demo_2", "demo_10"], "valid": ["demo_1"]})
    assert detect_source_kind(src) == "robomimic"
    with pytest.warns(UserWarning, match="not a gymnasium env"):
        res = convert(src, tmp_path / "lift.h5")
    ds = load_dataset(res.path)
    assert res.spaces_inferred and ds.env_id == "Lift" and ds.num_episodes == 11
    assert isinstance(ds.observation_space, spaces.Dict)
    assert set(ds.observation_space.spaces) == {"eef", "gripper", "image"}
    assert ds.observation_space["image"].dtype == np.uint8 and ds.observation_space["gripper"].dtype == np.float32
    order = list(range(11))  # demo_10 comes after demo_9, not after demo_1
    for k, i in enumerate(order):
        ep, demo = ds.episode(k), demos[i]
        for key, traj in demo["obs"].items():
            np.testing.assert_array_equal(ep.observations[key], traj[:-1])
            np.testing.assert_array_equal(ep.final_observation[key][0], traj[-1])
        np.testing.assert_array_equal(ep.actions, demo["actions"])
        np.testing.assert_array_equal(ep.rewards, demo["rewards"])
        np.testing.assert_array_equal(ep.extras["states"], demo["states"])
        assert ep.is_terminated == bool(demo["dones"][-1]) and ep.is_truncated == (not demo["dones"][-1])
    conv = ds.provenance["converted_from"]
    assert conv["kind"] == "robomimic" and conv["env_args"]["env_name"] == "Lift"
    assert conv["filter_keys"] == {"train": [0, 2, 10], "valid": [1]}
    # filter keys are episode subsets
    sub = filter_dataset(res.path, tmp_path / "train.h5", subset="train")
    assert sub.source_episodes == (0, 2, 10)
    with pytest.raises(UserError, match="no subset 'test'"):
        filter_dataset(res.path, tmp_path / "x.h5", subset="test")
    # and go back to robomimic as filter keys
    back = tmp_path / "back.hdf5"
    convert(res.path, back, to="robomimic")
    with h5py.File(back, "r") as f:
        assert [m.decode() for m in f["mask/train"][()]] == ["demo_0", "demo_2", "demo_10"]
        assert json.loads(f["data"].attrs["env_args"])["env_kwargs"]["control_freq"] == 20
        np.testing.assert_array_equal(f["data/demo_10/obs/image"][()], demos[10]["obs"]["image"][:-1])
        np.testing.assert_array_equal(f["data/demo_3/next_obs/eef"][()], demos[3]["obs"]["eef"][1:])
        np.testing.assert_array_equal(f["data/demo_1/dones"][()], demos[1]["dones"])
        assert f["data"].attrs["total"] == sum(len(d["actions"]) for d in demos.values())


def test_inner_dones_are_kept_as_an_extra(tmp_path):
    src = tmp_path / "r.hdf5"
    demos = write_robomimic_by_hand(src, inner_done=True)
    with pytest.warns(UserWarning, match="done-on-success"):
        res = convert(src, tmp_path / "r.h5")
    ds = load_dataset(res.path)
    np.testing.assert_array_equal(ds.extras["robomimic.dones"], np.concatenate([d["dones"] for d in demos.values()]))
    assert ds.episode_lengths.tolist() == [4, 6, 3]
    convert(res.path, tmp_path / "r2.hdf5", to="robomimic")
    with h5py.File(tmp_path / "r2.hdf5", "r") as f:
        np.testing.assert_array_equal(f["data/demo_0/dones"][()], demos[0]["dones"])


def _assert_datasets_equal(a, b):
    assert a.observation_space == b.observation_space and a.action_space == b.action_space
    assert a.env_id == b.env_id and a.num_episodes == b.num_episodes
    for k in range(a.num_episodes):
        x, y = a.episode(k), b.episode(k)
        for name in ("actions", "rewards", "terminated", "truncated"):
            np.testing.assert_array_equal(getattr(x, name), getattr(y, name))
            assert np.asarray(getattr(x, name)).dtype == np.asarray(getattr(y, name)).dtype
        for leaf_x, leaf_y in zip(_leaves(x.observations), _leaves(y.observations)):
            np.testing.assert_array_equal(leaf_x, leaf_y)
            assert leaf_x.dtype == leaf_y.dtype
        for leaf_x, leaf_y in zip(_leaves(x.final_observation), _leaves(y.final_observation)):
            np.testing.assert_array_equal(leaf_x, leaf_y)
        assert x.seed == y.seed and sorted(x.extras) == sorted(y.extras)
        for name in x.extras:
            np.testing.assert_array_equal(x.extras[name], y.extras[name])


def _leaves(obs):
    if isinstance(obs, dict):
        return [leaf for k in sorted(obs) for leaf in _leaves(obs[k])]
    return [np.asarray(obs)]


def test_demokit_robomimic_demokit_is_exact(tmp_path, demokit_cartpole):
    mid, back = tmp_path / "cp.hdf5", tmp_path / "back.h5"
    res = convert(demokit_cartpole, mid, to="robomimic")
    assert res.target_kind == "robomimic" and detect_source_kind(mid) == "robomimic"
    with h5py.File(mid, "r") as f:  # robomimic's layout
        assert json.loads(f["data"].attrs["env_args"]) == {"env_name": "CartPole-v1", "env_type": 2, "env_kwargs": {}}
        assert f["data/demo_0/obs/obs"].shape == (5, 4) and f["data/demo_0"].attrs["num_samples"] == 5
    convert(mid, back)
    _assert_datasets_equal(load_dataset(demokit_cartpole), load_dataset(back))


def test_nested_observations_round_trip(tmp_path):
    space = spaces.Dict({"pos": spaces.Box(-2, 2, shape=(2,), dtype=np.float32), "mode": spaces.Discrete(3)})
    act = spaces.Box(-1, 1, shape=(2,), dtype=np.float32)
    rng = np.random.default_rng(1)
    path = tmp_path / "nested.h5"
    with DatasetWriter(path, observation_space=space, action_space=act, env_id=None) as w:
        for n in (3, 5):
            term = np.zeros(n, dtype=bool)
            term[-1] = True
            w.add_episode(Episode(observations={"pos": rng.uniform(-2, 2, (n, 2)).astype(np.float32),
                                                "mode": rng.integers(0, 3, n)},
                                  actions=rng.uniform(-1, 1, (n, 2)).astype(np.float32), rewards=rng.normal(size=n),
                                  terminated=term, truncated=np.zeros(n, dtype=bool),
                                  final_observation={"pos": np.zeros((1, 2), np.float32), "mode": np.array([1])},
                                  seed=7))
    convert(path, tmp_path / "n.hdf5", to="robomimic")
    convert(tmp_path / "n.hdf5", tmp_path / "n2.h5")
    _assert_datasets_equal(load_dataset(path), load_dataset(tmp_path / "n2.h5"))


def test_gym_env_name_gives_the_env_spaces(tmp_path, demokit_cartpole):
    mid = tmp_path / "cp.hdf5"
    convert(demokit_cartpole, mid, to="robomimic")
    with h5py.File(mid, "r+") as f:  # a robomimic file of a gym env written by another tool
        del f["data"].attrs["demokit"]
    ds = load_dataset(convert(mid, tmp_path / "cp.h5").path)
    assert ds.env_id == "CartPole-v1" and ds.action_space == spaces.Discrete(2)
    assert not ds.provenance["spaces_inferred"]


@pytest.mark.parametrize("case,needle", [
    ("some_rewards", "or none (a reward-free dataset)"),
    ("short_obs", "rows but actions has"),
    ("bad_count", "num_samples says"),
    ("no_demos", "nor a robomimic file"),
])
def test_bad_files_are_refused_with_one_line(tmp_path, capsys, case, needle):
    src = tmp_path / "bad.hdf5"
    write_robomimic_by_hand(src)
    with h5py.File(src, "r+") as f:
        if case == "some_rewards":
            del f["data/demo_1/rewards"]
        elif case == "short_obs":
            del f["data/demo_1/obs/eef"]
            f.create_dataset("data/demo_1/obs/eef", data=np.zeros((2, 3)))
        elif case == "bad_count":
            f["data/demo_2"].attrs["num_samples"] = 99
        elif case == "no_demos":
            for name in list(f["data"].keys()):
                del f["data"][name]
    assert main(["convert", str(src), str(tmp_path / "out.h5")]) == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("error")]
    assert len(err) == 1 and needle in err[0], err
    assert not (tmp_path / "out.h5").exists()


def test_write_refuses_nested_actions(tmp_path):
    path = write_demokit_cartpole(tmp_path / "cp.h5")
    convert(path, tmp_path / "ok.hdf5", to="robomimic")
    with pytest.raises(UserError, match="already exists"):
        convert(path, tmp_path / "ok.hdf5", to="robomimic")
