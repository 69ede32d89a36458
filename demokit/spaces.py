"""Gymnasium spaces: JSON round trip, flattening of batches, compatibility checks.

Supported: Box, Discrete, MultiDiscrete, MultiBinary, and Dict / Tuple of those
(nested). The JSON form is demokit's own (documented in docs/dataset-format.md);
non-finite Box bounds are written as the strings "inf" / "-inf".
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np
from gymnasium import spaces

from demokit.errors import SpaceMismatchError, UserError

SUPPORTED = (spaces.Box, spaces.Discrete, spaces.MultiDiscrete, spaces.MultiBinary, spaces.Dict, spaces.Tuple)


def _enc_array(a: np.ndarray) -> Any:
    flat = np.asarray(a).ravel()
    if flat.size and np.all(flat == flat[0]):
        return _enc_scalar(flat[0])
    return [_enc_scalar(x) for x in flat]


def _enc_scalar(x: Any) -> Any:
    x = x.item() if hasattr(x, "item") else x
    if isinstance(x, float):
        if np.isposinf(x):
            return "inf"
        if np.isneginf(x):
            return "-inf"
        if np.isnan(x):
            return "nan"
    return x


def _dec_array(v: Any, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    if isinstance(v, list):
        arr = np.array([float(x) if isinstance(x, str) else x for x in v], dtype=np.float64)
        return arr.reshape(shape).astype(dtype)
    val = float(v) if isinstance(v, str) else v
    return np.full(shape, val, dtype=np.float64).astype(dtype)


def space_to_dict(space: spaces.Space) -> dict[str, Any]:
    """A JSON-serialisable description of ``space``."""
    if isinstance(space, spaces.Box):
        return {"type": "Box", "shape": list(space.shape), "dtype": str(space.dtype),
                "low": _enc_array(space.low), "high": _enc_array(space.high)}
    if isinstance(space, spaces.Discrete):
        return {"type": "Discrete", "n": int(space.n), "start": int(space.start)}
    if isinstance(space, spaces.MultiDiscrete):
        return {"type": "MultiDiscrete", "nvec": np.asarray(space.nvec).tolist(), "start": np.asarray(space.start).tolist(),
                "dtype": str(space.dtype)}
    if isinstance(space, spaces.MultiBinary):
        n = space.n
        return {"type": "MultiBinary", "n": list(n) if isinstance(n, (tuple, list, np.ndarray)) else int(n)}
    if isinstance(space, spaces.Dict):
        return {"type": "Dict", "spaces": {k: space_to_dict(s) for k, s in space.spaces.items()}}
    if isinstance(space, spaces.Tuple):
        return {"type": "Tuple", "spaces": [space_to_dict(s) for s in space.spaces]}
    raise UserError(f"unsupported space {space!r}: demokit supports Box, Discrete, MultiDiscrete, MultiBinary, Dict and Tuple")


def space_from_dict(d: Mapping[str, Any]) -> spaces.Space:
    """Inverse of :func:`space_to_dict`."""
    kind = d.get("type")
    if kind == "Box":
        shape = tuple(int(x) for x in d["shape"])
        dtype = np.dtype(d.get("dtype", "float32"))
        return spaces.Box(low=_dec_array(d["low"], shape, dtype), high=_dec_array(d["high"], shape, dtype), shape=shape, dtype=dtype)
    if kind == "Discrete":
        return spaces.Discrete(int(d["n"]), start=int(d.get("start", 0)))
    if kind == "MultiDiscrete":
        return spaces.MultiDiscrete(np.array(d["nvec"]), dtype=np.dtype(d.get("dtype", "int64")), start=np.array(d.get("start", 0)) if "start" in d else None)
    if kind == "MultiBinary":
        n = d["n"]
        return spaces.MultiBinary(n if isinstance(n, int) else list(n))
    if kind == "Dict":
        return spaces.Dict({k: space_from_dict(v) for k, v in d["spaces"].items()})
    if kind == "Tuple":
        return spaces.Tuple([space_from_dict(v) for v in d["spaces"]])
    raise UserError(f"unknown space type {kind!r} in space description {dict(d)!r}")


def space_to_json(space: spaces.Space) -> str:
    return json.dumps(space_to_dict(space), sort_keys=False)


def space_from_json(text: str) -> spaces.Space:
    try:
        d = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"space description is not valid JSON: {exc}") from None
    return space_from_dict(d)


def flat_dim(space: spaces.Space) -> int:
    """Width of the flat float vector a network sees for one element of ``space``.

    Box: its size; Discrete: 1 (the raw index, not one-hot: use :func:`one_hot_dim`
    where one-hot is wanted); MultiDiscrete/MultiBinary: number of components;
    Dict/Tuple: the sum over sub-spaces in order.
    """
    if isinstance(space, spaces.Box):
        return int(np.prod(space.shape, dtype=np.int64))
    if isinstance(space, spaces.Discrete):
        return 1
    if isinstance(space, spaces.MultiDiscrete):
        return int(np.asarray(space.nvec).size)
    if isinstance(space, spaces.MultiBinary):
        return int(np.prod(space.shape, dtype=np.int64))
    if isinstance(space, spaces.Dict):
        return sum(flat_dim(s) for s in space.spaces.values())
    if isinstance(space, spaces.Tuple):
        return sum(flat_dim(s) for s in space.spaces)
    raise UserError(f"unsupported space {space!r}")


def flatten_batch(space: spaces.Space, batch: Any) -> np.ndarray:
    """Flatten a batch of elements of ``space`` into a float32 array (B, flat_dim).

    ``batch`` is a stacked array (leading batch axis) or, for Dict/Tuple, a
    mapping/sequence of stacked arrays with the same structure as the space.
    """
    if isinstance(space, spaces.Dict):
        parts = [flatten_batch(s, batch[k]) for k, s in space.spaces.items()]
        return np.concatenate(parts, axis=1)
    if isinstance(space, spaces.Tuple):
        parts = [flatten_batch(s, batch[i]) for i, s in enumerate(space.spaces)]
        return np.concatenate(parts, axis=1)
    arr = np.asarray(batch)
    n = arr.shape[0] if arr.ndim else 1
    width = int(np.prod(arr.shape[1:], dtype=np.int64)) if arr.ndim else 1
    return arr.reshape(n, width).astype(np.float32, copy=False)


def batch_size_of(space: spaces.Space, batch: Any) -> int:
    """Number of rows of a (possibly nested) batch."""
    if isinstance(space, spaces.Dict):
        first = next(iter(space.spaces))
        return batch_size_of(space.spaces[first], batch[first])
    if isinstance(space, spaces.Tuple):
        return batch_size_of(space.spaces[0], batch[0])
    return int(np.asarray(batch).shape[0])


def describe(space: spaces.Space) -> str:
    """A short human description, e.g. ``Box(4,) float32`` or ``Discrete(2)``."""
    if isinstance(space, spaces.Box):
        return f"Box{tuple(space.shape)} {space.dtype}"
    if isinstance(space, spaces.Discrete):
        return f"Discrete({space.n})" if space.start == 0 else f"Discrete({space.n}, start={space.start})"
    if isinstance(space, spaces.MultiDiscrete):
        return f"MultiDiscrete({np.asarray(space.nvec).tolist()})"
    if isinstance(space, spaces.MultiBinary):
        return f"MultiBinary({space.n})"
    if isinstance(space, spaces.Dict):
        return "Dict(" + ", ".join(f"{k}: {describe(s)}" for k, s in space.spaces.items()) + ")"
    if isinstance(space, spaces.Tuple):
        return "Tuple(" + ", ".join(describe(s) for s in space.spaces) + ")"
    return repr(space)


def same_space(a: spaces.Space, b: spaces.Space) -> bool:
    """Structural equality (type, shape, dtype, n / nvec; Box bounds compared too)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, spaces.Box):
        return a.shape == b.shape and a.dtype == b.dtype and np.allclose(a.low, b.low, equal_nan=True) and np.allclose(a.high, b.high, equal_nan=True)
    if isinstance(a, spaces.Discrete):
        return a.n == b.n and a.start == b.start
    if isinstance(a, spaces.MultiDiscrete):
        return np.array_equal(a.nvec, b.nvec)
    if isinstance(a, spaces.MultiBinary):
        return a.shape == b.shape
    if isinstance(a, spaces.Dict):
        return list(a.spaces) == list(b.spaces) and all(same_space(a[k], b[k]) for k in a.spaces)
    if isinstance(a, spaces.Tuple):
        return len(a.spaces) == len(b.spaces) and all(same_space(x, y) for x, y in zip(a.spaces, b.spaces))
    return a == b


def check_same_spaces(*, what: str, expected_obs: spaces.Space, expected_act: spaces.Space,
                      actual_obs: spaces.Space, actual_act: spaces.Space, against: str) -> None:
    """Raise :class:`SpaceMismatchError` if (obs, action) spaces of ``what`` and ``against`` differ."""
    for kind, expected, actual in (("observation", expected_obs, actual_obs), ("action", expected_act, actual_act)):
        if not same_space(expected, actual):
            a, b = describe(expected), describe(actual)
            if a == b:  # same shape and dtype: show the full descriptions (bounds differ)
                a, b = space_to_json(expected), space_to_json(actual)
            raise SpaceMismatchError(
                f"{what} has {kind} space {a} but {against} has {b}; "
                f"use a matching env (--env) or a dataset/checkpoint made for this env")
