"""Subsets of a dataset by whole episodes: ``filter_dataset`` (criteria) and ``split_dataset``
(train / validation).

Both read the source once (bulk arrays), pick episodes, and write new demokit files
through :class:`~demokit.data.writer.DatasetWriter` (atomic: a temporary file renamed at
the end; nothing is left on failure). The new file's provenance is the source's, plus
``derived_from``: the source path, what was done (``filter`` with its criteria, or
``split`` with fraction, seed and part) and which source episodes were kept (as
``[start, stop)`` runs). The episode index of the new file is rebuilt from the per-step
data (returns summed, flags taken from the last steps).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from demokit.config import from_mapping, option, to_dict
from demokit.data.dataset import DemoDataset, load_dataset
from demokit.data.episode import obs_index
from demokit.errors import ConfigError, UserError
from demokit.seeding import derive_seed

#: kept-episode runs recorded in the provenance up to this many (else only the count)
MAX_RECORDED_RUNS = 2000


@dataclass(frozen=True)
class FilterConfig:
    """Which episodes ``demokit filter`` keeps: all criteria given must hold; ``top_k`` then keeps the
    K best of those by return (ties: the earlier episode). Kept episodes stay in their order."""

    top_k: int | None = option(None, "keep the K episodes with the highest return")
    min_return: float | None = option(None, "keep episodes whose return is >= R")
    max_length: int | None = option(None, "keep episodes of at most L steps")
    episodes: tuple[int, ...] | None = option(None, "keep these episode indices, e.g. 0,3,5-9")
    subset: str | None = option(None, "keep a named subset recorded by a conversion (robomimic filter keys such "
                                      "as train / valid)")

    def __post_init__(self) -> None:
        if self.top_k is not None and self.top_k < 1:
            raise ConfigError(f"--top-k must be >= 1, got {self.top_k}")
        if self.max_length is not None and self.max_length < 1:
            raise ConfigError(f"--max-length must be >= 1, got {self.max_length}")
        if self.min_return is not None and not np.isfinite(self.min_return):
            raise ConfigError(f"--min-return must be a finite number, got {self.min_return}")
        if self.episodes is not None and any(e < 0 for e in self.episodes):
            raise ConfigError(f"--episodes: episode indices are >= 0, got {min(self.episodes)}")


def parse_episode_ids(text: str) -> tuple[int, ...]:
    """``"0,3,5-9"`` -> (0, 3, 5, 6, 7, 8, 9) (sorted, without repeats)."""
    ids: set[int] = set()
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        lo, sep, hi = part.partition("-")
        try:
            if sep:
                a, b = int(lo), int(hi)
                if b < a:
                    raise ValueError
                ids.update(range(a, b + 1))
            else:
                ids.add(int(part))
        except ValueError:
            raise ConfigError(f"--episodes {text!r}: use indices and ranges such as 0,3,5-9") from None
    if not ids:
        raise ConfigError(f"--episodes {text!r} names no episode")
    return tuple(sorted(ids))


@dataclass(frozen=True)
class SubsetResult:
    """One written subset: its path, counts and the source episodes it holds (sorted)."""

    path: Path
    episodes: int
    steps: int
    mean_return: float | None
    source_episodes: tuple[int, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "episodes": self.episodes, "steps": self.steps,
                "mean_return": self.mean_return}


def select_episodes(ds: DemoDataset, config: FilterConfig) -> np.ndarray:
    """Sorted indices of the episodes ``config`` keeps."""
    keep = np.ones(ds.num_episodes, dtype=bool)
    if config.subset is not None:
        chosen = np.zeros(ds.num_episodes, dtype=bool)
        chosen[np.asarray(named_subsets(ds).get(config.subset, ()), dtype=np.int64)] = True
        if config.subset not in named_subsets(ds):
            known = ", ".join(sorted(named_subsets(ds))) or "none"
            raise UserError(f"--subset: {ds.path} has no subset {config.subset!r} (its subsets: {known})")
        keep &= chosen
    if config.episodes is not None:
        ids = np.asarray(config.episodes, dtype=np.int64)
        if len(ids) and ids.max() >= ds.num_episodes:
            raise UserError(f"--episodes: episode {int(ids.max())} does not exist; {ds.path} holds episodes "
                            f"0-{ds.num_episodes - 1}")
        chosen = np.zeros(ds.num_episodes, dtype=bool)
        chosen[ids] = True
        keep &= chosen
    for value, option in ((config.min_return, "--min-return"), (config.top_k, "--top-k")):
        if value is not None:
            ds.require_rewards(f"{option} (it ranks episodes by their return)")
    if config.min_return is not None:
        keep &= ds.episode_returns >= config.min_return
    if config.max_length is not None:
        keep &= ds.episode_lengths <= config.max_length
    kept = np.flatnonzero(keep)
    if config.top_k is not None and len(kept) > config.top_k:
        order = np.argsort(-ds.episode_returns[kept], kind="stable")  # stable: ties keep the earlier episode
        kept = np.sort(kept[order[:config.top_k]])
    return kept


def named_subsets(ds: DemoDataset) -> dict[str, list[int]]:
    """Named episode subsets recorded by a conversion (``provenance.converted_from.filter_keys``)."""
    conv = ds.provenance.get("converted_from")
    subsets = conv.get("filter_keys") if isinstance(conv, dict) else None
    if not isinstance(subsets, dict):
        return {}
    return {str(k): [int(e) for e in v if 0 <= int(e) < ds.num_episodes] for k, v in subsets.items()
            if isinstance(v, list)}


def _runs(episodes: np.ndarray) -> list[list[int]]:
    """Sorted indices as ``[start, stop)`` runs."""
    if not len(episodes):
        return []
    breaks = np.flatnonzero(np.diff(episodes) != 1) + 1
    return [[int(r[0]), int(r[-1]) + 1] for r in np.split(episodes, breaks)]


def write_subset(ds: DemoDataset, episodes: np.ndarray, out: str | os.PathLike[str], *, derived: Mapping[str, Any],
                 force: bool = False, compression: str | None = None) -> SubsetResult:
    """Write ``episodes`` (sorted indices) of ``ds`` into a new dataset ``out`` (one column block)."""
    from demokit.data.writer import DatasetWriter

    episodes = np.asarray(episodes, dtype=np.int64)
    lengths = ds.episode_lengths[episodes]
    starts = ds.episode_starts[episodes]
    rows = np.arange(int(lengths.sum()), dtype=np.int64) + np.repeat(starts - (np.cumsum(lengths) - lengths), lengths)
    runs = _runs(episodes)
    record: dict[str, Any] = {"path": str(ds.path.resolve()), **dict(derived), "source_episodes": ds.num_episodes,
                              "kept_episodes": int(len(episodes))}
    if len(runs) <= MAX_RECORDED_RUNS:
        record["kept"] = runs
    provenance = dict(ds.provenance)
    if "derived_from" in provenance:
        provenance["derivation_history"] = [*provenance.get("derivation_history", []), provenance.pop("derived_from")]
    provenance["derived_from"] = record
    with DatasetWriter(out, observation_space=ds.observation_space, action_space=ds.action_space, env_id=ds.env_id,
                       env_spec=ds.env_spec, provenance=provenance, mode="overwrite" if force else "create",
                       compression=compression, extras=ds.extras_spec or None) as writer:
        writer.add_columns(observations=obs_index(ds.observations, rows), actions=obs_index(ds.actions, rows),
                           rewards=None if ds.rewards is None else ds.rewards[rows], terminated=ds.terminated[rows], truncated=ds.truncated[rows],
                           final_observations=obs_index(ds.final_observations, episodes), episode_lengths=lengths,
                           seeds=ds.episode_seeds[episodes],
                           extras={k: v[rows] for k, v in ds.extras.items()} or None)
        n_eps, n_steps = writer.num_episodes, writer.num_steps
    returns = ds.episode_returns[episodes] if ds.has_rewards else None
    return SubsetResult(path=Path(out), episodes=n_eps, steps=n_steps,
                        mean_return=float(returns.mean()) if returns is not None and len(returns) else None,
                        source_episodes=tuple(episodes.tolist()))


def _check_out(src: Path, out: Path, force: bool) -> None:
    if out.exists() and src.exists() and os.path.samefile(src, out):
        raise UserError(f"--out {out} is the source dataset; write the subset to another file")
    if out.is_dir():
        raise UserError(f"--out {out} is a directory; give a file name such as {out / 'subset.h5'}")
    if out.exists() and not force:
        raise UserError(f"{out} already exists; pass --force to replace it or choose another --out")
    if out.suffix.lower() not in (".h5", ".hdf5"):
        raise UserError(f"--out {out}: a demokit dataset is a .h5 file; give a name ending in .h5")


def filter_dataset(src: str | os.PathLike[str], out: str | os.PathLike[str],
                   config: FilterConfig | Mapping[str, Any] | None = None, *, force: bool = False,
                   **criteria: Any) -> SubsetResult:
    """Write the episodes of ``src`` that ``config`` (or the keyword criteria) keeps into ``out``.

    A selection that keeps no episode is a :class:`UserError` (nothing is written)."""
    cfg = from_mapping(FilterConfig, config, **criteria)
    if all(v is None for v in to_dict(cfg).values()):
        raise UserError("give at least one of --top-k, --min-return, --max-length, --episodes, --subset")
    src_p, out_p = Path(src), Path(out)
    ds = load_dataset(src_p)
    _check_out(src_p, out_p, force)
    kept = select_episodes(ds, cfg)
    if not len(kept):
        raise UserError(f"the filter keeps no episode of {src_p} ({ds.num_episodes} episodes, returns "
                        f"{_range(ds.episode_returns)}, lengths {_range(ds.episode_lengths)}); nothing was written")
    criteria_record = {k: v for k, v in to_dict(cfg).items() if v is not None}
    if "episodes" in criteria_record and len(criteria_record["episodes"]) > MAX_RECORDED_RUNS:
        criteria_record["episodes"] = f"{len(criteria_record['episodes'])} indices (see kept)"
    return write_subset(ds, kept, out_p, derived={"operation": "filter", "criteria": criteria_record}, force=force)


def _range(values: np.ndarray | None) -> str:
    if values is None:
        return "none (no rewards)"
    return f"{values.min():g}..{values.max():g}" if len(values) else "none"


@dataclass(frozen=True)
class SplitResult:
    train: SubsetResult
    val: SubsetResult

    def to_dict(self) -> dict[str, Any]:
        return {"train": self.train.to_dict(), "val": self.val.to_dict()}


def split_indices(num_episodes: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted train / validation episode indices: ``round(val_fraction * E)`` validation episodes
    (at least 1, at most E - 1), drawn with a generator seeded from ``seed``."""
    if not 0.0 < val_fraction < 1.0:
        raise ConfigError(f"--val-fraction must be in (0, 1), got {val_fraction}")
    if num_episodes < 2:
        raise UserError(f"a split needs at least 2 episodes; the dataset holds {num_episodes}")
    n_val = min(num_episodes - 1, max(1, int(round(val_fraction * num_episodes))))
    perm = np.random.default_rng(derive_seed(seed, "split")).permutation(num_episodes)
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def split_dataset(src: str | os.PathLike[str], out_dir: str | os.PathLike[str], *, val_fraction: float,
                  seed: int = 0, force: bool = False) -> SplitResult:
    """Write ``out_dir/train.h5`` and ``out_dir/val.h5`` (whole episodes). Both or neither are written."""
    src_p, out_p = Path(src), Path(out_dir)
    if out_p.exists() and not out_p.is_dir():
        raise UserError(f"--out {out_p} is a file; give a directory for train.h5 and val.h5")
    ds = load_dataset(src_p)
    train_p, val_p = out_p / "train.h5", out_p / "val.h5"
    for p in (train_p, val_p):
        _check_out(src_p, p, force)
    train, val = split_indices(ds.num_episodes, float(val_fraction), int(seed))
    derived = {"operation": "split", "val_fraction": float(val_fraction), "seed": int(seed)}
    made_dir = not out_p.exists()
    train_res = write_subset(ds, train, train_p, derived={**derived, "part": "train"}, force=force)
    try:
        val_res = write_subset(ds, val, val_p, derived={**derived, "part": "val"}, force=force)
    except BaseException:
        train_p.unlink(missing_ok=True)  # both or neither
        if made_dir:
            try:
                out_p.rmdir()
            except OSError:
                pass
        raise
    return SplitResult(train_res, val_res)
