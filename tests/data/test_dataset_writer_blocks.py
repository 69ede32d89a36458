"""How DatasetWriter assembles blocks from Episode objects: byte-joined columns when every
array already has the stored dtype, a cast concatenation otherwise; the same file either way."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import h5py
import numpy as np
import pytest
from gymnasium import spaces
from tests.data.helpers import make_episodes

from demokit.data import DatasetWriter, Episode, load_dataset
from demokit.data import writer as writer_module
from demokit.data.storage import hdf5 as storage_hdf5

OBS = spaces.Box(-np.inf, np.inf, (3,), np.float32)
ACT = spaces.Discrete(4)


def episode(T: int, seed: int, *, obs_dtype: type = np.float32, extras: bool = True, cut: bool = False) -> Episode:
    rng = np.random.default_rng(seed)
    term = np.zeros(T, dtype=bool)
    trunc = np.zeros(T, dtype=bool)
    (trunc if cut else term)[-1] = True
    return Episode(observations=rng.normal(size=(T, 3)).astype(obs_dtype), actions=rng.integers(0, 4, size=T),
                   rewards=rng.normal(size=T), terminated=term, truncated=trunc,
                   final_observation=rng.normal(size=(1, 3)).astype(obs_dtype),
                   extras={"v": rng.normal(size=T).astype(np.float32)} if extras else {}, seed=seed)


def non_contiguous(ep: Episode) -> Episode:
    """The same episode with observations that are a strided view."""
    wide = np.zeros((len(ep), 6), dtype=np.float32)
    wide[:, ::2] = ep.observations
    return Episode(observations=wide[:, ::2], actions=ep.actions, rewards=ep.rewards, terminated=ep.terminated,
                   truncated=ep.truncated, final_observation=ep.final_observation, extras=ep.extras, seed=ep.seed)


def written(path: Path, eps: list[Episode], **kwargs: object) -> dict[str, np.ndarray]:
    with DatasetWriter(path, observation_space=OBS, action_space=ACT, **kwargs) as w:
        w.add_episodes(eps)
    with h5py.File(path, "r") as h5:
        out: dict[str, np.ndarray] = {}
        h5.visititems(lambda name, obj: out.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None)
    return out


def expected(eps: list[Episode]) -> dict[str, np.ndarray]:
    lengths = np.array([len(e) for e in eps])
    return {
        "observations": np.concatenate([e.observations for e in eps]).astype(np.float32),
        "actions": np.concatenate([e.actions for e in eps]),
        "rewards": np.concatenate([e.rewards for e in eps]),
        "terminated": np.concatenate([e.terminated for e in eps]),
        "truncated": np.concatenate([e.truncated for e in eps]),
        "final_observations": np.concatenate([e.final_observation for e in eps]).astype(np.float32),
        "extras/v": np.concatenate([e.extras["v"] for e in eps]),
        "episodes/start": np.cumsum(lengths) - lengths,
        "episodes/length": lengths,
        "episodes/return": np.array([e.rewards.sum() for e in eps]),
        "episodes/terminated": np.array([e.is_terminated for e in eps]),
        "episodes/truncated": np.array([e.is_truncated for e in eps]),
        "episodes/seed": np.array([e.seed for e in eps]),
    }


def assert_file(got: dict[str, np.ndarray], want: dict[str, np.ndarray]) -> None:
    assert sorted(got) == sorted(want)
    for name, value in want.items():
        np.testing.assert_allclose(got[name], value, rtol=1e-12, err_msg=name)
        assert got[name].dtype == np.asarray(value).dtype or name.startswith("episodes/return"), name


@pytest.mark.parametrize("block_steps", [1, 7, 1 << 18])
def test_joined_and_cast_blocks_give_the_same_file(tmp_path: Path, block_steps: int) -> None:
    eps = [episode(T, seed=k, cut=k % 3 == 2) for k, T in enumerate([1, 5, 3, 1, 8, 2])]
    want = expected(eps)
    variants = {
        "exact": eps,  # every array of the stored dtype: joined bytes
        "cast": [episode(len(e), seed=e.seed, obs_dtype=np.float64, cut=e.is_truncated) for e in eps],
        "strided": [non_contiguous(e) if k % 2 else e for k, e in enumerate(eps)],
        "mixed": eps[:3] + [episode(len(e), seed=e.seed, obs_dtype=np.float64, cut=e.is_truncated) for e in eps[3:]],
    }
    for name, variant in variants.items():
        got = written(tmp_path / f"{name}.h5", variant, block_steps=block_steps)
        if name in ("cast", "mixed"):  # float64 observations are stored as float32
            stored = expected(variant)
            assert_file(got, dict(want, observations=stored["observations"],
                                  final_observations=stored["final_observations"]))
        else:
            assert_file(got, want)
        assert load_dataset(tmp_path / f"{name}.h5").num_episodes == len(eps)


def test_exact_blocks_join_and_others_concatenate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    joins: list[int] = []
    original = writer_module._joined

    def spy(pieces: list, dtype: np.dtype, shape: tuple, rows: int) -> np.ndarray | None:
        out = original(pieces, dtype, shape, rows)
        joins.append(out is not None)
        return out

    monkeypatch.setattr(writer_module, "_joined", spy)
    written(tmp_path / "a.h5", [episode(4, 0), episode(3, 1)])
    assert joins and all(joins)  # every column joined
    joins.clear()
    written(tmp_path / "b.h5", [episode(4, 0), episode(3, 1, obs_dtype=np.float64)])
    assert joins == []  # a block with a cast is concatenated as a whole
    written(tmp_path / "c.h5", [non_contiguous(episode(4, 0)), episode(3, 1)])
    assert False in joins and True in joins  # only the strided column falls back


def test_quick_check_refuses_what_the_full_check_refuses(tmp_path: Path) -> None:
    with DatasetWriter(tmp_path / "d.h5", observation_space=OBS, action_space=ACT) as w:
        w.add_episode(episode(3, 0))  # the quick check is armed from here on
        bad_obs = Episode(observations=np.zeros((2, 4), np.float32), actions=np.zeros(2, np.int64),
                          rewards=np.zeros(2), terminated=[False, True], truncated=[False, False],
                          final_observation=np.zeros((1, 4), np.float32), extras={"v": np.zeros(2, np.float32)})
        with pytest.raises(ValueError, match=r"episode observations has shape \(2, 4\), expected \(2, 3\)"):
            w.add_episode(bad_obs)
        with pytest.raises(ValueError, match="every episode must carry the same extra arrays"):
            w.add_episode(episode(2, 1, extras=False))
        bad_extra = dataclasses.replace(episode(2, 2), extras={"v": np.zeros((2, 2), np.float32)})
        with pytest.raises(ValueError, match=r"episode extra 'v' has per-step shape \(2,\), expected \(\)"):
            w.add_episode(bad_extra)
        with pytest.raises(ValueError, match="expects a demokit.data.Episode, got dict"):
            w.add_episode({"observations": np.zeros((1, 3))})  # type: ignore[arg-type]
        # Discrete actions given as (T, 1) pass the full check and are stored flat
        ok = episode(2, 3)
        w.add_episode(dataclasses.replace(ok, actions=ok.actions.reshape(2, 1)))
        assert (w.num_episodes, w.num_steps) == (2, 5)
    ds = load_dataset(tmp_path / "d.h5")
    np.testing.assert_array_equal(ds.actions[3:], ok.actions)


def test_counts_include_buffered_episodes(tmp_path: Path) -> None:
    eps = make_episodes(n=3)
    w = DatasetWriter(tmp_path / "d.h5", observation_space=spaces.Box(-1, 1, (3,), np.float32),
                      action_space=spaces.Discrete(3), block_steps=1 << 20)
    w.add_episodes(eps)
    steps = sum(len(e) for e in eps)
    assert (w.num_episodes, w.num_steps, w.total_episodes, w.total_steps) == (3, steps, 3, steps)
    w.flush()
    assert (w.num_episodes, w.num_steps) == (3, steps)
    w.add_episode(eps[0])
    w.abort()  # what was added stays counted, nothing is written
    assert (w.num_episodes, w.num_steps) == (4, steps + len(eps[0]))
    assert not (tmp_path / "d.h5").exists()


@pytest.mark.parametrize("compression", [None, "gzip"])
def test_fill_time(tmp_path: Path, compression: str | None) -> None:
    """Uncompressed datasets skip HDF5's chunk fill (every row is written); data read back is exact."""
    eps = [episode(T, seed=T) for T in (3, 9, 4)]
    got = written(tmp_path / "d.h5", eps, compression=compression, block_steps=5)
    assert_file(got, expected(eps))
    with h5py.File(tmp_path / "d.h5", "r") as h5:
        fill = h5["observations"].id.get_create_plist().get_fill_time()
    if storage_hdf5._FILL_TIME:
        assert fill == (h5py.h5d.FILL_TIME_NEVER if compression is None else h5py.h5d.FILL_TIME_IFSET)
