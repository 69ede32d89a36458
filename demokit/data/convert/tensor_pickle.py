"""Rows of an array as stand-ins that pickle exactly like small torch tensors, fast.

``pickle.dump`` of a CPU tensor writes ``torch._utils._rebuild_tensor_v2(storage, offset, size,
stride, requires_grad, OrderedDict())`` whose storage is ``torch.storage._load_from_bytes(payload)``,
the payload being a legacy ``torch.save`` stream of that one storage: a header (magic number,
protocol version, system info, the storage's type, key, device and element count) followed by the
raw bytes of its elements. torch builds that stream anew for every storage (~80 us each), which
makes a DI-engine expert pickle of 1M transitions (4-5 tensors each) take minutes.

:func:`tensor_rows` asks torch once per (dtype, element count) for the stream of a sample storage,
checks that it ends with the sample's raw bytes, and then gives every row the same header followed
by its own bytes. Unpickling gives the same tensors as torch's own pickles (``pickle.load`` calls the
same two torch functions with the same arguments); only the storage key inside each stream (torch
uses the storage's address, any string is valid) is the sample's. When the check fails (a torch
whose format differs), the rows are real tensors and torch pickles them itself.
"""

from __future__ import annotations

import collections
from typing import Any

import numpy as np

_HEADERS: dict[tuple[str, int], bytes | None] = {}
#: torch's two functions a tensor pickle calls (looked up once, by :func:`tensor_rows`)
_TORCH: dict[str, Any] = {}


class _Storage:
    """Pickles as ``torch.storage._load_from_bytes(payload)``, as torch pickles a storage."""

    __slots__ = ("payload",)

    def __init__(self, payload: bytes) -> None:
        self.payload = payload

    def __reduce_ex__(self, protocol: Any) -> tuple[Any, tuple[bytes]]:
        return _TORCH["load"], (self.payload,)


class _NoHooks:
    """Pickles as ``collections.OrderedDict()`` (a new empty one on every load, as torch writes it), without the
    per-object cost of pickling a real OrderedDict."""

    __slots__ = ()

    def __reduce_ex__(self, protocol: Any) -> tuple[Any, tuple[()]]:
        return collections.OrderedDict, ()


class TensorRow:
    """Pickles as a contiguous CPU tensor of ``shape`` over its own storage (torch's own reduction)."""

    __slots__ = ("storage", "shape", "stride")

    def __init__(self, storage: _Storage, shape: tuple[int, ...], stride: tuple[int, ...]) -> None:
        self.storage, self.shape, self.stride = storage, shape, stride

    def __reduce_ex__(self, protocol: Any) -> tuple[Any, tuple[Any, ...]]:
        return _TORCH["rebuild"], (self.storage, 0, self.shape, self.stride, False, _NoHooks())


def _header(dtype: np.dtype, numel: int) -> bytes | None:
    """torch's legacy stream of a storage of ``numel`` elements, without the elements (None: not as expected)."""
    key = (dtype.str, numel)
    if key not in _HEADERS:
        import torch

        sample = (np.arange(1, numel + 1) % 251).astype(dtype)
        _, (payload,) = torch.from_numpy(sample)._typed_storage().__reduce__()
        raw = sample.tobytes()
        ok = isinstance(payload, bytes) and payload.endswith(raw) and len(payload) > len(raw)
        _HEADERS[key] = payload[:len(payload) - len(raw)] if ok else None
    return _HEADERS[key]


def tensor_rows(array: np.ndarray) -> list[Any]:
    """One tensor per row of ``array`` (N, ...): :class:`TensorRow` stand-ins, or real tensors (see the module
    docstring). ``array`` must have a dtype torch has (a TypeError otherwise)."""
    import torch
    from torch._utils import _rebuild_tensor_v2
    from torch.storage import _load_from_bytes

    _TORCH.update(rebuild=_rebuild_tensor_v2, load=_load_from_bytes)
    array = np.ascontiguousarray(array)
    if array.dtype.byteorder == ">":
        array = array.astype(array.dtype.newbyteorder("<"))
    shape = tuple(int(d) for d in array.shape[1:])
    numel = int(np.prod(shape, dtype=np.int64))
    header = _header(array.dtype, numel) if numel else None
    if header is None:
        return [torch.from_numpy(np.array(row)) for row in array]
    stride = tuple(int(s) // array.dtype.itemsize for s in np.empty(shape, dtype=array.dtype).strides)
    raw = array.tobytes()
    step = numel * array.dtype.itemsize
    return [TensorRow(_Storage(header + raw[i * step:(i + 1) * step]), shape, stride) for i in range(len(array))]
