"""The one way a result object becomes a JSON-ready dict (``--json`` output, checkpoint figures)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any


def as_dict(result: Any, *, exclude: Iterable[str] = (), include: Iterable[str] = ()) -> dict[str, Any]:
    """The fields of the dataclass ``result`` (minus ``exclude``) then the attributes ``include``
    (properties such as ``mean_return``), in that order. Values are taken as they are (no deep copy)."""
    skip = set(exclude)
    out = {f.name: getattr(result, f.name) for f in dataclasses.fields(result) if f.name not in skip}
    out.update({name: getattr(result, name) for name in include})
    return out
