"""Storage backends by name: a backend is one module plus one :func:`register_storage` call.

A dataset location picks its backend by its scheme (``mem://name`` -> the backend
registered with scheme ``mem``) or, for a plain path, by its suffix (``.h5``); any
other plain path is an HDF5 file (the format's own backend).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from demokit.data.storage.base import Storage
from demokit.errors import UserError

DEFAULT_BACKEND = "hdf5"

_BACKENDS: dict[str, type[Storage]] = {}
_SCHEMES: dict[str, str] = {}
_SUFFIXES: dict[str, str] = {}


def register_storage(name: str, cls: type[Storage], *, schemes: tuple[str, ...] = (),
                     suffixes: tuple[str, ...] = ()) -> type[Storage]:
    """Register backend ``cls`` as ``name``, for locations ``<scheme>://...`` and paths ending in ``suffixes``."""
    if not isinstance(cls, type) or not issubclass(cls, Storage):
        raise TypeError(f"storage backend {name!r} must be a Storage subclass, got {cls!r}")
    if name in _BACKENDS and _BACKENDS[name] is not cls:
        raise ValueError(f"storage backend {name!r} is already registered")
    cls.name = name
    _BACKENDS[name] = cls
    for scheme in schemes:
        _SCHEMES[scheme.lower()] = name
    for suffix in suffixes:
        _SUFFIXES[suffix.lower()] = name
    return cls


def storage_names() -> list[str]:
    return sorted(_BACKENDS)


def scheme_of(location: Any) -> str | None:
    """``"mem"`` for ``"mem://x"``; None for plain paths."""
    text = os.fspath(location) if isinstance(location, os.PathLike) else location
    if isinstance(text, str) and "://" in text:
        return text.split("://", 1)[0].lower()
    return None


def storage_for(location: Any) -> tuple[type[Storage], Any]:
    """The backend class of ``location`` and the location in the form the backend takes
    (a :class:`~pathlib.Path` for plain paths, the string for ``scheme://`` locations)."""
    if not isinstance(location, (str, os.PathLike)):
        raise UserError(f"a dataset location must be a path or a 'scheme://' string, got {type(location).__name__}")
    scheme = scheme_of(location)
    if scheme is not None:
        name = _SCHEMES.get(scheme)
        if name is None:
            known = ", ".join(f"{s}://" for s in sorted(_SCHEMES)) or "none"
            raise UserError(f"unknown dataset location scheme {scheme!r} in {location!s}; known schemes: {known} "
                            f"(plain paths are HDF5 files)")
        return _BACKENDS[name], os.fspath(location)
    path = Path(location)
    name = _SUFFIXES.get(path.suffix.lower(), DEFAULT_BACKEND)
    return _BACKENDS[name], path


def open_storage(location: Any, mode: str = "r") -> Storage:
    """Open ``location`` with its backend (see :func:`storage_for`)."""
    cls, loc = storage_for(location)
    return cls.open(loc, mode)  # type: ignore[arg-type]

