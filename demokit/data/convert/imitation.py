"""imitation's trajectories (a Hugging Face ``datasets`` folder) <-> demokit.

imitation (HumanCompatibleAI) saves a sequence of trajectories with
``datasets.Dataset.save_to_disk``: a folder holding ``dataset_info.json``,
``state.json`` and Arrow files, one row per trajectory with the columns

* ``obs``: the T+1 observations of the trajectory (the reset observation, then one per step),
* ``acts``: the T actions,
* ``infos``: T info dicts, each encoded as a ``jsonpickle`` string,
* ``terminal``: whether the trajectory ended in a terminal state (one bool),
* ``rews``: the T rewards (``TrajectoryWithRew``; absent for ``Trajectory``).

Reading: observations ``obs[:-1]``, final observation ``obs[-1]``; ``terminal`` ->
terminated, else truncated; spaces from ``--env`` (the files carry no env id) or
inferred from the data. ``infos`` are never decoded (jsonpickle can build arbitrary
objects); a note says when non-empty ones were skipped. Trajectories without ``rews``
(imitation's ``Trajectory``) become a reward-free dataset.

Writing (``--to imitation``): the same columns (infos ``"{}"``), so
``imitation.data.serialize.load`` reads it; the dataset description holds demokit's
spaces, env id, seeds and provenance, which make demokit -> imitation -> demokit exact.
Reading and writing need the ``datasets`` package (``pip install 'demokit[imitation-data]'``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
from gymnasium import spaces

from demokit.data.convert.common import (
    ColumnBlock,
    ConvertResult,
    Source,
    env_info,
    fit_to_space,
    infer_space,
    prepare_folder_target,
    publish_dir,
)
from demokit.errors import UserError
from demokit.spaces import space_from_json, space_to_json

COLUMNS = ("obs", "acts", "infos", "terminal")
MARKER = "demokit"


def is_imitation_dir(path: Path) -> bool:
    """A ``save_to_disk`` folder: dataset_info.json + state.json."""
    return path.is_dir() and (path / "dataset_info.json").is_file() and (path / "state.json").is_file()


def _datasets() -> Any:
    try:
        import datasets
    except ImportError:
        raise UserError("reading or writing imitation trajectories needs the datasets package: "
                        "pip install 'demokit[imitation-data]' (or pip install datasets)") from None
    return datasets


def _own_metadata(info: Any) -> dict[str, Any]:
    try:
        meta = json.loads(info.description or "")
    except (TypeError, ValueError):
        return {}
    return meta.get(MARKER, {}) if isinstance(meta, dict) and isinstance(meta.get(MARKER), dict) else {}


def read_imitation(path: str | os.PathLike[str], *, env_id: str | None = None) -> Source:
    """Validate an imitation trajectory folder and return it as a :class:`Source`."""
    path = Path(path)
    hf = _datasets()
    try:
        ds = hf.load_from_disk(str(path))
    except Exception as exc:  # noqa: BLE001 - any failure of a foreign reader means "not readable"
        raise UserError(f"{path}: cannot be read as a Hugging Face dataset folder ({type(exc).__name__}: "
                        f"{str(exc).splitlines()[0][:200]})") from None
    if not isinstance(ds, hf.Dataset):
        raise UserError(f"{path} holds a DatasetDict (splits {sorted(ds)}); give the folder of one split")
    missing = [c for c in ("obs", "acts", "terminal") if c not in ds.column_names]
    if missing:
        raise UserError(f"{path}: columns {ds.column_names} lack {missing}; imitation trajectories have obs, acts, "
                        f"infos, terminal and rews")
    if len(ds) == 0:
        raise UserError(f"{path}: the dataset holds no trajectories; there is nothing to convert")
    own = _own_metadata(ds.info)
    table = ds.data  # read the Arrow columns directly: datasets' numpy formatter turns float64 into float32
    obs_rows, obs_vals = _column(table, "obs", path)
    act_rows, actions = _column(table, "acts", path)
    has_rews = "rews" in ds.column_names
    rew_rows, rewards = _column(table, "rews", path) if has_rews else (act_rows, None)
    terminal = np.asarray(table.column("terminal").to_pylist(), dtype=bool).reshape(-1)
    nonempty_infos = 0
    if "infos" in ds.column_names:
        import pyarrow.compute as pc

        flat_infos = pc.list_flatten(table.column("infos").combine_chunks())
        nonempty_infos = int(len(flat_infos) - pc.sum(pc.is_in(flat_infos, value_set=_pa().array(["{}", ""])))
                             .as_py() or 0) if len(flat_infos) else 0
    if np.any(act_rows < 1):
        raise UserError(f"{path}: trajectory {int(np.argmin(act_rows))} has no actions")
    bad = np.flatnonzero(obs_rows != act_rows + 1)
    if len(bad):
        i = int(bad[0])
        raise UserError(f"{path}: trajectory {i} has {obs_rows[i]} observations and {act_rows[i]} actions; imitation "
                        f"stores T+1 observations for T actions")
    bad = np.flatnonzero(rew_rows != act_rows)
    if len(bad) or (rewards is not None and rewards.ndim != 1):
        i = int(bad[0]) if len(bad) else 0
        raise UserError(f"{path}: trajectory {i} has {rew_rows[i]} rewards for {act_rows[i]} actions; expected one "
                        f"reward per action")
    if len(terminal) != len(act_rows):
        raise UserError(f"{path}: 'terminal' has {len(terminal)} values for {len(act_rows)} trajectories")
    obs_end = np.cumsum(obs_rows)
    is_final = np.zeros(len(obs_vals), dtype=bool)
    is_final[obs_end - 1] = True
    obs_all, finals = obs_vals[~is_final], obs_vals[is_final]
    lengths = act_rows
    rewards = None if rewards is None else rewards.astype(np.float64)
    if env_id is not None:
        env = env_info(env_id)
        obs_space, act_space = env.observation_space, env.action_space
        against = f"env {env_id}"
        obs_all = fit_to_space(obs_all, obs_space, what=f"{path}: obs", against=against)
        finals = fit_to_space(finals, obs_space, what=f"{path}: obs", against=against)
        actions = fit_to_space(actions, act_space, what=f"{path}: acts", against=against)
        inferred, spec, named = False, env.spec_json, env_id
    elif "observation_space" in own:  # written by demokit: its spaces, exactly
        obs_space = space_from_json(json.dumps(own["observation_space"]))
        act_space = space_from_json(json.dumps(own["action_space"]))
        obs_all = fit_to_space(obs_all, obs_space, what=f"{path}: obs", against="the recorded space")
        finals = fit_to_space(finals, obs_space, what=f"{path}: obs", against="the recorded space")
        actions = fit_to_space(actions, act_space, what=f"{path}: acts", against="the recorded space")
        inferred, spec, named = bool(own.get("spaces_inferred")), own.get("env_spec"), own.get("env_id")
    else:
        obs_space, obs_all = infer_space(obs_all, what=f"{path}: obs", role="observation")
        finals = finals.astype(obs_all.dtype, copy=False).reshape(len(finals), *obs_all.shape[1:])
        act_space, actions = infer_space(actions, what=f"{path}: acts", role="action")
        inferred, spec, named = True, None, None
    lengths_arr = np.asarray(lengths, dtype=np.int64)
    ends = np.cumsum(lengths_arr) - 1
    n = int(lengths_arr.sum())
    terminated, truncated = np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
    terminated[ends] = terminal
    truncated[ends] = ~np.asarray(terminal, dtype=bool)
    seeds = own.get("seeds")
    seeds_arr = np.asarray(seeds, dtype=np.int64) if isinstance(seeds, list) and len(seeds) == len(lengths) else None
    source = Source(kind="imitation", path=path, observation_space=obs_space, action_space=act_space, episodes=(),
                    num_episodes=0, num_steps=0, env_id=named, env_spec=spec, spaces_inferred=inferred,
                    info={"trajectories": len(lengths), "columns": ds.column_names}, provenance=own.get("provenance"))
    if inferred and not own:
        source.note(f"imitation's trajectories name no env, so the spaces were inferred from the data (observations "
                    f"{obs_space}, actions {act_space}); pass --env to use an env's spaces")
    if rewards is None:
        source.note("the trajectories have no rewards (imitation's Trajectory, not TrajectoryWithRew): the dataset "
                    "is reward-free")
    if nonempty_infos:
        source.note(f"{nonempty_infos} non-empty info(s) were skipped: they are jsonpickle strings, which demokit "
                    f"does not decode (decoding can build arbitrary objects)")
    source.set_blocks([ColumnBlock(observations=obs_all, actions=actions, rewards=rewards,
                                   terminated=terminated, truncated=truncated, final_observations=finals,
                                   episode_lengths=lengths_arr, seeds=seeds_arr)])
    return source


def _pa() -> Any:
    import pyarrow

    return pyarrow


def _values(arr: Any, path: Path, name: str) -> np.ndarray:
    """A (possibly nested) Arrow list array as one numpy array with a leading axis of ``len(arr)``;
    nested lists must have one length per level (else the data is ragged)."""
    pa = _pa()
    if pa.types.is_list(arr.type) or pa.types.is_large_list(arr.type) or pa.types.is_fixed_size_list(arr.type):
        import pyarrow.compute as pc

        lengths = pc.list_value_length(arr).to_numpy(zero_copy_only=False)
        child = _values(pc.list_flatten(arr), path, name)
        if not len(arr):
            return child.reshape(0, 0, *child.shape[1:])
        if np.any(lengths != lengths[0]):
            raise UserError(f"{path}: {name!r} has rows of different shapes (ragged); Dict observations and "
                            f"variable-size arrays are not supported")
        return child.reshape(len(arr), int(lengths[0]), *child.shape[1:])
    if arr.null_count:
        raise UserError(f"{path}: {name!r} holds missing values")
    return np.asarray(arr.to_numpy(zero_copy_only=False))


def _column(table: Any, name: str, path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Rows per trajectory and all of a per-step column's values concatenated (rows, *shape)."""
    import pyarrow.compute as pc

    arr = table.column(name).combine_chunks()
    pa = _pa()
    if not (pa.types.is_list(arr.type) or pa.types.is_large_list(arr.type)):
        raise UserError(f"{path}: column {name!r} has type {arr.type}; expected one list per trajectory")
    rows = pc.list_value_length(arr).to_numpy(zero_copy_only=False).astype(np.int64)
    return rows, _values(pc.list_flatten(arr), path, name)


def prepare_dir_target(dst: Path, *, force: bool) -> None:
    """An existing DST is replaced only with ``force`` and only when it is a datasets folder (or empty)."""
    prepare_folder_target(dst, force=force, recognise=is_imitation_dir, kind="Hugging Face dataset")


def _feature(hf: Any, example: np.ndarray) -> Any:
    """The datasets feature of per-trajectory arrays like ``example`` (T rows): nested Sequences of its dtype."""
    feature = hf.Value(str(example.dtype) if example.dtype != np.bool_ else "bool")
    for _ in range(example.ndim):
        feature = hf.Sequence(feature)
    return feature


def write_imitation(source: Source, dst: Path, *, force: bool) -> ConvertResult:
    """Write ``source`` as an imitation trajectory folder (written beside DST, then renamed onto it)."""
    for what, space in (("observation", source.observation_space), ("action", source.action_space)):
        if isinstance(space, (spaces.Dict, spaces.Tuple)):
            raise UserError(f"imitation trajectories hold one array per step; the {what} space is nested: convert "
                            f"to demokit (.h5), Minari or robomimic instead")
    prepare_dir_target(dst, force=force)
    hf = _datasets()
    columns: dict[str, list[Any]] = {"obs": [], "acts": [], "infos": [], "terminal": [], "rews": []}
    seeds: list[int] = []
    for block in source.iter_blocks():
        for ep in block.episodes():
            columns["obs"].append(np.concatenate([np.asarray(ep.observations), np.asarray(ep.final_observation)]))
            columns["acts"].append(np.asarray(ep.actions))
            columns["infos"].append(["{}"] * len(ep))
            columns["terminal"].append(bool(ep.is_terminated))
            columns["rews"].append(ep.rewards)
            seeds.append(int(ep.seed))
    if not seeds:
        raise UserError(f"{source.path} holds no episodes; nothing to write")
    meta = {MARKER: {"observation_space": json.loads(space_to_json(source.observation_space)),
                     "action_space": json.loads(space_to_json(source.action_space)), "env_id": source.env_id,
                     "env_spec": source.env_spec, "spaces_inferred": source.spaces_inferred, "seeds": seeds,
                     "provenance": source.output_provenance()}}
    features = {"obs": _feature(hf, columns["obs"][0]), "acts": _feature(hf, columns["acts"][0]),
                "infos": hf.Sequence(hf.Value("string")), "terminal": hf.Value("bool"),
                "rews": hf.Sequence(hf.Value("float64"))}
    if columns["rews"][0] is None:  # reward-free: imitation's Trajectory (no rews column)
        del columns["rews"], features["rews"]
    features = hf.Features(features)
    info = hf.DatasetInfo(description=json.dumps(meta, default=str), features=features)

    def save(tmp: Path) -> None:
        bars = hf.is_progress_bar_enabled()
        hf.disable_progress_bars()
        try:
            hf.Dataset.from_dict(columns, features=features, info=info).save_to_disk(str(tmp))
        finally:
            if bars:
                hf.enable_progress_bars()

    publish_dir(dst, save)
    steps = sum(len(a) for a in columns["acts"])
    return ConvertResult(path=dst, source_kind=source.kind, episodes=len(seeds), steps=steps, target_kind="imitation",
                         spaces_inferred=source.spaces_inferred, notes=tuple(source.notes))
