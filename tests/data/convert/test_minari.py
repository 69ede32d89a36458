"""Minari 0.5 <-> demokit: hand-written Minari directories, the real minari package, round trips."""

from __future__ import annotations

import json
from pathlib import Path

import gymnasium as gym
import h5py
import numpy as np
import pytest
from gymnasium import spaces
from tests.data.convert.sources import (
    cartpole_minari_episodes,
    cartpole_minari_metadata,
    write_minari_by_hand,
)
from tests.data.helpers import BOX, DISCRETE, make_episodes, write

from demokit.data import format as fmt
from demokit.data.convert import convert, from_minari, to_minari
from demokit.data.convert.minari import space_from_minari, space_to_minari
from demokit.data.dataset import load_dataset
from demokit.errors import SpaceMismatchError, UserError
from demokit.spaces import same_space

NESTED_OBS = spaces.Dict({"pos": spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32), "mode": spaces.Discrete(3)})
NESTED_ACT = spaces.Tuple((spaces.Discrete(2), spaces.Box(-2.0, 2.0, shape=(1,), dtype=np.float32)))


@pytest.fixture
def hand_minari(tmp_path: Path) -> tuple[Path, list[dict]]:
    eps = cartpole_minari_episodes([4, 6, 3])
    return write_minari_by_hand(tmp_path / "cartpole-hand-v0", eps, cartpole_minari_metadata(eps)), eps


def test_hand_written_minari_converts_exactly(tmp_path: Path, hand_minari: tuple[Path, list[dict]]) -> None:
    src, eps = hand_minari
    res = from_minari(src, tmp_path / "out.h5")
    assert (res.source_kind, res.episodes, res.steps) == ("minari", 3, 13)
    ds = load_dataset(tmp_path / "out.h5")
    assert ds.env_id == "CartPole-v1" and ds.num_episodes == 3
    assert same_space(ds.observation_space, gym.make("CartPole-v1").observation_space)
    assert same_space(ds.action_space, spaces.Discrete(2))
    for i, ep in enumerate(eps):
        got = ds.episode(i)
        np.testing.assert_array_equal(got.observations, ep["observations"][:-1])
        np.testing.assert_array_equal(got.final_observation, ep["observations"][-1:])
        np.testing.assert_array_equal(got.actions, ep["actions"])
        np.testing.assert_array_equal(got.rewards, ep["rewards"])
        np.testing.assert_array_equal(got.terminated, ep["terminations"])
        np.testing.assert_array_equal(got.truncated, ep["truncations"])
        # infos have T+1 rows (reset info first): extras keep the T rows after each step
        np.testing.assert_array_equal(got.extras["speed"], ep["infos"]["speed"][1:])
        np.testing.assert_array_equal(got.extras["nested.count"], ep["infos"]["nested"]["count"][1:])
        assert got.seed == (ep["seed"] if ep["seed"] is not None else -1)
    prov = ds.provenance
    assert prov["converted_from"]["kind"] == "minari"
    assert prov["converted_from"]["dataset_id"] == "cartpole/hand-v0"
    assert prov["converted_from"]["metadata"]["algorithm_name"] == "random"
    assert prov["spaces_inferred"] is False


def test_data_dir_is_accepted_too(tmp_path: Path, hand_minari: tuple[Path, list[dict]]) -> None:
    src, _ = hand_minari
    assert convert(src / "data", tmp_path / "out.h5").episodes == 3


def test_nested_spaces_by_hand(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    eps = []
    for T in (3, 2):
        eps.append({
            "observations": {"pos": rng.uniform(-1, 1, size=(T + 1, 2)).astype(np.float32),
                             "mode": rng.integers(0, 3, size=T + 1)},
            "actions": (rng.integers(0, 2, size=T), rng.uniform(-2, 2, size=(T, 1)).astype(np.float32)),
            "rewards": rng.normal(size=T), "terminations": np.r_[np.zeros(T - 1), 1].astype(bool),
            "truncations": np.zeros(T, dtype=bool),
        })
    meta = {"dataset_id": "nested-v0", "total_episodes": 2, "total_steps": 5, "data_format": "hdf5",
            "observation_space": json.dumps(space_to_minari(NESTED_OBS)),
            "action_space": json.dumps(space_to_minari(NESTED_ACT)), "minari_version": "0.5.3"}
    src = write_minari_by_hand(tmp_path / "nested-v0", eps, meta)
    res = convert(src, tmp_path / "nested.h5")
    assert res.steps == 5
    ds = load_dataset(tmp_path / "nested.h5")
    assert ds.env_id is None
    assert same_space(ds.observation_space, NESTED_OBS) and same_space(ds.action_space, NESTED_ACT)
    for i, ep in enumerate(eps):
        got = ds.episode(i)
        for key in ("pos", "mode"):
            np.testing.assert_array_equal(got.observations[key], ep["observations"][key][:-1])
            np.testing.assert_array_equal(got.final_observation[key], ep["observations"][key][-1:])
        np.testing.assert_array_equal(got.actions[0], ep["actions"][0])
        np.testing.assert_array_equal(got.actions[1], ep["actions"][1])
    # and back to Minari: the same layout (subgroups per key, _index_i)
    to_minari(tmp_path / "nested.h5", tmp_path / "again-v0")
    with h5py.File(tmp_path / "again-v0" / "data" / "main_data.hdf5") as h5:
        assert sorted(h5["episode_0/observations"].keys()) == ["mode", "pos"]
        assert sorted(h5["episode_1/actions"].keys()) == ["_index_0", "_index_1"]
        np.testing.assert_array_equal(h5["episode_1/observations/pos"][()], eps[1]["observations"]["pos"])


def test_space_json_matches_minari_format() -> None:
    box = gym.make("CartPole-v1").observation_space
    d = space_to_minari(box)
    assert d["type"] == "Box" and d["dtype"] == "float32" and d["shape"] == [4]
    assert d["low"][1] == float("-inf") and d["high"][0] == pytest.approx(4.8)
    assert space_to_minari(spaces.Discrete(3, start=1)) == {"type": "Discrete", "dtype": "int64", "start": 1, "n": 3}
    assert space_to_minari(NESTED_OBS)["subspaces"]["mode"]["n"] == 3
    assert space_to_minari(NESTED_ACT)["subspaces"][1]["type"] == "Box"
    for sp in (box, NESTED_OBS, NESTED_ACT, spaces.MultiDiscrete([3, 4]), spaces.MultiBinary(5)):
        assert same_space(space_from_minari(json.dumps(space_to_minari(sp)), where="t"), sp)
    with pytest.raises(UserError, match="Text"):
        space_from_minari({"type": "Text", "max_length": 3}, where="t")


# --- inconsistent input: refused, nothing written ------------------------------------------


def _broken(tmp_path: Path, mutate) -> Path:
    eps = cartpole_minari_episodes([4, 6])
    meta = cartpole_minari_metadata(eps)
    mutate(eps, meta)
    return write_minari_by_hand(tmp_path / "broken-v0", eps, meta)


@pytest.mark.parametrize("mutate, message", [
    (lambda eps, meta: meta.update(total_steps=11), r"total_steps is 11 but the episodes .* hold 10 steps"),
    (lambda eps, meta: meta.update(total_episodes=3), r"total_episodes is 3 but .* holds 2 episode groups"),
    (lambda eps, meta: eps[1].update(observations=eps[1]["observations"][:-1]),
     r"episode_1/observations has 6 rows but the episode has 6 steps, so 7 were expected"),
    (lambda eps, meta: eps[0].update(actions=eps[0]["actions"][:3]), r"episode_0/actions has 3 rows .* 4 were expected"),
    (lambda eps, meta: eps[0].update(terminations=eps[0]["terminations"][:2]), r"episode_0/terminations has 2 rows"),
    (lambda eps, meta: eps[0].update(observations=np.zeros((5, 3), np.float32)), r"per-step shape \(3,\) .* \(4,\)"),
    (lambda eps, meta: meta.update(data_format="zarr"), r"data_format is 'zarr'; demokit reads .* hdf5, arrow, parquet"),
    # declared arrow, but the episodes are in main_data.hdf5: there are no episode directories
    (lambda eps, meta: meta.update(data_format="arrow"), r"total_episodes is 2 but .* holds 0 episode directories"),
])
def test_inconsistent_minari_is_refused(tmp_path: Path, mutate, message: str) -> None:
    src = _broken(tmp_path, mutate)
    dst = tmp_path / "out.h5"
    with pytest.raises(UserError, match=message) as info:
        convert(src, dst)
    assert "broken-v0" in str(info.value)
    assert not dst.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["broken-v0"]


def test_total_steps_attr_mismatch_is_refused(tmp_path: Path, hand_minari: tuple[Path, list[dict]]) -> None:
    src, _ = hand_minari
    with h5py.File(src / "data" / "main_data.hdf5", "a") as h5:
        h5["episode_2"].attrs["total_steps"] = 9
    with pytest.raises(UserError, match=r"episode_2: attribute total_steps is 9 but rewards has 3 rows"):
        convert(src, tmp_path / "out.h5")
    assert not (tmp_path / "out.h5").exists()


def test_env_must_match_declared_spaces(tmp_path: Path, hand_minari: tuple[Path, list[dict]]) -> None:
    src, _ = hand_minari
    with pytest.raises(SpaceMismatchError, match="Acrobot-v1"):
        convert(src, tmp_path / "out.h5", env_id="Acrobot-v1")
    assert not (tmp_path / "out.h5").exists()
    assert convert(src, tmp_path / "ok.h5", env_id="CartPole-v1").episodes == 3


# --- demokit -> Minari ----------------------------------------------------------------------


def test_demokit_minari_demokit_round_trip(tmp_path: Path, demokit_cartpole: Path) -> None:
    res = to_minari(demokit_cartpole, tmp_path / "minari" / "cartpole-expert-v0")
    assert (res.target_kind, res.episodes, res.steps) == ("minari", 3, 15)
    meta = json.loads((tmp_path / "minari" / "cartpole-expert-v0" / "data" / "metadata.json").read_text())
    assert meta["dataset_id"] == "cartpole-expert-v0" and meta["total_steps"] == 15 and meta["total_episodes"] == 3
    assert meta["data_format"] == "hdf5" and json.loads(meta["env_spec"])["id"] == "CartPole-v1"
    assert json.loads(meta["observation_space"])["type"] == "Box"
    convert(tmp_path / "minari" / "cartpole-expert-v0", tmp_path / "back.h5")
    a, b = load_dataset(demokit_cartpole), load_dataset(tmp_path / "back.h5")
    for field in ("observations", "actions", "rewards", "terminated", "truncated", "final_observations",
                  "episode_lengths", "episode_seeds"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field), err_msg=field)
    assert a.actions.dtype == b.actions.dtype and a.observations.dtype == b.observations.dtype
    for key in ("value", "logit"):
        np.testing.assert_array_equal(a.extras[key], b.extras[key])
    assert b.env_id == "CartPole-v1"
    assert same_space(a.observation_space, b.observation_space) and same_space(a.action_space, b.action_space)
    assert b.provenance["policy"] == "test"  # the original provenance travels through Minari
    assert [h["kind"] for h in b.provenance["conversion_history"]] == ["demokit"]


def test_minari_target_refuses_existing_and_bad_names(tmp_path: Path, demokit_cartpole: Path) -> None:
    dst = tmp_path / "cartpole-expert-v0"
    to_minari(demokit_cartpole, dst)
    with pytest.raises(UserError, match="already exists; pass --force"):
        to_minari(demokit_cartpole, dst)
    assert to_minari(demokit_cartpole, dst, force=True).episodes == 3
    other = tmp_path / "notes-v0"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    with pytest.raises(UserError, match="not a Minari dataset; it was left alone"):
        to_minari(demokit_cartpole, other, force=True)
    assert (other / "keep.txt").read_text() == "mine"
    with pytest.raises(UserError, match="must end in <name>-v<version>"):
        to_minari(demokit_cartpole, tmp_path / "noversion")
    assert not (tmp_path / "noversion").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cartpole-expert-v0", "cartpole.h5", "notes-v0"]


# --- the real minari package ----------------------------------------------------------------


def test_real_minari_loads_our_export(tmp_path: Path, demokit_cartpole: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    minari = pytest.importorskip("minari")
    pytest.importorskip("PIL")  # minari's hdf5 storage imports Pillow
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "root"))
    to_minari(demokit_cartpole, tmp_path / "root" / "cartpole" / "expert-v0")
    ds = minari.load_dataset("cartpole/expert-v0")
    assert ds.total_episodes == 3 and ds.total_steps == 15
    assert ds.spec.env_spec.id == "CartPole-v1"
    also = minari.MinariDataset(tmp_path / "root" / "cartpole" / "expert-v0" / "data")
    assert also.total_steps == 15
    ref = load_dataset(demokit_cartpole)
    for i, ep in enumerate(ds.iterate_episodes()):
        want = ref.episode(i)
        np.testing.assert_array_equal(ep.observations[:-1], want.observations)
        np.testing.assert_array_equal(ep.observations[-1:], want.final_observation)
        np.testing.assert_array_equal(ep.actions, want.actions)
        np.testing.assert_array_equal(ep.rewards, want.rewards)
        np.testing.assert_array_equal(ep.terminations, want.terminated)
        np.testing.assert_array_equal(ep.truncations, want.truncated)
        np.testing.assert_array_equal(ep.infos["value"][1:], want.extras["value"])
    env = ds.recover_environment()
    assert env.spec.id == "CartPole-v1"


def test_dataset_written_by_real_minari_converts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    minari = pytest.importorskip("minari")
    pytest.importorskip("PIL")
    from minari.data_collector import EpisodeBuffer

    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "root"))
    rng = np.random.default_rng(3)
    buffers, raw = [], []
    for k, T in enumerate((5, 8)):
        ep = {"observations": {"pos": rng.uniform(-1, 1, size=(T + 1, 2)).astype(np.float32),
                               "mode": rng.integers(0, 3, size=T + 1)},
              "actions": (rng.integers(0, 2, size=T), rng.uniform(-2, 2, size=(T, 1)).astype(np.float32)),
              "rewards": list(rng.normal(size=T)), "terminations": [False] * (T - 1) + [k == 0],
              "truncations": [False] * (T - 1) + [k == 1]}
        raw.append(ep)
        buffers.append(EpisodeBuffer(seed=k, observations=ep["observations"], actions=ep["actions"],
                                     rewards=ep["rewards"], terminations=ep["terminations"],
                                     truncations=ep["truncations"]))
    with pytest.warns(UserWarning):
        minari.create_dataset_from_buffers("nested/real-v0", buffers, observation_space=NESTED_OBS,
                                           action_space=NESTED_ACT, algorithm_name="handmade")
    res = convert(tmp_path / "root" / "nested" / "real-v0", tmp_path / "real.h5")
    assert (res.episodes, res.steps) == (2, 13)
    ds = load_dataset(tmp_path / "real.h5")
    assert same_space(ds.observation_space, NESTED_OBS) and same_space(ds.action_space, NESTED_ACT)
    assert ds.provenance["converted_from"]["metadata"]["algorithm_name"] == "handmade"
    for i, ep in enumerate(raw):
        got = ds.episode(i)
        np.testing.assert_array_equal(got.observations["pos"], ep["observations"]["pos"][:-1])
        np.testing.assert_array_equal(got.final_observation["mode"], ep["observations"]["mode"][-1:])
        np.testing.assert_array_equal(got.actions[1], ep["actions"][1])
        np.testing.assert_array_equal(got.rewards, ep["rewards"])
        assert got.seed == i and got.is_terminated == (i == 0) and got.is_truncated == (i == 1)


def test_jpeg_images_written_by_minari_are_decoded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    minari = pytest.importorskip("minari")
    pytest.importorskip("PIL")
    from minari.data_collector import EpisodeBuffer

    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "root"))
    image = spaces.Box(0, 255, shape=(32, 32, 3), dtype=np.uint8)
    rng = np.random.default_rng(0)
    T = 3
    buf = EpisodeBuffer(observations=rng.integers(0, 256, size=(T + 1, 32, 32, 3), dtype=np.uint8),
                        actions=[0, 1, 0], rewards=[1.0] * T, terminations=[False, False, True],
                        truncations=[False] * T)
    with pytest.warns(UserWarning):
        ds = minari.create_dataset_from_buffers("img-v0", [buf], observation_space=image,
                                                action_space=spaces.Discrete(2))
    decoded = next(ds.iterate_episodes()).observations  # what minari itself reads back (JPEG is lossy)
    convert(tmp_path / "root" / "img-v0", tmp_path / "img.h5")
    got = load_dataset(tmp_path / "img.h5")
    np.testing.assert_array_equal(got.observations, decoded[:-1])
    np.testing.assert_array_equal(got.final_observations, decoded[-1:])
    # written back raw (jpeg_encoding false): minari reads the same pixels
    to_minari(tmp_path / "img.h5", tmp_path / "root" / "raw-v0")
    again = next(minari.load_dataset("raw-v0").iterate_episodes()).observations
    np.testing.assert_array_equal(again, decoded)


@pytest.mark.parametrize("attr,value,needle", [("total_steps", "four", "not an integer"),
                                               ("total_steps", 4.5, "not an integer"),
                                               ("seed", "x", "not an integer"),
                                               ("seed", -3, "outside the range")])
def test_damaged_episode_attributes_are_refused(tmp_path: Path, attr: str, value, needle: str) -> None:
    eps = cartpole_minari_episodes([4, 6])
    src = write_minari_by_hand(tmp_path / "bad-v0", eps, cartpole_minari_metadata(eps))
    with h5py.File(src / "data" / "main_data.hdf5", "a") as h5:
        h5["episode_1"].attrs[attr] = value
    with pytest.raises(UserError, match=needle):
        convert(src, tmp_path / "out.h5")
    assert not (tmp_path / "out.h5").exists()


# --- demokit -> Minari's arrow / parquet storages --------------------------------------------

ARROW_FORMATS = ("arrow", "parquet")
#: every space family the Minari writers take: flat, Dict / Tuple, nested both ways, raw uint8 images
WRITE_SPACES = {
    "box-discrete": (BOX, DISCRETE),
    "multidiscrete-multibinary": (spaces.MultiDiscrete([3, 4]), spaces.MultiBinary([2, 3])),
    "dict-tuple": (NESTED_OBS, NESTED_ACT),
    "nested": (spaces.Tuple((spaces.Dict({"t": spaces.Tuple((spaces.Discrete(2, start=-1),
                                                              spaces.Box(-1.0, 1.0, shape=(2, 2), dtype=np.float64))),
                                          "m": spaces.MultiBinary(3)}),
                             spaces.Box(-1.0, 1.0, shape=(), dtype=np.float32))),
               spaces.Dict({"a": spaces.Discrete(4), "b": spaces.MultiDiscrete([2, 2])})),
    "images": (spaces.Dict({"rgb": spaces.Box(0, 255, shape=(32, 32, 3), dtype=np.uint8),
                            "gray": spaces.Box(0, 255, shape=(40, 32), dtype=np.uint8)}),
               spaces.Box(0, 255, shape=(32, 32), dtype=np.uint8)),
}
#: extras of every layout Minari stores as infos: scalars, arrays (field metadata "shape"), bools
EXTRAS = {"value": lambda n, rng: rng.normal(size=n).astype(np.float32),
          "logits": lambda n, rng: rng.normal(size=(n, 2, 3)), "hit": lambda n, rng: rng.random(n) > 0.5}


def _leaves(space: spaces.Space, batch) -> list[np.ndarray]:
    return [np.asarray(leaf) for leaf in fmt.leaves_of(space, batch)]


def assert_same_demokit(a, b) -> None:
    """Two demokit datasets hold the same episodes: arrays, dtypes, extras, seeds."""
    assert (a.num_episodes, len(a), sorted(a.extras)) == (b.num_episodes, len(b), sorted(b.extras))
    assert same_space(a.observation_space, b.observation_space) and same_space(a.action_space, b.action_space)
    for i in range(a.num_episodes):
        x, y = a.episode(i), b.episode(i)
        assert x.seed == y.seed
        for space, u, v in ((a.observation_space, x.observations, y.observations),
                            (a.observation_space, x.final_observation, y.final_observation),
                            (a.action_space, x.actions, y.actions)):
            for p, q in zip(_leaves(space, u), _leaves(space, v), strict=True):
                assert p.dtype == q.dtype
                np.testing.assert_array_equal(p, q)
        for p, q in ((x.rewards, y.rewards), (x.terminated, y.terminated), (x.truncated, y.truncated),
                     *((x.extras[k], y.extras[k]) for k in x.extras)):
            assert p.dtype == q.dtype
            np.testing.assert_array_equal(p, q)


@pytest.mark.parametrize("extras", [True, False], ids=["infos", "no-infos"])
@pytest.mark.parametrize("family", WRITE_SPACES)
def test_every_space_family_is_written_to_arrow_and_parquet(tmp_path: Path, family: str, extras: bool) -> None:
    minari = pytest.importorskip("minari")
    pytest.importorskip("pyarrow")
    obs_space, act_space = WRITE_SPACES[family]
    src = write(tmp_path / "src.h5", make_episodes(obs_space, act_space, 3, extras=EXTRAS if extras else None),
                obs_space, act_space)
    demo = load_dataset(src)
    to_minari(src, tmp_path / "hdf5" / "x-v0")
    convert(tmp_path / "hdf5" / "x-v0", tmp_path / "back-hdf5.h5")
    want_meta = json.loads((tmp_path / "hdf5" / "x-v0" / "data" / "metadata.json").read_text())
    for data_format in ARROW_FORMATS:
        dst = tmp_path / data_format / "x-v0"
        res = to_minari(src, dst, minari_data_format=data_format)
        assert (res.episodes, res.steps) == (demo.num_episodes, len(demo))
        assert (dst / "data" / "2" / f"part-0.{data_format}").is_file()
        # Minari's own loader returns exactly demokit's episodes (T+1 observations, infos with a zero reset row)
        ds = minari.MinariDataset(dst / "data")
        assert ds.total_steps == len(demo) and ds.storage.metadata["data_format"] == data_format
        for i, ep in enumerate(ds.iterate_episodes()):
            want = demo.episode(i)
            obs = _leaves(obs_space, ep.observations)
            for got, head, final in zip(obs, _leaves(obs_space, want.observations),
                                        _leaves(obs_space, want.final_observation), strict=True):
                np.testing.assert_array_equal(got, np.concatenate([head, final]))
            for got, act in zip(_leaves(act_space, ep.actions), _leaves(act_space, want.actions), strict=True):
                np.testing.assert_array_equal(got, act)
            np.testing.assert_array_equal(ep.rewards, want.rewards)
            np.testing.assert_array_equal(ep.terminations, want.terminated)
            np.testing.assert_array_equal(ep.truncations, want.truncated)
            assert sorted(ep.infos) == sorted(want.extras)
            for key, rows in want.extras.items():
                assert ep.infos[key].shape == (len(want) + 1, *rows.shape[1:])
                np.testing.assert_array_equal(ep.infos[key][1:], rows)
                assert not ep.infos[key][0].any()
        assert [m["seed"] for m in ds.storage.get_episode_metadata(range(3))] == demo.episode_seeds.tolist()
        meta = json.loads((dst / "data" / "metadata.json").read_text())
        assert meta.pop("data_format") == data_format and isinstance(meta.pop("dataset_size"), float)
        assert meta == {k: v for k, v in want_meta.items() if k not in ("data_format", "dataset_size")}
        # read back by demokit: what the hdf5 round trip gives, and what demokit had
        convert(dst, tmp_path / f"back-{data_format}.h5")
        back = load_dataset(tmp_path / f"back-{data_format}.h5")
        assert_same_demokit(back, load_dataset(tmp_path / "back-hdf5.h5"))
        assert_same_demokit(back, demo)


def test_minari_format_needs_a_minari_target(tmp_path: Path, demokit_cartpole: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    for dst, kwargs in ((out / "x.h5", {}), (out / "x.hdf5", {"to": "d4rl"})):
        with pytest.raises(UserError, match=r"--minari-format chooses the storage of a Minari dataset, but DST .* is "
                                            r"written as (demokit|d4rl)"):
            convert(demokit_cartpole, dst, minari_data_format="parquet", **kwargs)
    with pytest.raises(UserError, match=r"unknown Minari data format 'zarr' \(--minari-format\): use one of hdf5, "
                                        r"arrow, parquet"):
        to_minari(demokit_cartpole, out / "x-v0", minari_data_format="zarr")
    with pytest.raises(UserError, match=r"--compression gzip is HDF5 compression, but the Minari dataset is written "
                                        r"in the arrow storage"):
        to_minari(demokit_cartpole, out / "x-v0", minari_data_format="arrow", compression="gzip")
    assert list(out.iterdir()) == []  # nothing written
    assert to_minari(demokit_cartpole, out / "x-v0", minari_data_format="hdf5", compression="gzip").episodes == 3


def test_minari_format_on_the_command_line(tmp_path: Path, demokit_cartpole: Path, capsys) -> None:
    from demokit.cli.app import main

    pytest.importorskip("pyarrow")
    dst = tmp_path / "cartpole-expert-v0"
    assert main(["convert", str(demokit_cartpole), str(dst), "--minari-format", "parquet", "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (out["target_kind"], out["episodes"], out["steps"]) == ("minari", 3, 15)
    assert json.loads((dst / "data" / "metadata.json").read_text())["data_format"] == "parquet"
    assert sorted(p.name for p in (dst / "data" / "1").iterdir()) == ["metadata.json", "part-0.parquet"]
    # --force replaces it in another storage; the episode directories go
    assert main(["convert", str(demokit_cartpole), str(dst), "--force"]) == 0
    assert sorted(p.name for p in (dst / "data").iterdir()) == ["main_data.hdf5", "metadata.json"]
    assert main(["convert", str(demokit_cartpole), str(dst), "--force", "--minari-format", "arrow"]) == 0
    assert (dst / "data" / "2" / "part-0.arrow").is_file() and not (dst / "data" / "main_data.hdf5").exists()
    capsys.readouterr()
    assert main(["convert", str(dst), str(tmp_path / "back.h5"), "--minari-format", "arrow"]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith("error: --minari-format chooses the storage of a Minari dataset")
    assert not (tmp_path / "back.h5").exists()
    assert main(["convert", str(dst), str(tmp_path / "back.h5")]) == 0
    a, b = load_dataset(demokit_cartpole), load_dataset(tmp_path / "back.h5")
    np.testing.assert_array_equal(a.observations, b.observations)
    np.testing.assert_array_equal(a.extras["logit"], b.extras["logit"])
