"""Row tensors that pickle like torch's own (demokit.data.convert.tensor_pickle): DI-engine's pickles, fast."""

from __future__ import annotations

import pickle
import pickletools

import numpy as np
import pytest
import torch

from demokit.data.convert.safe_pickle import safe_loads
from demokit.data.convert.tensor_pickle import TensorRow, tensor_rows


@pytest.mark.parametrize("array", [
    np.arange(12, dtype=np.float32).reshape(3, 4),
    np.arange(6, dtype=np.int64).reshape(6, 1),
    np.array([True, False, True]),  # one bool per row: 0-d tensors
    np.arange(3 * 2 * 2 * 3, dtype=np.uint8).reshape(3, 2, 2, 3),  # images
    np.linspace(0, 1, 8).reshape(2, 4),  # float64
    np.arange(4, dtype=np.float16).reshape(2, 2),
], ids=["float32", "int64-1", "bool-0d", "uint8-hwc", "float64", "float16"])
def test_rows_unpickle_as_the_tensors_torch_pickles(array: np.ndarray) -> None:
    rows = tensor_rows(array)
    assert all(isinstance(r, TensorRow) for r in rows)
    ours = pickle.dumps(rows, protocol=4)
    theirs = pickle.dumps([torch.from_numpy(np.array(r)) for r in array], protocol=4)
    # one row: the same opcodes and globals as torch's (torch._utils._rebuild_tensor_v2,
    # torch.storage._load_from_bytes, collections.OrderedDict); several rows share their shape tuple (memoized)
    one, torch_one = pickle.dumps(rows[:1], protocol=4), pickle.dumps([torch.from_numpy(np.array(array[0]))], protocol=4)

    def ops(data: bytes) -> list:  # the storage stream's key is an address in torch's: its bytes may differ
        return [(op.name, None if op.name in ("BINBYTES", "FRAME") else arg) for op, arg, _ in pickletools.genops(data)]

    assert ops(one) == ops(torch_one)
    assert len(ours) <= len(theirs)
    for loaded in (pickle.loads(ours), safe_loads(ours)):
        assert len(loaded) == len(array)
        for got, want in zip(loaded, array):
            assert isinstance(got, torch.Tensor) and got.shape == want.shape and got.is_contiguous()
            np.testing.assert_array_equal(got.numpy(), want)
            assert got.numpy().dtype == want.dtype
    a, b = pickle.loads(ours)[:2]
    assert a.untyped_storage().data_ptr() != b.untyped_storage().data_ptr()  # one storage per row, as torch's


def test_a_shared_row_stays_one_tensor() -> None:
    rows = tensor_rows(np.ones((2, 3), dtype=np.float32))
    x, y = pickle.loads(pickle.dumps([rows[0], rows[0], rows[1]], protocol=4))[:2]
    assert x is y  # next_obs[i] is obs[i + 1], as DI-engine's collector shares the tensor


def test_a_dtype_torch_lacks_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        tensor_rows(np.array(["a", "b"]))


def test_rows_without_elements_or_an_unexpected_torch_format_are_real_tensors(monkeypatch) -> None:
    import demokit.data.convert.tensor_pickle as tp

    assert all(isinstance(r, torch.Tensor) for r in tensor_rows(np.zeros((2, 0), dtype=np.float32)))
    monkeypatch.setattr(tp, "_HEADERS", {})
    monkeypatch.setitem(tp._HEADERS, (np.dtype(np.float32).str, 3), None)  # the check of torch's stream failed
    rows = tensor_rows(np.ones((2, 3), dtype=np.float32))
    assert all(isinstance(r, torch.Tensor) for r in rows)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(rows))[1].numpy(), np.ones(3, dtype=np.float32))
