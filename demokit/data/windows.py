"""Windows: runs of consecutive steps inside one episode (frame stacks, histories, action chunks).

A window is anchored at a transition row ``t`` of episode ``e`` (rows ``[s_e, end_e]``) and
covers the rows ``t - before + j`` for ``j = 0 .. length - 1``: ``before = 0`` gives the
``length`` steps from ``t`` on (action chunks, sequence targets), ``before = length - 1``
the ``length`` steps ending at ``t`` (a history / frame stack whose last entry is step
``t``). ``mask[b, j]`` is True where row ``t - before + j`` lies inside episode ``e``.

Padding:

* ``pad="edge"``: every row of the selection is an anchor; positions outside the episode
  repeat its first step (before it) or its last step (after it), with ``mask`` False there
  (the same padding as gymnasium's ``FrameStackObservation(padding_type="reset")`` at an
  episode's start).
* ``pad="none"``: only anchors whose whole window lies inside the episode (``mask`` all
  True); a window longer than every episode is a :class:`~demokit.errors.UserError`.

Batches are dicts ``{field: array (batch, length, ...)}`` under the dataset's field names
(any field :meth:`DemoDataset.read` accepts, ``next_observations`` included; Dict / Tuple
observations are dicts / tuples of such arrays) plus ``mask`` (bool, (batch, length)).
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator, Sequence
from typing import Any, Literal

import numpy as np

from demokit.data import format as fmt
from demokit.data.episode import obs_map
from demokit.errors import UserError

#: a :class:`demokit.data.dataset.DemoDataset`; not imported here: the dataset module calls
#: this one from its ``sample_windows`` / ``iter_windows`` methods (layers import downward only)
DemoDataset = Any

Pad = Literal["edge", "none"]
DEFAULT_FIELDS = (fmt.OBSERVATIONS, fmt.ACTIONS)


def _check(ds: DemoDataset, length: int, before: int, pad: str, batch_size: int) -> None:
    if batch_size < 1:
        raise UserError(f"batch_size must be >= 1, got {batch_size}")
    if length < 1:
        raise UserError(f"window length must be >= 1, got {length}")
    if not 0 <= before < length:
        raise UserError(f"before must be in [0, length - 1] = [0, {length - 1}], got {before}")
    if pad not in ("edge", "none"):
        raise UserError(f"pad must be 'edge' or 'none', got {pad!r}")
    if len(ds) == 0:
        raise UserError(f"dataset {ds.path} is empty; there are no windows to take")


#: the anchors of whole datasets per (length, before, pad), kept while the dataset object lives
_ANCHORS: weakref.WeakKeyDictionary[Any, dict[tuple[int, int, str], np.ndarray]] = weakref.WeakKeyDictionary()


def anchors(ds: DemoDataset, length: int, *, before: int = 0, pad: Pad = "edge",
            rows: np.ndarray | None = None) -> np.ndarray:
    """The sorted anchor rows of windows (within ``rows``, default all) allowed by ``pad``
    (read-only; those of a whole dataset are computed once per dataset object and window shape)."""
    if rows is None:
        per_ds = _ANCHORS.setdefault(ds, {})
        key = (length, before, pad)
        if key not in per_ds:
            found = _anchors(ds, length, before, pad, None)
            found.flags.writeable = False
            per_ds[key] = found
        return per_ds[key]
    return _anchors(ds, length, before, pad, rows)


def _anchors(ds: DemoDataset, length: int, before: int, pad: str, rows: np.ndarray | None) -> np.ndarray:
    n = len(ds)
    sel = np.arange(n, dtype=np.int64) if rows is None else np.unique(np.asarray(rows, dtype=np.int64))
    if pad == "edge":
        return sel
    ep = np.searchsorted(ds.episode_starts, sel, side="right") - 1
    ok = (sel - before >= ds.episode_starts[ep]) & (sel - before + length - 1 <= ds.episode_ends[ep])
    if not ok.any():
        longest = int(ds.episode_lengths.max()) if ds.num_episodes else 0
        raise UserError(f"no window of {length} steps fits inside an episode of dataset {ds.path} (longest episode: "
                        f"{longest} steps); use a shorter window or pad='edge'")
    return sel[ok]


def window_rows(ds: DemoDataset, at: np.ndarray, length: int, before: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(rows (B, length), mask (B, length)) of the windows anchored at rows ``at``: out-of-episode
    positions hold the episode's first / last row, with mask False."""
    at = np.asarray(at, dtype=np.int64)
    ep = np.searchsorted(ds.episode_starts, at, side="right") - 1
    lo, hi = ds.episode_starts[ep][:, None], ds.episode_ends[ep][:, None]
    raw = at[:, None] - before + np.arange(length, dtype=np.int64)[None, :]
    return np.clip(raw, lo, hi), (raw >= lo) & (raw <= hi)


def _gather(ds: DemoDataset, names: list[str], rows: np.ndarray, mask: np.ndarray,
            read: Any) -> dict[str, Any]:
    b, length = rows.shape
    flat = rows.reshape(-1)
    uniq, inverse = np.unique(flat, return_inverse=True)
    got = read(names, uniq)
    out = {name: obs_map(lambda a: np.asarray(a)[inverse].reshape(b, length, *a.shape[1:]), got[name])
           for name in names}
    out["mask"] = mask
    return out


def windows_at(ds: DemoDataset, at: np.ndarray, length: int, *, before: int = 0,
               fields: str | Sequence[str] = DEFAULT_FIELDS) -> dict[str, Any]:
    """The windows anchored at the rows ``at`` (any rows; edge padding), one read of their rows."""
    rows, mask = window_rows(ds, at, length, before)
    return _gather(ds, ds._check_fields(fields), rows, mask, ds.read)


def sample_windows(ds: DemoDataset, batch_size: int, length: int, *, rng: Any = None, pad: Pad = "edge",
                   before: int = 0, fields: str | Sequence[str] = DEFAULT_FIELDS) -> dict[str, Any]:
    """``batch_size`` windows with anchors drawn uniformly (with replacement) among the allowed ones."""
    names = ds._check_fields(fields)
    _check(ds, length, before, pad, batch_size)
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    allowed = anchors(ds, length, before=before, pad=pad)
    at = allowed[gen.integers(0, allowed.size, size=int(batch_size))]
    return windows_at(ds, at, length, before=before, fields=names)


def iter_windows(ds: DemoDataset, batch_size: int, length: int, *, shuffle: bool = False, seed: int | None = None,
                 pad: Pad = "edge", before: int = 0, fields: str | Sequence[str] = DEFAULT_FIELDS,
                 rows: Any = None, drop_last: bool = False) -> Iterator[dict[str, Any]]:
    """Every allowed window of ``rows`` (default: all) once, in batches, streamed.

    Anchors are cut into blocks aligned with the storage's read blocks (``ds.block_rows()``);
    each block's windows are read with ONE contiguous range read (the block's rows plus up to
    ``length - 1`` rows around it). With ``shuffle`` the block order and the anchors within each
    block are seeded permutations (a bounded, block-local shuffle); the leftover anchors of a
    block (fewer than ``batch_size``) carry over to the next. Memory: one block of rows plus
    ``length`` rows, and one batch of windows (``batch_size * length`` rows).
    """
    names = ds._check_fields(fields)
    _check(ds, length, before, pad, batch_size)
    allowed = anchors(ds, length, before=before, pad=pad, rows=None if rows is None else np.asarray(rows))
    return _iter_windows(ds, names, int(batch_size), length, before, allowed, shuffle, seed, drop_last)


def _iter_windows(ds: DemoDataset, names: list[str], batch_size: int, length: int, before: int,
                  allowed: np.ndarray, shuffle: bool, seed: int | None, drop_last: bool) -> Iterator[dict[str, Any]]:
    block = ds.block_rows(names)
    cuts = np.flatnonzero(np.diff(allowed // block)) + 1
    groups = np.split(allowed, cuts) if allowed.size else []
    rng = np.random.default_rng(seed)
    if shuffle:
        groups = [groups[i] for i in rng.permutation(len(groups))]
    carry: dict[str, Any] | None = None  # gathered windows left over from the previous block (< batch_size)
    for k, group in enumerate(groups):
        at = rng.permutation(group) if shuffle else group
        rws, mask = window_rows(ds, at, length, before)
        a, b = int(rws.min()), int(rws.max()) + 1
        span = ds.read(names, slice(a, b))  # one range read: the block and the rows its windows reach

        def from_span(nm: list[str], idx: np.ndarray, span: dict[str, Any] = span) -> dict[str, Any]:
            return {n: obs_map(lambda x: np.asarray(x)[idx], span[n]) for n in nm}

        lo = 0
        if carry is not None:  # complete the carried batch first
            need = batch_size - len(carry["mask"])
            head = _gather(ds, names, rws[:need] - a, mask[:need], from_span)
            carry = _concat([carry, head])
            lo = min(need, at.size)
            if len(carry["mask"]) == batch_size:
                yield carry
                carry = None
        while lo < at.size:
            hi = min(lo + batch_size, at.size)
            batch = _gather(ds, names, rws[lo:hi] - a, mask[lo:hi], from_span)
            if hi - lo == batch_size:
                yield batch
            else:
                carry = batch if carry is None else _concat([carry, batch])
            lo = hi
    if carry is not None and len(carry["mask"]) and not drop_last:
        yield carry


def _concat(parts: list[dict[str, Any]]) -> dict[str, Any]:
    from demokit.data.episode import obs_concat

    return {k: obs_concat([p[k] for p in parts]) for k in parts[0]}
