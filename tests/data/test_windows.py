"""Windows: known answers on a hand-made dataset (episode boundaries, padding, mask), streaming form."""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium import spaces

from demokit.data import Episode, load_dataset
from demokit.errors import UserError
from tests.data.helpers import write

OBS = spaces.Box(-1e6, 1e6, (2,), np.float32)
ACT = spaces.Discrete(1000)


def _episode(first: int, length: int) -> Episode:
    """Observation row t = (first + t, -(first + t)), action = first + t: every row tells where it came from."""
    steps = np.arange(first, first + length)
    term = np.zeros(length, bool)
    term[-1] = True
    return Episode(observations=np.stack([steps, -steps], 1).astype(np.float32), actions=steps.astype(np.int64),
                   rewards=np.ones(length), terminated=term, truncated=np.zeros(length, bool),
                   final_observation=np.array([[first + length, -(first + length)]], np.float32), extras={}, seed=0)


@pytest.fixture()
def ds(tmp_path):
    # episodes: rows 0-2 (actions 100..102), rows 3-7 (200..204), row 8 (300)
    return load_dataset(write(tmp_path / "w.h5", [_episode(100, 3), _episode(200, 5), _episode(300, 1)], OBS, ACT))


def test_windows_stop_at_episode_ends_with_edge_padding(ds):
    from demokit.data.windows import window_rows

    rows, mask = window_rows(ds, np.array([1, 6, 8]), 4)
    np.testing.assert_array_equal(rows, [[1, 2, 2, 2], [6, 7, 7, 7], [8, 8, 8, 8]])
    np.testing.assert_array_equal(mask, [[1, 1, 0, 0], [1, 1, 0, 0], [1, 0, 0, 0]])


def test_history_windows_pad_the_episode_start(ds):
    w = ds.sample_windows(64, 3, rng=0, before=2)
    acts, mask = w["actions"], w["mask"]
    assert acts.shape == (64, 3) and w["observations"].shape == (64, 3, 2) and mask.dtype == bool
    for a, m in zip(acts, mask):
        t = a[-1]
        start = t - (t % 100)
        want = np.maximum(np.arange(t - 2, t + 1), start)
        np.testing.assert_array_equal(a, want)
        np.testing.assert_array_equal(m, np.arange(t - 2, t + 1) >= start)
    np.testing.assert_array_equal(w["observations"][..., 0], acts)  # observations follow the same rows


def test_pad_none_keeps_whole_windows_only(ds):
    w = ds.sample_windows(200, 4, rng=1, pad="none")
    assert w["mask"].all()
    starts = set(w["actions"][:, 0].tolist())
    assert starts == {200, 201}  # only episode 1 (5 steps) holds 4-step windows
    np.testing.assert_array_equal(w["actions"], w["actions"][:, :1] + np.arange(4))


def test_window_longer_than_every_episode_is_refused(ds):
    with pytest.raises(UserError, match="longest episode: 5"):
        ds.sample_windows(4, 6, rng=0, pad="none")
    with pytest.raises(UserError, match="window length"):
        ds.sample_windows(4, 0, rng=0)


def test_same_rng_same_windows_and_next_observations(ds):
    a = ds.sample_windows(8, 2, rng=5, fields=["observations", "next_observations"])
    b = ds.sample_windows(8, 2, rng=5, fields=["observations", "next_observations"])
    np.testing.assert_array_equal(a["next_observations"], b["next_observations"])
    last = a["next_observations"][:, 0, 0]
    # the next observation of an episode's last step is its final observation (first + length)
    np.testing.assert_array_equal(last, a["observations"][:, 0, 0] + 1)


@pytest.mark.parametrize("shuffle", [False, True])
def test_iter_windows_covers_every_anchor_once(ds, shuffle):
    got = list(ds.iter_windows(4, 3, before=1, shuffle=shuffle, seed=2))
    assert [len(b["mask"]) for b in got] == [4, 4, 1]
    anchors = np.concatenate([b["actions"][:, 1] for b in got])
    assert sorted(anchors.tolist()) == [100, 101, 102, 200, 201, 202, 203, 204, 300]
    ref = ds.sample_windows(1, 3, rng=0, before=1)  # same layout as sampling
    assert set(ref) == set(got[0])
    none = list(ds.iter_windows(10, 3, pad="none"))
    assert sorted(none[0]["actions"][:, 0].tolist()) == [100, 200, 201, 202]


@pytest.mark.parametrize("shuffle", [False, True])
def test_iter_windows_across_small_read_blocks(ds, monkeypatch, shuffle):
    monkeypatch.setattr(ds, "block_rows", lambda *a: 2)  # 5 blocks: batches mix windows of several blocks
    got = list(ds.iter_windows(4, 2, shuffle=shuffle, seed=7))
    assert [len(b["mask"]) for b in got] == [4, 4, 1]
    rows = np.concatenate([b["actions"] for b in got])
    assert sorted(rows[:, 0].tolist()) == [100, 101, 102, 200, 201, 202, 203, 204, 300]
    for (a, b), m in zip(rows, np.concatenate([b["mask"] for b in got])):
        assert b == (a + 1 if m[1] else a) and m[1] == (a not in (102, 204, 300))
