"""Combining datasets: ``combine_datasets([A, B, ...], out)`` writes their episodes, in the given
order, into one dataset (``demokit combine``; also how a sharded collection joins its shards).

The sources must hold the same env (id, and spec when both record one), the same observation
and action spaces, the same extra arrays, and all have rewards or all be reward-free; the first
difference found is one :class:`~demokit.errors.UserError` naming both files, before anything
is written. Episodes are copied whole, source by source, in blocks of whole episodes of at most
:data:`BLOCK_BYTES` of per-step data (memory: one block, whatever the sizes of the sources),
through :class:`~demokit.data.writer.DatasetWriter` with one commit at the end: a new ``out``
appears complete or not at all (temporary file + atomic rename), an append is one journaled
transaction (docs/dataset-format.md, "Writing").

Provenance: ``combined_from`` lists each source (its path, the ``[first, end)`` episode range it
fills in the output, its episode and step counts, and its own provenance and append records,
kept as they were); a caller (the sharded collection) may give the output's provenance instead
and gets the list under the same key.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from demokit import _version
from demokit.data import format as fmt
from demokit.data.dataset import DemoDataset, load_dataset
from demokit.errors import UserError
from demokit.spaces import describe, same_space, space_to_json

#: per-step bytes copied per block (whole episodes; one longer episode is one block)
BLOCK_BYTES = 64 << 20


@dataclass(frozen=True)
class CombineResult:
    """What :func:`combine_datasets` wrote: ``episodes`` / ``steps`` added from ``sources``."""

    path: str
    sources: tuple[str, ...]
    episodes: int
    steps: int
    total_episodes: int
    total_steps: int
    compression: str | None

    def as_dict(self) -> dict[str, Any]:
        from demokit.results import as_dict

        return as_dict(self)


def check_combinable(datasets: Sequence[DemoDataset]) -> None:
    """Refuse, in one line naming both files, sources that cannot share one dataset."""
    first = datasets[0]
    for ds in datasets[1:]:
        a, b = first.path, ds.path
        if (first.env_id or None) != (ds.env_id or None):
            raise UserError(f"cannot combine: {b} holds {ds.env_id or 'episodes of an unknown env'} but {a} holds "
                            f"{first.env_id or 'episodes of an unknown env'}; combine datasets of one env")
        for kind, x, y in (("observation", first.observation_space, ds.observation_space),
                           ("action", first.action_space, ds.action_space)):
            if not same_space(x, y):
                dx, dy = describe(x), describe(y)
                if dx == dy:  # same shape and dtype: the bounds differ
                    dx, dy = space_to_json(x), space_to_json(y)
                raise UserError(f"cannot combine: {b} has {kind} space {dy} but {a} has {dx}; combine datasets "
                                f"with the same spaces")
        if first.has_rewards != ds.has_rewards:
            free, rich = (a, b) if not first.has_rewards else (b, a)
            raise UserError(f"cannot combine: {free} is reward-free but {rich} has rewards; every episode of a "
                            f"dataset has rewards or none does")
        if first.extras_spec != ds.extras_spec:
            raise UserError(f"cannot combine: {b} has extras {_extras_text(ds)} but {a} has {_extras_text(first)}; "
                            f"combine datasets with the same extra arrays")
        key = _spec_difference(first.env_spec, ds.env_spec)
        if key is not None:
            raise UserError(f"cannot combine: {b} and {a} record different specs of {ds.env_id} (they differ in "
                            f"{key!r}); combine datasets made with the same env settings")


def _extras_text(ds: DemoDataset) -> str:
    spec = ds.extras_spec
    return ", ".join(f"{k} {np.dtype(d)}{tuple(s)}" for k, (s, d) in sorted(spec.items())) if spec else "none"


def _spec_difference(a: Mapping[str, Any] | None, b: Mapping[str, Any] | None) -> str | None:
    """The first key in which two recorded env specs differ (None: equal, or one is not recorded)."""
    if not a or not b:
        return None
    for key in sorted(set(a) | set(b)):
        if a.get(key) != b.get(key):
            return key
    return None


def _source_record(ds: DemoDataset, first: int) -> dict[str, Any]:
    record: dict[str, Any] = {"path": str(Path(ds.path).resolve()), "episodes": [first, first + ds.num_episodes],
                              "steps": len(ds), "provenance": ds.provenance}
    appends = ds.metadata.get("appends") or []
    if appends:
        record["appends"] = appends
    return record


def combine_datasets(sources: Sequence[str | os.PathLike[str]], out: str | os.PathLike[str], *,
                     force: bool = False, mode: Literal["create", "overwrite", "append"] | None = None,
                     compression: str | None = "keep", provenance: Mapping[str, Any] | None = None
                     ) -> CombineResult:
    """Write every episode of ``sources``, in order, into ``out`` (see the module docstring).

    ``force``: replace an existing ``out`` (else it must not exist); ``mode`` ("create",
    "overwrite", "append") overrides that choice (append: ``out`` must match the sources too).
    ``compression``: ``"keep"`` (default: the first source's), None / ``"none"``, ``gzip``,
    ``lzf`` or ``blosc`` (ignored when appending: the file's own settings apply).
    ``provenance``: the output's provenance (default: ``combined_from`` and the command line).
    """
    from demokit.data.writer import DatasetWriter

    paths = [Path(s) for s in sources]
    if not paths:
        raise UserError("give at least one dataset to combine")
    out_p = Path(out)
    write_mode = mode or ("overwrite" if force else "create")
    for p in paths:
        if out_p.exists() and p.exists() and os.path.samefile(p, out_p):
            raise UserError(f"--out {out_p} is the input {p}; write the combined dataset to another file")
    if out_p.is_dir():
        raise UserError(f"--out {out_p} is a directory; give a file name such as {out_p / 'combined.h5'}")
    if write_mode == "create" and out_p.exists():
        raise UserError(f"{out_p} already exists; pass --force to replace it or choose another --out")
    datasets = [load_dataset(p) for p in paths]
    check_combinable(datasets)
    resolved = [str(p.resolve()) for p in paths]
    if len(set(resolved)) < len(resolved):
        warnings.warn("the same dataset is given more than once: its episodes are written once per mention",
                      stacklevel=2)
    first = datasets[0]
    comp = first.compression if compression == "keep" else fmt.check_compression(compression)
    records, start = [], 0
    for ds in datasets:
        records.append(_source_record(ds, start))
        start += ds.num_episodes
    if provenance is None:
        prov: dict[str, Any] = {"operation": "combine", "command": list(sys.argv),
                                "demokit_version": _version.__version__}
    else:
        prov = dict(provenance)
    prov["combined_from"] = records
    with DatasetWriter(out_p, observation_space=first.observation_space, action_space=first.action_space,
                       env_id=first.env_id, env_spec=first.env_spec, provenance=prov, mode=write_mode,
                       compression=comp, extras=first.extras_spec or None, commit_interval=None) as writer:
        for ds in datasets:
            _copy_episodes(ds, writer)
        episodes, steps = writer.num_episodes, writer.num_steps
        totals = writer.total_episodes, writer.total_steps
    return CombineResult(path=str(out_p), sources=tuple(str(p) for p in paths), episodes=episodes, steps=steps,
                         total_episodes=totals[0], total_steps=totals[1], compression=comp)


def episode_blocks(ds: DemoDataset, block_bytes: int = BLOCK_BYTES) -> list[tuple[int, int]]:
    """``[e0, e1)`` runs of whole episodes holding at most ``block_bytes`` of per-step data each
    (an episode larger than that is a block of its own)."""
    lengths = ds.episode_lengths
    if not len(lengths):
        return []
    row_bytes = sum(int(np.dtype(dt).itemsize * np.prod(shape, dtype=np.int64))
                    for space in (ds.observation_space, ds.action_space) for _, dt, shape in fmt.leaf_specs(space))
    row_bytes += 10 + sum(int(np.dtype(dt).itemsize * np.prod(s, dtype=np.int64)) for s, dt in ds.extras_spec.values())
    per_block = max(1, block_bytes // max(row_bytes, 1))
    ends = np.cumsum(lengths)
    blocks, e0 = [], 0
    while e0 < len(lengths):
        base = ends[e0 - 1] if e0 else 0
        e1 = int(np.searchsorted(ends, base + per_block, side="right"))
        e1 = max(e1, e0 + 1)
        blocks.append((e0, e1))
        e0 = e1
    return blocks


def _copy_episodes(ds: DemoDataset, writer: Any) -> None:
    """Append every episode of ``ds`` to ``writer`` (flat columns, block by block)."""
    names = [fmt.OBSERVATIONS, fmt.ACTIONS, *([fmt.REWARDS] if ds.has_rewards else []), fmt.TERMINATED,
             fmt.TRUNCATED, *(f"{fmt.EXTRAS}/{n}" for n in ds.extras_spec)]
    starts, lengths, seeds = ds.episode_starts, ds.episode_lengths, ds.episode_seeds
    for e0, e1 in episode_blocks(ds):
        r0, r1 = int(starts[e0]), int(starts[e1 - 1] + lengths[e1 - 1])
        cols = ds.read(names, slice(r0, r1))
        writer.add_columns(observations=cols[fmt.OBSERVATIONS], actions=cols[fmt.ACTIONS],
                           rewards=cols.get(fmt.REWARDS), terminated=cols[fmt.TERMINATED],
                           truncated=cols[fmt.TRUNCATED], final_observations=ds.read_final_observations(slice(e0, e1)),
                           episode_lengths=lengths[e0:e1], seeds=seeds[e0:e1],
                           extras={n: cols[f"{fmt.EXTRAS}/{n}"] for n in ds.extras_spec} or None)
