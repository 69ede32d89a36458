"""The one way a result object becomes a JSON-ready dict (``--json`` output, checkpoint figures),
and the one JSON fallback for values json cannot write itself (:func:`json_default`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

import numpy as np


def as_dict(result: Any, *, exclude: Iterable[str] = (), include: Iterable[str] = ()) -> dict[str, Any]:
    """The fields of the dataclass ``result`` (minus ``exclude``) then the attributes ``include``
    (properties such as ``mean_return``), in that order. Values are taken as they are (no deep copy)."""
    skip = set(exclude)
    out = {f.name: getattr(result, f.name) for f in dataclasses.fields(result) if f.name not in skip}
    out.update({name: getattr(result, name) for name in include})
    return out


def json_default(o: Any) -> Any:
    """``json.dumps(..., default=json_default)``: numpy scalars and arrays become plain numbers
    and lists, sets sorted lists, anything else its ``str``."""
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, (set, frozenset)):
        return sorted(o)
    return str(o)
