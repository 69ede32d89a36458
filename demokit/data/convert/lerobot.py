"""LeRobot v3.0 datasets <-> demokit.

A LeRobot v3.0 dataset is a folder::

    meta/info.json                          codebase_version "v3.0", fps, totals, data_path, features
    meta/tasks.parquet                      task_index + task text
    meta/episodes/chunk-000/file-000.parquet  one row per episode: episode_index, length,
                                            data/chunk_index, data/file_index, dataset_from_index, ...
    data/chunk-000/file-000.parquet         one row per frame: the features (observation.state,
                                            action, next.reward, next.done, ...), timestamp,
                                            frame_index, episode_index, index, task_index
    videos/<key>/chunk-000/file-000.mp4     video-encoded image features (episodes packed in time;
                                            meta/episodes gives each episode's from_timestamp)

Mapping (docs/converters/lerobot.md): numeric ``observation.*`` features become the
observation (one feature: a Box; several: a Dict keyed by the name after ``observation.``),
``action`` the action; ``next.reward`` the rewards (absent: a reward-free dataset);
``next.done`` on an episode's last frame marks it terminated, else it is truncated. Image
features (PNG in the Parquet files) and video features (decoded at each frame's timestamp) become
uint8 (H, W, C) observations when Pillow / PyAV are installed, else they are named in a note and
skipped (as are video files that are absent). Other numeric features become extras; the task of
each frame is the ``task_index`` extra (when there are several tasks) with the task texts in the
provenance. LeRobot stores no observation after an episode's last frame: the final observation is
a copy of the last one (a placeholder, noted) unless the folder was written by demokit, whose
``meta/demokit.json`` holds the true final observations, spaces, env id, seeds and provenance (so
demokit -> LeRobot -> demokit is exact). Checked against LeRobot 0.4.4 (codebase v3.0): its
recording API writes what this reads, and its ``LeRobotDataset`` reads what this writes.
Needs ``pip install 'demokit[lerobot]'`` (pyarrow; Pillow and PyAV for pictures).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
from gymnasium import spaces

from demokit.data.convert import media
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
VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
EPISODES_FILE = "meta/episodes/chunk-000/file-000.parquet"
SIDECAR = "meta/demokit.json"
#: per-frame bookkeeping columns of LeRobot (not observations or actions)
INDEX_COLUMNS = ("timestamp", "frame_index", "episode_index", "index", "task_index")
DEFAULT_FPS = 30
#: how far a video frame's time may be from the frame's timestamp (LeRobotDataset's default tolerance_s)
VIDEO_TOLERANCE_S = 1e-4
#: the statistics LeRobot 0.4.4 keeps per feature in meta/stats.json
QUANTILES = {"q01": 0.01, "q10": 0.10, "q50": 0.50, "q90": 0.90, "q99": 0.99}


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
        raise UserError("reading or writing LeRobot datasets needs pyarrow: pip install 'demokit[lerobot]' "
                        "(or pip install pyarrow)") from None
    return pyarrow


def _column(table: Any, name: str) -> np.ndarray:
    import pyarrow as pa

    col = table.column(name).combine_chunks()
    if pa.types.is_fixed_size_list(col.type) and col.null_count == 0 and not pa.types.is_nested(col.type.value_type):
        flat = col.flatten().to_numpy(zero_copy_only=False)  # vectors in bulk: (N * k,) -> (N, k)
        return flat.reshape(len(col), col.type.list_size)
    values = col.to_numpy(zero_copy_only=False)
    if values.dtype == object:  # list / fixed-size-list cells: one row per frame
        return np.stack([np.asarray(v) for v in values]) if len(values) else np.zeros((0,))
    return values


def _feature_array(table: Any, name: str, feature: dict[str, Any], path: Path) -> np.ndarray:
    """A numeric feature's column as (N, *shape) in its declared dtype (a (1,) feature stays (N, 1))."""
    arr = _column(table, name)
    shape = tuple(int(d) for d in feature.get("shape") or (1,))
    try:
        return arr.reshape((len(arr), *shape)).astype(np.dtype(feature["dtype"]), copy=False)
    except (ValueError, TypeError) as exc:
        raise UserError(f"{path}: column {name!r} does not hold {feature.get('dtype')} values of shape "
                        f"{list(shape)} as meta/info.json declares ({exc})") from None


def _read_parquets(pq: Any, pa: Any, files: list[Path], path: Path) -> Any:
    try:
        tables = [pq.read_table(f) for f in files]
        return pa.concat_tables(tables, promote_options="default") if len(tables) > 1 else tables[0]
    except (OSError, ValueError, pa.ArrowException) as exc:
        raise UserError(f"{path}: the Parquet files cannot be read ({exc})") from None


def _task_texts(pq: Any, path: Path) -> list[str] | None:
    """meta/tasks.parquet as a list indexed by task_index (LeRobot keeps the text as the pandas index)."""
    f = path / "meta" / "tasks.parquet"
    if not f.is_file():
        return None
    table = pq.read_table(f)
    names = table.column_names
    text_col = "task" if "task" in names else next((n for n in names if n.startswith("__index_level_")), None)
    if text_col is None or "task_index" not in names:
        return None
    idx = _column(table, "task_index").astype(np.int64)
    texts = [str(t) for t in table.column(text_col).to_pylist()]
    out = [""] * (int(idx.max()) + 1 if len(idx) else 0)
    for i, t in zip(idx, texts):
        out[int(i)] = t
    return out


def _episode_rows(pq: Any, pa: Any, path: Path) -> dict[int, dict[str, Any]]:
    files = sorted((path / "meta" / "episodes").glob("chunk-*/file-*.parquet"))
    if not files:
        return {}
    rows = _read_parquets(pq, pa, files, path).to_pylist()
    return {int(r["episode_index"]): r for r in rows if "episode_index" in r}


def _decode_images(table: Any, name: str, path: Path) -> np.ndarray:
    """An ``image`` feature (struct of PNG/JPEG bytes and a path) as (N, H, W, C) uint8."""
    out = []
    for i, cell in enumerate(table.column(name).to_pylist()):
        data = cell.get("bytes") if isinstance(cell, dict) else None
        if data is None and isinstance(cell, dict) and cell.get("path"):
            data = (path / cell["path"]).read_bytes() if (path / cell["path"]).is_file() else None
        if data is None:
            raise UserError(f"{path}: frame {i} of {name} has no image bytes")
        out.append(media.decode_image(data, what=f"{path}: {name} frame {i}"))
    return np.stack(out)


def _decode_video(name: str, info: dict[str, Any], episode: np.ndarray, starts: np.ndarray, lengths: np.ndarray,
                  timestamps: np.ndarray, episodes: dict[int, dict[str, Any]], path: Path) -> np.ndarray | str:
    """A ``video`` feature decoded at each frame's time, (N, H, W, 3) uint8; or why it cannot be."""
    template = info.get("video_path") or VIDEO_PATH
    frames = np.zeros(len(episode), dtype=object)
    groups: dict[Path, list[int]] = {}
    query = np.zeros(len(episode), dtype=np.float64)
    for start, length in zip(starts.tolist(), lengths.tolist()):
        ep = int(episode[start])
        row = episodes.get(ep)
        keys = [f"videos/{name}/{k}" for k in ("chunk_index", "file_index", "from_timestamp")]
        if row is None or any(row.get(k) is None for k in keys):
            return f"meta/episodes has no video file for episode {int(ep)}"
        f = path / template.format(video_key=name, chunk_index=int(row[keys[0]]), file_index=int(row[keys[1]]))
        if not f.is_file():
            return f"its video file {f.relative_to(path)} is absent"
        rows = np.arange(start, start + length)
        query[rows] = float(row[keys[2]]) + timestamps[rows].astype(np.float64)
        groups.setdefault(f, []).extend(rows.tolist())
    for f, rows in groups.items():
        got = media.video_frames(f, query[rows], tolerance_s=VIDEO_TOLERANCE_S, what=f"{path}: {name}")
        for r, img in zip(rows, got):
            frames[r] = img
    return np.stack(list(frames))


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
    table = _read_parquets(pq, pa, files, path)
    if table.num_rows == 0:
        raise UserError(f"{path}: the data files hold no frames")
    if "index" in table.column_names:
        table = table.take(np.argsort(_column(table, "index"), kind="stable"))
    sidecar = {}
    if (path / SIDECAR).is_file():
        sidecar = json.loads((path / SIDECAR).read_text())
    pictures = [k for k, f in features.items() if isinstance(f, dict) and f.get("dtype") in ("video", "image")]
    numeric = {k: f for k, f in features.items() if isinstance(f, dict) and k not in pictures
               and f.get("dtype") not in ("string",) and k not in INDEX_COLUMNS}
    obs_names = [k for k in features if k.startswith("observation.") and (k in numeric or k in pictures)]
    missing = [k for k in (*numeric, "episode_index") if k not in table.column_names]
    if missing:
        raise UserError(f"{path}: the data files lack the column(s) {missing} that meta/info.json declares")
    episode = _column(table, "episode_index").astype(np.int64)
    n = len(episode)
    starts = np.flatnonzero(np.r_[True, episode[1:] != episode[:-1]])
    lengths = np.diff(np.r_[starts, n]).astype(np.int64)
    if len(np.unique(episode)) != len(starts):
        raise UserError(f"{path}: the frames of an episode are not contiguous (sorted by 'index')")
    ends = starts + lengths - 1
    fps = info.get("fps") or DEFAULT_FPS
    skipped: list[str] = []
    decoded: dict[str, str] = {}
    obs_cols: dict[str, np.ndarray] = {}
    episodes_meta: dict[int, dict[str, Any]] | None = None
    for name in obs_names:
        dtype = features[name].get("dtype")
        if dtype == "image":
            why = media.image_decoder() or (None if name in table.column_names else "its column is absent")
            if why is None:
                obs_cols[name] = _decode_images(table, name, path)
                decoded[name] = "image (PNG/JPEG, lossless as stored)"
        elif dtype == "video":
            why = media.video_decoder()
            if why is None:
                if episodes_meta is None:
                    episodes_meta = _episode_rows(pq, pa, path)
                ts = _column(table, "timestamp") if "timestamp" in table.column_names else \
                    (np.arange(n) - np.repeat(starts, lengths)) / fps
                got = _decode_video(name, info, episode, starts, lengths, np.asarray(ts), episodes_meta, path)
                if isinstance(got, str):
                    why = got
                else:
                    obs_cols[name] = got
                    codec = (features[name].get("info") or {}).get("video.codec", "video")
                    decoded[name] = f"{codec} video decoded with PyAV (lossy: the values are the decoded frames)"
        else:
            obs_cols[name] = _feature_array(table, name, features[name], path)
            continue
        if name not in obs_cols:
            skipped.append(f"{name} ({why})")
    if not obs_cols:
        raise UserError(f"{path}: no observation.* feature could be read (features {', '.join(sorted(features))}"
                        f"{'; skipped: ' + '; '.join(skipped) if skipped else ''}); demokit needs an observation")
    other_pictures = [k for k in pictures if not k.startswith("observation.")]
    extra_names = [k for k in numeric if not k.startswith("observation.") and k not in ("action", "next.reward",
                                                                                         "next.done")]
    actions = _feature_array(table, "action", features["action"], path)
    if actions.ndim == 2 and actions.shape[1] == 1 and actions.dtype.kind in "iub":
        actions = actions.reshape(n)  # one integer per frame: a Discrete action
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
    extras = {k: _feature_array(table, k, numeric[k], path) for k in extra_names}
    extras = {k: (v.reshape(n) if v.shape[1:] == (1,) else v) for k, v in extras.items()}
    tasks = _task_texts(pq, path)
    task_index = _column(table, "task_index").astype(np.int64) if "task_index" in table.column_names else None
    if task_index is not None and tasks is not None and len(tasks) > 1:
        extras["task_index"] = task_index
    if len(obs_cols) == 1:
        obs: Any = next(iter(obs_cols.values()))
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
            raise UserError(f"{path}: several observation features ({', '.join(obs_cols)}) cannot fit the flat "
                            f"observation space of {env_id}")
        against = f"env {env_id}"
        obs = fit_to_space(obs, obs_space, what=f"{path}: {next(iter(obs_cols))}", against=against)
        finals = fit_to_space(finals, obs_space, what=f"{path}: {next(iter(obs_cols))}", against=against)
        actions = fit_to_space(actions, act_space, what=f"{path}: action", against=against)
        inferred = False
    elif "observation_space" in sidecar and not unregistered:
        obs_space = space_from_json(json.dumps(sidecar["observation_space"]))
        act_space = space_from_json(json.dumps(sidecar["action_space"]))
        obs = _fit_nested(obs, obs_space, what=f"{path}: observations")
        actions = fit_to_space(actions, act_space, what=f"{path}: action", against="the recorded space")
        recorded = sidecar.get("final_observations")
        if isinstance(obs_space, spaces.Dict) and isinstance(recorded, dict):
            finals = {k: np.asarray(recorded[k], dtype=obs[k].dtype) for k in obs_space.spaces}
        elif not isinstance(obs_space, spaces.Dict) and isinstance(recorded, list):
            finals = np.asarray(recorded, dtype=obs.dtype)
        finals = _fit_nested(finals, obs_space, what=f"{path}: final observations")
        inferred, spec = bool(sidecar.get("spaces_inferred")), sidecar.get("env_spec")
    else:
        if isinstance(obs, dict):
            leaves = {k: infer_space(v, what=f"{path}: observation.{k}", role="observation") for k, v in obs.items()}
            obs_space = spaces.Dict({k: sp for k, (sp, _) in leaves.items()})
            obs = {k: arr for k, (_, arr) in leaves.items()}
            finals = {k: v[ends] for k, v in obs.items()}
        else:
            obs_space, obs = infer_space(obs, what=f"{path}: {next(iter(obs_cols))}", role="observation")
            finals = obs[ends]
        act_space, actions = infer_space(actions, what=f"{path}: action", role="action")
        inferred = True
    seeds = sidecar.get("seeds")
    seeds_arr = np.asarray(seeds, dtype=np.int64) if isinstance(seeds, list) and len(seeds) == len(lengths) else None
    if "truncated" in sidecar and isinstance(sidecar["truncated"], list) and len(sidecar["truncated"]) == len(ends):
        truncated[ends] = np.asarray(sidecar["truncated"], dtype=bool)  # an end with neither flag stays so
    source_info: dict[str, Any] = {"codebase_version": version, "fps": fps, "features": sorted(features)}
    if tasks is not None:
        source_info["tasks"] = tasks
        if task_index is not None:
            source_info["episode_tasks"] = [sorted({tasks[i] for i in task_index[s:s + ln] if 0 <= i < len(tasks)})
                                            for s, ln in zip(starts.tolist(), lengths.tolist())]
    if info.get("robot_type"):
        source_info["robot_type"] = info["robot_type"]
    if decoded:
        source_info["decoded"] = decoded
    source = Source(kind="lerobot", path=path, observation_space=obs_space, action_space=act_space, episodes=(),
                    num_episodes=0, num_steps=0, env_id=named, env_spec=spec, spaces_inferred=inferred,
                    info=source_info, provenance=sidecar.get("provenance"))
    for name, how in decoded.items():
        if "lossy" in how:
            source.note(f"{name}: {how}")
    if skipped:
        source.note(f"picture feature(s) skipped, only the others were converted: {'; '.join(skipped)}")
    if other_pictures:
        source.note(f"picture feature(s) outside observation.* skipped: {', '.join(other_pictures)}")
    texts = [k for k, f in features.items() if isinstance(f, dict) and f.get("dtype") == "string"]
    if texts:
        source.note(f"string feature(s) not converted (demokit datasets hold numbers): {', '.join(texts)}")
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
                                   extras=extras, seeds=seeds_arr)])
    return source


def _fit_nested(batch: Any, space: spaces.Space, *, what: str) -> Any:
    if isinstance(space, spaces.Dict):
        if not isinstance(batch, dict) or set(batch) != set(space.spaces):
            raise UserError(f"{what} do not have the keys of the recorded space {sorted(space.spaces)}")
        return {k: fit_to_space(batch[k], sp, what=f"{what}[{k!r}]", against="the recorded space")
                for k, sp in space.spaces.items()}
    return fit_to_space(batch, space, what=what, against="the recorded space")


# ---------------------------------------------------------------------------------------
# writing


def _is_image(space: spaces.Space) -> bool:
    return (isinstance(space, spaces.Box) and space.dtype == np.uint8 and len(space.shape) == 3
            and space.shape[-1] in (1, 3))


def _leaf_feature(name: str, space: spaces.Space, *, role: str) -> dict[str, Any]:
    """The LeRobot feature for one leaf space (a UserError for what LeRobot cannot hold)."""
    if _is_image(space):
        return {"dtype": "image", "shape": list(space.shape), "names": ["height", "width", "channels"]}
    if isinstance(space, spaces.Discrete):
        return {"dtype": "int64", "shape": [1], "names": None}
    if isinstance(space, (spaces.Box, spaces.MultiDiscrete, spaces.MultiBinary)) and len(space.shape) <= 1:
        dtype = np.int64 if isinstance(space, spaces.MultiDiscrete) else space.dtype
        return {"dtype": str(np.dtype(dtype)), "shape": [int(space.shape[0]) if space.shape else 1], "names": None}
    raise UserError(f"demokit writes LeRobot {role}s as vectors or uint8 (H, W, 1|3) images; {name} is {space}")


def _column_for(pa: Any, arr: np.ndarray, feature: dict[str, Any]) -> Any:
    """A feature's Parquet column as LeRobot writes it: shape (1,) a scalar column, vectors fixed-size
    lists, images structs of PNG bytes and a path."""
    if feature["dtype"] == "image":
        return pa.array([{"bytes": media.encode_png(img), "path": None} for img in arr],
                        type=pa.struct([("bytes", pa.binary()), ("path", pa.string())]))
    arr = np.asarray(arr, dtype=np.dtype(feature["dtype"]))
    flat = np.ascontiguousarray(arr).reshape(len(arr), -1)
    if feature["shape"] == [1]:
        return pa.array(flat.reshape(len(arr)))
    return pa.FixedSizeListArray.from_arrays(pa.array(flat.reshape(-1)), flat.shape[1])


def _stats(arr: np.ndarray, feature: dict[str, Any]) -> dict[str, list[Any]]:
    """min/max/mean/std/count and quantiles as LeRobot keeps them (images: per channel, in [0, 1])."""
    if feature["dtype"] == "image":
        x = arr.reshape(-1, arr.shape[-1]).astype(np.float64) / 255.0
        shape: tuple[int, ...] = (arr.shape[-1], 1, 1)
    else:
        x = np.asarray(arr, dtype=np.float64).reshape(len(arr), -1)
        shape = (x.shape[1],)
    out: dict[str, list[Any]] = {
        "min": x.min(axis=0).reshape(shape).tolist(), "max": x.max(axis=0).reshape(shape).tolist(),
        "mean": x.mean(axis=0).reshape(shape).tolist(), "std": x.std(axis=0).reshape(shape).tolist(),
        "count": [int(len(arr))]}
    for key, q in QUANTILES.items():
        out[key] = np.quantile(x, q, axis=0).reshape(shape).tolist()
    return out


def _tasks_table(pa: Any, tasks: list[str]) -> Any:
    """meta/tasks.parquet as LeRobot's pandas writes it: task_index with the task text as the index."""
    pandas_meta = {"index_columns": ["__index_level_0__"],
                   "column_indexes": [{"name": None, "field_name": None, "pandas_type": "unicode",
                                       "numpy_type": "object", "metadata": {"encoding": "UTF-8"}}],
                   "columns": [{"name": "task_index", "field_name": "task_index", "pandas_type": "int64",
                                "numpy_type": "int64", "metadata": None},
                               {"name": None, "field_name": "__index_level_0__", "pandas_type": "unicode",
                                "numpy_type": "object", "metadata": None}],
                   "attributes": {}, "creator": {"library": "pyarrow", "version": pa.__version__},
                   "pandas_version": "2.2.0"}
    table = pa.table({"task_index": pa.array(np.arange(len(tasks), dtype=np.int64)),
                      "__index_level_0__": pa.array(tasks, pa.string())})
    return table.replace_schema_metadata({b"pandas": json.dumps(pandas_meta).encode()})


def _lerobot_origin(source: Source) -> dict[str, Any]:
    """What an earlier LeRobot -> demokit conversion recorded (tasks, fps, robot type), else {}."""
    origin = (source.provenance or {}).get("converted_from") or {}
    return origin if isinstance(origin, dict) and origin.get("kind") == "lerobot" else {}


def _recorded_tasks(source: Source) -> list[str] | None:
    tasks = _lerobot_origin(source).get("tasks")
    return [str(t) for t in tasks] if isinstance(tasks, list) and tasks else None


def write_lerobot(source: Source, dst: Path, *, force: bool) -> ConvertResult:
    """Write ``source`` as a LeRobot v3.0 folder (written beside DST, then renamed onto it)."""
    obs_leaves: dict[str, spaces.Space]
    if isinstance(source.observation_space, spaces.Dict):
        obs_leaves = {f"observation.{k}": sp for k, sp in source.observation_space.spaces.items()}
    elif isinstance(source.observation_space, spaces.Tuple):
        raise UserError("demokit writes LeRobot datasets with Box or Dict observations; the observation space is "
                        "a Tuple")
    else:
        obs_leaves = {"observation.image" if _is_image(source.observation_space) else "observation.state":
                      source.observation_space}
    features: dict[str, Any] = {k: _leaf_feature(k, sp, role="observation") for k, sp in obs_leaves.items()}
    features["action"] = _leaf_feature("action", source.action_space, role="action")
    if any(f["dtype"] == "image" for f in features.values()) and media.image_decoder() is not None:
        raise UserError(f"writing image observations to LeRobot needs Pillow: {media.image_decoder()}")
    pa = _arrow()
    import pyarrow.parquet as pq

    prepare_lerobot_target(dst, force=force)
    blocks = list(source.iter_blocks())
    if not blocks or not sum(b.num_episodes for b in blocks):
        raise UserError(f"{source.path} holds no episodes; nothing to write")

    def cat(get: Any) -> np.ndarray:
        return np.concatenate([np.asarray(get(b)) for b in blocks])

    if isinstance(source.observation_space, spaces.Dict):
        obs = {f"observation.{k}": cat(lambda b, k=k: b.observations[k]) for k in source.observation_space.spaces}
        finals: Any = {k: cat(lambda b, k=k: b.final_observations[k]) for k in source.observation_space.spaces}
    else:
        obs = {next(iter(obs_leaves)): cat(lambda b: b.observations)}
        finals = cat(lambda b: b.final_observations)
    acts = cat(lambda b: b.actions)
    lengths = cat(lambda b: np.asarray(b.episode_lengths, dtype=np.int64))
    term, trunc = cat(lambda b: b.terminated), cat(lambda b: b.truncated)
    has_rewards = blocks[0].rewards is not None
    seeds = np.concatenate([np.full(b.num_episodes, -1, np.int64) if b.seeds is None else np.asarray(b.seeds)
                            for b in blocks])
    n, e = int(lengths.sum()), len(lengths)
    starts = np.cumsum(lengths) - lengths
    ends = starts + lengths - 1
    episode = np.repeat(np.arange(e, dtype=np.int64), lengths)
    frame = np.arange(n, dtype=np.int64) - np.repeat(starts, lengths)
    origin = _lerobot_origin(source)  # data that came from LeRobot keeps its fps and robot type
    fps = origin.get("fps") if isinstance(origin.get("fps"), int) and origin["fps"] > 0 else DEFAULT_FPS
    values: dict[str, np.ndarray] = {**obs, "action": acts}
    if has_rewards:
        values["next.reward"] = cat(lambda b: np.asarray(b.rewards, dtype=np.float64))
        features["next.reward"] = {"dtype": "float64", "shape": [1], "names": None}
    values["next.done"] = term
    features["next.done"] = {"dtype": "bool", "shape": [1], "names": None}
    extra_names = sorted(blocks[0].extras)
    tasks = _recorded_tasks(source)
    task_index = np.zeros(n, dtype=np.int64)
    if "task_index" in extra_names and tasks is not None:
        task_index = cat(lambda b: b.extras["task_index"]).astype(np.int64)
        extra_names.remove("task_index")
    else:
        tasks = [source.env_id or "demonstration"]
    reserved = set(features) | set(INDEX_COLUMNS)
    clashing = [k for k in extra_names if k in reserved or k.startswith("observation.")]
    if clashing:
        raise UserError(f"the extras {clashing} have the names of LeRobot features; rename them before writing "
                        f"LeRobot (demokit does not rename data)")
    for name in extra_names:
        arr = cat(lambda b, name=name: b.extras[name])
        if arr.ndim > 2:
            raise UserError(f"extra {name!r} has shape {arr.shape[1:]} per step; LeRobot features here are vectors")
        values[name] = arr
        features[name] = {"dtype": str(arr.dtype), "shape": [int(arr.shape[1]) if arr.ndim == 2 else 1],
                          "names": None}
    values.update({"timestamp": (frame / fps).astype(np.float32), "frame_index": frame, "episode_index": episode,
                   "index": np.arange(n, dtype=np.int64), "task_index": task_index})
    for name in INDEX_COLUMNS:
        features[name] = {"dtype": "float32" if name == "timestamp" else "int64", "shape": [1], "names": None}
    cols = {name: _column_for(pa, values[name], features[name]) for name in features}
    stats = {name: _stats(values[name], features[name]) for name in features}
    info = {"codebase_version": VERSION, "robot_type": origin.get("robot_type"), "total_episodes": e, "total_frames": n,
            "total_tasks": len(tasks), "chunks_size": 1000, "data_files_size_in_mb": 100,
            "video_files_size_in_mb": 200, "fps": fps, "splits": {"train": f"0:{e}"}, "data_path": DATA_PATH,
            "video_path": None, "features": features}
    final_json = {k: v.tolist() for k, v in finals.items()} if isinstance(finals, dict) else finals.tolist()
    sidecar = {"observation_space": json.loads(space_to_json(source.observation_space)),
               "action_space": json.loads(space_to_json(source.action_space)), "env_id": source.env_id,
               "env_spec": source.env_spec, "spaces_inferred": source.spaces_inferred, "seeds": seeds.tolist(),
               "truncated": trunc[ends].tolist(), "final_observations": final_json,
               "provenance": source.output_provenance()}
    episode_tasks = [[tasks[i] for i in dict.fromkeys(task_index[s:s + ln].tolist())]
                     for s, ln in zip(starts.tolist(), lengths.tolist())]
    episodes = {"episode_index": pa.array(np.arange(e, dtype=np.int64)),
                "tasks": pa.array(episode_tasks, type=pa.list_(pa.string())), "length": pa.array(lengths),
                "data/chunk_index": pa.array(np.zeros(e, np.int64)), "data/file_index": pa.array(np.zeros(e, np.int64)),
                "dataset_from_index": pa.array(starts), "dataset_to_index": pa.array(starts + lengths),
                "meta/episodes/chunk_index": pa.array(np.zeros(e, np.int64)),
                "meta/episodes/file_index": pa.array(np.zeros(e, np.int64))}

    def save(tmp: Path) -> None:
        (tmp / "data" / "chunk-000").mkdir(parents=True)
        (tmp / "meta" / "episodes" / "chunk-000").mkdir(parents=True)
        pq.write_table(pa.table(cols), tmp / DATA_PATH.format(chunk_index=0, file_index=0))
        pq.write_table(pa.table(episodes), tmp / EPISODES_FILE)
        pq.write_table(_tasks_table(pa, tasks), tmp / "meta" / "tasks.parquet")
        (tmp / "meta" / "info.json").write_text(json.dumps(info, indent=2))
        (tmp / "meta" / "stats.json").write_text(json.dumps(stats, indent=2))
        (tmp / SIDECAR).write_text(json.dumps(sidecar, default=str))

    publish_dir(dst, save)
    return ConvertResult(path=dst, source_kind=source.kind, episodes=e, steps=n, target_kind="lerobot",
                         spaces_inferred=source.spaces_inferred, notes=tuple(source.notes))
