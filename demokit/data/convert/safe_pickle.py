"""Reading pickled expert data without executing anything.

``pickle.load`` runs whatever callable a file names, so a downloaded ``expert.pkl``
can delete files. :func:`safe_load` instead resolves every global the stream names
through a fixed table and refuses anything else with a :class:`UserError` that names
the global. The table holds exactly what a list of dicts of torch tensors, numpy
arrays and plain Python values needs (checked against torch 2.x / numpy 1.x-2.x):

* torch tensors pickle as ``torch._utils._rebuild_tensor_v2(storage, offset, size,
  stride, requires_grad, hooks)``; the storage pickles as
  ``torch.storage._load_from_bytes(b)`` where ``b`` is a legacy ``torch.save`` stream
  (pickles of a magic number, a version, a sys-info dict, a persistent id
  ``("storage", torch.FloatStorage, key, location, numel, None)`` and the key list,
  then the raw bytes). torch's own ``_load_from_bytes`` calls
  ``torch.load(weights_only=False)``, so here it is replaced: ``b`` is parsed with a
  second restricted unpickler that admits only the ``torch.<Type>Storage`` names, as
  dtype tags that are never called, and the raw bytes become the tensor (onto the
  CPU); anything else in ``b`` goes to ``torch.load(weights_only=True)``, torch's
  own restricted loader. ``_rebuild_tensor_v2`` is wrapped to check its arguments
  and to drop hooks and ``requires_grad``.
* numpy arrays: ``numpy._core.multiarray._reconstruct`` (``numpy.core...`` in files
  written with numpy 1.x), ``numpy.ndarray``, ``numpy.dtype``,
  ``numpy._core.numeric._frombuffer`` (pickle protocol 5; non-object dtypes only,
  copied) and ``numpy._core.multiarray.scalar`` for numpy scalars.
* ``collections.OrderedDict``; builtins ``list dict tuple set frozenset int float
  complex bool str bytes bytearray slice``; ``_codecs.encode`` with latin-1 only
  (protocol 2 writes ``bytes`` that way).

A file written by ``torch.save`` (a zip archive) is read with
``torch.load(weights_only=True)`` with the numpy entries above allow-listed.
"""

from __future__ import annotations

import builtins
import codecs
import collections
import gc
import io
import pickle
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from demokit.errors import UserError, torch_load_refusal

try:  # numpy >= 2
    from numpy._core import multiarray as _np_multiarray
except ImportError:  # pragma: no cover - numpy 1.x
    from numpy.core import multiarray as _np_multiarray  # type: ignore[no-redef]


class UnsafePickleError(UserError):
    """A pickle names a global that is not needed for tensors/arrays/builtins."""


class _LegacyStorage:
    """A tensor storage read from a legacy ``torch.save`` stream: dtype + raw bytes."""

    __slots__ = ("dtype", "numel", "data", "_flat")

    def __init__(self, dtype: Any, numel: int) -> None:
        self.dtype, self.numel, self.data, self._flat = dtype, numel, b"", None

    def flat(self) -> Any:
        import torch

        if self._flat is None:
            self._flat = (torch.frombuffer(bytearray(self.data), dtype=self.dtype) if self.numel
                          else torch.empty(0, dtype=self.dtype))
        return self._flat


class _NotLegacyStorage(Exception):
    """The bytes are not the simple one-storage stream; torch's loader handles them."""


_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001
_checked_header: bytes | None = None  # leading bytes of the last stream whose header was checked


def _storage_dtypes() -> dict[tuple[str, str], Any]:
    import torch

    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TypedStorage deprecation
        for name in dir(torch):
            cls = getattr(torch, name, None)
            dtype = getattr(cls, "dtype", None) if name.endswith("Storage") and isinstance(cls, type) else None
            if isinstance(dtype, torch.dtype):
                out[("torch", name)] = out[("torch.cuda", name)] = dtype
    return out


class _StorageStreamUnpickler(pickle.Unpickler):
    """Reads the pickles of a legacy ``torch.save`` of one storage. Storage classes only
    tag the dtype (they are never called); any other global is refused."""

    dtypes: dict[tuple[str, str], Any] | None = None

    def __init__(self, file: Any) -> None:
        super().__init__(file)
        if _StorageStreamUnpickler.dtypes is None:
            _StorageStreamUnpickler.dtypes = _storage_dtypes()
        self.storages: dict[str, _LegacyStorage] = {}

    def find_class(self, module: str, name: str) -> Any:
        try:
            return ("dtype", self.dtypes[(module, name)])
        except KeyError:
            raise UnsafePickleError(f"a tensor storage in the pickle refers to {module}.{name}, which is not a "
                                    f"torch storage type, so the file was refused and nothing in it was run") from None

    def persistent_load(self, pid: Any) -> Any:
        if not (isinstance(pid, tuple) and len(pid) == 6 and pid[0] == "storage" and isinstance(pid[1], tuple)
                and isinstance(pid[2], str) and isinstance(pid[4], int) and pid[4] >= 0 and pid[5] is None):
            raise _NotLegacyStorage()
        record = self.storages.setdefault(pid[2], _LegacyStorage(pid[1][1], pid[4]))
        return record


def _parse_legacy_storage(data: bytes) -> _LegacyStorage:
    """The storage of a legacy ``torch.save`` stream (what a pickled tensor's storage holds)."""
    global _checked_header
    f = io.BytesIO(data)
    up = _StorageStreamUnpickler(f)
    if _checked_header is not None and data.startswith(_checked_header):
        f.seek(len(_checked_header))  # the same magic/version/sys-info pickles as a stream checked before
    else:
        if up.load() != _LEGACY_MAGIC or up.load() != _LEGACY_PROTOCOL:
            raise _NotLegacyStorage()
        info = up.load()
        if not isinstance(info, dict) or info.get("little_endian") is not True:
            raise _NotLegacyStorage()
        _checked_header = data[:f.tell()]
    record = up.load()
    keys = up.load()
    if not isinstance(record, _LegacyStorage) or list(up.storages) != [keys[0]] or len(keys) != 1:
        raise _NotLegacyStorage()
    header = f.read(8)
    if len(header) != 8 or int.from_bytes(header, "little", signed=True) != record.numel:
        raise _NotLegacyStorage()
    itemsize = record.dtype.itemsize
    record.data = f.read()
    if len(record.data) != record.numel * itemsize:
        raise UnsafePickleError(f"a tensor storage in the pickle holds {len(record.data)} bytes for "
                                f"{record.numel} elements of {record.dtype}; the file is damaged")
    return record


def _rebuild_tensor(storage: Any, storage_offset: Any, size: Any, stride: Any,
                    requires_grad: Any = False, backward_hooks: Any = None, metadata: Any = None) -> Any:
    import torch
    from torch._utils import _rebuild_tensor_v2

    ints = (isinstance(storage_offset, int) and isinstance(size, tuple) and isinstance(stride, tuple)
            and all(isinstance(x, int) for x in (*size, *stride)))
    if not ints:
        raise UnsafePickleError("a tensor in the pickle has a malformed offset/size/stride")
    if metadata is not None and not isinstance(metadata, dict):
        raise UnsafePickleError("a tensor in the pickle has malformed metadata")
    if isinstance(storage, _LegacyStorage):
        try:
            return torch.as_strided(storage.flat(), size, stride, storage_offset)
        except RuntimeError as exc:  # out of the storage's bounds
            raise UnsafePickleError(f"a tensor in the pickle does not fit its storage ({exc})") from None
    if not isinstance(storage, (torch.storage.TypedStorage, torch.UntypedStorage)):
        raise UnsafePickleError(f"a tensor in the pickle is rebuilt from a {type(storage).__name__}, not a torch storage")
    return _rebuild_tensor_v2(storage, storage_offset, size, stride, False, collections.OrderedDict(), metadata)


def _load_storage_bytes(data: Any) -> Any:
    """Replacement of ``torch.storage._load_from_bytes``: parse the legacy stream with
    restricted unpicklers (fast path), else hand it to ``torch.load(weights_only=True)``."""
    import torch

    if not isinstance(data, (bytes, bytearray)):
        raise UnsafePickleError(f"a tensor storage in the pickle is a {type(data).__name__}, not bytes")
    try:
        return _parse_legacy_storage(bytes(data))
    except (_NotLegacyStorage, pickle.UnpicklingError, EOFError, IndexError, TypeError, KeyError):
        pass
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TypedStorage deprecation
        try:
            storage = torch.load(io.BytesIO(bytes(data)), weights_only=True, map_location="cpu")
        except pickle.UnpicklingError as exc:
            raise UnsafePickleError(f"a tensor storage in the pickle was refused by torch's weights-only loader: {exc}") from None
    if not isinstance(storage, (torch.storage.TypedStorage, torch.UntypedStorage)):
        raise UnsafePickleError(f"a tensor storage in the pickle holds a {type(storage).__name__}")
    return storage


def _reconstruct(subtype: Any, shape: Any, dtype: Any) -> np.ndarray:
    if subtype is not np.ndarray:
        raise UnsafePickleError(f"a numpy array in the pickle has type {subtype!r}; only numpy.ndarray is admitted")
    if not (isinstance(shape, tuple) and all(isinstance(x, int) and x >= 0 for x in shape)) or (
            shape and int(np.prod(shape)) != 0):
        # numpy pickles an array as an empty one (shape (0,)) whose data follows; a shape that
        # would make numpy allocate memory the file does not hold is refused
        raise UnsafePickleError(f"a numpy array in the pickle is rebuilt with shape {str(shape)[:60]}; numpy's own "
                                f"pickles start from an empty array, so the file was refused")
    return _np_multiarray._reconstruct(subtype, shape, dtype)


def _byte_string(kind: type) -> Any:
    """``bytes`` / ``bytearray`` as a pickle may call them: from the bytes or the text it holds
    (``bytearray(b"...")``, ``bytearray("...", "latin-1")``), never from a size, which would
    allocate memory the file does not hold (``bytearray(1500000000)``)."""
    def build(*args: Any) -> Any:
        if not args:
            return kind()
        data = args[0]
        if isinstance(data, (bytes, bytearray, memoryview)) and len(args) == 1:
            return kind(data)
        if isinstance(data, str) and len(args) >= 2 and args[1] in ("latin1", "latin-1", "utf-8", "utf8"):
            return kind(data, args[1])
        raise UnsafePickleError(f"the pickle calls {kind.__name__}({type(data).__name__}, ...): only bytes or text "
                                f"it holds itself are admitted (a size would allocate memory the file does not "
                                f"hold), so the file was refused")
    return build


def _frombuffer(buf: Any, dtype: Any, shape: Any, order: Any, axis_order: Any = None) -> np.ndarray:
    if isinstance(buf, pickle.PickleBuffer):
        buf = buf.raw()
    if not isinstance(buf, (bytes, bytearray, memoryview)) or not isinstance(dtype, np.dtype) or dtype.hasobject:
        raise UnsafePickleError("a numpy array in the pickle is stored in a malformed buffer")
    if not isinstance(shape, tuple) or not all(isinstance(x, int) for x in shape) or order not in ("C", "F", "K"):
        raise UnsafePickleError("a numpy array in the pickle has a malformed shape/order")
    array = np.frombuffer(buf, dtype=dtype).copy()
    if order == "K" and axis_order is not None:
        if not isinstance(axis_order, tuple) or sorted(axis_order) != list(range(len(shape))):
            raise UnsafePickleError("a numpy array in the pickle has a malformed axis order")
        return array.reshape(shape, order="C").transpose(axis_order)
    return array.reshape(shape, order="C" if order == "K" else order)


def _encode(text: Any, encoding: str = "utf-8") -> bytes:
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise UnsafePickleError(f"_codecs.encode in the pickle with encoding {encoding!r}; only latin1 is admitted")
    return codecs.encode(text, encoding)


_BUILTINS = ("list", "dict", "tuple", "set", "frozenset", "int", "float", "complex", "bool",
             "str", "bytes", "bytearray", "slice")

#: (module, name) -> the object the unpickler gets. Nothing else resolves.
ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch.storage", "_load_from_bytes"): _load_storage_bytes,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): _encode,
    **{(mod, "_reconstruct"): _reconstruct for mod in ("numpy.core.multiarray", "numpy._core.multiarray")},
    **{(mod, "_frombuffer"): _frombuffer for mod in ("numpy.core.numeric", "numpy._core.numeric")},
    **{(mod, "scalar"): _np_multiarray.scalar for mod in ("numpy.core.multiarray", "numpy._core.multiarray")},
    **{(mod, name): getattr(builtins, name) for mod in ("builtins", "__builtin__") for name in _BUILTINS},
    **{(mod, name): _byte_string(getattr(builtins, name)) for mod in ("builtins", "__builtin__")
       for name in ("bytes", "bytearray")},
}


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves globals only through :data:`ALLOWED_GLOBALS`."""

    def __init__(self, file: Any, *, source: str = "<pickle>") -> None:
        super().__init__(file)
        self._source = source

    def find_class(self, module: str, name: str) -> Any:
        try:
            return ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                f"{self._source}: the pickle refers to {module}.{name}, which is not needed for tensors, "
                f"arrays or plain values, so the file was refused and nothing in it was run; if you trust "
                f"the file, re-save its data as plain tensors/arrays (or as a torch.save file)") from None

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError(f"{self._source}: the pickle uses persistent ids ({str(pid)[:60]}); "
                                f"it is not a plain pickle of tensors/arrays")


def safe_loads(data: bytes, *, source: str = "<pickle>") -> Any:
    """Unpickle ``data`` with :class:`RestrictedUnpickler`."""
    gc_was_enabled = gc.isenabled()
    gc.disable()  # unpickling allocates many objects and no cycles: the cyclic GC only slows it down
    try:
        return RestrictedUnpickler(io.BytesIO(data), source=source).load()
    except UserError as exc:
        if str(exc).startswith(f"{source}:"):
            raise
        raise type(exc)(f"{source}: {exc}") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError,
            KeyError, RuntimeError, OverflowError, MemoryError) as exc:
        raise UserError(f"{source}: not a readable pickle ({type(exc).__name__}: {exc})") from None
    finally:
        if gc_was_enabled:
            gc.enable()


def _torch_load_zip(path: Path) -> Any:
    import torch

    numpy_globals: list[Any] = [*(getattr(builtins, name) for name in _BUILTINS), np.ndarray, np.dtype,
                                (_reconstruct, "numpy._core.multiarray._reconstruct"),
                                (_reconstruct, "numpy.core.multiarray._reconstruct"),
                                (_np_multiarray.scalar, "numpy._core.multiarray.scalar"),
                                (_np_multiarray.scalar, "numpy.core.multiarray.scalar"),
                                (_frombuffer, "numpy._core.numeric._frombuffer"),
                                (_frombuffer, "numpy.core.numeric._frombuffer")]
    dtype_classes = getattr(np, "dtypes", None)  # numpy >= 1.25 pickles dtypes via these classes
    if dtype_classes is not None:
        numpy_globals += [cls for cls in vars(dtype_classes).values()
                          if isinstance(cls, type) and issubclass(cls, np.dtype) and cls is not dtype_classes.ObjectDType]
    with torch.serialization.safe_globals(numpy_globals), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return torch.load(path, weights_only=True, map_location="cpu")
        except pickle.UnpicklingError as exc:
            why = torch_load_refusal(exc)
            raise UnsafePickleError(f"{path}: torch's weights-only loader refused the file ({why}); "
                                    f"nothing in it was run") from None
        except (RuntimeError, EOFError, ValueError, zipfile.BadZipFile) as exc:
            raise UserError(f"{path}: not a readable torch.save file ({type(exc).__name__}: {exc})") from None


def safe_load(path: str | Path) -> Any:
    """Load a pickle file (plain ``pickle.dump``) or a ``torch.save`` file without running code."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    if zipfile.is_zipfile(path):
        return _torch_load_zip(path)
    return safe_loads(path.read_bytes(), source=str(path))
