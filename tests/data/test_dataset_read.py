"""Row reads (``DemoDataset.read``) and streamed batches (``iter_batches``) against the whole-field arrays."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from gymnasium import spaces
from tests.data.helpers import assert_tree_equal, make_episodes, write

from demokit.data import load_dataset
from demokit.data.episode import obs_concat, obs_index
from demokit.errors import UserError

NESTED = spaces.Dict({"pos": spaces.Box(-1, 1, (2,), dtype=np.float32), "mode": spaces.Discrete(3)})
FIELDS = ["observations", "actions", "rewards", "terminated", "truncated", "next_observations", "extras/lp"]


def _extras(length: int, rng: np.random.Generator) -> np.ndarray:
    return rng.normal(size=length).astype(np.float32)


@pytest.fixture(params=["flat", "nested"])
def ds(request: pytest.FixtureRequest, tmp_path: Path):
    space = NESTED if request.param == "nested" else spaces.Box(-1, 1, (3,), dtype=np.float32)
    eps = make_episodes(space, n=40, extras={"lp": _extras})
    # small blocks: many chunks, so reads cross chunk boundaries
    return load_dataset(write(tmp_path / "d.h5", eps, obs_space=space, block_steps=16))


def _whole(ds, name):
    return ds.extras["lp"] if name == "extras/lp" else getattr(ds, name)


@pytest.mark.parametrize("rows", [slice(0, 7), slice(5, None), range(3, 4), slice(0, 0), "all",
                                  np.array([0, 9, 3, 3, 47]), np.array([], dtype=np.int64), "last"])
def test_read_equals_the_whole_arrays(ds, rows) -> None:
    n = len(ds)
    sel = {"all": None, "last": np.array([n - 1, n - 2])}.get(rows, rows) if isinstance(rows, str) else rows
    got = ds.read(FIELDS, sel)
    idx = np.arange(n)[sel if sel is not None else slice(None)] if not isinstance(sel, range) else np.arange(n)[3:4]
    for name in FIELDS:
        assert_tree_equal(got[name], obs_index(_whole(ds, name), idx))


def test_read_refuses_unknown_fields_and_rows(ds) -> None:
    with pytest.raises(UserError, match="no field 'obs'"):
        ds.read("obs")
    with pytest.raises(IndexError):
        ds.read("rewards", np.array([len(ds)]))


@pytest.mark.parametrize("shuffle", [False, True])
def test_iter_batches_cover_every_selected_row_once(ds, shuffle) -> None:
    rows = np.flatnonzero(np.arange(len(ds)) % 3 != 1)
    batches = list(ds.iter_batches(8, fields=["rewards", "observations"], shuffle=shuffle, seed=4, rows=rows,
                                   buffer_rows=32))
    assert all(len(b["rewards"]) == 8 for b in batches[:-1]) and 1 <= len(batches[-1]["rewards"]) <= 8
    got = np.concatenate([b["rewards"] for b in batches])
    expected = ds.rewards[rows]
    if shuffle:
        assert not np.array_equal(got, expected)
        np.testing.assert_array_equal(np.sort(got), np.sort(expected))
    else:
        np.testing.assert_array_equal(got, expected)
        assert_tree_equal(obs_concat([b["observations"] for b in batches]), obs_index(ds.observations, rows))


def test_iter_batches_same_seed_same_batches_and_drop_last(ds) -> None:
    a = [b["rewards"] for b in ds.iter_batches(5, fields="rewards", shuffle=True, seed=9)]
    b = [b["rewards"] for b in ds.iter_batches(5, fields="rewards", shuffle=True, seed=9)]
    c = [b["rewards"] for b in ds.iter_batches(5, fields="rewards", shuffle=True, seed=10)]
    assert all(np.array_equal(x, y) for x, y in zip(a, b)) and len(a) == len(b)
    assert not all(np.array_equal(x, y) for x, y in zip(a, c))
    dropped = list(ds.iter_batches(7, fields="rewards", drop_last=True))
    assert all(len(x["rewards"]) == 7 for x in dropped) and len(dropped) == len(ds) // 7
    with pytest.raises(UserError, match="batch_size"):
        ds.iter_batches(0)


def test_read_arrays_are_freed_without_the_cycle_collector(tmp_path):
    """Rows read are freed as soon as the caller drops them (no reference cycle keeps read blocks
    alive until the cyclic GC runs: a streamed pass once grew by hundreds of MB that way)."""
    import gc
    import weakref

    sp = spaces
    nested = sp.Dict({"pos": sp.Box(-1, 1, shape=(2,), dtype=np.float32), "mode": sp.Discrete(3)})
    path = write(tmp_path / "d.h5", make_episodes(nested, sp.Discrete(3), n=3), nested, sp.Discrete(3))
    ds = load_dataset(path)
    gc.collect()
    gc.disable()
    try:
        got = ds.read(["observations", "actions"], slice(0, 4))
        refs = [weakref.ref(got["observations"]["pos"]), weakref.ref(got["actions"])]
        batch = next(iter(ds.iter_batches(3)))
        refs.append(weakref.ref(batch["actions"].base if batch["actions"].base is not None else batch["actions"]))
        del got, batch
        assert all(r() is None for r in refs)
    finally:
        gc.enable()
