"""Minari 0.5 datasets (HDF5 storage) <-> demokit.

A Minari dataset is a directory ``<name>-v<N>/data/`` holding ``metadata.json`` and
``main_data.hdf5``. The HDF5 file has one group ``episode_<id>`` per episode with
``observations`` (T+1 rows: the reset observation, then one per step),
``actions``, ``rewards``, ``terminations``, ``truncations`` (T rows) and an optional
``infos`` group (one row per observation); attributes ``id``, ``total_steps`` and,
when known, ``seed``. Dict observations/actions are subgroups per key, Tuple ones
subgroups ``_index_0``, ``_index_1``, ... . ``metadata.json`` carries the spaces as
JSON text in Minari's own space format (:func:`space_to_minari` /
:func:`space_from_minari`), the gymnasium ``env_spec`` JSON and descriptive fields.

Reading: the last observation row of an episode becomes the demokit final
observation; ``infos/<key>`` (nested keys joined with ``.``) with T+1 rows become
extras of T rows (row 0, the reset info, is dropped; T rows are taken as they are).
Writing: extras become ``infos/<key>`` with T+1 rows, row 0 being zeros, so a
demokit -> Minari -> demokit round trip is exact. Image spaces are written raw
(``jpeg_encoding: false``); JPEG-encoded Minari images are decoded with Pillow.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
from collections.abc import Iterator, Mapping
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from gymnasium import spaces

from demokit.data import format as fmt
from demokit.data.convert.common import ConvertResult, Source, check_declared_spaces, env_info, prepare_target
from demokit.data.episode import Episode, obs_index
from demokit.data.locking import temp_path_for
from demokit.errors import UserError
from demokit.paths import make_parents, remove_dirs, write_file

MAIN_FILE = "main_data.hdf5"
METADATA_FILE = "metadata.json"
#: the Minari version written into metadata.json when minari is not installed
DEFAULT_MINARI_VERSION = "0.5.4"
DATASET_NAME_RE = re.compile(r"^[-_\w]+?-v\d+$")


# ---------------------------------------------------------------------------------------
# Minari's JSON space format


def space_to_minari(space: spaces.Space) -> dict[str, Any]:
    """``space`` as Minari 0.5 serialises it (``minari.serialization.serialize_space``)."""
    if isinstance(space, spaces.Box):
        return {"type": "Box", "dtype": str(space.dtype), "shape": list(space.shape),
                "low": space.low.tolist(), "high": space.high.tolist()}
    if isinstance(space, spaces.Discrete):
        return {"type": "Discrete", "dtype": "int64", "start": int(space.start), "n": int(space.n)}
    if isinstance(space, spaces.MultiDiscrete):
        return {"type": "MultiDiscrete", "dtype": str(space.dtype), "nvec": space.nvec.tolist(),
                "start": space.start.tolist()}
    if isinstance(space, spaces.MultiBinary):
        n = space.n
        return {"type": "MultiBinary", "n": np.asarray(n).tolist() if not isinstance(n, int) else n}
    if isinstance(space, spaces.Dict):
        return {"type": "Dict", "subspaces": {k: space_to_minari(s) for k, s in space.spaces.items()}}
    if isinstance(space, spaces.Tuple):
        return {"type": "Tuple", "subspaces": [space_to_minari(s) for s in space.spaces]}
    raise UserError(f"space {space!r} cannot be written to a Minari dataset by demokit")


def space_from_minari(d: Any, *, where: str) -> spaces.Space:
    """Inverse of :func:`space_to_minari`; ``d`` may be the JSON text."""
    try:
        if isinstance(d, str):
            d = json.loads(d)
        kind = d["type"]
        if kind == "Box":
            dtype = np.dtype(d["dtype"])
            shape = tuple(int(x) for x in d["shape"])
            low = np.broadcast_to(np.array(d["low"], dtype=np.float64), shape).astype(dtype)
            high = np.broadcast_to(np.array(d["high"], dtype=np.float64), shape).astype(dtype)
            return spaces.Box(low=low, high=high, shape=shape, dtype=dtype)
        if kind == "Discrete":
            return spaces.Discrete(int(d["n"]), start=int(d.get("start", 0)))
        if kind == "MultiDiscrete":
            return spaces.MultiDiscrete(np.array(d["nvec"]), dtype=np.dtype(d.get("dtype", "int64")),
                                        start=np.array(d["start"]) if "start" in d else None)
        if kind == "MultiBinary":
            n = d["n"]
            return spaces.MultiBinary(n if isinstance(n, int) else list(n))
        if kind == "Dict":
            return spaces.Dict({k: space_from_minari(v, where=where) for k, v in d["subspaces"].items()})
        if kind == "Tuple":
            return spaces.Tuple([space_from_minari(v, where=where) for v in d["subspaces"]])
    except UserError:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise UserError(f"{where} is not a valid Minari space description ({type(exc).__name__}: {exc})") from None
    raise UserError(f"{where} has space type {kind!r}, which demokit does not support "
                    f"(Box, Discrete, MultiDiscrete, MultiBinary, Dict, Tuple)")


# ---------------------------------------------------------------------------------------
# reading


def minari_data_dir(path: str | os.PathLike[str]) -> Path | None:
    """The ``data/`` directory of a Minari dataset given as the dataset dir, its data
    dir or its ``main_data.hdf5``; None when ``path`` is none of those."""
    p = Path(path)
    for cand in (p / "data", p, p.parent if p.name == MAIN_FILE else None):
        if cand is not None and (cand / MAIN_FILE).is_file() and (cand / METADATA_FILE).is_file():
            return cand
    return None


def _read_metadata(data_dir: Path) -> dict[str, Any]:
    path = data_dir / METADATA_FILE
    try:
        meta = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"{path}: not readable JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise UserError(f"{path}: expected a JSON object, got {type(meta).__name__}")
    return meta


def _env_id_of_spec(spec_text: Any, where: str) -> str | None:
    if not isinstance(spec_text, str):
        return None
    try:
        spec = json.loads(spec_text)
    except json.JSONDecodeError:
        raise UserError(f"{where}: env_spec is not valid JSON") from None
    return spec.get("id") if isinstance(spec, dict) else None


def _leaf_paths(space: spaces.Space, prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], spaces.Space]]:
    """HDF5 member paths of the leaves of ``space`` in Minari's layout, in space order."""
    if isinstance(space, spaces.Dict):
        return [lp for k, s in space.spaces.items() for lp in _leaf_paths(s, (*prefix, k))]
    if isinstance(space, spaces.Tuple):
        return [lp for i, s in enumerate(space.spaces) for lp in _leaf_paths(s, (*prefix, f"_index_{i}"))]
    return [(prefix, space)]


def _is_image(space: spaces.Space) -> bool:
    return (isinstance(space, spaces.Box) and len(space.shape) in (2, 3) and space.shape[0] >= 32
            and space.shape[1] >= 32 and space.dtype == np.uint8
            and bool(np.all(space.low == 0)) and bool(np.all(space.high == 255)))


def _decode_jpeg(data: Any, where: str) -> np.ndarray:
    try:
        from PIL import Image
    except ImportError:
        raise UserError(f"{where} holds JPEG-encoded images; install Pillow (pip install pillow) to convert it") from None
    return np.stack([np.asarray(Image.open(io.BytesIO(np.asarray(b, dtype=np.uint8).tobytes())), dtype=np.uint8)
                     for b in data])


def _flat_infos(group: h5py.Group, prefix: str = "") -> dict[str, h5py.Dataset]:
    out: dict[str, h5py.Dataset] = {}
    for key, item in group.items():
        name = f"{prefix}{key}"
        if isinstance(item, h5py.Group):
            out.update(_flat_infos(item, f"{name}."))
        else:
            out[name] = item
    return out


def read_minari(path: str | os.PathLike[str], *, env_id: str | None = None) -> Source:
    """Validate a Minari dataset and return it as a :class:`Source`."""
    data_dir = minari_data_dir(path)
    if data_dir is None:
        raise UserError(f"{path} is not a Minari dataset: expected {Path(path) / 'data' / MAIN_FILE} and "
                        f"{Path(path) / 'data' / METADATA_FILE}")
    meta_path, main_path = data_dir / METADATA_FILE, data_dir / MAIN_FILE
    meta = _read_metadata(data_dir)
    data_format = meta.get("data_format", "hdf5")
    if data_format != "hdf5":
        raise UserError(f"{meta_path}: data_format is {data_format!r}; demokit reads Minari's hdf5 storage only "
                        f"(re-create the dataset with data_format='hdf5')")
    spec_text = meta.get("env_spec")
    source_env = _env_id_of_spec(spec_text, str(meta_path))
    declared = {}
    for key in ("observation_space", "action_space"):
        if key in meta:
            declared[key] = space_from_minari(meta[key], where=f"{meta_path}: {key}")
        else:
            fallback = env_id or source_env
            if fallback is None:
                raise UserError(f"{meta_path} has no {key} and no env_spec; pass --env to name the env")
            info = env_info(fallback)
            declared[key] = info.observation_space if key == "observation_space" else info.action_space
    obs_space, act_space = declared["observation_space"], declared["action_space"]
    jpeg = bool(meta.get("jpeg_encoding", True))

    info_fields = {k: v for k, v in meta.items()
                   if k not in ("observation_space", "action_space", "env_spec", "eval_env_spec", "demokit_provenance")}
    own = meta.get("demokit_provenance")  # written by demokit's own Minari export
    source = Source(kind="minari", path=data_dir.parent if data_dir.name == "data" else data_dir,
                    observation_space=obs_space, action_space=act_space, episodes=(), num_episodes=0, num_steps=0,
                    env_id=source_env, env_spec=spec_text if source_env else None,
                    info={"dataset_id": meta.get("dataset_id"), "metadata": info_fields},
                    provenance=own if isinstance(own, dict) else None)
    check_declared_spaces(source, env_id)

    try:
        h5 = h5py.File(main_path, "r")
    except OSError as exc:
        raise UserError(f"{main_path}: cannot be opened as HDF5 ({exc})") from None
    with h5:
        names = [k for k in h5.keys() if k.startswith("episode_")]
        ids = []
        for name in names:
            suffix = name[len("episode_"):]
            if not suffix.isdigit():
                raise UserError(f"{main_path}: unexpected group {name!r} (episode groups are episode_<id>)")
            ids.append(int(suffix))
        ids.sort()
        infos_plan: dict[str, tuple[str, bool]] | None = None
        skipped: dict[str, str] = {}
        total = 0
        for eid in ids:
            steps, infos = _check_episode(h5, eid, obs_space, act_space, main_path, skipped)
            if infos_plan is None:
                infos_plan = infos
            elif infos != infos_plan:
                for key in set(infos_plan) ^ set(infos):
                    skipped.setdefault(key, "is not present with the same layout in every episode")
                infos_plan = {k: v for k, v in infos_plan.items() if infos.get(k) == v}
            total += steps
    for key, why in sorted(skipped.items()):
        source.note(f"info {key!r} {why}; skipped")
    infos_plan = {k: v for k, v in (infos_plan or {}).items() if k not in skipped}
    for key in ("total_episodes", "total_steps"):
        if key in meta and (isinstance(meta[key], bool) or not isinstance(meta[key], int)):
            raise UserError(f"{meta_path}: {key} is {meta[key]!r}, not an integer")
    if "total_episodes" in meta and int(meta["total_episodes"]) != len(ids):
        raise UserError(f"{meta_path}: total_episodes is {meta['total_episodes']} but {main_path} holds {len(ids)} "
                        f"episode groups; the dataset is incomplete or inconsistent")
    if "total_steps" in meta and int(meta["total_steps"]) != total:
        raise UserError(f"{meta_path}: total_steps is {meta['total_steps']} but the episodes in {main_path} hold "
                        f"{total} steps; the dataset is incomplete or inconsistent")
    source.num_episodes, source.num_steps = len(ids), total
    source.episodes = _iter_episodes(main_path, ids, obs_space, act_space, infos_plan, jpeg)
    return source


def _check_episode(h5: h5py.File, eid: int, obs_space: spaces.Space, act_space: spaces.Space, main_path: Path,
                   skipped: dict[str, str]) -> tuple[int, dict[str, tuple[str, bool]]]:
    """Check one episode's shapes; returns (T, {extra name: (infos member, drop first row)})
    and records unusable infos in ``skipped``."""
    name = f"episode_{eid}"
    g = h5[name]
    where = f"{main_path}: {name}"
    if not isinstance(g, h5py.Group):
        raise UserError(f"{where} is not a group")
    for key in ("observations", "actions", "rewards", "terminations", "truncations"):
        if key not in g:
            raise UserError(f"{where} has no {key!r}")
    T = int(g["rewards"].shape[0]) if g["rewards"].ndim else 0
    if T < 1:
        raise UserError(f"{where}/rewards has no steps; empty episodes cannot be converted")
    if "total_steps" in g.attrs and int(g.attrs["total_steps"]) != T:
        raise UserError(f"{where}: attribute total_steps is {int(g.attrs['total_steps'])} but rewards has {T} rows")
    for key in ("terminations", "truncations"):
        if g[key].shape[:1] != (T,):
            raise UserError(f"{where}/{key} has {g[key].shape[0] if g[key].ndim else 0} rows but rewards has {T}")
    for root, space, rows in (("observations", obs_space, T + 1), ("actions", act_space, T)):
        for path, leaf_space in _leaf_paths(space):
            member = "/".join((root, *path))
            if member not in g or not isinstance(g[member], h5py.Dataset):
                raise UserError(f"{where}/{member} is missing: the data does not match the declared {root[:-1]} space")
            dset = g[member]
            n = dset.shape[0] if dset.ndim else 0
            if n != rows:
                hint = " (Minari stores T+1 observations: the reset observation and one per step)" if root == "observations" else ""
                raise UserError(f"{where}/{member} has {n} rows but the episode has {T} steps, so {rows} were expected{hint}")
            if dset.dtype.kind == "O":
                continue  # JPEG-encoded images: checked when decoded
            want = () if isinstance(leaf_space, spaces.Discrete) else tuple(leaf_space.shape)
            if tuple(dset.shape[1:]) != want:
                raise UserError(f"{where}/{member} has per-step shape {tuple(dset.shape[1:])} but the declared space "
                                f"has {want}")
    infos: dict[str, tuple[str, bool]] = {}
    if "infos" in g and isinstance(g["infos"], h5py.Group):
        for key, dset in _flat_infos(g["infos"]).items():
            n = dset.shape[0] if dset.ndim else 0
            if dset.dtype.kind not in "biuf" or n not in (T, T + 1):
                skipped.setdefault(key, f"(dtype {dset.dtype}, {n} rows for {T} steps in {name}) is not a numeric "
                                        f"per-step array")
                continue
            infos[key] = (dset.name.split("/infos/", 1)[1], n == T + 1)
    return T, infos


def _iter_episodes(main_path: Path, ids: list[int], obs_space: spaces.Space, act_space: spaces.Space,
                   infos: Mapping[str, tuple[str, bool]], jpeg: bool) -> Iterator[Episode]:
    def read(g: h5py.Group, root: str, space: spaces.Space) -> Any:
        leaves = []
        for path, leaf_space in _leaf_paths(space):
            dset = g["/".join((root, *path))]
            if dset.dtype.kind == "O" and jpeg and _is_image(leaf_space):
                leaves.append(_decode_jpeg(dset[()], f"{main_path}: {g.name}/{root}"))
            else:
                leaves.append(dset[()])
        return fmt.assemble(space, leaves)

    with h5py.File(main_path, "r") as h5:
        for eid in ids:
            g = h5[f"episode_{eid}"]
            obs = read(g, "observations", obs_space)
            T = int(g["rewards"].shape[0])
            head, final = obs_index(obs, slice(None, T)), obs_index(obs, slice(T, None))
            extras = {}
            for key, (member, drop_first) in infos.items():
                arr = g["infos"][member][()]
                extras[key] = arr[1:] if drop_first else arr
            seed = int(g.attrs["seed"]) if "seed" in g.attrs else -1
            try:
                yield Episode(observations=head, actions=read(g, "actions", act_space), rewards=g["rewards"][()],
                              terminated=g["terminations"][()], truncated=g["truncations"][()],
                              final_observation=final, extras=extras, seed=seed)
            except ValueError as exc:
                raise UserError(f"{main_path}: episode_{eid}: {exc}") from None


# ---------------------------------------------------------------------------------------
# writing


def minari_version() -> str:
    """The installed minari's version when it is a 0.5 release, else :data:`DEFAULT_MINARI_VERSION`."""
    try:
        version = importlib_metadata.version("minari")
    except importlib_metadata.PackageNotFoundError:
        return DEFAULT_MINARI_VERSION
    return version if version.startswith("0.5.") else DEFAULT_MINARI_VERSION


def default_dataset_id(dst: Path) -> str:
    """The dataset id for ``dst``: its path below ``$MINARI_DATASETS_PATH`` (so that
    ``minari.load_dataset(id)`` finds it) or else its directory name."""
    root = os.environ.get("MINARI_DATASETS_PATH")
    if root:
        try:
            return dst.resolve().relative_to(Path(root).resolve()).as_posix()
        except ValueError:
            pass
    return dst.name


def _minari_env_spec(source: Source) -> str | None:
    """An env spec JSON that ``gymnasium.EnvSpec.from_json`` accepts, or None."""
    from gymnasium.envs.registration import EnvSpec

    text = source.env_spec
    if isinstance(text, Mapping):
        text = json.dumps(dict(text))
    if isinstance(text, str):
        try:
            EnvSpec.from_json(text)
            return text
        except Exception:  # a minimal spec (id, max_episode_steps only)
            pass
    if source.env_id:
        import gymnasium as gym

        if source.env_id in gym.registry:
            try:
                return gym.spec(source.env_id).to_json()
            except Exception:
                return None
    return None


def _write_nested(group: h5py.Group, name: str, space: spaces.Space, batch: Any, kwargs: dict[str, Any]) -> None:
    for path, leaf_space in _leaf_paths(space):
        arr = batch
        for part in path:
            arr = arr[int(part[len("_index_"):])] if part.startswith("_index_") else arr[part]
        arr = np.asarray(arr)
        if isinstance(leaf_space, spaces.Discrete):
            arr = arr.astype(np.int64)
        group.create_dataset("/".join((name, *path)), data=arr, chunks=True, maxshape=(None, *arr.shape[1:]), **kwargs)


def write_minari(source: Source, dst: Path, *, force: bool, compression: str | None,
                 dataset_id: str | None = None) -> ConvertResult:
    """Write ``source`` as a Minari 0.5 dataset directory ``dst`` (atomically)."""
    compression = fmt.check_compression(compression)
    dataset_id = dataset_id or default_dataset_id(dst)
    if not DATASET_NAME_RE.match(dataset_id.rsplit("/", 1)[-1]):
        raise UserError(f"Minari dataset id {dataset_id!r} must end in <name>-v<version>, e.g. cartpole-expert-v0; "
                        f"name DST like that or pass --dataset-id")
    prepare_target(dst, is_dir=True, force=force)
    created = make_parents(dst)
    tmp = temp_path_for(dst)
    shutil.rmtree(tmp, ignore_errors=True)
    kwargs: dict[str, Any] = {"compression": compression} if compression else {}
    try:
        data_dir = tmp / "data"
        data_dir.mkdir(parents=True)
        episodes = steps = 0
        # The HDF5 file is built in memory and written out with plain file I/O: HDF5 that runs out
        # of disk space mid-file cannot be closed cleanly (it crashed the process), a Python write
        # raises one OSError and the temporary directory is removed.
        buffer = io.BytesIO()
        with h5py.File(buffer, "w", track_order=True) as h5:
            for ep in source.episodes:
                g = h5.create_group(f"episode_{episodes}")
                g.attrs["id"] = episodes
                if ep.seed >= 0:
                    g.attrs["seed"] = ep.seed
                T = len(ep)
                g.attrs["total_steps"] = T
                obs = fmt.assemble(source.observation_space, [
                    np.concatenate([o, f]) for o, f in zip(fmt.leaves_of(source.observation_space, ep.observations),
                                                            fmt.leaves_of(source.observation_space, ep.final_observation))])
                _write_nested(g, "observations", source.observation_space, obs, kwargs)
                _write_nested(g, "actions", source.action_space, ep.actions, kwargs)
                for name, arr in (("rewards", ep.rewards), ("terminations", ep.terminated), ("truncations", ep.truncated)):
                    g.create_dataset(name, data=arr, chunks=True, maxshape=(None,), **kwargs)
                if ep.extras:
                    infos = g.create_group("infos")
                    for key, arr in ep.extras.items():
                        arr = np.asarray(arr)
                        padded = np.concatenate([np.zeros((1, *arr.shape[1:]), dtype=arr.dtype), arr])
                        infos.create_dataset(key, data=padded, chunks=True, maxshape=(None, *arr.shape[1:]), **kwargs)
                episodes += 1
                steps += T
        write_file(data_dir / MAIN_FILE, buffer.getbuffer())
        del buffer
        meta: dict[str, Any] = {
            "total_episodes": episodes,
            "total_steps": steps,
            "data_format": "hdf5",
            "jpeg_encoding": False,
            "observation_space": json.dumps(space_to_minari(source.observation_space)),
            "action_space": json.dumps(space_to_minari(source.action_space)),
        }
        spec = _minari_env_spec(source)
        if spec is not None:
            meta["env_spec"] = spec
        meta["dataset_id"] = dataset_id
        prov = source.output_provenance()
        algo = (source.provenance or {}).get("algo") or (source.provenance or {}).get("algorithm")
        if isinstance(algo, str):
            meta["algorithm_name"] = algo
        meta["description"] = f"Converted by demokit from the {source.kind} dataset {source.path.name}."
        meta["minari_version"] = minari_version()
        meta["demokit_provenance"] = prov
        meta["dataset_size"] = round(sum(p.stat().st_size for p in data_dir.iterdir()) / 1e6, 1)
        write_file(data_dir / METADATA_FILE, fmt.to_json(meta).encode())
        _replace_dir(tmp, dst)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        remove_dirs(created)
        raise
    return ConvertResult(path=dst, source_kind=source.kind, episodes=episodes, steps=steps, target_kind="minari",
                         spaces_inferred=source.spaces_inferred, notes=tuple(source.notes))


def _replace_dir(tmp: Path, dst: Path) -> None:
    """Move the finished ``tmp`` onto ``dst`` (an existing dst is moved aside first, then removed)."""
    old = None
    if dst.is_dir() and not any(dst.iterdir()):
        dst.rmdir()  # an empty directory made for the dataset
    if dst.exists():
        old = dst.parent / f".{dst.name}.old-{os.getpid()}"
        shutil.rmtree(old, ignore_errors=True)
        os.replace(dst, old)
    try:
        os.replace(tmp, dst)
    except BaseException:
        if old is not None:
            os.replace(old, dst)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
