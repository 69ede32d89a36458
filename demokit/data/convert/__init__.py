"""Dataset converters: Minari 0.5, D4RL-style HDF5 and DI-engine pickles <-> demokit.

``convert(src, dst)`` detects the kind of ``src`` (a demokit ``.h5``, a Minari
dataset directory, a D4RL-style flat HDF5 file, a DI-engine pickle / torch.save
file) and of ``dst`` (``.h5``/``.hdf5`` -> demokit; a directory, a path ending in
``/`` or without a suffix -> Minari; ``.pkl`` -> DI-engine expert data; ``to="d4rl"`` -> a flat
D4RL file, ``to="ding"`` with a ``.hdf5`` DST -> DI-engine's hdf5 layout) and
converts. Inputs are checked before anything is written; on failure nothing is
left at ``dst``. See docs/converters.md and docs/converters/<format>.md for the rules
of each format.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from demokit.data.storage import hdf5 as h5io

from demokit.config import from_mapping
from demokit.data import format as fmt
from demokit.data.convert.common import (
    ColumnBlock,
    ConvertConfig,
    ConvertResult,
    Source,
    check_declared_spaces,
    prepare_target,
    same_path,
    write_demokit,
)
from demokit.data.convert.d4rl import is_d4rl_file, read_d4rl, write_d4rl
from demokit.data.convert.ding import is_ding_hdf5_file, read_ding
from demokit.data.convert.ding_write import check_ding_target, write_ding
from demokit.data.convert.imitation import is_imitation_dir, prepare_dir_target, read_imitation, write_imitation
from demokit.data.convert.lerobot import is_lerobot_dir, prepare_lerobot_target, read_lerobot, write_lerobot
from demokit.data.convert.minari import check_minari_storage, minari_data_dir, read_minari, write_minari
from demokit.data.convert.robomimic import is_robomimic_file, read_robomimic, write_robomimic
from demokit.data.convert.safe_pickle import UnsafePickleError, safe_load
from demokit.errors import UserError
from demokit.paths import check_input_path, check_output_path, resolve_output

__all__ = [
    "ConvertConfig", "ConvertResult", "UnsafePickleError", "convert", "detect_source_kind", "detect_target_kind",
    "from_d4rl", "from_ding_pickle", "from_minari", "read_source", "safe_load", "to_d4rl", "to_ding", "to_minari",
]

SOURCE_KINDS = ("demokit", "minari", "d4rl", "ding", "robomimic", "imitation", "lerobot")
TARGET_KINDS = ("demokit", "minari", "d4rl", "ding", "robomimic", "imitation", "lerobot")
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
PICKLE_SUFFIXES = (".pkl", ".pickle", ".pt", ".pth")


def detect_source_kind(src: str | os.PathLike[str]) -> str:
    """``demokit``, ``minari``, ``d4rl`` or ``ding`` (a UserError when it is none of them)."""
    p = Path(src)
    if not p.exists():
        raise UserError(f"{p}: no such file or directory")
    if minari_data_dir(p) is not None:
        return "minari"
    if is_imitation_dir(p):
        return "imitation"
    if is_lerobot_dir(p):
        return "lerobot"
    if p.is_dir():
        raise UserError(f"{p} is a directory but not a Minari dataset (no data/metadata.json with "
                        f"data/main_data.hdf5 or episode directories data/<id>/)")
    with open(p, "rb") as f:
        head = f.read(8)
    if head == HDF5_MAGIC:
        try:
            with h5io.open_file(p, "r") as h5:
                if fmt.decode_attr(h5.attrs.get(fmt.ATTR_FORMAT)) == fmt.FORMAT_NAME:
                    return "demokit"
                if is_d4rl_file(h5):
                    return "d4rl"
                if is_robomimic_file(h5):
                    return "robomimic"
                if is_ding_hdf5_file(h5):
                    return "ding"
                top = sorted(h5.keys())[:8]
        except OSError as exc:
            raise UserError(f"{p}: cannot be opened as HDF5 ({exc})") from None
        raise UserError(f"{p} is an HDF5 file but neither a demokit dataset nor a D4RL-style file "
                        f"(observations, actions, rewards, terminals/timeouts) nor a robomimic file (data/demo_<i>) "
                        f"nor DI-engine's hdf5 expert data (obs, action, ...); it holds {top}")
    if head[:2] == b"PK" or head[:1] == b"\x80" or p.suffix.lower() in PICKLE_SUFFIXES:
        return "ding"  # torch.save zip archive / pickle (protocol >= 2 starts with 0x80)
    raise UserError(f"{p}: unknown data kind; demokit converts demokit .h5, Minari dataset directories, "
                    f"D4RL-style .hdf5 files and DI-engine pickles")


def detect_target_kind(dst: str | os.PathLike[str], to: str | None = None) -> str:
    """The output kind of ``dst`` (``to`` wins when given)."""
    if to is not None:
        if to not in TARGET_KINDS:
            raise UserError(f"unknown output kind {to!r}: use one of {', '.join(TARGET_KINDS)}")
        return to
    text = os.fspath(dst)
    p = Path(text)
    if text.endswith(("/", os.sep)) or p.is_dir():
        return "minari"
    if p.suffix.lower() in (".h5", ".hdf5"):
        return "demokit"
    if not p.suffix:
        return "minari"
    if p.suffix.lower() in (".pkl", ".pickle"):
        return "ding"
    raise UserError(f"cannot tell the output kind from {text!r}: name a demokit file *.h5, a Minari dataset "
                    f"directory (e.g. out/cartpole-expert-v0/), a DI-engine pickle *.pkl, or pass --to "
                    f"{'|'.join(TARGET_KINDS)}")


def read_demokit(path: str | os.PathLike[str], *, env_id: str | None = None) -> Source:
    """A demokit dataset as a :class:`Source`."""
    from demokit.data.dataset import load_dataset

    ds = load_dataset(path)
    source = Source(kind="demokit", path=Path(path), observation_space=ds.observation_space,
                    action_space=ds.action_space, episodes=(), num_episodes=ds.num_episodes,
                    num_steps=len(ds), env_id=ds.env_id, env_spec=ds.env_spec,
                    provenance=ds.provenance)
    source.spaces_inferred = bool(ds.provenance.get("spaces_inferred", False))
    check_declared_spaces(source, env_id)
    # the file is already flat: one block of its arrays (read in bulk), no per-episode objects
    source.set_blocks([ColumnBlock(observations=ds.observations, actions=ds.actions, rewards=ds.rewards,
                                   terminated=ds.terminated, truncated=ds.truncated,
                                   final_observations=ds.final_observations, episode_lengths=ds.episode_lengths,
                                   extras=ds.extras, seeds=ds.episode_seeds)])
    return source


_READERS = {"demokit": read_demokit, "minari": read_minari, "d4rl": read_d4rl, "ding": read_ding,
            "robomimic": read_robomimic, "imitation": read_imitation, "lerobot": read_lerobot}


def read_source(src: str | os.PathLike[str], *, env_id: str | None = None, kind: str | None = None) -> Source:
    """Detect (or take) the kind of ``src``, validate it and return it as a :class:`Source`."""
    kind = kind or detect_source_kind(src)
    if kind not in _READERS:
        raise UserError(f"unknown source kind {kind!r}: use one of {', '.join(SOURCE_KINDS)}")
    return _READERS[kind](src, env_id=env_id)


def convert(src: str | os.PathLike[str], dst: str | os.PathLike[str],
            config: ConvertConfig | Mapping[str, Any] | None = None, *, env_id: str | None = None,
            force: bool | None = None, compression: str | None = None, to: str | None = None,
            dataset_id: str | None = None, minari_data_format: str | None = None,
            source_kind: str | None = None) -> ConvertResult:
    """Convert ``src`` into ``dst``; see the module docstring and :class:`ConvertConfig`.

    Returns a :class:`ConvertResult` (path, source_kind, episodes, steps, ...).
    Raises :class:`UserError` for unreadable, unsafe or inconsistent input, an
    existing ``dst`` without ``force``, or spaces that do not match ``env_id``
    (:class:`SpaceMismatchError`); nothing is written then.
    """
    cfg = from_mapping(ConvertConfig, config, env_id=env_id, force=force, compression=compression, to=to,
                       dataset_id=dataset_id, minari_data_format=minari_data_format)
    src_path = check_input_path(src, what="SRC")
    target = detect_target_kind(dst, cfg.to)
    dst_path = resolve_output(dst)  # a symlink is written through: its target gets the data
    compression_ = fmt.check_compression(cfg.compression)
    if cfg.dataset_id is not None and target != "minari":
        raise UserError(f"--dataset-id names a Minari dataset, but DST {dst} is written as {target}; "
                        f"leave out --dataset-id or write a Minari dataset directory")
    if cfg.minari_data_format is not None and target != "minari":
        raise UserError(f"--minari-format chooses the storage of a Minari dataset, but DST {dst} is written as "
                        f"{target}; leave out --minari-format or write a Minari dataset directory")
    if target == "minari":
        check_minari_storage(cfg.minari_data_format or "hdf5", compression_)  # before a large source is read
    if target == "ding":
        check_ding_target(dst_path, cfg.compression)
    if same_path(src_path, dst_path) or src_path.resolve() == dst_path.resolve():
        raise UserError(f"SRC and DST are the same ({src_path}); write the conversion to another path")
    if target == "imitation":
        prepare_dir_target(dst_path, force=cfg.force)
    elif target == "lerobot":
        prepare_lerobot_target(dst_path, force=cfg.force)
    else:
        prepare_target(dst_path, force=cfg.force, is_dir=target == "minari")  # early: before reading a large source
    if target not in ("minari", "imitation", "lerobot"):  # the one output-path check (kinds, special files, read-only, names)
        check_output_path(dst_path, kind="dataset", inputs=[src_path], force=cfg.force, what="DST")
    source = read_source(src_path, env_id=cfg.env_id, kind=source_kind)
    if target == "minari":
        return write_minari(source, dst_path, force=cfg.force, compression=compression_, dataset_id=cfg.dataset_id,
                            data_format=cfg.minari_data_format or "hdf5")
    if target == "ding":
        return write_ding(source, dst_path, force=cfg.force, compression=cfg.compression)
    if target == "d4rl":
        return write_d4rl(source, dst_path, force=cfg.force, compression=compression_)
    if target == "robomimic":
        return write_robomimic(source, dst_path, force=cfg.force, compression=compression_)
    if target == "imitation":
        return write_imitation(source, dst_path, force=cfg.force)
    if target == "lerobot":
        return write_lerobot(source, dst_path, force=cfg.force)
    return write_demokit(source, dst_path, force=cfg.force, compression=compression_)


def from_minari(src: str | os.PathLike[str], dst: str | os.PathLike[str], **options: Any) -> ConvertResult:
    """Convert a Minari dataset directory (options as for :func:`convert`)."""
    return convert(src, dst, source_kind="minari", **options)


def from_d4rl(src: str | os.PathLike[str], dst: str | os.PathLike[str], **options: Any) -> ConvertResult:
    """Convert a D4RL-style flat HDF5 file (options as for :func:`convert`)."""
    return convert(src, dst, source_kind="d4rl", **options)


def from_ding_pickle(src: str | os.PathLike[str], dst: str | os.PathLike[str], **options: Any) -> ConvertResult:
    """Convert DI-engine expert data (a pickle or torch.save file; options as for :func:`convert`)."""
    return convert(src, dst, source_kind="ding", **options)


def to_minari(src: str | os.PathLike[str], dst: str | os.PathLike[str], **options: Any) -> ConvertResult:
    """Write any source as a Minari 0.5 dataset directory ``dst`` (options as for :func:`convert`)."""
    return convert(src, dst, to="minari", **options)


def to_d4rl(src: str | os.PathLike[str], dst: str | os.PathLike[str], **options: Any) -> ConvertResult:
    """Write any source with flat spaces as a D4RL-style HDF5 file (options as for :func:`convert`)."""
    return convert(src, dst, to="d4rl", **options)


def to_ding(src: str | os.PathLike[str], dst: str | os.PathLike[str], **options: Any) -> ConvertResult:
    """Write any source with array spaces as DI-engine expert data: a pickle, or DI-engine's hdf5 layout when
    ``dst`` ends in ``.hdf5`` / ``.h5`` (options as for :func:`convert`)."""
    return convert(src, dst, to="ding", **options)
