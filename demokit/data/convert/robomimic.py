"""robomimic HDF5 datasets <-> demokit.

robomimic's layout (its docs, "Dataset Structure"): one HDF5 file with a group ``data``
(attributes ``total``: number of samples, ``env_args``: JSON ``{"env_name", "env_type",
"env_kwargs"}``) holding one group ``demo_<i>`` per trajectory (attribute
``num_samples``) with ``actions`` (N, A), ``rewards`` (N,), ``dones`` (N,), ``states``
(N, D; simulator states, dummy for non-robosuite data), ``obs/<key>`` and
``next_obs/<key>`` (N, ...) per observation key; and an optional group ``mask`` whose
datasets (filter keys such as ``train`` / ``valid``) list demo names.

Reading (see docs/converters/robomimic.md):

* demos in the order of their index i (``demo_2`` before ``demo_10``);
* one observation key -> a flat observation (the key is remembered), several -> a
  ``Dict`` space by key; every demo must have the same keys, shapes and dtypes;
* the final observation of an episode is ``next_obs`` of its last step;
* ``dones`` of the last step -> terminated, else truncated; ``dones`` set before the
  last step (robomimic's "done on every success step" mode) are kept as the extra
  ``robomimic.dones``; ``states`` (when it has columns) becomes the extra ``states``;
* spaces: those of ``--env``, or of ``env_args.env_name`` when that is an installed
  gymnasium env, else inferred from the data (robosuite tasks); the env name is
  recorded as given (commands that need a live env then say the env is unknown);
* filter keys become episode subsets: ``provenance.converted_from.filter_keys`` maps
  each key to the demokit episode indices (``demokit filter --subset KEY`` writes one);
* files written by demokit carry a ``demokit`` attribute (spaces, seeds, extras) that
  makes demokit -> robomimic -> demokit exact.

Writing (``--to robomimic``): the layout above (scalar actions such as Discrete as (N, 1)) (``env_type`` 2, robomimic's gym type,
unless the source came from robomimic, whose ``env_args`` are kept), ``states`` as a
dummy (N, 0) array unless the data has a ``states`` extra, other extras under
``demo_<i>/demokit_extras/``, filter keys recorded from an earlier robomimic
conversion written back to ``mask/``.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from demokit.data.storage import hdf5 as h5io
import numpy as np
from gymnasium import spaces

from demokit.data.convert.common import (
    open_hdf5,
    ConvertResult,
    MemoryHDF5,
    Source,
    env_info,
    fit_to_space,
    infer_space,
    prepare_target,
)
from demokit.data.episode import Episode
from demokit.data.locking import commit_file, temp_path_for
from demokit.paths import make_parents, remove_dirs, write_file
from demokit.errors import UserError
from demokit.spaces import space_from_json, space_to_json

DEMO_RE = re.compile(r"^demo_(\d+)$")
#: robomimic's EnvType.GYM_TYPE
GYM_ENV_TYPE = 2
DONES_EXTRA = "robomimic.dones"
STATES_EXTRA = "states"
DEMOKIT_ATTR = "demokit"
EXTRAS_GROUP = "demokit_extras"


def is_robomimic_file(h5: h5io.File) -> bool:
    data = h5.get("data")
    return isinstance(data, h5io.Group) and any(DEMO_RE.match(k) for k in data.keys())


def _attr(obj: Any, name: str) -> Any:
    value = obj.attrs.get(name)
    if isinstance(value, bytes):
        value = value.decode("utf-8")
    if isinstance(value, np.generic):
        value = value.item()
    return value


def _demo_names(data: h5io.Group, path: Path) -> list[str]:
    names = sorted((k for k in data.keys() if DEMO_RE.match(k)), key=lambda k: int(DEMO_RE.match(k).group(1)))
    if not names:
        raise UserError(f"{path}: the 'data' group holds no demo_<i> groups; there is nothing to convert")
    return names


def _env_args(data: h5io.Group, path: Path) -> dict[str, Any]:
    text = _attr(data, "env_args")
    if text is None:
        return {}
    try:
        args = json.loads(text)
    except (TypeError, ValueError):
        raise UserError(f"{path}: data.attrs['env_args'] is not JSON; the file is not a valid robomimic dataset") \
            from None
    return args if isinstance(args, dict) else {}


def _read_demo(g: h5io.Group, name: str, path: Path, keys: list[str] | None) -> dict[str, Any]:
    where = f"{path}: data/{name}"
    for req in ("actions", "obs"):
        if req not in g:
            raise UserError(f"{where} has no {req!r}; a robomimic demo holds actions, rewards, dones, obs and next_obs")
    obs_keys = sorted(g["obs"].keys())
    if keys is not None and obs_keys != keys:
        raise UserError(f"{where} has observation keys {obs_keys} but demo 0 has {keys}; every demo needs the same keys")
    actions = g["actions"][()]
    n = len(actions)
    if n < 1:
        raise UserError(f"{where} has no steps")
    fields = {"actions": actions, "rewards": g["rewards"][()] if "rewards" in g else None,  # None: reward-free
              "dones": g["dones"][()] if "dones" in g else np.zeros(n, dtype=bool)}
    obs = {k: g["obs"][k][()] for k in obs_keys}
    nxt = {k: g["next_obs"][k][()] for k in obs_keys} if "next_obs" in g else None
    for label, arr in [*((k, v) for k, v in fields.items() if v is not None), *((f"obs/{k}", v) for k, v in obs.items()),
                       *((f"next_obs/{k}", v) for k, v in (nxt or {}).items())]:
        if len(arr) != n:
            raise UserError(f"{where}/{label} has {len(arr)} rows but actions has {n}; the demo is inconsistent")
    declared = _attr(g, "num_samples")
    if declared is not None and int(declared) != n:
        raise UserError(f"{where}: num_samples says {declared} but the demo holds {n} steps")
    if (fields["rewards"] is not None and np.asarray(fields["rewards"]).size != n) or \
            np.asarray(fields["dones"]).size != n:
        raise UserError(f"{where}: rewards and dones need one value per step")
    states = g["states"][()] if isinstance(g.get("states"), h5io.Dataset) else None
    extras = {k: v[()] for k, v in g[EXTRAS_GROUP].items()} if isinstance(g.get(EXTRAS_GROUP), h5io.Group) else {}
    return {"obs": obs, "next_obs": nxt, **fields, "states": states, "extras": extras, "seed": _attr(g, "demokit_seed")}


def read_robomimic(path: str | os.PathLike[str], *, env_id: str | None = None) -> Source:
    """Validate a robomimic HDF5 file and return it as a :class:`Source` (see the module docstring)."""
    path = Path(path)
    with open_hdf5(path) as h5:
        data = h5.get("data")
        if not isinstance(data, h5io.Group):
            raise UserError(f"{path}: no 'data' group; not a robomimic dataset")
        names = _demo_names(data, path)
        env_args = _env_args(data, path)
        own = _attr(data, DEMOKIT_ATTR)
        demos, keys = [], None
        for name in names:
            demo = _read_demo(data[name], name, path, keys)
            keys = sorted(demo["obs"])
            demos.append(demo)
        masks = {}
        if isinstance(h5.get("mask"), h5io.Group):
            for key, dset in h5["mask"].items():
                masks[key] = [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in np.asarray(dset[()]).ravel()]
    assert keys is not None
    own_meta = json.loads(own) if isinstance(own, str) else {}
    named = env_args.get("env_name") if isinstance(env_args.get("env_name"), str) else None
    notes: list[str] = []

    def cat(field: str, key: str | None = None) -> np.ndarray:
        if key is None:
            return np.concatenate([np.asarray(d[field]) for d in demos])
        return np.concatenate([np.asarray(d[field][key]) for d in demos])

    lengths = np.array([len(d["actions"]) for d in demos], dtype=np.int64)
    ends = np.cumsum(lengths) - 1
    obs = {k: cat("obs", k) for k in keys}
    if all(d["next_obs"] is not None for d in demos):
        finals = {k: np.stack([np.asarray(d["next_obs"][k])[-1] for d in demos]) for k in keys}
    else:
        finals = {k: v[ends] for k, v in obs.items()}
        notes.append("some demos have no next_obs, so the final observation of every episode is a copy of its last "
                     "observation (a placeholder: never bootstrapped for terminated episodes)")
    actions = cat("actions")
    free = [d["rewards"] is None for d in demos]
    if any(free) and not all(free):
        raise UserError(f"{path}: {sum(free)} of {len(demos)} demos have no 'rewards'; every demo needs rewards, or "
                        f"none (a reward-free dataset)")
    rewards = None if all(free) else cat("rewards").astype(np.float64).reshape(-1)
    if rewards is None:
        notes.append("the demos have no rewards (raw robosuite demonstrations): the dataset is reward-free")
    dones = cat("dones").reshape(-1).astype(bool)
    obs_keys_meta = own_meta.get("obs_keys", keys)

    gym_env = None
    if env_id is None and named:
        import gymnasium as gym

        if named in gym.registry:
            gym_env = named
    use_env = env_id or gym_env
    if "observation_space" in own_meta and use_env is None:  # written by demokit: exact spaces
        obs_space = space_from_json(json.dumps(own_meta["observation_space"]))
        act_space = space_from_json(json.dumps(own_meta["action_space"]))
        obs_batch = obs[keys[0]] if not isinstance(obs_space, spaces.Dict) else obs
        final_batch = finals[keys[0]] if not isinstance(obs_space, spaces.Dict) else finals
        inferred = bool(own_meta.get("spaces_inferred", False))
    elif use_env is not None:
        env = env_info(use_env)
        obs_space, act_space = env.observation_space, env.action_space
        obs_batch, final_batch = _fit_obs(obs, finals, obs_space, path=path, against=f"env {use_env}")
        actions = fit_to_space(actions, act_space, what=f"{path}: actions", against=f"env {use_env}")
        inferred = False
    else:
        if len(keys) == 1:
            obs_space, obs_batch = infer_space(obs[keys[0]], what=f"{path}: obs/{keys[0]}", role="observation")
            _, final_batch = infer_space(finals[keys[0]], what=f"{path}: next_obs/{keys[0]}", role="observation")
            final_batch = final_batch.astype(obs_batch.dtype, copy=False)
        else:
            subs, obs_batch, final_batch = {}, {}, {}
            for k in keys:
                subs[k], obs_batch[k] = infer_space(obs[k], what=f"{path}: obs/{k}", role="observation")
                final_batch[k] = finals[k].astype(obs_batch[k].dtype, copy=False)
            obs_space = spaces.Dict(subs)
        act_space, actions = infer_space(actions, what=f"{path}: actions", role="action")
        if isinstance(act_space, spaces.Box):
            actions = actions.astype(act_space.dtype, copy=False)
        inferred = True
    if "action_space" in own_meta and use_env is None:
        actions = fit_to_space(actions, act_space, what=f"{path}: actions", against="the recorded space")

    extras: dict[str, np.ndarray] = {}
    inner = dones.copy()
    inner[ends] = False
    if inner.any() or DONES_EXTRA in own_meta.get("extras", []):
        extras[DONES_EXTRA] = dones.astype(np.uint8)
        if inner.any():
            notes.append(f"dones is set before the last step in {int(np.unique(np.searchsorted(ends, np.flatnonzero(inner))).size)} "
                         f"demo(s) (robomimic's done-on-success mode); demokit episodes end at their last step and "
                         f"the per-step dones are kept as the extra {DONES_EXTRA!r}")
    states = [d["states"] for d in demos]
    if all(s is not None and np.ndim(s) == 2 and np.shape(s)[1] > 0 for s in states):
        extras[STATES_EXTRA] = np.concatenate(states)
    for name in demos[0]["extras"]:
        extras[name] = np.concatenate([d["extras"][name] for d in demos])
    terminated = np.zeros(len(dones), dtype=bool)
    truncated = np.zeros(len(dones), dtype=bool)
    terminated[ends] = dones[ends]
    truncated[ends] = ~dones[ends]
    seeds = np.array([-1 if d["seed"] is None else int(d["seed"]) for d in demos], dtype=np.int64)

    index = {name: i for i, name in enumerate(names)}
    filter_keys = {}
    for key, members in masks.items():
        missing = [m for m in members if m not in index]
        if missing:
            notes.append(f"filter key {key!r} names demos that are not in the file ({missing[:3]}); they were skipped")
        filter_keys[key] = sorted(index[m] for m in members if m in index)

    recorded_env = env_id or gym_env or named
    source = Source(kind="robomimic", path=path, observation_space=obs_space, action_space=act_space, episodes=(),
                    num_episodes=0, num_steps=0, env_id=recorded_env, env_spec=None, spaces_inferred=inferred,
                    info={"env_args": env_args, "obs_keys": obs_keys_meta, "filter_keys": filter_keys,
                          "demos": len(names)},
                    provenance=own_meta.get("provenance"))
    if use_env is not None:
        source.env_spec = env_info(use_env).spec_json
    for note in notes:
        source.note(note)
    if inferred and named:
        source.note(f"env {named!r} is not a gymnasium env installed here: spaces were inferred from the data "
                    f"(observations {obs_space}, actions {act_space}); the env name is recorded as given")
    from demokit.data.convert.common import ColumnBlock

    source.set_blocks([ColumnBlock(observations=obs_batch, actions=actions, rewards=rewards, terminated=terminated,
                                   truncated=truncated, final_observations=final_batch, episode_lengths=lengths,
                                   extras=extras, seeds=seeds)])
    if env_id is not None and use_env == env_id and named and named != env_id:
        source.note(f"the file names env {named!r} but --env {env_id!r} was given; using {env_id!r}")
    return source


def _fit_obs(obs: dict[str, np.ndarray], finals: dict[str, np.ndarray], space: spaces.Space, *, path: Path,
             against: str) -> tuple[Any, Any]:
    if isinstance(space, spaces.Dict):
        if sorted(space.spaces) != sorted(obs):
            raise UserError(f"{path}: observation keys {sorted(obs)} do not match {against}'s Dict keys "
                            f"{sorted(space.spaces)}")
        return ({k: fit_to_space(obs[k], s, what=f"{path}: obs/{k}", against=against) for k, s in space.spaces.items()},
                {k: fit_to_space(finals[k], s, what=f"{path}: next_obs/{k}", against=against)
                 for k, s in space.spaces.items()})
    if len(obs) != 1:
        raise UserError(f"{path}: {len(obs)} observation keys ({sorted(obs)}) but {against} has one flat observation "
                        f"space; convert without --env to keep them as a Dict observation")
    (key,) = obs
    return (fit_to_space(obs[key], space, what=f"{path}: obs/{key}", against=against),
            fit_to_space(finals[key], space, what=f"{path}: next_obs/{key}", against=against))


# ---------------------------------------------------------------------------------------
# writing


def _obs_columns(space: spaces.Space, batch: Any, keys: list[str]) -> dict[str, np.ndarray]:
    if isinstance(space, spaces.Dict):
        for k, sub in space.spaces.items():
            if isinstance(sub, (spaces.Dict, spaces.Tuple)):
                raise UserError(f"robomimic observations are one array per key; observation key {k!r} is nested")
        return {k: np.asarray(batch[k]) for k in space.spaces}
    if isinstance(space, spaces.Tuple):
        raise UserError("robomimic observations are one array per key; a Tuple observation space cannot be written")
    return {keys[0] if keys else "obs": np.asarray(batch)}


def write_robomimic(source: Source, dst: Path, *, force: bool, compression: str | None) -> ConvertResult:
    """Write ``source`` as one robomimic HDF5 file (atomically)."""
    if isinstance(source.action_space, (spaces.Dict, spaces.Tuple)):
        raise UserError("robomimic stores actions as one array; a nested action space cannot be written")
    prepare_target(dst, is_dir=False, force=force)
    info = source.info if source.kind == "robomimic" else (source.provenance or {}).get("converted_from", {})
    if not isinstance(info, dict) or (source.kind != "robomimic" and info.get("kind") != "robomimic"):
        info = {}
    keys = list(info.get("obs_keys") or [])
    env_args = info.get("env_args") or {"env_name": source.env_id or "", "env_type": GYM_ENV_TYPE, "env_kwargs": {}}
    kwargs: dict[str, Any] = {"compression": compression} if compression else {}
    created = make_parents(dst)
    tmp = temp_path_for(dst)
    episodes = steps = 0
    extra_names: list[str] = []
    try:
        memory = MemoryHDF5()  # built in memory, written with plain file I/O (a full disk: one OSError)
        with memory as h5:
            data = h5.create_group("data")
            for block in source.iter_blocks():
                for ep in block.episodes():
                    _write_demo(data.create_group(f"demo_{episodes}"), ep, source, keys, kwargs)
                    extra_names = sorted(ep.extras)
                    episodes += 1
                    steps += len(ep)
            if not episodes:
                raise UserError(f"{source.path} holds no episodes; nothing to write")
            data.attrs["total"] = steps
            data.attrs["env_args"] = json.dumps(env_args)
            data.attrs[DEMOKIT_ATTR] = json.dumps({
                "observation_space": json.loads(space_to_json(source.observation_space)),
                "action_space": json.loads(space_to_json(source.action_space)),
                "obs_keys": keys or ["obs"], "spaces_inferred": source.spaces_inferred, "extras": extra_names,
                "provenance": source.output_provenance()})
            filter_keys = info.get("filter_keys") or {}
            for key, members in filter_keys.items():
                names = [f"demo_{i}" for i in members if 0 <= int(i) < episodes]
                h5.create_dataset(f"mask/{key}", data=np.array(names, dtype="S"))
        write_file(tmp, memory.image)
        del memory
        commit_file(tmp, dst, no_clobber=False)
    except BaseException:
        tmp.unlink(missing_ok=True)
        remove_dirs(created)
        raise
    return ConvertResult(path=dst, source_kind=source.kind, episodes=episodes, steps=steps, target_kind="robomimic",
                         spaces_inferred=source.spaces_inferred, notes=tuple(source.notes))


def _write_demo(g: h5io.Group, ep: Episode, source: Source, keys: list[str], kwargs: dict[str, Any]) -> None:
    n = len(ep)
    g.attrs["num_samples"] = n
    if ep.seed >= 0:
        g.attrs["demokit_seed"] = int(ep.seed)
    obs = _obs_columns(source.observation_space, ep.observations, keys)
    nxt = _obs_columns(source.observation_space, ep.next_observations, keys)
    for k in obs:
        g.create_dataset(f"obs/{k}", data=obs[k], **kwargs)
        g.create_dataset(f"next_obs/{k}", data=nxt[k], **kwargs)
    actions = np.asarray(ep.actions)
    g.create_dataset("actions", data=actions[:, None] if actions.ndim == 1 else actions, **kwargs)  # robomimic: (N, A)
    if ep.rewards is not None:  # a reward-free dataset: no rewards, as in raw robosuite demos
        g.create_dataset("rewards", data=ep.rewards, **kwargs)
    dones = ep.extras.get(DONES_EXTRA)
    g.create_dataset("dones", data=(np.asarray(dones) if dones is not None else ep.terminated).astype(np.int64),
                     **kwargs)
    states = ep.extras.get(STATES_EXTRA)
    g.create_dataset("states", data=np.asarray(states) if states is not None else np.zeros((n, 0)), **kwargs)
    for name, arr in ep.extras.items():
        if name not in (DONES_EXTRA, STATES_EXTRA):
            g.create_dataset(f"{EXTRAS_GROUP}/{name}", data=np.asarray(arr), **kwargs)
