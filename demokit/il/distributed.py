"""Scaling behavioral cloning out with ``torchrun`` (DistributedDataParallel).

Run ``bc-train`` on N processes::

    torchrun --nproc-per-node 2 -m demokit bc-train DATASET --epochs 20 --out bc.pt
    torchrun --nproc-per-node 2 $(which demokit) bc-train DATASET ...     # the same

``demokit bc-train`` sees torchrun's environment (``WORLD_SIZE`` > 1) and calls
``train_bc(..., distributed=True)``, which joins the process group: gloo on CPU,
NCCL on CUDA (one GPU per rank: ``cuda:LOCAL_RANK``). ``train_bc`` itself never
reads the environment: in Python, say ``distributed=True``.

How the work is split (so that N processes compute what one process would):

* the training rows (whole episodes, after the train/validation split) are cut into
  N contiguous shards; rank r reads only its shard (``DemoDataset.read``, the same
  call a one-process run makes for all rows);
* every rank draws the *same* permutation of all training rows each epoch (one
  seed), cut into global batches of ``batch_size * world_size`` rows. Rank r
  computes the loss of the rows of each global batch that lie in its shard (about
  ``batch_size`` of them), summed and scaled by ``world_size / global_batch``;
  DDP averages the gradients, which gives exactly the gradient of the global
  batch's mean loss. An N-process run therefore makes the same updates as a
  one-process run with ``--batch-size batch_size * world_size`` (up to float
  rounding): the effective batch is the per-rank batch times the world size;
* observation statistics are merged across ranks (all-reduce of sums);
* rank 0 computes validation metrics, runs the evaluations, broadcasts the stop
  decision and writes the checkpoint; the other ranks print nothing.
"""

from __future__ import annotations

import contextlib
import datetime
import inspect
import os
from collections.abc import Iterator

import torch
import torch.distributed as dist
from torch import nn


class Comm:
    """Collectives of a one-process run: all identities."""

    rank = 0
    world_size = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def all_reduce_sum(self, t: torch.Tensor) -> torch.Tensor:
        return t

    def broadcast(self, t: torch.Tensor, src: int = 0) -> torch.Tensor:
        return t

    def wrap(self, module: nn.Module) -> nn.Module:
        return module


class DDPComm(Comm):
    """Collectives over the default process group (gloo or NCCL)."""

    def __init__(self, device: torch.device) -> None:
        self.rank = dist.get_rank()
        self.world_size = dist.get_world_size()
        self.device = device
        self._nccl = dist.get_backend() == "nccl"

    def _on_comm_device(self, t: torch.Tensor) -> torch.Tensor:
        return t.to(self.device) if self._nccl else t.cpu()

    def all_reduce_sum(self, t: torch.Tensor) -> torch.Tensor:
        buf = self._on_comm_device(t.clone())
        dist.all_reduce(buf, op=dist.ReduceOp.SUM)
        return buf.to(t.device)

    def broadcast(self, t: torch.Tensor, src: int = 0) -> torch.Tensor:
        buf = self._on_comm_device(t.clone())
        dist.broadcast(buf, src=src)
        return buf.to(t.device)

    def wrap(self, module: nn.Module) -> nn.Module:
        from torch.nn.parallel import DistributedDataParallel as DDP

        ids = [self.device.index] if self.device.type == "cuda" else None
        # buffers (observation statistics) are equal on every rank: no need to sync them at each forward
        params = inspect.signature(DDP).parameters
        no_sync = {"forward_sync_buffers": False} if "forward_sync_buffers" in params else {"broadcast_buffers": False}
        return DDP(module, device_ids=ids, gradient_as_bucket_view=True, **no_sync)


def launched_by_torchrun() -> bool:
    """True inside a multi-process torchrun launch (``WORLD_SIZE`` > 1)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def rank_device(device: torch.device, distributed: bool) -> torch.device:
    """In a distributed run on CUDA, rank r uses ``cuda:LOCAL_RANK``; otherwise ``device`` unchanged."""
    if distributed and device.type == "cuda" and device.index is None:
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return device


@contextlib.contextmanager
def communicator(device: torch.device, distributed: bool) -> Iterator[Comm]:
    """The collectives for this run: none unless ``distributed``; then an existing process
    group, else torchrun's (created here from its environment and destroyed on exit).
    """
    if not distributed:
        yield Comm()
        return
    if not dist.is_available():
        from demokit.errors import ConfigError

        raise ConfigError("distributed training needs torch.distributed, which this torch build lacks")
    if dist.is_initialized():
        yield DDPComm(device)
        return
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend=backend, timeout=datetime.timedelta(minutes=10))
    try:
        yield DDPComm(device)
    finally:
        dist.destroy_process_group()


def shard_bounds(n: int, rank: int, world_size: int) -> tuple[int, int]:
    """Rank ``rank``'s contiguous share ``[lo, hi)`` of ``n`` rows (sizes differ by at most 1)."""
    return n * rank // world_size, n * (rank + 1) // world_size
