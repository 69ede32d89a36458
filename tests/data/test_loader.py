"""StreamingBatches with torch DataLoader workers: every row once, no open handle crosses a fork."""

from __future__ import annotations

import h5py
import numpy as np
import torch.utils.data

from demokit.data import load_dataset
from demokit.data.loader import StreamingBatches
from tests.data.helpers import BOX, DISCRETE, make_episode, write


def _rows(batches):
    return sorted(map(tuple, np.concatenate([np.asarray(b["observations"]) for b in batches]).tolist()))


def test_two_workers_yield_the_same_set_of_rows(tmp_path):
    lengths = [3000, 2500, 1800, 2200]  # more than two 4096-row read blocks
    path = write(tmp_path / "d.h5", [make_episode(BOX, DISCRETE, n, seed=i) for i, n in enumerate(lengths)])
    ds = load_dataset(path)
    stream = StreamingBatches(ds, 500, shuffle=True, seed=5)
    single = list(stream)
    assert not h5py.h5f.get_obj_ids(types=h5py.h5f.OBJ_FILE)  # nothing open when the workers fork
    loader = torch.utils.data.DataLoader(stream, batch_size=None, num_workers=2, collate_fn=lambda b: b)
    multi = list(loader)
    assert _rows(multi) == _rows(single) == sorted(map(tuple, np.asarray(ds.observations).tolist()))
    # each worker's share is streamed by itself: same seed and epoch -> same batches
    again = list(torch.utils.data.DataLoader(stream, batch_size=None, num_workers=2, collate_fn=lambda b: b))
    assert all(np.array_equal(x["observations"], y["observations"]) for x, y in zip(multi, again))
    stream.set_epoch(1)
    other = list(stream)
    assert _rows(other) == _rows(single)
    assert not all(np.array_equal(x["observations"], y["observations"]) for x, y in zip(other, single))
