"""RowRuns: row selections as runs agree with the index arrays they stand for."""

from __future__ import annotations

import numpy as np
import pytest

from demokit.data.storage.base import RowRuns, rows_range


@pytest.fixture()
def runs():
    starts, lengths = np.array([0, 5, 9, 20, 23]), np.array([5, 4, 3, 3, 6])
    return RowRuns.of_episodes(starts, lengths, np.array([0, 1, 3, 4])), starts, lengths


def test_runs_are_the_episode_rows(runs):
    r, starts, lengths = runs
    expected = np.concatenate([np.arange(starts[e], starts[e] + lengths[e]) for e in (0, 1, 3, 4)])
    np.testing.assert_array_equal(np.asarray(r), expected)
    assert len(r) == expected.size and r.starts.tolist() == [0, 20] and r.stops.tolist() == [9, 29]  # merged
    np.testing.assert_array_equal(r.take([0, 8, 9, 17]), expected[[0, 8, 9, 17]])
    for lo, hi in ((0, 18), (3, 11), (9, 10), (17, 18), (5, 5)):
        np.testing.assert_array_equal(np.asarray(r[lo:hi]), expected[lo:hi])
    for k in (1, 2, 3, 5, 7):
        for got, want in zip(r.split(k), np.array_split(expected, k)):
            np.testing.assert_array_equal(np.asarray(got), want)


def test_blocks_cut_at_block_boundaries(runs):
    r, _, _ = runs
    expected = np.asarray(r)
    blocks = r.blocks(4)
    got = [np.concatenate([np.arange(a, b) for a, b in zip(s, e)]) for s, e in blocks]
    np.testing.assert_array_equal(np.concatenate(got), expected)
    want = [expected[expected // 4 == blk] for blk in np.unique(expected // 4)]
    assert [g.tolist() for g in got] == [w.tolist() for w in want]


def test_of_any_selection_and_single_ranges():
    n = 30
    idx = np.array([7, 3, 4, 5, 20, 20, 21])
    r = RowRuns.of(idx, n)
    np.testing.assert_array_equal(np.asarray(r), np.sort(idx))  # sorted, repeats kept
    assert rows_range(RowRuns.of(slice(2, 9), n), n) == (2, 9)
    assert rows_range(RowRuns.of(None, n), n) == (0, n)
    assert rows_range(r, n) is None and len(RowRuns.of(np.array([], np.int64), n)) == 0
