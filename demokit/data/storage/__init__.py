"""Storage backends of the dataset format (HDF5 first; see base.py for the contract).

>>> from demokit.data.storage import open_storage, register_storage, Storage, FieldSpec
"""

from demokit.data.storage.base import FieldSpec, Mode, Storage
from demokit.data.storage.registry import open_storage, register_storage, storage_for, storage_names
from demokit.data.storage import hdf5  # noqa: E402,F401  (the built-in backend registers itself)

__all__ = ["FieldSpec", "Mode", "Storage", "open_storage", "register_storage", "storage_for", "storage_names"]
