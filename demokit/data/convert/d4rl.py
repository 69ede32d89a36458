"""D4RL-style flat HDF5 files <-> demokit.

A D4RL file holds flat per-step datasets ``observations``, ``actions``, ``rewards``,
``terminals`` (the MDP ended) and ``timeouts`` (a time limit cut the episode),
optionally ``next_observations``, ``infos/*`` and ``metadata/*``.

Reading (see docs/converters/d4rl.md):

* episodes end at ``terminals | timeouts``; a file without ``timeouts`` (old D4RL)
  has only terminal ends;
* with ``next_observations``, the final observation of an episode is
  ``next_observations[last]``, and a step where ``next_observations[i] !=
  observations[i+1]`` without an end flag also ends an episode (marked truncated);
* without ``next_observations`` the observation after an episode's last step is not
  in the file. A *terminated* episode keeps all its steps and its final observation
  is a copy of its last observation (a placeholder: termination never bootstraps,
  so nothing reads it as a real next state). A *truncated* episode (timeout, or the
  trailing piece) loses its last step, whose observation becomes the final
  observation, so every kept transition has its true next observation; a
  one-step truncated episode is dropped. Both are recorded as notes;
* a trailing piece with neither flag becomes a truncated episode (with a note);
* ``infos/*`` (numeric, one row per step) become extras named by their key (nested
  groups joined by ``.``); others are skipped with a note. ``metadata/*`` scalars go
  into the provenance; ``metadata/env_id`` (written by demokit) names the env.

Writing (``--to d4rl``): flat Box/Discrete/MultiDiscrete/MultiBinary spaces only;
``next_observations`` is always written, so reading the file back is exact.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from demokit.data.storage import hdf5 as h5io
import numpy as np
from gymnasium import spaces

from demokit.data import format as fmt
from demokit.data.convert.common import (
    ConvertResult,
    MemoryHDF5,
    Segments,
    Source,
    block_from_segments,
    check_rows,
    env_info,
    flat_spaces,
    numeric_extras,
    open_hdf5,
    prepare_target,
    require_rewards,
    split_segments,
)
from demokit.data.locking import commit_file, temp_path_for
from demokit.errors import UserError
from demokit.paths import make_parents, remove_dirs, write_file

REQUIRED = ("observations", "actions", "rewards", "terminals")


def is_d4rl_file(h5: h5io.File) -> bool:
    return all(isinstance(h5.get(k), h5io.Dataset) for k in ("observations", "actions", "rewards")) and (
        "terminals" in h5 or "timeouts" in h5)


def _metadata(group: Any, prefix: str = "") -> dict[str, Any]:
    """Small ``metadata/*`` values (scalars, strings, short arrays) as JSON-friendly values."""
    out: dict[str, Any] = {}
    if not isinstance(group, h5io.Group):
        return out
    for key, item in group.items():
        if isinstance(item, h5io.Group):
            out.update(_metadata(item, f"{prefix}{key}."))
        elif item.size <= 64:
            out[f"{prefix}{key}"] = fmt.decode_attr(item[()])
    return out


def _flat_group(group: Any, prefix: str = "") -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for key, item in group.items():
        if isinstance(item, h5io.Group):
            out.update(_flat_group(item, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = item[()]
    return out


def read_d4rl(path: str | os.PathLike[str], *, env_id: str | None = None) -> Source:
    """Validate a D4RL-style file and return it as a :class:`Source`."""
    path = Path(path)
    with open_hdf5(path) as h5:
        for key in REQUIRED:
            if key == "terminals" and "timeouts" in h5:
                continue
            if not isinstance(h5.get(key), h5io.Dataset):
                raise UserError(f"{path}: no dataset {key!r}; a D4RL file needs {', '.join(REQUIRED)} "
                                f"(and usually timeouts)")
        fields: dict[str, Any] = {k: h5[k][()] for k in ("observations", "actions", "rewards", "terminals", "timeouts",
                                                          "next_observations") if isinstance(h5.get(k), h5io.Dataset)}
        infos = _flat_group(h5["infos"]) if isinstance(h5.get("infos"), h5io.Group) else {}
        metadata = _metadata(h5.get("metadata"))
        attrs = {k: fmt.decode_attr(v) for k, v in h5.attrs.items() if np.size(v) <= 64}
    n = check_rows(path, {k: v for k, v in fields.items()}, reference="rewards")
    if n == 0:
        raise UserError(f"{path}: the datasets are empty; there is nothing to convert")
    rewards = np.asarray(fields["rewards"], dtype=np.float64)
    if rewards.size != n:
        raise UserError(f"{path}: field 'rewards' has shape {rewards.shape}; expected one reward per step ({n},)")
    rewards = rewards.reshape(n)
    flags = {}
    for key in ("terminals", "timeouts"):
        arr = fields.get(key)
        if arr is None:
            flags[key] = np.zeros(n, dtype=bool)
            continue
        arr = np.asarray(arr)
        if arr.size != n:
            raise UserError(f"{path}: field {key!r} has shape {arr.shape}; expected one flag per step ({n},)")
        flags[key] = arr.reshape(n).astype(bool)

    named = metadata.get("env_id")
    if env_id is None and isinstance(named, str) and named:
        import gymnasium as gym

        env_id = named if named in gym.registry else None
    env = env_info(env_id) if env_id is not None else None
    obs_space, act_space, obs, actions = flat_spaces(np.asarray(fields["observations"]), np.asarray(fields["actions"]),
                                                     env, path=path)
    next_obs = fields.get("next_observations")
    if next_obs is not None:
        next_obs = np.asarray(next_obs)
        if next_obs.shape[1:] != np.asarray(fields["observations"]).shape[1:]:
            raise UserError(f"{path}: next_observations has per-step shape {next_obs.shape[1:]} but observations has "
                            f"{np.asarray(fields['observations']).shape[1:]}")
        next_obs = next_obs.reshape(obs.shape).astype(obs.dtype, copy=False)

    source = Source(kind="d4rl", path=path, observation_space=obs_space, action_space=act_space, episodes=(),
                    num_episodes=0, num_steps=0, env_id=env.env_id if env else None,
                    env_spec=env.spec_json if env else None, spaces_inferred=env is None,
                    info={"metadata": metadata, "attrs": attrs} if attrs else {"metadata": metadata})
    if env is None:
        source.note("the file names no env, so the spaces were inferred from the data "
                    f"(observations {obs_space}, actions {act_space}); pass --env to use an env's spaces")
    if "timeouts" not in fields:
        source.note("the file has no timeouts, so no episode end is known to be a time limit")
    extras = numeric_extras(source, infos, n, what="infos")
    segments = split_segments(source, terminals=flags["terminals"], timeouts=flags["timeouts"], observations=obs,
                              next_observations=next_obs, end_field="terminals/timeouts")
    if next_obs is not None:
        finals = next_obs[segments.stop - 1]
    else:
        segments, finals = _without_next_observations(source, segments, obs)
    source.set_blocks([block_from_segments(segments, observations=obs, actions=actions, rewards=rewards,
                                           finals=finals, extras=extras)])
    return source


def _without_next_observations(source: Source, segments: Segments, obs: np.ndarray) -> tuple[Segments, np.ndarray]:
    """Final observations when the file has no next_observations (see module docstring)."""
    cut = segments.truncated  # a truncated episode gives up its last step, which supplies the final observation
    long = segments.lengths > 1
    keep = ~cut | long
    copied, shortened, dropped = int((~cut).sum()), int((cut & long).sum()), int((cut & ~long).sum())
    if not keep.any():
        raise UserError(f"{source.path}: without next_observations every episode is too short to convert "
                        f"(each truncated episode gives up its last step)")
    source.note(f"the file has no next_observations: {copied} terminated episode(s) got a copy of their last "
                f"observation as final observation (never bootstrapped), {shortened} truncated episode(s) gave up "
                f"their last step so that it supplies the final observation, {dropped} one-step truncated "
                f"episode(s) were dropped")
    kept = Segments(start=segments.start[keep], stop=(segments.stop - cut)[keep],
                    terminated=(segments.terminated & ~cut)[keep], truncated=cut[keep])
    return kept, obs[segments.stop[keep] - 1]


def write_d4rl(source: Source, dst: Path, *, force: bool, compression: str | None) -> ConvertResult:
    """Write ``source`` as one flat D4RL-style HDF5 file (atomically)."""
    for what, space in (("observation", source.observation_space), ("action", source.action_space)):
        if isinstance(space, (spaces.Dict, spaces.Tuple)):
            raise UserError(f"a D4RL file holds flat arrays; the {what} space {space} is nested: convert to demokit "
                            f"(.h5) or Minari instead")
    require_rewards(source, target="a D4RL file", why="holds a 'rewards' array (D4RL's and Minari's D4RL loaders "
                    "need one)")
    compression = fmt.check_compression(compression)
    prepare_target(dst, is_dir=False, force=force)
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("observations", "actions", "rewards", "terminals", "timeouts",
                                                          "next_observations")}
    extras: dict[str, list[np.ndarray]] = {}
    episodes = 0
    for block in source.iter_blocks():  # flat sources: one block; others: one per episode
        parts["observations"].append(np.asarray(block.observations))
        parts["actions"].append(np.asarray(block.actions))
        parts["rewards"].append(block.rewards)
        parts["terminals"].append(block.terminated)
        parts["timeouts"].append(block.truncated)
        parts["next_observations"].append(block.next_observations())
        for k, v in block.extras.items():
            extras.setdefault(k, []).append(np.asarray(v))
        episodes += block.num_episodes
    if not episodes:
        raise UserError(f"{source.path} holds no episodes; nothing to write")
    created = make_parents(dst)
    tmp = temp_path_for(dst)
    kwargs: dict[str, Any] = {"compression": compression} if compression else {}
    try:
        memory = MemoryHDF5()  # built in memory, written with plain file I/O (see MemoryHDF5)
        with memory as h5:
            for k, v in parts.items():
                h5.create_dataset(k, data=np.concatenate(v), **kwargs)
            for k, v in extras.items():
                h5.create_dataset(f"infos/{k}", data=np.concatenate(v), **kwargs)
            meta = h5.create_group("metadata")
            meta["source"] = str(source.path)
            if source.env_id:
                meta["env_id"] = source.env_id
            meta["provenance"] = fmt.to_json(source.output_provenance())
            steps = int(h5["rewards"].shape[0])
        write_file(tmp, memory.image)
        del memory
        commit_file(tmp, dst, no_clobber=False)  # fsync + atomic rename, like the demokit writer
    except BaseException:
        tmp.unlink(missing_ok=True)
        remove_dirs(created)
        raise
    return ConvertResult(path=dst, source_kind=source.kind, episodes=episodes, steps=steps, target_kind="d4rl",
                         spaces_inferred=source.spaces_inferred, notes=tuple(source.notes))
