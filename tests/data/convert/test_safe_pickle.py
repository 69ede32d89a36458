"""The restricted unpickler: tensors/arrays/builtins load; anything else is refused unrun."""

from __future__ import annotations

import builtins
import collections
import io
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from demokit.data.convert.safe_pickle import ALLOWED_GLOBALS, UnsafePickleError, safe_load, safe_loads
from demokit.errors import UserError


def _globals_of(data: bytes) -> set[str]:
    """Globals that a plain unpickler looks up for ``data`` (trusted test data only)."""
    seen: set[str] = set()

    class Recording(pickle.Unpickler):
        def find_class(self, module: str, name: str):
            seen.add(f"{module}.{name}")
            return super().find_class(module, name)

    Recording(io.BytesIO(data)).load()
    return seen


SAMPLE = [{
    "obs": torch.tensor([1.0, 2.0]), "view": torch.arange(6.0).reshape(2, 3)[1, 1:],
    "action": torch.tensor(1), "long": torch.tensor([3], dtype=torch.long), "flag": torch.tensor(True),
    "half": torch.tensor([1.5], dtype=torch.float16), "bf16": torch.tensor([2.5], dtype=torch.bfloat16),
    "grad": torch.ones(2, requires_grad=True) * 2, "np": np.arange(6, dtype=np.int32).reshape(2, 3),
    "np_f": np.float32(3.5), "np_fortran": np.asfortranarray(np.arange(6.0).reshape(2, 3)),
    "od": collections.OrderedDict(a=1), "set": {1, 2}, "fs": frozenset({3}), "c": 1 + 2j, "b": b"xy",
    "ba": bytearray(b"z"), "s": slice(1, 5, 2), "none": None, "done": True, "i": 7, "f": 0.25, "str": "text",
}]


def _assert_sample(out: list) -> None:
    got, want = out[0], SAMPLE[0]
    assert set(got) == set(want)
    for key, value in want.items():
        if isinstance(value, torch.Tensor):
            assert got[key].dtype == value.dtype and torch.equal(got[key], value.detach()), key
        elif isinstance(value, np.ndarray):
            assert got[key].dtype == value.dtype and np.array_equal(got[key], value), key
        else:
            assert got[key] == value and type(got[key]) is type(value), key


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_tensors_arrays_and_builtins_load(protocol: int) -> None:
    _assert_sample(safe_loads(pickle.dumps(SAMPLE, protocol=protocol)))


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_admitted_globals_are_exactly_what_tensors_and_arrays_need(protocol: int) -> None:
    """Every global that pickle writes for the sample is in the table, and the table holds
    nothing outside torch's rebuild/storage loaders, numpy reconstruction, OrderedDict,
    latin-1 bytes and plain builtin types."""
    used = _globals_of(pickle.dumps(SAMPLE, protocol=protocol))
    table = {f"{m}.{n}" for m, n in ALLOWED_GLOBALS}
    assert used <= table, used - table
    assert {"torch._utils._rebuild_tensor_v2", "torch.storage._load_from_bytes"} <= used
    for module, name in ALLOWED_GLOBALS:
        assert module in {"torch._utils", "torch.storage", "collections", "numpy", "numpy.core.multiarray",
                          "numpy._core.multiarray", "numpy.core.numeric", "numpy._core.numeric", "_codecs",
                          "builtins", "__builtin__"}, (module, name)
        if module in ("builtins", "__builtin__"):
            assert isinstance(getattr(builtins, name), type), name


class _System:
    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self):
        return (os.system, (f"touch {self.target}",))


class _Open:
    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self):
        return (builtins.open, (str(self.target), "w"))


class _Eval:
    def __init__(self, target: Path) -> None:
        self.target = target

    def __reduce__(self):
        return (builtins.eval, (f"open({str(self.target)!r}, 'w')",))


@pytest.mark.parametrize("payload, refused", [(_System, "system"), (_Open, r"io\.open"), (_Eval, "builtins.eval")])
def test_malicious_pickle_is_refused_and_not_run(tmp_path: Path, payload: type, refused: str) -> None:
    pwned = tmp_path / "pwned"
    path = tmp_path / "expert.pkl"
    path.write_bytes(pickle.dumps([{"obs": torch.zeros(2), "evil": payload(pwned)}]))
    with pytest.raises(UnsafePickleError, match=refused) as info:
        safe_load(path)
    assert isinstance(info.value, UserError)
    assert str(path) in str(info.value) and "nothing in it was run" in str(info.value)
    assert not pwned.exists()


def test_pickled_storage_bytes_cannot_smuggle_code(tmp_path: Path) -> None:
    """torch's own _load_from_bytes runs torch.load(weights_only=False); ours must not."""
    pwned = tmp_path / "pwned"
    inner = pickle.dumps(_System(pwned))

    class Smuggle:
        def __reduce__(self):
            return (torch.storage._load_from_bytes, (inner,))

    with pytest.raises(UnsafePickleError, match=r"refers to (posix|nt)\.system"):
        safe_loads(pickle.dumps([Smuggle()]))
    assert not pwned.exists()


def test_numpy_reconstruct_refuses_other_types() -> None:
    class Fake:
        def __reduce__(self):
            return (np._core.multiarray._reconstruct, (collections.OrderedDict, (0,), b"b"))

    with pytest.raises(UnsafePickleError, match="only numpy.ndarray"):
        safe_loads(pickle.dumps(Fake()))


def test_torch_save_zip_loads_with_numpy(tmp_path: Path) -> None:
    path = tmp_path / "expert.pt"
    torch.save(SAMPLE, path)
    _assert_sample(safe_load(path))


def test_malicious_torch_save_is_refused(tmp_path: Path) -> None:
    pwned = tmp_path / "pwned"
    path = tmp_path / "expert.pt"
    torch.save([_System(pwned)], path)
    with pytest.raises(UnsafePickleError, match="system"):
        safe_load(path)
    assert not pwned.exists()


def test_garbage_and_missing_files_are_user_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pkl"
    bad.write_bytes(b"\x80\x04not really a pickle")
    with pytest.raises(UserError, match="not a readable pickle"):
        safe_load(bad)
    with pytest.raises(UserError, match="no such file"):
        safe_load(tmp_path / "missing.pkl")


def test_a_pickle_cannot_make_the_unpickler_allocate_what_the_file_does_not_hold(tmp_path: Path) -> None:
    import resource

    class Allocates:
        def __reduce__(self):
            return (bytearray, (1_500_000_000,))

    src = tmp_path / "alloc.pkl"
    src.write_bytes(pickle.dumps([Allocates()]))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(UnsafePickleError, match=r"alloc.pkl: .*bytearray\(int"):
        safe_load(src)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200_000  # KiB: nothing near 1.5 GB


def test_byte_strings_and_arrays_of_every_protocol_still_load() -> None:
    obj = [bytearray(b"abc"), b"xy", b"", bytearray(), np.arange(5.0), torch.arange(3)]
    for protocol in range(2, pickle.HIGHEST_PROTOCOL + 1):
        got = safe_loads(pickle.dumps(obj, protocol=protocol))
        assert got[:4] == obj[:4] and np.array_equal(got[4], obj[4]) and torch.equal(got[5], obj[5])


def test_torch_refusals_are_quoted_in_whole_sentences() -> None:
    from demokit.errors import torch_load_refusal, whole_sentences

    text = ("Weights only load failed. In PyTorch 2.6, we changed the default value of the `weights_only` argument "
            "in `torch.load` from `False` to `True`. Re-running `torch.load` with `weights_only` set to `False` will "
            "likely succeed, but it can result in arbitrary code execution. Do it only if you got the file from a "
            "trusted source. WeightsUnpickler error: Unsupported operand 149")
    assert torch_load_refusal(RuntimeError(text)) == "Unsupported operand 149"
    cut = whole_sentences(text[:-60], limit=200)
    assert cut.endswith(".") and len(cut) <= 200 and text.startswith(cut)
    assert "posix.system" in torch_load_refusal(RuntimeError("... Unsupported global: GLOBAL posix.system was not"))
