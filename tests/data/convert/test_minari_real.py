"""Minari interop against data made by Minari itself (issue 15, defects 1 and 5).

Datasets are recorded with Minari's own ``DataCollector`` in every seeding mode it has (64-bit
auto-seeds, one int seed then auto-seeds, a seed per reset, auto-seeding off), with infos on and
off, and with Dict/Tuple and (JPEG-encoded) image spaces. They are converted to demokit, compared
array by array with what Minari's own loader returns (seeds exactly, uint64 included), exported
back to Minari and read again with Minari's loader: arrays, infos (nested groups, empty ``{}``),
per-episode metadata (seed, options, ``rewards_*``) and the dataset's descriptive metadata.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

minari = pytest.importorskip("minari")
pytest.importorskip("jax", reason="Minari's DataCollector needs minari[create] (jax)")

from tests.data.convert import minari_envs  # noqa: E402

from demokit.data import format as fmt  # noqa: E402
from demokit.data.convert import convert, to_minari  # noqa: E402
from demokit.data.convert.minari import SEED_EXTRA  # noqa: E402
from demokit.data.dataset import load_dataset  # noqa: E402

DESCRIPTION = {"algorithm_name": "random-policy", "author": "Ada Tester", "author_email": "ada@example.org",
               "code_permalink": "https://example.org/code/1234", "description": "recorded for demokit's tests"}


@pytest.fixture(autouse=True)
def minari_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "minari-root"
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(root))
    minari_envs.register()
    return root


def record(dataset_id: str, env_id: str, episodes: int, *, seeding: str, record_infos: bool = True,
           env_kwargs: dict[str, Any] | None = None) -> Any:
    """A dataset recorded with Minari's DataCollector (random actions from a seeded action space)."""
    env = minari.DataCollector(gym.make(env_id, **(env_kwargs or {})), record_infos=record_infos)
    env.action_space.seed(5)
    for k in range(episodes):
        if seeding == "auto":  # Minari draws a 64-bit seed for every reset
            env.reset()
        elif seeding == "first-int":  # one int seed, then Minari's auto-seeds
            env.reset(seed=123) if k == 0 else env.reset()
        elif seeding == "per-reset":
            env.reset(seed=1000 + k, options={"level": k % 2, "tag": "lvl"} if k == 1 else None)
        elif seeding == "off":
            env.reset(options={"minari_autoseed": False})
        else:
            raise AssertionError(seeding)
        while True:
            _, _, terminated, truncated, _ = env.step(env.action_space.sample())
            if terminated or truncated:
                break
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = env.create_dataset(dataset_id, **DESCRIPTION)
    env.close()
    return ds


def episode_meta(ds: Any) -> list[dict[str, Any]]:
    return list(ds.storage.get_episode_metadata(range(ds.total_episodes)))


def demokit_seed(ds: Any, i: int) -> int | None:
    ep = ds.episode(i)
    if ep.seed >= 0:
        return ep.seed
    big = ep.extras.get(SEED_EXTRA)
    return int(big[0]) if big is not None and int(big[0]) > 0 else None


def leaves(space: gym.Space, batch: Any) -> list[np.ndarray]:
    return [np.asarray(x) for x in fmt.leaves_of(space, batch)]


def assert_same_episodes(a: Any, b: Any, *, infos: bool = True) -> None:
    """Two Minari datasets hold the same episodes (arrays, infos)."""
    assert a.total_episodes == b.total_episodes and a.total_steps == b.total_steps
    for ea, eb in zip(a.iterate_episodes(), b.iterate_episodes()):
        for x, y in zip(leaves(a.observation_space, ea.observations), leaves(b.observation_space, eb.observations)):
            np.testing.assert_array_equal(x, y)
        for x, y in zip(leaves(a.action_space, ea.actions), leaves(b.action_space, eb.actions)):
            np.testing.assert_array_equal(x, y)
        np.testing.assert_array_equal(ea.rewards, eb.rewards)
        np.testing.assert_array_equal(ea.terminations, eb.terminations)
        np.testing.assert_array_equal(ea.truncations, eb.truncations)
        if infos:
            assert_same_infos(ea.infos, eb.infos)


def assert_same_infos(x: Any, y: Any) -> None:
    if isinstance(x, dict) or isinstance(y, dict):
        assert isinstance(x, dict) and isinstance(y, dict) and set(x) == set(y), (x, y)
        for k in x:
            assert_same_infos(x[k], y[k])
    else:
        assert x is None and y is None or np.array_equal(np.asarray(x), np.asarray(y)), (x, y)


def check_integrity(ds: Any) -> None:
    """The checks Minari's own tests run on a dataset, through Minari's loader."""
    total = 0
    for ep in ds.iterate_episodes():
        T = len(ep.rewards)
        assert T == ep.total_steps if hasattr(ep, "total_steps") else True
        for leaf in leaves(ds.observation_space, ep.observations):
            assert len(leaf) == T + 1
        for leaf in leaves(ds.action_space, ep.actions):
            assert len(leaf) == T
        assert len(ep.terminations) == T and len(ep.truncations) == T
        assert not (ep.terminations[:-1].any() or ep.truncations[:-1].any())
        total += T
    assert total == ds.total_steps
    assert len(ds.sample_episodes(2)) == 2
    ds.recover_environment().close()


@pytest.mark.parametrize("seeding", ["auto", "first-int", "per-reset", "off"])
def test_data_collector_datasets_convert_with_exact_seeds(tmp_path, seeding):
    src = record(f"cartpole/{seeding}-v0", "CartPole-v1", 12, seeding=seeding)
    res = convert(src.storage.data_path.parent, tmp_path / "out.h5")  # the dataset directory
    ds = load_dataset(tmp_path / "out.h5")
    assert res.episodes == 12 and ds.num_episodes == 12 and ds.env_id == "CartPole-v1"
    meta = episode_meta(src)
    assert [demokit_seed(ds, i) for i in range(12)] == [m.get("seed") for m in meta]
    if seeding == "auto":  # 64-bit seeds: with 12 draws some exceed int64 with probability 1 - 2**-12
        assert any(m["seed"] >= 2**63 for m in meta) and SEED_EXTRA in ds.extras
    for i, ep in enumerate(src.iterate_episodes()):
        got = ds.episode(i)
        np.testing.assert_array_equal(got.observations, ep.observations[:-1])
        np.testing.assert_array_equal(got.final_observation, ep.observations[-1:])
        np.testing.assert_array_equal(got.actions, ep.actions)
        np.testing.assert_array_equal(got.rewards, ep.rewards)
        np.testing.assert_array_equal(got.terminated, ep.terminations)
        np.testing.assert_array_equal(got.truncated, ep.truncations)


@pytest.mark.parametrize("seeding", ["auto", "per-reset"])
def test_round_trip_keeps_seeds_options_and_dataset_metadata(tmp_path, minari_root, seeding):
    src = record(f"cartpole/rt-{seeding}-v0", "CartPole-v1", 8, seeding=seeding)
    convert(src.storage.data_path.parent, tmp_path / "mid.h5")
    to_minari(tmp_path / "mid.h5", minari_root / "back" / f"rt-{seeding}-v0")
    back = minari.load_dataset(f"back/rt-{seeding}-v0")
    check_integrity(back)
    assert_same_episodes(src, back)
    for m0, m1 in zip(episode_meta(src), episode_meta(back)):
        m0.pop("id"), m1.pop("id")
        assert m0 == m1  # seed (uint64 too), options/*, rewards_*, total_steps
    meta0, meta1 = src.storage.metadata, back.storage.metadata
    for key in (*DESCRIPTION, "ref_min_score", "ref_max_score"):
        assert meta1.get(key) == meta0.get(key), key


@pytest.mark.parametrize("empty_infos,record_infos", [(False, True), (True, True), (False, False)])
def test_nested_spaces_and_infos_round_trip(tmp_path, minari_root, empty_infos, record_infos):
    src = record("nested/src-v0", "demokit-test/Nested-v0", 6, seeding="auto", record_infos=record_infos,
                 env_kwargs={"empty_infos": empty_infos})
    first = next(iter(src.iterate_episodes()))
    assert (first.infos == {}) if record_infos and empty_infos else True
    convert(src.storage.data_path.parent, tmp_path / "nested.h5")
    ds = load_dataset(tmp_path / "nested.h5")
    if record_infos and not empty_infos:
        assert {"stats.dist", "stats.t", "flag"} <= set(ds.extras)
    to_minari(tmp_path / "nested.h5", minari_root / "back" / "nested-v0")
    back = minari.load_dataset("back/nested-v0")
    check_integrity(back)
    assert_same_episodes(src, back)  # nested info groups come back nested, {} as {}, no infos as None
    for m0, m1 in zip(episode_meta(src), episode_meta(back)):
        assert m0["seed"] == m1["seed"]


def test_jpeg_images_convert_as_minari_decodes_them(tmp_path, minari_root):
    src = record("image/src-v0", "demokit-test/Image-v0", 4, seeding="per-reset", record_infos=False)
    assert json.loads((src.storage.data_path / "metadata.json").read_text())["jpeg_encoding"] is True
    convert(src.storage.data_path.parent, tmp_path / "img.h5")
    ds = load_dataset(tmp_path / "img.h5")
    for i, ep in enumerate(src.iterate_episodes()):
        np.testing.assert_array_equal(ds.episode(i).observations, ep.observations[:-1])  # as Minari decodes
    to_minari(tmp_path / "img.h5", minari_root / "back" / "img-v0")
    back = minari.load_dataset("back/img-v0")
    check_integrity(back)
    assert_same_episodes(src, back)


def test_minari_to_minari_directly_keeps_everything(tmp_path, minari_root):
    src = record("cartpole/direct-v0", "CartPole-v1", 5, seeding="auto")
    convert(src.storage.data_path.parent, minari_root / "copy" / "direct-v0")
    back = minari.load_dataset("copy/direct-v0")
    check_integrity(back)
    assert_same_episodes(src, back)
    assert [m["seed"] for m in episode_meta(back)] == [m["seed"] for m in episode_meta(src)]
    for key in DESCRIPTION:
        assert back.storage.metadata.get(key) == src.storage.metadata.get(key), key
