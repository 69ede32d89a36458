"""Streamed batches for ``torch.utils.data.DataLoader`` (several worker processes).

``StreamingBatches(ds, batch_size, ...)`` is an ``IterableDataset`` of whole batches
(``{field: numpy array}``) drawn with :meth:`DemoDataset.iter_batches`. Use it with
``DataLoader(stream, batch_size=None, num_workers=k)``: each worker takes one contiguous
share of the selected rows (``np.array_split``, worker ``w`` of ``k``), so the workers
together yield every selected row exactly once per epoch, and streams its share with the
seed ``derive_seed(seed, "stream", epoch, w)``. ``set_epoch(e)`` changes the order of the
next pass (call it before iterating, as with ``DistributedSampler``).

Handles: :class:`DemoDataset` opens its storage per operation (``iter_batches`` opens when
iteration starts and closes when it ends), so nothing open crosses the fork that starts a
worker; each worker opens its own handle.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch.utils.data

from demokit.data import format as fmt
from demokit.data.dataset import DemoDataset
from demokit.data.storage.base import RowRuns
from demokit.seeding import derive_seed


class StreamingBatches(torch.utils.data.IterableDataset):
    """Batches of ``rows`` (default: all) of ``ds``; see the module docstring.

    Memory per worker: the bound of :meth:`DemoDataset.iter_batches` for ``buffer_rows``.
    """

    def __init__(self, ds: DemoDataset, batch_size: int, *, fields: Sequence[str] = (fmt.OBSERVATIONS, fmt.ACTIONS),
                 shuffle: bool = True, seed: int = 0, rows: np.ndarray | None = None,
                 buffer_rows: int | None = None, drop_last: bool = False) -> None:
        super().__init__()
        self.ds, self.batch_size, self.fields = ds, int(batch_size), tuple(fields)
        self.shuffle, self.seed, self.buffer_rows, self.drop_last = shuffle, int(seed), buffer_rows, drop_last
        self.rows = RowRuns.of(rows, len(ds))  # runs, not an index array: O(episodes) memory
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def shares(self, num_workers: int) -> list[RowRuns]:
        """The rows of each of ``num_workers`` workers (contiguous, together all of ``rows``; sized as
        ``np.array_split`` sizes them)."""
        return self.rows.split(num_workers)

    def batches(self, worker: int = 0, num_workers: int = 1) -> Iterator[dict[str, Any]]:
        """The batches worker ``worker`` of ``num_workers`` yields (also usable without a DataLoader)."""
        share = self.shares(num_workers)[worker]
        if len(share) == 0:
            return iter(())
        return self.ds.iter_batches(self.batch_size, fields=self.fields, shuffle=self.shuffle,
                                    seed=derive_seed(self.seed, "stream", self.epoch, worker), rows=share,
                                    buffer_rows=self.buffer_rows, drop_last=self.drop_last)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        info = torch.utils.data.get_worker_info()
        if info is None:
            return self.batches()
        return self.batches(info.id, info.num_workers)
