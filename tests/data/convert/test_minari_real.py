"""Minari interop against data made by Minari itself (issue 15, defects 1 and 5).

Datasets are recorded with Minari's own ``DataCollector`` in every seeding mode it has (64-bit
auto-seeds, one int seed then auto-seeds, a seed per reset, auto-seeding off), with infos on and
off, and with Dict/Tuple and (JPEG-encoded) image spaces. They are converted to demokit, compared
array by array with what Minari's own loader returns (seeds exactly, uint64 included), exported
back to Minari and read again with Minari's loader: arrays, infos (nested groups, empty ``{}``),
per-episode metadata (seed, options, ``rewards_*``) and the dataset's descriptive metadata.

The same for Minari's arrow and parquet storages (``data_format="arrow"`` / ``"parquet"``): every
space kind, raw and JPEG images, array / nested / tuple infos, terminated and truncated episodes
of different lengths, each episode compared with Minari's loader and the whole conversion with
that of the same recording in the hdf5 storage; damaged datasets and a missing pyarrow are one
UserError each.

Equal-length JPEGs (constant frames), which Minari's hdf5 storage holds as a 2-D uint8 array
(frames x bytes) instead of variable-length bytes: in Dict / Tuple observations and an image action,
compared with Minari's loader and with the arrow / parquet recording; the same bytes as
variable-length and fixed-length entries; malformed image data refused with one UserError.
"""

from __future__ import annotations

import json
import shutil
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

minari = pytest.importorskip("minari")
pytest.importorskip("jax", reason="Minari's DataCollector needs minari[create] (jax)")

from tests.data.convert import minari_envs  # noqa: E402

from demokit.data import format as fmt  # noqa: E402
from demokit.data.convert import convert, to_minari  # noqa: E402
from demokit.data.convert.minari import SEED_EXTRA  # noqa: E402
from demokit.data.dataset import load_dataset  # noqa: E402
from demokit.errors import UserError  # noqa: E402
from demokit.spaces import same_space  # noqa: E402

DESCRIPTION = {"algorithm_name": "random-policy", "author": "Ada Tester", "author_email": "ada@example.org",
               "code_permalink": "https://example.org/code/1234", "description": "recorded for demokit's tests"}


@pytest.fixture(autouse=True)
def minari_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "minari-root"
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(root))
    minari_envs.register()
    return root


def record(dataset_id: str, env_id: str, episodes: int, *, seeding: str, record_infos: bool = True,
           env_kwargs: dict[str, Any] | None = None, data_format: str | None = None,
           jpeg_encoding: bool = True, policy: Callable[[Any], Any] | None = None) -> Any:
    """A dataset recorded with Minari's DataCollector (random actions from a seeded action space, or
    ``policy(random action)``) in Minari's default storage (hdf5) or ``data_format``."""
    env = minari.DataCollector(gym.make(env_id, **(env_kwargs or {})), record_infos=record_infos,
                               data_format=data_format, jpeg_encoding=jpeg_encoding)
    env.action_space.seed(5)
    for k in range(episodes):
        if seeding == "auto":  # Minari draws a 64-bit seed for every reset
            env.reset()
        elif seeding == "first-int":  # one int seed, then Minari's auto-seeds
            env.reset(seed=123) if k == 0 else env.reset()
        elif seeding == "per-reset":
            env.reset(seed=1000 + k, options={"level": k % 2, "tag": "lvl"} if k == 1 else None)
        elif seeding == "off":
            env.reset(options={"minari_autoseed": False})
        else:
            raise AssertionError(seeding)
        while True:
            action = env.action_space.sample()
            _, _, terminated, truncated, _ = env.step(policy(action) if policy else action)
            if terminated or truncated:
                break
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = env.create_dataset(dataset_id, **DESCRIPTION)
    env.close()
    return ds


def episode_meta(ds: Any) -> list[dict[str, Any]]:
    return list(ds.storage.get_episode_metadata(range(ds.total_episodes)))


def demokit_seed(ds: Any, i: int) -> int | None:
    ep = ds.episode(i)
    if ep.seed >= 0:
        return ep.seed
    big = ep.extras.get(SEED_EXTRA)
    return int(big[0]) if big is not None and int(big[0]) > 0 else None


def leaves(space: gym.Space, batch: Any) -> list[np.ndarray]:
    return [np.asarray(x) for x in fmt.leaves_of(space, batch)]


def assert_same_episodes(a: Any, b: Any, *, infos: bool = True) -> None:
    """Two Minari datasets hold the same episodes (arrays, infos)."""
    assert a.total_episodes == b.total_episodes and a.total_steps == b.total_steps
    for ea, eb in zip(a.iterate_episodes(), b.iterate_episodes()):
        for x, y in zip(leaves(a.observation_space, ea.observations), leaves(b.observation_space, eb.observations)):
            np.testing.assert_array_equal(x, y)
        for x, y in zip(leaves(a.action_space, ea.actions), leaves(b.action_space, eb.actions)):
            np.testing.assert_array_equal(x, y)
        np.testing.assert_array_equal(ea.rewards, eb.rewards)
        np.testing.assert_array_equal(ea.terminations, eb.terminations)
        np.testing.assert_array_equal(ea.truncations, eb.truncations)
        if infos:
            assert_same_infos(ea.infos, eb.infos)


def assert_same_infos(x: Any, y: Any) -> None:
    if isinstance(x, dict) or isinstance(y, dict):
        assert isinstance(x, dict) and isinstance(y, dict) and set(x) == set(y), (x, y)
        for k in x:
            assert_same_infos(x[k], y[k])
    else:
        assert x is None and y is None or np.array_equal(np.asarray(x), np.asarray(y)), (x, y)


def check_integrity(ds: Any) -> None:
    """The checks Minari's own tests run on a dataset, through Minari's loader."""
    total = 0
    for ep in ds.iterate_episodes():
        T = len(ep.rewards)
        assert T == ep.total_steps if hasattr(ep, "total_steps") else True
        for leaf in leaves(ds.observation_space, ep.observations):
            assert len(leaf) == T + 1
        for leaf in leaves(ds.action_space, ep.actions):
            assert len(leaf) == T
        assert len(ep.terminations) == T and len(ep.truncations) == T
        assert not (ep.terminations[:-1].any() or ep.truncations[:-1].any())
        total += T
    assert total == ds.total_steps
    assert len(ds.sample_episodes(2)) == 2
    ds.recover_environment().close()


@pytest.mark.parametrize("seeding", ["auto", "first-int", "per-reset", "off"])
def test_data_collector_datasets_convert_with_exact_seeds(tmp_path, seeding):
    src = record(f"cartpole/{seeding}-v0", "CartPole-v1", 12, seeding=seeding)
    res = convert(src.storage.data_path.parent, tmp_path / "out.h5")  # the dataset directory
    ds = load_dataset(tmp_path / "out.h5")
    assert res.episodes == 12 and ds.num_episodes == 12 and ds.env_id == "CartPole-v1"
    meta = episode_meta(src)
    assert [demokit_seed(ds, i) for i in range(12)] == [m.get("seed") for m in meta]
    if seeding == "auto":  # 64-bit seeds: with 12 draws some exceed int64 with probability 1 - 2**-12
        assert any(m["seed"] >= 2**63 for m in meta) and SEED_EXTRA in ds.extras
    for i, ep in enumerate(src.iterate_episodes()):
        got = ds.episode(i)
        np.testing.assert_array_equal(got.observations, ep.observations[:-1])
        np.testing.assert_array_equal(got.final_observation, ep.observations[-1:])
        np.testing.assert_array_equal(got.actions, ep.actions)
        np.testing.assert_array_equal(got.rewards, ep.rewards)
        np.testing.assert_array_equal(got.terminated, ep.terminations)
        np.testing.assert_array_equal(got.truncated, ep.truncations)


@pytest.mark.parametrize("seeding", ["auto", "per-reset"])
def test_round_trip_keeps_seeds_options_and_dataset_metadata(tmp_path, minari_root, seeding):
    src = record(f"cartpole/rt-{seeding}-v0", "CartPole-v1", 8, seeding=seeding)
    convert(src.storage.data_path.parent, tmp_path / "mid.h5")
    to_minari(tmp_path / "mid.h5", minari_root / "back" / f"rt-{seeding}-v0")
    back = minari.load_dataset(f"back/rt-{seeding}-v0")
    check_integrity(back)
    assert_same_episodes(src, back)
    for m0, m1 in zip(episode_meta(src), episode_meta(back)):
        m0.pop("id"), m1.pop("id")
        assert m0 == m1  # seed (uint64 too), options/*, rewards_*, total_steps
    meta0, meta1 = src.storage.metadata, back.storage.metadata
    for key in (*DESCRIPTION, "ref_min_score", "ref_max_score"):
        assert meta1.get(key) == meta0.get(key), key


@pytest.mark.parametrize("empty_infos,record_infos", [(False, True), (True, True), (False, False)])
def test_nested_spaces_and_infos_round_trip(tmp_path, minari_root, empty_infos, record_infos):
    src = record("nested/src-v0", "demokit-test/Nested-v0", 6, seeding="auto", record_infos=record_infos,
                 env_kwargs={"empty_infos": empty_infos})
    first = next(iter(src.iterate_episodes()))
    assert (first.infos == {}) if record_infos and empty_infos else True
    convert(src.storage.data_path.parent, tmp_path / "nested.h5")
    ds = load_dataset(tmp_path / "nested.h5")
    if record_infos and not empty_infos:
        assert {"stats.dist", "stats.t", "flag"} <= set(ds.extras)
    to_minari(tmp_path / "nested.h5", minari_root / "back" / "nested-v0")
    back = minari.load_dataset("back/nested-v0")
    check_integrity(back)
    assert_same_episodes(src, back)  # nested info groups come back nested, {} as {}, no infos as None
    for m0, m1 in zip(episode_meta(src), episode_meta(back)):
        assert m0["seed"] == m1["seed"]


def test_jpeg_images_convert_as_minari_decodes_them(tmp_path, minari_root):
    src = record("image/src-v0", "demokit-test/Image-v0", 4, seeding="per-reset", record_infos=False)
    assert json.loads((src.storage.data_path / "metadata.json").read_text())["jpeg_encoding"] is True
    convert(src.storage.data_path.parent, tmp_path / "img.h5")
    ds = load_dataset(tmp_path / "img.h5")
    for i, ep in enumerate(src.iterate_episodes()):
        np.testing.assert_array_equal(ds.episode(i).observations, ep.observations[:-1])  # as Minari decodes
    to_minari(tmp_path / "img.h5", minari_root / "back" / "img-v0")
    back = minari.load_dataset("back/img-v0")
    check_integrity(back)
    assert_same_episodes(src, back)


def test_minari_to_minari_directly_keeps_everything(tmp_path, minari_root):
    src = record("cartpole/direct-v0", "CartPole-v1", 5, seeding="auto")
    convert(src.storage.data_path.parent, minari_root / "copy" / "direct-v0")
    back = minari.load_dataset("copy/direct-v0")
    check_integrity(back)
    assert_same_episodes(src, back)
    assert [m["seed"] for m in episode_meta(back)] == [m["seed"] for m in episode_meta(src)]
    for key in DESCRIPTION:
        assert back.storage.metadata.get(key) == src.storage.metadata.get(key), key


# --- Minari's arrow and parquet storages ---------------------------------------------------

ARROW_FORMATS = ("arrow", "parquet")
#: name: (env id, episodes, DataCollector options); together every space kind the hdf5 reader takes
ARROW_CASES = {
    "cartpole": ("CartPole-v1", 5, {}),  # Box observations, Discrete actions, empty infos
    "pendulum": ("Pendulum-v1", 2, {}),  # Box actions; truncated at 200 steps
    "nested": ("demokit-test/Nested-v0", 8, {}),  # Dict observations with a Tuple inside, Tuple actions, nested infos
    "multi": ("demokit-test/Multi-v0", 6, {}),  # MultiDiscrete, 2-D MultiBinary / Box, Discrete(start=1); array infos
    "image-raw": ("demokit-test/Image-v0", 4, {"jpeg_encoding": False}),
    "image-jpeg": ("demokit-test/Image-v0", 4, {"jpeg_encoding": True}),
}
#: dataset metadata fields that describe the storage, not the data
STORAGE_FIELDS = ("data_format", "dataset_id", "dataset_size")


def minari_infos(infos: Any, prefix: str = "") -> dict[str, np.ndarray]:
    """The infos Minari's loader returns, by demokit extra name (nested keys joined with ``.``). Minari's
    arrow loader gives a nested dict as an object array of dicts, and a tuple as a dict keyed "0", "1",
    ... (the hdf5 storage: "_index_0", ...)."""
    out: dict[str, np.ndarray] = {}
    for key, value in (infos or {}).items():
        name = f"{prefix}{key}"
        if isinstance(value, np.ndarray) and value.dtype == object and len(value) and isinstance(value[0], dict):
            value = {k: np.array([row[k] for row in value]) for k in value[0]}
        if isinstance(value, dict):
            if list(value) == [str(i) for i in range(len(value))]:
                value = {f"_index_{k}": v for k, v in value.items()}
            out.update(minari_infos(value, f"{name}."))
        else:
            out[name] = np.asarray(value)
    return out


def assert_as_minari_loads(ds: Any, src: Any) -> None:
    """Every episode of demokit's ``ds`` is what Minari's own loader returns for ``src`` (JPEG images: as
    Minari decodes them): observations (the last one as the final observation), actions, rewards,
    terminations, truncations, infos and seeds."""
    assert ds.num_episodes == src.total_episodes
    for i, (ep, m) in enumerate(zip(src.iterate_episodes(), episode_meta(src))):
        got = ds.episode(i)
        T = len(ep.rewards)
        assert len(got) == T and demokit_seed(ds, i) == m.get("seed")  # uint64 seeds in SEED_EXTRA
        for want, have, final in zip(leaves(ds.observation_space, ep.observations),
                                     leaves(ds.observation_space, got.observations),
                                     leaves(ds.observation_space, got.final_observation), strict=True):
            assert len(want) == T + 1
            np.testing.assert_array_equal(have, want[:-1])
            np.testing.assert_array_equal(final, want[-1:])  # the final observation
        for want, have in zip(leaves(ds.action_space, ep.actions), leaves(ds.action_space, got.actions),
                              strict=True):
            np.testing.assert_array_equal(have, want)
        np.testing.assert_array_equal(got.rewards, ep.rewards)
        np.testing.assert_array_equal(got.terminated, ep.terminations)
        np.testing.assert_array_equal(got.truncated, ep.truncations)
        infos = minari_infos(ep.infos)
        assert sorted(infos) == sorted(k for k in got.extras if k != SEED_EXTRA)
        for key, rows in infos.items():  # one row per observation: the reset info is row 0
            np.testing.assert_array_equal(got.extras[key], rows[1:], err_msg=key)


def assert_same_conversion(a: Any, b: Any, *, unlike: tuple[str, ...] = ()) -> None:
    """Two demokit datasets converted from Minari hold the same data, dtypes and Minari record (but for
    the ``unlike`` fields of its layout)."""
    assert (a.num_episodes, len(a), a.env_id) == (b.num_episodes, len(b), b.env_id)
    assert same_space(a.observation_space, b.observation_space) and same_space(a.action_space, b.action_space)
    assert sorted(a.extras) == sorted(b.extras)
    np.testing.assert_array_equal(a.episode_seeds, b.episode_seeds)
    for i in range(a.num_episodes):
        x, y = a.episode(i), b.episode(i)
        pairs = [*zip(leaves(a.observation_space, x.observations), leaves(b.observation_space, y.observations)),
                 *zip(leaves(a.observation_space, x.final_observation),
                      leaves(b.observation_space, y.final_observation)),
                 *zip(leaves(a.action_space, x.actions), leaves(b.action_space, y.actions)),
                 (x.rewards, y.rewards), (x.terminated, y.terminated), (x.truncated, y.truncated),
                 *((x.extras[k], y.extras[k]) for k in sorted(x.extras))]
        for u, v in pairs:
            assert np.asarray(u).dtype == np.asarray(v).dtype
            np.testing.assert_array_equal(u, v)
    ra, rb = a.provenance["converted_from"], b.provenance["converted_from"]
    la, lb = ({k: v for k, v in r["minari_layout"].items() if k not in unlike} for r in (ra, rb))
    assert la == lb  # infos paths, reset infos, episode metadata (options)
    strip = lambda meta: {k: v for k, v in meta.items() if k not in STORAGE_FIELDS}  # noqa: E731
    assert strip(ra["metadata"]) == strip(rb["metadata"])
    assert a.provenance.get("conversion_notes") == b.provenance.get("conversion_notes")


@pytest.mark.parametrize("case", ARROW_CASES)
@pytest.mark.parametrize("data_format", ARROW_FORMATS)
def test_arrow_storage_converts_as_minari_loads_it_and_as_hdf5(tmp_path, data_format, case):
    env_id, episodes, options = ARROW_CASES[case]
    src = record(f"{case}/{data_format}-v0", env_id, episodes, seeding="per-reset", data_format=data_format,
                 **options)
    meta = json.loads((src.storage.data_path / "metadata.json").read_text())
    assert meta["data_format"] == data_format and meta["jpeg_encoding"] == options.get("jpeg_encoding", True)
    assert sorted(p.name for p in src.storage.data_path.iterdir()) == sorted(
        ["metadata.json", *map(str, range(episodes))])  # one directory per episode: the layout read
    if case.startswith("image"):  # JPEG bytes, or the raw pixels as fixed-size lists
        import pyarrow as pa
        import pyarrow.dataset as pds

        kind = pds.dataset(str(_part(src.storage.data_path, 0)), format=data_format).schema.field("observations").type
        assert pa.types.is_binary(kind) if options["jpeg_encoding"] else (
            pa.types.is_fixed_size_list(kind) and kind.list_size == 32 * 32 * 3 and kind.value_type == pa.uint8())
    res = convert(src.storage.data_path.parent, tmp_path / "arrow.h5")
    ds = load_dataset(tmp_path / "arrow.h5")
    assert (res.source_kind, res.episodes, res.steps) == ("minari", src.total_episodes, src.total_steps)
    assert ds.env_id == env_id and same_space(ds.observation_space, src.observation_space)
    assert same_space(ds.action_space, src.action_space)

    assert_as_minari_loads(ds, src)
    assert [m["seed"] for m in episode_meta(src)] == [1000 + i for i in range(episodes)]
    if case == "multi":
        assert {"arr", "nested.count", "nested.inner.x", "pair._index_0", "pair._index_1", "ok"} == set(ds.extras)
        assert ds.extras["arr"].shape[1:] == (2, 3)  # the arrow field metadata "shape"
    if case in ("nested", "multi"):  # terminated and truncated episodes of different lengths
        assert ds.terminated.any() and ds.truncated.any() and len(set(ds.episode_lengths.tolist())) > 2
    if case == "pendulum":
        assert ds.truncated.sum() == 2 and not ds.terminated.any()

    # the same recording in Minari's hdf5 storage converts to the same demokit dataset
    twin = record(f"{case}/hdf5-v0", env_id, episodes, seeding="per-reset", data_format="hdf5", **options)
    convert(twin.storage.data_path.parent, tmp_path / "hdf5.h5")
    assert_same_conversion(ds, load_dataset(tmp_path / "hdf5.h5"))


@pytest.mark.parametrize("seeding", ["auto", "per-reset"])
@pytest.mark.parametrize("data_format", ARROW_FORMATS)
def test_arrow_dataset_to_minari_keeps_seeds_options_and_metadata(tmp_path, minari_root, data_format, seeding):
    src = record(f"cartpole/{data_format}-{seeding}-v0", "CartPole-v1", 8, seeding=seeding, data_format=data_format)
    if seeding == "auto":
        assert any(m["seed"] >= 2**63 for m in episode_meta(src))
    dst = minari_root / "copy" / f"{data_format}-{seeding}-v0"
    convert(src.storage.data_path, dst)  # the data/ directory is accepted too
    back = minari.load_dataset(f"copy/{data_format}-{seeding}-v0")
    assert back.storage.metadata["data_format"] == "hdf5"  # demokit writes Minari's hdf5 storage
    check_integrity(back)
    assert_same_episodes(src, back)  # no infos column: {} in Minari's arrow loader, {} back
    for m0, m1 in zip(episode_meta(src), episode_meta(back)):
        m0.pop("id"), m1.pop("id")
        assert m0 == m1  # seed (uint64 too), options, rewards_*, total_steps
    for key in DESCRIPTION:
        assert back.storage.metadata.get(key) == src.storage.metadata.get(key), key


def _part(data: Path, episode: int) -> Path:
    return next(p for p in (data / str(episode)).iterdir() if p.name.startswith("part-"))


def _rewrite(column: str, make: Any) -> Any:
    """A damage: episode 1's ``column`` replaced by ``make(pa, table)`` (written back with pyarrow)."""
    def damage(data: Path, data_format: str) -> None:
        import pyarrow as pa
        import pyarrow.dataset as pds
        import pyarrow.parquet as pq

        part = _part(data, 1)
        table = pds.dataset(str(part), format=data_format).to_table()
        table = table.set_column(table.schema.get_field_index(column), column, make(pa, table))
        if data_format == "parquet":
            pq.write_table(table, part)
        else:
            with pa.ipc.new_file(str(part), table.schema) as writer:
                writer.write_table(table)
    return damage


def _narrow(pa: Any, table: Any) -> Any:
    """CartPole observations 3 wide (the space says 4)."""
    obs = table.column("observations").combine_chunks().flatten().to_numpy().reshape(-1, 4)[:, :3]
    return pa.FixedSizeListArray.from_arrays(pa.array(obs.reshape(-1)), 3)


def _edit_json(path: Path, **changes: Any) -> None:
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


DAMAGES = {
    "episode dir gone": (lambda data, f: shutil.rmtree(data / "2"),
                         r"total_episodes is 4 but .*/data holds 3 episode directories"),
    "total_steps": (lambda data, f: _edit_json(data / "metadata.json", total_steps=1),
                    r"metadata.json: total_steps is 1 but the episodes in .*/data hold \d+ steps"),
    "episode total_steps": (lambda data, f: _edit_json(data / "1" / "metadata.json", total_steps=99),
                            r"data/1: attribute total_steps is 99 but rewards has \d+ rows"),
    "part file gone": (lambda data, f: _part(data, 3).unlink(), r"data/3 holds no (arrow|parquet) files"),
    "part file corrupt": (lambda data, f: _part(data, 0).write_bytes(b"not a table" * 10),
                          r"data/0: its files cannot be read"),
    "observations too narrow": (_rewrite("observations", _narrow),
                                r"data/1/observations has per-step shape \(3,\) but the declared space has \(4,\)"),
    "float actions": (_rewrite("actions", lambda pa, t: pa.array([0.5] * t.num_rows)),
                      r"data/1/actions holds float64 values, which do not fit the declared Discrete space"),
    "text observations": (_rewrite("observations", lambda pa, t: pa.array(["x"] * t.num_rows)),
                          r"data/1/observations holds object values, which do not fit the declared Box space"),
    "null reward": (_rewrite("rewards", lambda pa, t: pa.array([None] * t.num_rows, pa.float64())),
                    r"data/1/rewards holds missing \(null\) values"),
    "episode metadata not JSON": (lambda data, f: (data / "2" / "metadata.json").write_text("{"),
                                  r"data/2/metadata.json: not readable JSON"),
    "stray directory": (lambda data, f: (data / "scratch").mkdir(), r"data: unexpected directory 'scratch'"),
}


@pytest.mark.parametrize("damage", DAMAGES)
@pytest.mark.parametrize("data_format", ARROW_FORMATS)
def test_damaged_arrow_dataset_is_refused(tmp_path, data_format, damage):
    src = record(f"cartpole/bad-{data_format}-v0", "CartPole-v1", 4, seeding="per-reset", data_format=data_format)
    data = src.storage.data_path
    mutate, message = DAMAGES[damage]
    mutate(data, data_format)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(UserError, match=message) as info:
        convert(data.parent, out / "x.h5")
    assert str(data) in str(info.value)
    assert list(out.iterdir()) == []  # nothing written


def test_damaged_arrow_dataset_is_one_error_line_in_the_cli(tmp_path, capsys):
    from demokit.cli.app import main

    src = record("cartpole/cli-v0", "CartPole-v1", 3, seeding="per-reset", data_format="parquet")
    assert main(["convert", str(src.storage.data_path.parent), str(tmp_path / "ok.h5")]) == 0
    assert "converted minari" in capsys.readouterr().out
    _edit_json(src.storage.data_path / "metadata.json", total_episodes=5)
    assert main(["convert", str(src.storage.data_path.parent), str(tmp_path / "bad.h5")]) != 0
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith("error: ") and "total_episodes is 5" in err[0]
    assert not (tmp_path / "bad.h5").exists()


def test_arrow_dataset_without_pyarrow_is_one_user_error(tmp_path, monkeypatch):
    src = record("cartpole/nopa-v0", "CartPole-v1", 2, seeding="per-reset", data_format="arrow")
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # `import pyarrow` now fails
    monkeypatch.setitem(sys.modules, "pyarrow.dataset", None)
    with pytest.raises(UserError, match=r"data_format 'arrow' needs pyarrow: pip install 'demokit\[minari\]'"):
        convert(src.storage.data_path.parent, tmp_path / "out.h5")
    assert not (tmp_path / "out.h5").exists()


# --- equal-length JPEGs: Minari's hdf5 storage holds them as a 2-D uint8 array ---------------

CONST_ENV = "demokit-test/ConstImage-v0"
#: ConstImageEnv's image leaves: (member of an episode group, rows beyond the T steps)
CONST_OBS_IMAGES = (("observations/frame", 1), ("observations/view/_index_0", 1))
CONST_ACT_IMAGE = ("actions/_index_1", 0)


def record_const(dataset_id: str, episodes: int, *, data_format: str = "hdf5", image_action: bool = True) -> Any:
    """ConstImageEnv recorded with seeds 1000, 1001, ... and the constant image action (when it has one):
    within an episode every image leaf's JPEGs have one length."""
    def policy(action: Any) -> Any:
        return (action[0], minari_envs.CONST_ACTION_IMAGE)

    return record(dataset_id, CONST_ENV, episodes, seeding="per-reset", data_format=data_format,
                  env_kwargs={"image_action": image_action}, policy=policy if image_action else None)


def assert_2d_jpeg_layout(src: Any, members: tuple[tuple[str, int], ...]) -> None:
    """In ``src``'s main_data.hdf5 every episode's ``members`` are 2-D uint8 arrays of JPEG bytes (one
    row per frame), not variable-length bytes: the layout under test."""
    import h5py

    assert json.loads((src.storage.data_path / "metadata.json").read_text())["jpeg_encoding"] is True
    with h5py.File(src.storage.data_path / "main_data.hdf5", "r") as f:
        for i in range(src.total_episodes):
            g = f[f"episode_{i}"]
            for member, extra_rows in members:
                dset = g[member]
                assert dset.dtype == np.uint8 and dset.ndim == 2, (i, member, dset.dtype, dset.shape)
                assert dset.shape[0] == len(g["rewards"]) + extra_rows
                assert bytes(dset[0, :2]) == b"\xff\xd8"  # a JPEG's start-of-image marker


def test_equal_length_jpegs_convert_as_minari_loads_them(tmp_path, minari_root):
    src = record_const("const/hdf5-v0", 6)
    assert_2d_jpeg_layout(src, (*CONST_OBS_IMAGES, CONST_ACT_IMAGE))  # in a Dict, a Tuple, and an image action
    res = convert(src.storage.data_path.parent, tmp_path / "const.h5")
    ds = load_dataset(tmp_path / "const.h5")
    assert (res.episodes, res.steps) == (src.total_episodes, src.total_steps)
    assert len(set(ds.episode_lengths.tolist())) > 1
    assert_as_minari_loads(ds, src)
    to_minari(tmp_path / "const.h5", minari_root / "back" / "const-v0")  # written back raw: the same pixels
    back = minari.load_dataset("back/const-v0")
    check_integrity(back)
    assert_same_episodes(src, back)


@pytest.mark.parametrize("data_format", ARROW_FORMATS)
def test_equal_length_jpegs_convert_as_the_arrow_recording(tmp_path, data_format):
    # Minari's arrow storage cannot hold JPEG-encoded image actions (it does not pad them to T+1 rows),
    # so this recording has image observations only
    src = record_const("const/hdf5-v0", 5, image_action=False)
    assert_2d_jpeg_layout(src, CONST_OBS_IMAGES)
    twin = record_const(f"const/{data_format}-v0", 5, data_format=data_format, image_action=False)
    convert(src.storage.data_path.parent, tmp_path / "hdf5.h5")
    convert(twin.storage.data_path.parent, tmp_path / "arrow.h5")
    ds, arrow = load_dataset(tmp_path / "hdf5.h5"), load_dataset(tmp_path / "arrow.h5")
    assert_as_minari_loads(ds, src)
    assert_as_minari_loads(arrow, twin)
    assert_same_conversion(ds, arrow)


def _replace_member(member: str, make: Callable[[np.ndarray], np.ndarray],
                    episodes: tuple[int, ...] = (1,)) -> Callable[[Path], None]:
    """A change (a damage): ``member`` of the ``episodes`` (episode 1) replaced by ``make(its values)``."""
    def change(data: Path) -> None:
        import h5py

        with h5py.File(data / "main_data.hdf5", "a") as f:
            for i in episodes:
                g = f[f"episode_{i}"]
                old = g[member][()]
                del g[member]
                g.create_dataset(member, data=make(old))
    return change


def _as_vlen(old: np.ndarray) -> np.ndarray:
    """Each row of JPEG bytes as one variable-length uint8 entry (the layout of unequal lengths)."""
    import h5py

    out = np.empty(len(old), dtype=h5py.vlen_dtype(np.uint8))
    for i, row in enumerate(old):
        out[i] = row
    return out


#: the same JPEG bytes in the other layouts the reader takes (fixed-length byte strings: not written by
#: Minari's storages, but its loader decodes them)
JPEG_LAYOUTS = {"variable-length uint8": _as_vlen,
                "fixed-length bytes": lambda old: np.array([row.tobytes() for row in old], dtype=f"S{old.shape[1]}")}


@pytest.mark.parametrize("layout", JPEG_LAYOUTS)
def test_other_jpeg_layouts_convert_as_minari_loads_them(tmp_path, layout):
    src = record_const("const/layout-v0", 3)
    convert(src.storage.data_path.parent, tmp_path / "2d.h5")
    for member, _ in (*CONST_OBS_IMAGES, CONST_ACT_IMAGE):
        _replace_member(member, JPEG_LAYOUTS[layout], episodes=(0, 1, 2))(src.storage.data_path)
    convert(src.storage.data_path.parent, tmp_path / "other.h5")
    other = load_dataset(tmp_path / "other.h5")
    assert_as_minari_loads(other, minari.load_dataset("const/layout-v0"))  # Minari's loader on the rewritten file
    assert_same_conversion(other, load_dataset(tmp_path / "2d.h5"))


def _jpegs(shape: tuple[int, ...], rows: int) -> np.ndarray:
    """``rows`` equal JPEGs of a ``shape`` image as a 2-D uint8 array."""
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.full(shape, 90, np.uint8)).save(buffer, format="JPEG")
    return np.tile(np.frombuffer(buffer.getvalue(), np.uint8), (rows, 1))


def _frame_not_an_image(data: Path) -> None:
    """metadata.json's frame space with high 254: no longer an image space, so never JPEG-encoded."""
    meta = json.loads((data / "metadata.json").read_text())
    space = json.loads(meta["observation_space"])
    space["subspaces"]["frame"]["high"] = np.full((32, 32, 3), 254).tolist()
    _edit_json(data / "metadata.json", observation_space=json.dumps(space))


def _zero_row(row: int) -> Callable[[np.ndarray], np.ndarray]:
    def make(old: np.ndarray) -> np.ndarray:
        new = old.copy()
        new[row] = 0
        return new
    return make


JPEG_DAMAGES = {
    "jpeg_encoding false": (lambda data: _edit_json(data / "metadata.json", jpeg_encoding=False),
                            r"episode_\d+/observations/frame has per-step shape \(\d+,\) but the declared space "
                            r"has \(32, 32, 3\)"),
    "frame space not an image": (_frame_not_an_image, r"episode_\d+/observations/frame has per-step shape \(\d+,\) "
                                                      r"but the declared space has \(32, 32, 3\)"),
    "2-D bytes for a Discrete leaf": (_replace_member("observations/view/_index_1",
                                                      lambda old: _jpegs((32, 32), len(old))),
                                      r"episode_1/observations/view/_index_1 has per-step shape \(\d+,\) but the "
                                      r"declared space has \(\)"),
    "undecodable bytes": (_replace_member("observations/frame", _zero_row(2)),
                          r"episode_1/observations/frame: the JPEG-encoded image in row 2 cannot be decoded"),
    "images of another size": (_replace_member("actions/_index_1", lambda old: _jpegs((32, 16), len(old))),
                               r"episode_1/actions/_index_1: the JPEG-encoded image in row 0 decodes to shape "
                               r"\(32, 16\) but the declared image space has \(32, 32\)"),
}


@pytest.mark.parametrize("damage", JPEG_DAMAGES)
def test_malformed_jpeg_layout_is_refused(tmp_path, damage):
    src = record_const("const/bad-v0", 3)
    data = src.storage.data_path
    mutate, message = JPEG_DAMAGES[damage]
    mutate(data)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(UserError, match=message) as info:
        convert(data.parent, out / "x.h5")
    assert str(data / "main_data.hdf5") in str(info.value)
    assert list(out.iterdir()) == []  # nothing written


# --- writing Minari's arrow and parquet storages ---------------------------------------------

#: name: (env id, episodes, DataCollector options, env kwargs); together every space family the hdf5
#: writer takes, and infos on / empty ({}) / none
WRITE_CASES = {
    "cartpole": ("CartPole-v1", 4, {}, {}),  # Box observations, Discrete actions; infos recorded, empty
    "cartpole-no-infos": ("CartPole-v1", 4, {"record_infos": False}, {}),
    "pendulum": ("Pendulum-v1", 2, {}, {}),  # Box actions; truncated
    "nested": ("demokit-test/Nested-v0", 6, {}, {}),  # Dict with a Tuple inside, Tuple actions, nested infos
    "nested-empty-infos": ("demokit-test/Nested-v0", 4, {}, {"empty_infos": True}),
    "multi": ("demokit-test/Multi-v0", 5, {}, {}),  # MultiDiscrete, 2-D MultiBinary / Box, Discrete(start=1); infos
    "image-raw": ("demokit-test/Image-v0", 3, {"jpeg_encoding": False}, {}),
    "image-jpeg": ("demokit-test/Image-v0", 3, {}, {}),  # JPEG in the source: written raw, as Minari decoded it
    "dict-tuple-images": (CONST_ENV, 3, {}, {}),  # JPEG images in a Dict, a Tuple and an image action
}
#: the cases whose source holds JPEG images (their pixels are what Minari decoded, not the env's)
JPEG_CASES = ("image-jpeg", "dict-tuple-images")


def _table(data: Path, episode: int, data_format: str) -> Any:
    import pyarrow.dataset as pds

    return pds.dataset(str(data / str(episode)), format=data_format, ignore_prefixes=[".", "_", "metadata.json"]
                       ).to_table()


def _schema(fields: Any) -> list[Any]:
    """A table's schema as (name, type, field metadata), struct members sorted by name."""
    import pyarrow as pa

    def one(field: Any) -> Any:
        kind = field.type
        inner = sorted(one(kind.field(i)) for i in range(kind.num_fields)) if pa.types.is_struct(kind) else str(kind)
        return field.name, inner, sorted((field.metadata or {}).items())
    return sorted(one(field) for field in fields)


@pytest.mark.parametrize("case", WRITE_CASES)
@pytest.mark.parametrize("data_format", ARROW_FORMATS)
def test_arrow_storage_is_written_as_minari_writes_it(tmp_path, data_format, case):
    env_id, episodes, options, env_kwargs = WRITE_CASES[case]
    src = record(f"{case}/src-v0", env_id, episodes, seeding="per-reset", env_kwargs=env_kwargs, **options)
    convert(src.storage.data_path.parent, tmp_path / "demo.h5")
    demo = load_dataset(tmp_path / "demo.h5")  # what demokit has
    out = {fmt_: tmp_path / fmt_ / f"{case}-v0" for fmt_ in ("hdf5", data_format)}
    for fmt_, dst in out.items():
        res = to_minari(tmp_path / "demo.h5", dst, minari_data_format=fmt_, dataset_id=f"written/{case}-v0")
        assert (res.target_kind, res.episodes, res.steps) == ("minari", demo.num_episodes, len(demo))
    data = out[data_format] / "data"
    assert sorted(p.name for p in data.iterdir()) == sorted(["metadata.json", *map(str, range(episodes))])
    for i in range(episodes):
        assert sorted(p.name for p in (data / str(i)).iterdir()) == ["metadata.json", f"part-0.{data_format}"]

    # Minari's own loader: exactly the episodes demokit had (infos, seeds, final observations), its checks pass
    ours, via_hdf5 = minari.MinariDataset(data), minari.MinariDataset(out["hdf5"] / "data")
    check_integrity(ours)
    assert_as_minari_loads(demo, ours)
    assert_same_episodes(via_hdf5, ours, infos=False)  # (Minari's two loaders shape nested infos differently)
    # the metadata of the hdf5 writer's output, but for the storage fields; episode metadata (seed, options, rewards_*)
    meta, want = (json.loads((d / "data" / "metadata.json").read_text()) for d in (out[data_format], out["hdf5"]))
    assert (meta.pop("data_format"), want.pop("data_format")) == (data_format, "hdf5")
    assert abs(meta.pop("dataset_size") - ours.storage.get_size()) <= 0.1 and want.pop("dataset_size") >= 0
    assert meta == want and meta["jpeg_encoding"] is False
    assert list(ours.storage.get_episode_metadata(range(episodes))) == list(
        via_hdf5.storage.get_episode_metadata(range(episodes)))
    assert [m["seed"] for m in episode_meta(ours)] == [1000 + i for i in range(episodes)]
    assert episode_meta(ours)[1]["options"] == {"level": 1, "tag": "lvl"}

    # read back by demokit: the same dataset as the hdf5 round trip (Minari's arrow storage holds no infos
    # and empty infos alike, so the arrow read sees an empty infos group where the hdf5 one sees none)
    convert(out[data_format], tmp_path / "back.h5")
    convert(out["hdf5"], tmp_path / "back-hdf5.h5")
    back, back_hdf5 = load_dataset(tmp_path / "back.h5"), load_dataset(tmp_path / "back-hdf5.h5")
    no_infos = not options.get("record_infos", True)
    assert_same_conversion(back, back_hdf5, unlike=("infos_group",) if no_infos else ())
    assert back.provenance["converted_from"]["minari_layout"]["infos_group"] is True

    # the files are those Minari's DataCollector writes for the same recording (JPEG sources: the same schema)
    twin = record(f"{case}/{data_format}-twin-v0", env_id, episodes, seeding="per-reset", env_kwargs=env_kwargs,
                  data_format=data_format, **{**options, "jpeg_encoding": False})
    assert episode_meta(twin) == episode_meta(ours)
    layout = demo.provenance["converted_from"]["minari_layout"]
    dropped = [layout["infos"][key] for key in layout["infos"] if key not in layout["reset_info"]]
    for i in range(episodes):
        mine, theirs = _table(data, i, data_format), _table(twin.storage.data_path, i, data_format)
        assert _schema(mine.schema) == _schema(theirs.schema)
        if case not in JPEG_CASES:
            rows, want = mine.to_pylist(), theirs.to_pylist()
            for parts in dropped:  # a reset info that differs between episodes: zeros in demokit's export
                _pop_info(rows[0]["infos"], parts), _pop_info(want[0]["infos"], parts)
            assert rows == want


def _pop_info(infos: dict[str, Any], parts: list[str]) -> None:
    """Remove the info at demokit's infos path ``parts`` from one row of Minari's ``infos`` struct."""
    *parents, last = [part.removeprefix("_index_") for part in parts]
    for part in parents:
        infos = infos[part]
    del infos[last]


@pytest.mark.parametrize("seeding", ["auto", "off"])
@pytest.mark.parametrize("data_format", ARROW_FORMATS)
def test_minari_to_minari_arrow_keeps_seeds_options_and_metadata(tmp_path, minari_root, data_format, seeding):
    src = record(f"cartpole/{seeding}-src-v0", "CartPole-v1", 8, seeding=seeding)
    if seeding == "auto":
        assert any(m["seed"] >= 2**63 for m in episode_meta(src))
    res = convert(src.storage.data_path.parent, minari_root / "copy" / f"{seeding}-v0", minari_data_format=data_format)
    assert res.steps == src.total_steps
    back = minari.load_dataset(f"copy/{seeding}-v0")  # the id: the path below $MINARI_DATASETS_PATH
    assert back.storage.metadata["data_format"] == data_format
    check_integrity(back)
    assert_same_episodes(src, back)
    for m0, m1 in zip(episode_meta(src), episode_meta(back)):
        m0.pop("id"), m1.pop("id")
        assert m0 == m1  # seed (uint64 too; absent stays absent), rewards_*, total_steps
    for key in DESCRIPTION:
        assert back.storage.metadata.get(key) == src.storage.metadata.get(key), key
