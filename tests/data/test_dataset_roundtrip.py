"""Round trips through DatasetWriter -> load_dataset for every supported space."""

from __future__ import annotations

import json
from pathlib import Path

import gymnasium as gym
import h5py
import numpy as np
import pytest
from tests.data.helpers import BOX, DISCRETE, assert_tree_equal, make_episodes, write
from gymnasium import spaces

from demokit import _version
from demokit.data import DatasetWriter, Episode, load_dataset
from demokit.data.episode import obs_concat
from demokit.spaces import same_space

SPACES = {
    "box": spaces.Box(low=-2.0, high=2.0, shape=(2, 3), dtype=np.float32),
    "box64": spaces.Box(low=-np.inf, high=np.inf, shape=(4,), dtype=np.float64),
    "discrete": spaces.Discrete(5, start=-2),
    "multidiscrete": spaces.MultiDiscrete([3, 4, 2]),
    "multibinary": spaces.MultiBinary(6),
    "dict": spaces.Dict({"pos": spaces.Box(-1, 1, (2,), np.float32), "mode": spaces.Discrete(3)}),
    "tuple": spaces.Tuple((spaces.Discrete(4), spaces.Box(0, 1, (3,), np.float32))),
    "nested": spaces.Dict({
        "a": spaces.Tuple((spaces.MultiBinary(2), spaces.Dict({"z": spaces.Box(-1, 1, (1,), np.float32)}))),
        "b": spaces.MultiDiscrete([2, 2]),
    }),
}


def check_roundtrip(path: Path, eps: list[Episode], obs_space: spaces.Space, act_space: spaces.Space) -> None:
    ds = load_dataset(path)
    assert same_space(ds.observation_space, obs_space) and same_space(ds.action_space, act_space)
    assert len(ds) == sum(len(e) for e in eps) and ds.num_episodes == len(eps)
    assert_tree_equal(ds.observations, obs_concat([e.observations for e in eps]))
    assert_tree_equal(ds.actions, obs_concat([np.asarray(e.actions) for e in eps]) if not isinstance(act_space, (spaces.Dict, spaces.Tuple))
                      else obs_concat([e.actions for e in eps]))
    assert_tree_equal(ds.final_observations, obs_concat([e.final_observation for e in eps]))
    assert_tree_equal(ds.next_observations, obs_concat([e.next_observations for e in eps]))
    np.testing.assert_array_equal(ds.rewards, np.concatenate([e.rewards for e in eps]))
    assert ds.rewards.dtype == np.float64
    np.testing.assert_array_equal(ds.terminated, np.concatenate([e.terminated for e in eps]))
    np.testing.assert_array_equal(ds.truncated, np.concatenate([e.truncated for e in eps]))
    np.testing.assert_array_equal(ds.episode_lengths, [len(e) for e in eps])
    np.testing.assert_array_equal(ds.episode_starts, np.cumsum([0] + [len(e) for e in eps])[:-1])
    np.testing.assert_allclose(ds.episode_returns, [e.episode_return for e in eps])
    np.testing.assert_array_equal(ds.episode_terminated, [e.is_terminated for e in eps])
    np.testing.assert_array_equal(ds.episode_truncated, [e.is_truncated for e in eps])
    np.testing.assert_array_equal(ds.episode_seeds, [e.seed for e in eps])
    for i, e in enumerate(eps):  # from the file (nothing cached) ...
        got = load_dataset(path).episode(i)
        assert_tree_equal(got.observations, e.observations)
        assert_tree_equal(got.final_observation, e.final_observation)
        assert_tree_equal(got.next_observations, e.next_observations)
        np.testing.assert_array_equal(got.rewards, e.rewards)
        assert got.seed == e.seed
    for got, e in zip(ds.iter_episodes(), eps):  # ... and from the cached arrays
        assert_tree_equal(got.observations, e.observations)
        assert_tree_equal(got.final_observation, e.final_observation)
        assert got.is_terminated == e.is_terminated and got.is_truncated == e.is_truncated
    flat = ds.flat_observations()
    assert flat.dtype == np.float32 and flat.shape[0] == len(ds)


@pytest.mark.parametrize("name", sorted(SPACES))
def test_observation_space_roundtrip(tmp_path: Path, name: str) -> None:
    space = SPACES[name]
    eps = make_episodes(space, DISCRETE, n=3)
    check_roundtrip(write(tmp_path / "d.h5", eps, space, DISCRETE), eps, space, DISCRETE)


@pytest.mark.parametrize("name", sorted(SPACES))
def test_action_space_roundtrip(tmp_path: Path, name: str) -> None:
    space = SPACES[name]
    eps = make_episodes(BOX, space, n=3)
    check_roundtrip(write(tmp_path / "d.h5", eps, BOX, space), eps, BOX, space)


def test_nested_observations_are_groups(tmp_path: Path) -> None:
    space = SPACES["nested"]
    path = write(tmp_path / "d.h5", make_episodes(space, DISCRETE, n=2), space, DISCRETE)
    with h5py.File(path, "r") as f:
        assert isinstance(f["observations"], h5py.Group)
        assert f["observations/a/0"].dtype == np.int8
        assert f["observations/a/1/z"].shape[1:] == (1,)
        assert f["final_observations/b"].shape == (2, 2)


def test_metadata_and_provenance(tmp_path: Path) -> None:
    spec = gym.spec("CartPole-v1")
    env = gym.make("CartPole-v1")
    eps = make_episodes(env.observation_space, env.action_space, n=2)
    prov = {"policy": "ppo", "checkpoint_sha256": "ab" * 32, "return": 500.0, "seed": 3, "command": "demokit collect"}
    path = write(tmp_path / "d.h5", eps, env.observation_space, env.action_space, env_id=None, env_spec=spec,
                 provenance=prov)
    ds = load_dataset(path)
    assert ds.env_id == "CartPole-v1"  # taken from the spec
    meta = ds.metadata
    assert meta["format"] == "demokit" and meta["format_version"] == 1 and ds.format_version == 1
    assert meta["demokit_version"] == _version.__version__
    assert meta["total_steps"] == len(ds) and meta["total_episodes"] == 2
    assert meta["created"].endswith("Z") and "T" in meta["created"]
    assert ds.provenance == prov
    assert ds.env_spec["id"] == "CartPole-v1" and ds.env_spec["max_episode_steps"] == 500
    remade = gym.make(gym.envs.registration.EnvSpec.from_json(json.dumps(ds.env_spec)))
    assert remade.spec.max_episode_steps == 500
    ds.check_env("CartPole-v1")
    with h5py.File(path, "r") as f:
        assert json.loads(f.attrs["observation_space"])["type"] == "Box"
        assert f["rewards"].maxshape == (None,) and f["observations"].chunks is not None


def test_extras_inferred_and_declared(tmp_path: Path) -> None:
    extras = {"log_prob": lambda T, rng: rng.normal(size=T).astype(np.float32),
              "value": lambda T, rng: rng.normal(size=(T, 2))}
    eps = make_episodes(n=3, extras=extras)
    ds = load_dataset(write(tmp_path / "a.h5", eps))
    assert sorted(ds.extras) == ["log_prob", "value"]
    assert ds.extras["log_prob"].dtype == np.float32 and ds.extras["value"].shape == (len(ds), 2)
    np.testing.assert_array_equal(ds.extras["value"], np.concatenate([e.extras["value"] for e in eps]))
    np.testing.assert_array_equal(ds.episode(1).extras["log_prob"], eps[1].extras["log_prob"])
    declared = {"log_prob": ((), np.float64), "value": ((2,), np.float32)}
    ds2 = load_dataset(write(tmp_path / "b.h5", eps, extras=declared))
    assert ds2.extras["log_prob"].dtype == np.float64 and ds2.extras["value"].dtype == np.float32
    assert ds2.extras_spec == {"log_prob": ((), np.dtype(np.float64)), "value": ((2,), np.dtype(np.float32))}


def test_episodes_with_different_extras_are_refused(tmp_path: Path) -> None:
    eps = make_episodes(n=2, extras={"v": lambda T, rng: np.zeros(T)})
    bare = make_episodes(n=1)
    with pytest.raises(ValueError, match="same extra arrays"):
        write(tmp_path / "d.h5", eps + bare)
    assert not (tmp_path / "d.h5").exists()


@pytest.mark.parametrize("compression", [None, "gzip", "lzf", "none"])
def test_compression(tmp_path: Path, compression: str | None) -> None:
    eps = make_episodes(n=3)
    path = write(tmp_path / "d.h5", eps, compression=compression)
    with h5py.File(path, "r") as f:
        assert f["observations"].compression == (None if compression == "none" else compression)
    check_roundtrip(path, eps, BOX, DISCRETE)


def test_unknown_compression_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown compression 'zstd'"):
        DatasetWriter(tmp_path / "d.h5", observation_space=BOX, action_space=DISCRETE, compression="zstd")


def test_many_blocks_and_empty_dataset(tmp_path: Path) -> None:
    eps = make_episodes(n=7)
    path = tmp_path / "d.h5"
    with DatasetWriter(path, observation_space=BOX, action_space=DISCRETE, block_steps=3) as w:
        w.add_episodes(eps[:3])
        w.flush()
        w.add_episodes(eps[3:])
        assert w.num_episodes == 7 and w.num_steps == sum(len(e) for e in eps)
    check_roundtrip(path, eps, BOX, DISCRETE)
    with DatasetWriter(tmp_path / "e.h5", observation_space=BOX, action_space=DISCRETE):
        pass
    empty = load_dataset(tmp_path / "e.h5")
    assert len(empty) == 0 and empty.num_episodes == 0 and empty.observations.shape == (0, 3)
    assert len(empty.to_pandas()) == 0 and len(empty.episodes_frame()) == 0


def test_bad_episode_shape_refused(tmp_path: Path) -> None:
    ep = make_episodes(spaces.Box(-1, 1, (2,), np.float32), n=1)[0]
    with pytest.raises(ValueError, match=r"episode observations has shape \(\d+, 2\), expected"):
        write(tmp_path / "d.h5", [ep])
    assert not (tmp_path / "d.h5").exists()


def test_add_columns_matches_add_episodes(tmp_path: Path) -> None:
    obs = SPACES["dict"]
    eps = make_episodes(obs, DISCRETE, n=5, extras={"v": lambda T, rng: rng.normal(size=T)})
    cols = dict(observations=obs_concat([e.observations for e in eps[1:4]]),
                actions=np.concatenate([e.actions for e in eps[1:4]]),
                rewards=np.concatenate([e.rewards for e in eps[1:4]]),
                terminated=np.concatenate([e.terminated for e in eps[1:4]]),
                truncated=np.concatenate([e.truncated for e in eps[1:4]]),
                final_observations=obs_concat([e.final_observation for e in eps[1:4]]),
                episode_lengths=[len(e) for e in eps[1:4]], seeds=[e.seed for e in eps[1:4]],
                extras={"v": np.concatenate([e.extras["v"] for e in eps[1:4]])})
    path = tmp_path / "d.h5"
    with DatasetWriter(path, observation_space=obs, action_space=DISCRETE) as w:
        w.add_episode(eps[0])  # buffered, must stay first
        w.add_columns(**cols)
        w.add_episode(eps[4])
        assert w.num_episodes == 5
    check_roundtrip(path, eps, obs, DISCRETE)


def test_add_columns_checks(tmp_path: Path) -> None:
    eps = make_episodes(n=2)
    base = dict(observations=np.concatenate([e.observations for e in eps]),
                actions=np.concatenate([e.actions for e in eps]), rewards=np.concatenate([e.rewards for e in eps]),
                terminated=np.concatenate([e.terminated for e in eps]),
                truncated=np.concatenate([e.truncated for e in eps]),
                final_observations=np.concatenate([e.final_observation for e in eps]),
                episode_lengths=[len(e) for e in eps])
    with DatasetWriter(tmp_path / "d.h5", observation_space=BOX, action_space=DISCRETE) as w:
        bad = dict(base, terminated=np.ones(len(base["rewards"]), dtype=bool))
        with pytest.raises(ValueError, match="terminated is set on step 0, which is not the last step"):
            w.add_columns(**bad)
        with pytest.raises(ValueError, match=r"actions has shape \(\d+,\), expected"):
            w.add_columns(**dict(base, actions=base["actions"][:-1]))
        with pytest.raises(ValueError, match="final_observations has shape"):
            w.add_columns(**dict(base, final_observations=base["final_observations"][:1]))
        with pytest.raises(ValueError, match=">= 1"):
            w.add_columns(**dict(base, episode_lengths=[0, len(base["rewards"])]))
        w.add_columns(**base)
    ds = load_dataset(tmp_path / "d.h5")
    assert ds.num_episodes == 2 and list(ds.episode_seeds) == [-1, -1]
