"""LeRobot v3.0 datasets <-> demokit.

A LeRobot v3.0 dataset is a folder::

    meta/info.json                          codebase_version "v3.0", fps, totals, data_path, features
    meta/tasks.parquet                      task_index + task text
    meta/episodes/chunk-000/file-000.parquet  one row per episode: episode_index, length,
                                            data/chunk_index, data/file_index, dataset_from_index, ...
    data/chunk-000/file-000.parquet         one row per frame: the features (observation.state,
                                            action, next.reward, next.done, ...), timestamp,
                                            frame_index, episode_index, index, task_index
    videos/<key>/chunk-000/file-000.mp4     video-encoded image features (not read here)

Mapping (docs/converters.md, "LeRobot v3"): numeric ``observation.*`` features become the
observation (one feature: a Box; several: a Dict keyed by the name after ``observation.``),
``action`` the action; ``next.reward`` the rewards (absent: a reward-free dataset);
``next.done`` on an episode's last frame marks it terminated, else it is truncated. Video and
image features are named in a note and skipped. LeRobot stores no observation after an
episode's last frame: the final observation is a copy of the last one (a placeholder, noted)
unless the folder was written by demokit, whose ``meta/demokit.json`` holds the true final
observations, spaces, env id, seeds and provenance (so demokit -> LeRobot -> demokit is exact).
Reading and writing need ``pyarrow`` (installed with the ``imitation-data`` extra's ``datasets``).
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

VERSION = "v3.0"
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
EPISODES_FILE = "meta/episodes/chunk-000/file-000.parquet"
SIDECAR = "meta/demokit.json"
#: per-frame bookkeeping columns of LeRobot (not observations or actions)
INDEX_COLUMNS = ("timestamp", "frame_index", "episode_index", "index", "task_index")
DEFAULT_FPS = 30


def is_lerobot_dir(path: Path) -> bool:
    return path.is_dir() and (path / "meta" / "info.json").is_file()


def prepare_lerobot_target(dst: Path, *, force: bool) -> None:
    """An existing DST is replaced only with ``force`` and only when it is a LeRobot folder (or empty)."""
    prepare_folder_target(dst, force=force, recognise=is_lerobot_dir, kind="LeRobot dataset")


def _arrow() -> Any:
    try:
        import pyarrow
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        raise UserError("reading or writing LeRobot datasets needs pyarrow: pip install 'demokit[imitation-data]' "
                        "(or pip install pyarrow)") from None
    return pyarrow


def _column(table: Any, name: str) -> np.ndarray:
    col = table.column(name).combine_chunks()
    values = col.to_numpy(zero_copy_only=False)
    if values.dtype == object:  # list / fixed-size-list cells: one row per frame
        return np.stack([np.asarray(v) for v in values]) if len(values) else np.zeros((0,))
    return values


def read_lerobot(path: str | os.PathLike[str], *, env_id: str | None = None) -> Source:
    """Validate a LeRobot v3.0 folder and return it as a :class:`Source`."""
    path = Path(path)
    pa = _arrow()
    import pyarrow.parquet as pq

    try:
        info = json.loads((path / "meta" / "info.json").read_text())
    except (OSError, ValueError) as exc:
        raise UserError(f"{path}/meta/info.json cannot be read as JSON ({exc})") from None
    version = str(info.get("codebase_version", "")) if isinstance(info, dict) else ""
    if not version.startswith("v3."):
        raise UserError(f"{path}: LeRobot codebase_version {version or 'unknown'!r}; demokit reads v3.x datasets "
                        f"(convert older ones with LeRobot's own v2.1 -> v3.0 converter first)")
    features = info.get("features")
    if not isinstance(features, dict) or "action" not in features:
        raise UserError(f"{path}/meta/info.json has no 'action' feature; a LeRobot dataset lists its features there")
    files = sorted((path / "data").glob("chunk-*/file-*.parquet"))
    if not files:
        raise UserError(f"{path}: no data/chunk-XXX/file-XXX.parquet files; there is nothing to convert")
    table = pa.concat_tables([pq.read_table(f) for f in files])
    if table.num_rows == 0:
        raise UserError(f"{path}: the data files hold no frames")
    if "index" in table.column_names:
        table = table.take(np.argsort(_column(table, "index"), kind="stable"))
    sidecar = {}
    if (path / SIDECAR).is_file():
        sidecar = json.loads((path / SIDECAR).read_text())
    skipped = [name for name, f in features.items() if isinstance(f, dict) and f.get("dtype") in ("video", "image")]
    obs_names = [name for name, f in features.items() if name.startswith("observation.") and name not in skipped
                 and isinstance(f, dict) and f.get("dtype") not in ("string",)]
    if not obs_names:
        raise UserError(f"{path}: no numeric observation.* feature (only {', '.join(skipped) or 'none'}); demokit "
                        f"needs a state observation")
    missing = [n for n in (*obs_names, "action", "episode_index") if n not in table.column_names]
    if missing:
        raise UserError(f"{path}: the data files lack the column(s) {missing} that meta/info.json declares")
    episode = _column(table, "episode_index").astype(np.int64)
    starts = np.flatnonzero(np.r_[True, episode[1:] != episode[:-1]])
    lengths = np.diff(np.r_[starts, len(episode)]).astype(np.int64)
    if len(np.unique(episode)) != len(starts):
        raise UserError(f"{path}: the frames of an episode are not contiguous (sorted by 'index')")
    ends = starts + lengths - 1
    obs_cols = {n: _column(table, n) for n in obs_names}
    actions = _column(table, "action")
    n = len(episode)
    rewards = _column(table, "next.reward").astype(np.float64).reshape(n) if "next.reward" in table.column_names \
        else None
    done = _column(table, "next.done").astype(bool).reshape(n) if "next.done" in table.column_names else None
    terminated, truncated = np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
    if done is not None:
        terminated[ends] = done[ends]
    truncated[ends] = ~terminated[ends]
    inner = done.copy() if done is not None else np.zeros(n, dtype=bool)
    inner[ends] = False
    if inner.any():
        raise UserError(f"{path}: next.done is set on frame {int(np.flatnonzero(inner)[0])}, which is not the last "
                        f"frame of its episode")
    if len(obs_names) == 1:
        obs: Any = obs_cols[obs_names[0]]
        finals: Any = obs[ends]
    else:
        obs = {name[len("observation."):]: arr for name, arr in obs_cols.items()}
        finals = {k: v[ends] for k, v in obs.items()}
    named = env_id or sidecar.get("env_id")
    spec = None
    import gymnasium as gym

    unregistered = env_id is not None and env_id not in gym.registry  # a robot or task name: recorded as given
    if env_id is not None and not unregistered:
        env = env_info(env_id)
        obs_space, act_space, spec = env.observation_space, env.action_space, env.spec_json
        if isinstance(obs, dict):
            raise UserError(f"{path}: several observation features ({', '.join(obs_names)}) cannot fit the flat "
                            f"observation space of {env_id}")
        against = f"env {env_id}"
        obs = fit_to_space(obs, obs_space, what=f"{path}: {obs_names[0]}", against=against)
        finals = fit_to_space(finals, obs_space, what=f"{path}: {obs_names[0]}", against=against)
        actions = fit_to_space(actions, act_space, what=f"{path}: action", against=against)
        inferred = False
    elif "observation_space" in sidecar and not unregistered:
        obs_space = space_from_json(json.dumps(sidecar["observation_space"]))
        act_space = space_from_json(json.dumps(sidecar["action_space"]))
        obs = fit_to_space(obs, obs_space, what=f"{path}: observations", against="the recorded space")
        actions = fit_to_space(actions, act_space, what=f"{path}: action", against="the recorded space")
        finals = fit_to_space(np.asarray(sidecar["final_observations"], dtype=obs.dtype), obs_space,
                              what=f"{path}: final observations", against="the recorded space")
        inferred, spec = bool(sidecar.get("spaces_inferred")), sidecar.get("env_spec")
    else:
        if isinstance(obs, dict):
            leaves = {k: infer_space(v, what=f"{path}: observation.{k}", role="observation") for k, v in obs.items()}
            obs_space = spaces.Dict({k: sp for k, (sp, _) in leaves.items()})
            obs = {k: arr for k, (_, arr) in leaves.items()}
            finals = {k: v[ends] for k, v in obs.items()}
        else:
            obs_space, obs = infer_space(obs, what=f"{path}: {obs_names[0]}", role="observation")
            finals = obs[ends]
        act_space, actions = infer_space(actions, what=f"{path}: action", role="action")
        inferred = True
    seeds = sidecar.get("seeds")
    seeds_arr = np.asarray(seeds, dtype=np.int64) if isinstance(seeds, list) and len(seeds) == len(lengths) else None
    if "truncated" in sidecar and isinstance(sidecar["truncated"], list) and len(sidecar["truncated"]) == len(ends):
        truncated[ends] = np.asarray(sidecar["truncated"], dtype=bool)  # an end with neither flag stays so
    source = Source(kind="lerobot", path=path, observation_space=obs_space, action_space=act_space, episodes=(),
                    num_episodes=0, num_steps=0, env_id=named, env_spec=spec, spaces_inferred=inferred,
                    info={"codebase_version": version, "fps": info.get("fps"), "features": sorted(features)},
                    provenance=sidecar.get("provenance"))
    if skipped:
        source.note(f"video/image feature(s) {', '.join(skipped)} were skipped: demokit does not decode LeRobot's "
                    f"videos here; only the numeric features were converted")
    if unregistered:
        source.note(f"env {env_id!r} is not a Gymnasium env installed here: spaces were inferred from the data "
                    f"(observations {obs_space}, actions {act_space}); the env name is recorded as given, and the "
                    f"commands that need a live env will say so")
    elif inferred and not sidecar:
        source.note(f"LeRobot datasets name no Gymnasium env, so the spaces were inferred from the data "
                    f"(observations {obs_space}, actions {act_space}); pass --env to use an env's spaces")
    if "final_observations" not in sidecar:
        source.note("LeRobot stores no observation after an episode's last frame: each final observation is a copy "
                    "of the episode's last observation (a placeholder)")
    if rewards is None:
        source.note("the data has no next.reward: the dataset is reward-free")
    if done is None:
        source.note("the data has no next.done: every episode is kept as truncated")
    source.set_blocks([ColumnBlock(observations=obs, actions=actions, rewards=rewards, terminated=terminated,
                                   truncated=truncated, final_observations=finals, episode_lengths=lengths,
                                   seeds=seeds_arr)])
    return source


def _feature(arr: np.ndarray) -> dict[str, Any]:
    shape = list(arr.shape[1:]) or [1]
    return {"dtype": str(arr.dtype), "shape": shape, "names": None}


def _list_column(pa: Any, arr: np.ndarray) -> Any:
    """(N, ...) as a fixed-size list column of scalars (LeRobot's layout of vector features)."""
    flat = np.ascontiguousarray(arr).reshape(len(arr), -1)
    return pa.FixedSizeListArray.from_arrays(pa.array(flat.reshape(-1)), flat.shape[1])


def write_lerobot(source: Source, dst: Path, *, force: bool) -> ConvertResult:
    """Write ``source`` as a LeRobot v3.0 folder (written beside DST, then renamed onto it)."""
    for what, space in (("observation", source.observation_space), ("action", source.action_space)):
        if isinstance(space, (spaces.Dict, spaces.Tuple)):
            raise UserError(f"demokit writes LeRobot datasets with flat {what}s only; the {what} space is nested")
    pa = _arrow()
    import pyarrow.parquet as pq

    prepare_lerobot_target(dst, force=force)
    blocks = list(source.iter_blocks())
    obs = np.concatenate([np.asarray(b.observations) for b in blocks]) if blocks else np.zeros((0,))
    acts = np.concatenate([np.asarray(b.actions) for b in blocks])
    finals = np.concatenate([np.asarray(b.final_observations) for b in blocks])
    lengths = np.concatenate([np.asarray(b.episode_lengths, dtype=np.int64) for b in blocks])
    term = np.concatenate([np.asarray(b.terminated) for b in blocks])
    trunc = np.concatenate([np.asarray(b.truncated) for b in blocks])
    has_rewards = blocks[0].rewards is not None
    seeds = np.concatenate([np.full(b.num_episodes, -1, np.int64) if b.seeds is None else np.asarray(b.seeds)
                            for b in blocks])
    if not len(lengths):
        raise UserError(f"{source.path} holds no episodes; nothing to write")
    n, e = int(lengths.sum()), len(lengths)
    starts = np.cumsum(lengths) - lengths
    ends = starts + lengths - 1
    episode = np.repeat(np.arange(e, dtype=np.int64), lengths)
    frame = np.arange(n, dtype=np.int64) - np.repeat(starts, lengths)
    fps = DEFAULT_FPS
    cols: dict[str, Any] = {"observation.state": _list_column(pa, obs), "action": _list_column(pa, acts)}
    features: dict[str, Any] = {"observation.state": _feature(obs), "action": _feature(acts)}
    if has_rewards:
        rewards = np.concatenate([np.asarray(b.rewards, dtype=np.float64) for b in blocks])
        cols["next.reward"] = pa.array(rewards)
        features["next.reward"] = {"dtype": "float64", "shape": [1], "names": None}
    cols["next.done"] = pa.array(term)
    features["next.done"] = {"dtype": "bool", "shape": [1], "names": None}
    cols.update({"timestamp": pa.array((frame / fps).astype(np.float32)), "frame_index": pa.array(frame),
                 "episode_index": pa.array(episode), "index": pa.array(np.arange(n, dtype=np.int64)),
                 "task_index": pa.array(np.zeros(n, dtype=np.int64))})
    for name in ("timestamp", "frame_index", "episode_index", "index", "task_index"):
        features[name] = {"dtype": "float32" if name == "timestamp" else "int64", "shape": [1], "names": None}
    info = {"codebase_version": VERSION, "robot_type": None, "total_episodes": e, "total_frames": n, "total_tasks": 1,
            "chunks_size": 1000, "data_files_size_in_mb": 100, "video_files_size_in_mb": 200, "fps": fps,
            "splits": {"train": f"0:{e}"}, "data_path": DATA_PATH, "video_path": None, "features": features}
    sidecar = {"observation_space": json.loads(space_to_json(source.observation_space)),
               "action_space": json.loads(space_to_json(source.action_space)), "env_id": source.env_id,
               "env_spec": source.env_spec, "spaces_inferred": source.spaces_inferred, "seeds": seeds.tolist(),
               "truncated": trunc[ends].tolist(), "final_observations": finals.tolist(),
               "provenance": source.output_provenance()}
    task = source.env_id or "demonstration"
    episodes = {"episode_index": pa.array(np.arange(e, dtype=np.int64)),
                "tasks": pa.array([[task]] * e, type=pa.list_(pa.string())), "length": pa.array(lengths),
                "data/chunk_index": pa.array(np.zeros(e, np.int64)), "data/file_index": pa.array(np.zeros(e, np.int64)),
                "dataset_from_index": pa.array(starts), "dataset_to_index": pa.array(starts + lengths),
                "meta/episodes/chunk_index": pa.array(np.zeros(e, np.int64)),
                "meta/episodes/file_index": pa.array(np.zeros(e, np.int64))}

    def save(tmp: Path) -> None:
        (tmp / "data" / "chunk-000").mkdir(parents=True)
        (tmp / "meta" / "episodes" / "chunk-000").mkdir(parents=True)
        pq.write_table(pa.table(cols), tmp / DATA_PATH.format(chunk_index=0, file_index=0))
        pq.write_table(pa.table(episodes), tmp / EPISODES_FILE)
        pq.write_table(pa.table({"task_index": pa.array([0], pa.int64()), "task": pa.array([task])}),
                       tmp / "meta" / "tasks.parquet")
        (tmp / "meta" / "info.json").write_text(json.dumps(info, indent=2))
        (tmp / SIDECAR).write_text(json.dumps(sidecar, default=str))

    publish_dir(dst, save)
    return ConvertResult(path=dst, source_kind=source.kind, episodes=e, steps=n, target_kind="lerobot",
                         spaces_inferred=source.spaces_inferred, notes=tuple(source.notes))
