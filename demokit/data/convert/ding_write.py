"""demokit -> DI-engine expert data (``demokit convert in.h5 out.pkl --to ding``).

Two layouts, both as DI-engine's ``collect_demo_data`` saves them (``offline_data_save_type``):

* **pickle** (``data_type='naive'``, any DST but ``*.hdf5`` / ``*.h5``): a pickled ``list`` of
  transition dicts ``{"obs", "next_obs", "action", "reward", "done", <extras>, "collect_iter"}``
  with the values of DI-engine's serial collector: ``obs`` / ``next_obs`` / ``action`` /
  ``reward`` are torch tensors (float64 arrays become float32, as DI-engine's ``to_tensor``
  does; a Discrete action is an int64 tensor of shape (1,), a reward a float32 tensor of shape
  (1,)), ``done`` a Python bool and ``collect_iter`` a Python int (0, what ``collect_demo_data``
  writes, unless the dataset has a ``collect_iter`` extra). Within an episode ``next_obs`` is
  the next transition's ``obs`` tensor itself, as DI-engine's ``to_tensor_transitions`` shares it.
  ``NaiveRLDataset``, ``serial_pipeline_bc`` and the reward models' ``load_expert_data`` read it.
* **hdf5** (``data_type='hdf5'``, DST ``*.hdf5`` / ``*.h5``): the root datasets of ``hdf5_save``,
  ``obs``, ``action``, ``reward`` (N, 1), ``done`` (N,) bool and ``next_obs``, gzip-compressed
  unless ``--compression`` says otherwise, plus one root dataset per extra; ``HDF5Dataset``
  reads it. The env id and demokit's provenance go into root attributes (HDF5Dataset reads
  datasets only).

``done`` is DI-engine's ``terminated or truncated`` as its collector would have written these
episodes: true at a termination and at a truncation by the env's time limit (the dataset's env
and its ``max_episode_steps``), false at the end of any other truncated episode (as DI-engine
leaves an episode its collection stopped in). Reading the file back gives the same episodes;
``--env`` turns the time-limit ends into truncations again.
"""

from __future__ import annotations

import json
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from gymnasium import spaces

from demokit.data import format as fmt
from demokit.data.convert.common import ConvertResult, MemoryHDF5, Source, prepare_target
from demokit.data.convert.ding import CORE_KEYS, ENV_ATTR, TRUNCATION_KEYS
from demokit.data.convert.tensor_pickle import tensor_rows
from demokit.data.locking import commit_file, temp_path_for
from demokit.errors import UserError
from demokit.paths import make_parents, remove_dirs, write_file

#: DST suffixes written in the layout of DI-engine's ``hdf5_save`` (others: its pickle)
HDF5_SUFFIXES = (".hdf5", ".h5")
#: protocol 4: what ``pickle.dump`` wrote by default up to Python 3.13, readable by every Python DI-engine runs on
PICKLE_PROTOCOL = 4
COUNTER = "collect_iter"
PROVENANCE_ATTR = "demokit_provenance"


@dataclass
class _Data:
    """All episodes as DI-engine's flat per-transition arrays (its dtypes and shapes)."""

    obs: np.ndarray
    next_obs: np.ndarray
    action: np.ndarray
    reward: np.ndarray | None  # (N, 1) float32; None: reward-free
    done: np.ndarray  # (N,) bool
    ends: np.ndarray  # (E,) index of each episode's last transition
    extras: dict[str, np.ndarray]


def write_ding(source: Source, dst: Path, *, force: bool, compression: str | None) -> ConvertResult:
    """Write ``source`` as DI-engine expert data: a pickle, or ``hdf5_save``'s layout for a ``.hdf5`` DST.

    ``compression`` is the user's ``--compression`` (None: not given); it applies to the HDF5 layout
    only (default gzip, as ``hdf5_save``)."""
    hdf5 = check_ding_target(dst, compression)
    codec = fmt.check_compression(compression) if compression is not None else "gzip"
    for what, space in (("observation", source.observation_space), ("action", source.action_space)):
        if isinstance(space, (spaces.Dict, spaces.Tuple)):
            raise UserError(f"DI-engine's expert data holds one array per {what}; the {what} space {space} is "
                            f"nested (its GAIL reward model flattens item['obs'], HDF5Dataset keeps one dataset per "
                            f"key, and demokit reads DI-engine data with array observations only): write a demokit "
                            f".h5, Minari, robomimic or LeRobot dataset instead")
    prepare_target(dst, is_dir=False, force=force)
    data = _collect(source)
    if hdf5:
        memory = MemoryHDF5()  # built in memory, written with plain file I/O (a full disk: one OSError)
        with memory as h5:
            _fill_hdf5(h5, data, source, codec)
        image: bytes = memory.image
    else:
        image = pickle.dumps(_transitions(data), protocol=PICKLE_PROTOCOL)
    _publish(dst, image)
    return ConvertResult(path=dst, source_kind=source.kind, episodes=len(data.ends), steps=len(data.done),
                         target_kind="ding", spaces_inferred=source.spaces_inferred, notes=tuple(source.notes))


def check_ding_target(dst: Path, compression: str | None) -> bool:
    """Whether ``dst`` gets the hdf5 layout; ``--compression`` is refused for a pickle (it would be ignored)."""
    hdf5 = dst.suffix.lower() in HDF5_SUFFIXES
    if not hdf5 and compression is not None:
        raise UserError(f"--compression applies to HDF5 files; DI-engine's pickle {dst} is not compressed (leave out "
                        f"--compression, or name a .hdf5 DST for DI-engine's hdf5 layout)")
    return hdf5


def _publish(dst: Path, image: bytes) -> None:
    """Write ``image`` to a temporary file beside ``dst`` and rename it onto ``dst``."""
    created = make_parents(dst)
    tmp = temp_path_for(dst)
    try:
        write_file(tmp, image)
        commit_file(tmp, dst, no_clobber=False)
    except BaseException:
        tmp.unlink(missing_ok=True)
        remove_dirs(created)
        raise


def _collect(source: Source) -> _Data:
    """The source's episodes in DI-engine's dtypes and shapes, with ``done`` as its collector sets it."""
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("obs", "next_obs", "action", "reward", "term", "trunc")}
    lengths: list[np.ndarray] = []
    extras: dict[str, list[np.ndarray]] = {}
    for block in source.iter_blocks():  # flat sources: one block; others: one per episode
        parts["obs"].append(np.asarray(block.observations))
        parts["next_obs"].append(block.next_observations())
        parts["action"].append(np.asarray(block.actions))
        parts["reward"].append(block.rewards if block.rewards is not None else np.zeros(0))
        parts["term"].append(block.terminated)
        parts["trunc"].append(block.truncated)
        lengths.append(np.asarray(block.episode_lengths, dtype=np.int64))
        for k, v in block.extras.items():
            extras.setdefault(k, []).append(np.asarray(v))
    if not lengths or not sum(len(x) for x in lengths):
        raise UserError(f"{source.path} holds no episodes; nothing to write")
    flat = {k: np.concatenate(v) for k, v in parts.items()}
    length = np.concatenate(lengths)
    ends = np.cumsum(length) - 1
    obs = _float32(source, flat["obs"], "observations (and next_obs)")
    next_obs = flat["next_obs"].astype(obs.dtype, copy=False)
    action = flat["action"]
    if isinstance(source.action_space, spaces.Discrete):
        action = action.astype(np.int64).reshape(len(action), 1)  # DI-engine: an int64 tensor of shape (1,)
    elif action.dtype.kind in "iub":
        action = action.astype(np.int64)
    else:
        action = _float32(source, action, "actions")
    reward = None
    if len(flat["reward"]) == len(obs):
        reward = _float32(source, flat["reward"].reshape(len(obs), 1), "rewards")
    else:
        source.note("the dataset is reward-free: the transitions have no 'reward' (DI-engine's BC and GAIL do "
                    "not read it; offline RL and its HDF5Dataset's Decision Transformer mode need one)")
    done = np.zeros(len(obs), dtype=bool)
    done[ends] = _episode_done(source, flat["term"][ends], flat["trunc"][ends], length, obs[ends + 1 - length],
                               next_obs[ends])
    return _Data(obs=obs, next_obs=next_obs, action=action, reward=reward, done=done, ends=ends,
                 extras=_extras(source, {k: np.concatenate(v) for k, v in extras.items()}))


def _float32(source: Source, array: np.ndarray, what: str) -> np.ndarray:
    """float64 -> float32 (DI-engine's ``to_tensor`` turns float64 arrays into FloatTensors and its env
    wrappers return float32); a note says how many values the rounding changed."""
    if array.dtype != np.float64:
        return array
    out = array.astype(np.float32)
    changed = int(np.count_nonzero((out.astype(np.float64) != array) & ~np.isnan(array)))
    if changed:
        worst = float(np.nanmax(np.abs(out.astype(np.float64) - array)))
        source.note(f"the {what} are float64 and were written as float32, DI-engine's dtype (its to_tensor makes "
                    f"float64 arrays FloatTensors and its networks take float32): {changed} value(s) were rounded, "
                    f"by at most {worst:.3g}")
    return out


def _time_limit(env_id: str | None) -> int | None:
    if not env_id:
        return None
    from demokit.envs import max_episode_steps

    try:
        return max_episode_steps(env_id)
    except (UserError, LookupError, ImportError, AttributeError):  # not a gymnasium env here
        return None


def _episode_done(source: Source, terminated: np.ndarray, truncated: np.ndarray, lengths: np.ndarray,
                  first_obs: np.ndarray, final_obs: np.ndarray) -> np.ndarray:
    """DI-engine's ``done`` at each episode's last transition (see the module docstring), with notes."""
    limit = _time_limit(source.env_id)
    at_limit = truncated & ~terminated & (lengths == limit) if limit else np.zeros_like(truncated)
    done = terminated | at_limit
    open_end = ~done
    if open_end.any():
        # done=False lets a reader join the episode to a later one that starts where it stopped: those keep done=True
        last_start = {np.ascontiguousarray(row).tobytes(): k for k, row in enumerate(first_obs)}  # the latest wins
        later = [k for k in np.flatnonzero(open_end).tolist()
                 if last_start.get(np.ascontiguousarray(final_obs[k]).tobytes(), -1) > k]
        if later:
            done[later] = True
            source.note(f"{len(later)} truncated episode(s) end where a later episode starts (bit for bit), so they "
                        f"were written with done=True (done=False would join them on reading back): they read back "
                        f"as terminated")
        open_end = ~done
    if at_limit.any():
        source.note(f"{int(at_limit.sum())} episode(s) truncated by the time limit of {source.env_id} ({limit} steps) "
                    f"end with done=True, as DI-engine's collector writes them (its done is terminated or truncated); "
                    f"read the file back with --env {source.env_id} to mark them truncated again")
    if open_end.any():
        why = "" if limit else " (the dataset names no env with a time limit, so no end is taken as a time limit)"
        source.note(f"{int(open_end.sum())} truncated episode(s) end with done=False, as DI-engine leaves an episode "
                    f"its collection stopped in (its next_obs is bootstrapped); demokit reads them back as "
                    f"truncated{why}")
    ambiguous = terminated & (lengths == limit) if limit else np.zeros_like(terminated)
    if ambiguous.any():
        source.note(f"{int(ambiguous.sum())} terminated episode(s) are exactly the time limit of {source.env_id} "
                    f"({limit} steps) long: reading the file back with --env marks them truncated (DI-engine's done "
                    f"cannot tell them apart)")
    return done


def _extras(source: Source, extras: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Extras become extra keys; names DI-engine's keys (or demokit's reader) give a meaning to are skipped."""
    out = {}
    for name, arr in extras.items():
        if name in CORE_KEYS or name in TRUNCATION_KEYS or "/" in name or not name:
            source.note(f"extra {name!r} skipped: the name is one of DI-engine's transition keys (or not a plain "
                        f"key), so it would be read as that key")
        else:
            out[name] = arr
    return out


def _transitions(data: _Data) -> list[dict[str, Any]]:
    """DI-engine's list of transition dicts: one tensor per value (its own storage), next_obs shared."""
    def rows(array: np.ndarray, key: str = "extra") -> list[Any]:
        try:
            return tensor_rows(array)
        except (TypeError, RuntimeError) as exc:
            raise UserError(f"{key!r} has dtype {array.dtype}, which a torch tensor cannot hold ({exc})") from None

    obs = rows(data.obs)
    finals = rows(data.next_obs[data.ends])
    next_obs: list[Any] = obs[1:] + [None]  # within an episode: the next transition's obs tensor itself
    for k, end in enumerate(data.ends.tolist()):
        next_obs[end] = finals[k]
    columns = {"obs": obs, "next_obs": next_obs, "action": rows(data.action)}
    if data.reward is not None:
        columns["reward"] = rows(data.reward)
    columns["done"] = data.done.tolist()
    counter = data.extras.get(COUNTER)
    if counter is not None and counter.dtype.kind in "iub" and counter.ndim == 1:  # DI-engine's: a Python int
        columns.update({k: rows(v, k) for k, v in data.extras.items() if k != COUNTER})
        columns[COUNTER] = counter.tolist()
    else:
        columns.update({k: rows(v, k) for k, v in data.extras.items()})
        columns.setdefault(COUNTER, [0] * len(data.done))
    names = list(columns)
    return [dict(zip(names, values)) for values in zip(*columns.values())]


def _fill_hdf5(h5: Any, data: _Data, source: Source, compression: str | None) -> None:
    """``hdf5_save``'s datasets (and the extras) at the root of ``h5``."""
    kwargs: dict[str, Any] = {"compression": compression} if compression else {}
    columns = {"obs": data.obs, "action": data.action, "reward": data.reward, "done": data.done,
               "next_obs": data.next_obs, **data.extras}
    for name, array in columns.items():
        if array is not None:
            h5.create_dataset(name, data=array, **kwargs)
    if source.env_id:
        h5.attrs[ENV_ATTR] = source.env_id
    h5.attrs[PROVENANCE_ATTR] = json.dumps(source.output_provenance(), default=str)
