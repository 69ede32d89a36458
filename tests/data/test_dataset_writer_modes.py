"""DatasetWriter modes, atomic commit/abort, interrupts and the writer lock."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from gymnasium import spaces

from demokit.data import DatasetWriter, Episode, load_dataset
from demokit.data.locking import lock_path_for, temp_path_for
from demokit.errors import DatasetError, DatasetLockedError, SpaceMismatchError
from tests.data.helpers import BOX, DISCRETE, make_episodes, write


def writer(path: Path, **kwargs: object) -> DatasetWriter:
    kwargs.setdefault("env_id", "Test-v0")
    return DatasetWriter(path, observation_space=BOX, action_space=DISCRETE, **kwargs)  # type: ignore[arg-type]


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.startswith(".") or p.name.endswith(".lock"))


def test_create_refuses_existing_file(dataset_path: Path) -> None:
    before = dataset_path.read_bytes()
    with pytest.raises(DatasetError, match=r"already exists; use --append .* or --force"):
        writer(dataset_path)
    assert dataset_path.read_bytes() == before
    assert leftovers(dataset_path.parent) == []


def test_overwrite_replaces(dataset_path: Path) -> None:
    new = make_episodes(n=2, seed=100)
    write(dataset_path, new, mode="overwrite")
    ds = load_dataset(dataset_path)
    assert ds.num_episodes == 2
    np.testing.assert_array_equal(ds.rewards, np.concatenate([e.rewards for e in new]))


def test_append_adds_episodes_and_records_provenance(dataset_path: Path, episodes: list[Episode]) -> None:
    more = make_episodes(n=3, seed=50)
    with writer(dataset_path, mode="append", provenance={"policy": "expert"}) as w:
        w.add_episodes(more)
        assert w.num_episodes == 3 and w.total_episodes == len(episodes) + 3
    ds = load_dataset(dataset_path)
    allep = episodes + more
    assert ds.num_episodes == len(allep)
    np.testing.assert_array_equal(ds.rewards, np.concatenate([e.rewards for e in allep]))
    np.testing.assert_array_equal(ds.episode_starts, np.cumsum([0] + [len(e) for e in allep])[:-1])
    np.testing.assert_array_equal(ds.next_observations[-len(more[-1]):], more[-1].next_observations)
    assert ds.provenance == {"policy": "random", "seed": 7}  # the original writer's
    (rec,) = ds.metadata["appends"]
    assert rec["episodes"] == [len(episodes), len(allep)] and rec["provenance"] == {"policy": "expert"}
    assert "modified" in ds.metadata
    assert leftovers(dataset_path.parent) == []


def test_append_to_missing_file_creates_it(tmp_path: Path) -> None:
    eps = make_episodes(n=2)
    write(tmp_path / "new.h5", eps, mode="append")
    assert load_dataset(tmp_path / "new.h5").num_episodes == 2


def test_append_without_episodes_leaves_file_untouched(dataset_path: Path) -> None:
    stat = dataset_path.stat()
    with writer(dataset_path, mode="append"):
        pass
    assert dataset_path.stat().st_mtime_ns == stat.st_mtime_ns and dataset_path.stat().st_ino == stat.st_ino


def test_append_mismatched_spaces_refused(dataset_path: Path) -> None:
    before = dataset_path.read_bytes()
    with pytest.raises(SpaceMismatchError, match="observation space"):
        DatasetWriter(dataset_path, observation_space=spaces.Box(-1, 1, (4,), np.float32), action_space=DISCRETE,
                      mode="append")
    with pytest.raises(SpaceMismatchError, match="action space"):
        DatasetWriter(dataset_path, observation_space=BOX, action_space=spaces.Discrete(7), mode="append")
    with pytest.raises(DatasetError, match="holds Test-v0 episodes, not Other-v1"):
        writer(dataset_path, mode="append", env_id="Other-v1")
    assert dataset_path.read_bytes() == before
    assert leftovers(dataset_path.parent) == []


def test_append_mismatched_extras_refused(dataset_path: Path) -> None:
    eps = make_episodes(n=1, extras={"v": lambda T, rng: np.zeros(T)})
    with pytest.raises(ValueError, match="same extra arrays"):
        write(dataset_path, eps, mode="append")
    assert load_dataset(dataset_path).num_episodes == 4


def test_append_to_foreign_file_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.h5"
    path.write_text("hello")
    with pytest.raises(DatasetError, match="not an HDF5 file"):
        writer(path, mode="append")


def test_exception_aborts_new_file(tmp_path: Path) -> None:
    path = tmp_path / "d.h5"
    with pytest.raises(RuntimeError):
        with writer(path, block_steps=2) as w:
            w.add_episodes(make_episodes(n=3))  # blocks already written to the temp file
            assert temp_path_for(path).exists()
            raise RuntimeError("boom")
    assert not path.exists()
    assert leftovers(tmp_path) == []


def test_exception_leaves_original_untouched(dataset_path: Path) -> None:
    before = dataset_path.read_bytes()
    for mode in ("append", "overwrite"):
        with pytest.raises(RuntimeError):
            with writer(dataset_path, mode=mode, block_steps=1) as w:
                w.add_episodes(make_episodes(n=3, seed=9))
                raise RuntimeError("boom")
        assert dataset_path.read_bytes() == before
    assert leftovers(dataset_path.parent) == []


def test_explicit_abort(tmp_path: Path) -> None:
    w = writer(tmp_path / "d.h5")
    w.add_episodes(make_episodes(n=2))
    w.flush()
    w.abort()
    assert not (tmp_path / "d.h5").exists() and leftovers(tmp_path) == []
    with pytest.raises(ValueError, match="closed"):
        w.add_episode(make_episodes(n=1)[0])


@pytest.mark.parametrize("exc", [KeyboardInterrupt, SystemExit])
def test_interrupt_commits_completed_episodes(tmp_path: Path, exc: type[BaseException]) -> None:
    path = tmp_path / "d.h5"
    eps = make_episodes(n=3)
    with pytest.raises(exc):
        with writer(path) as w:
            w.add_episodes(eps)
            raise exc()
    ds = load_dataset(path)
    assert ds.num_episodes == 3
    np.testing.assert_array_equal(ds.rewards, np.concatenate([e.rewards for e in eps]))
    assert leftovers(tmp_path) == []


def test_interrupt_during_append_keeps_old_and_new(dataset_path: Path, episodes: list[Episode]) -> None:
    with pytest.raises(KeyboardInterrupt):
        with writer(dataset_path, mode="append") as w:
            w.add_episode(make_episodes(n=1, seed=5)[0])
            raise KeyboardInterrupt
    assert load_dataset(dataset_path).num_episodes == len(episodes) + 1


def test_interrupt_before_any_episode_writes_nothing(tmp_path: Path, dataset_path: Path) -> None:
    with pytest.raises(KeyboardInterrupt):
        with writer(tmp_path / "new.h5"):
            raise KeyboardInterrupt
    assert not (tmp_path / "new.h5").exists()
    before = dataset_path.read_bytes()
    with pytest.raises(KeyboardInterrupt):
        with writer(dataset_path, mode="overwrite"):
            raise KeyboardInterrupt
    assert dataset_path.read_bytes() == before


def test_second_writer_is_locked_out(tmp_path: Path, dataset_path: Path) -> None:
    with writer(dataset_path, mode="append") as w:
        assert lock_path_for(dataset_path).exists()
        with pytest.raises(DatasetLockedError, match=rf"being written by another process \(pid {os.getpid()}\)"):
            writer(dataset_path, mode="append")
        w.add_episodes(make_episodes(n=1))
    assert not lock_path_for(dataset_path).exists()  # sidecar removed on close
    with writer(dataset_path, mode="append") as w:  # free again
        w.add_episodes(make_episodes(n=1))
    assert load_dataset(dataset_path).num_episodes == 6
    with writer(tmp_path / "new.h5"):  # creating locks too
        with pytest.raises(DatasetLockedError):
            writer(tmp_path / "new.h5", mode="overwrite")


def test_stale_temp_files_are_ignored_and_removed(dataset_path: Path) -> None:
    dead_pid = 2 ** 22 + 12345  # above the default pid_max: never a live process
    stale = temp_path_for(dataset_path, dead_pid)
    stale.write_bytes(b"half-written garbage")
    assert load_dataset(dataset_path).num_episodes == 4  # readers never look at temp files
    with writer(dataset_path, mode="append") as w:
        w.add_episodes(make_episodes(n=1))
    assert not stale.exists()


def test_directory_path_refused(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="is a directory"):
        writer(tmp_path)


def test_unknown_mode_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown dataset write mode 'add'"):
        writer(tmp_path / "d.h5", mode="add")


def test_writer_creates_parent_dirs(tmp_path: Path) -> None:
    path = write(tmp_path / "a" / "b" / "d.h5", make_episodes(n=1))
    assert load_dataset(path).num_episodes == 1


def test_interrupt_half_way_through_a_block_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C between two field writes of one block: the partial block is undone, then committed whole."""
    path = tmp_path / "d.h5"
    eps = make_episodes(n=4)
    from demokit.data.storage.hdf5 import HDF5Storage

    original = HDF5Storage.append
    calls = {"n": 0}

    def flaky(self: HDF5Storage, name: str, data: np.ndarray) -> None:
        calls["n"] += 1
        original(self, name, data)
        if calls["n"] == 3:  # observations, actions, final_observations written; rewards not yet
            raise KeyboardInterrupt

    monkeypatch.setattr(HDF5Storage, "append", flaky)
    with pytest.raises(KeyboardInterrupt):
        with writer(path) as w:
            w.add_episodes(eps[:2])
            w.flush()
    ds = load_dataset(path)
    assert ds.num_episodes == 2 and len(ds) == len(eps[0]) + len(eps[1])
    np.testing.assert_array_equal(ds.observations, np.concatenate([e.observations for e in eps[:2]]))


def test_bad_extras_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="only bool, integer and float"):
        writer(tmp_path / "d.h5", extras={"info": ((), object)})
    with pytest.raises(ValueError, match="without '/'"):
        writer(tmp_path / "d.h5", extras={"a/b": ((), np.float32)})
    eps = make_episodes(n=1, extras={"note": lambda T, rng: np.array(["x"] * T)})
    with pytest.raises(ValueError, match="'note' has dtype <U1"):
        write(tmp_path / "d.h5", eps)
    assert not (tmp_path / "d.h5").exists()


def test_refused_second_writer_does_not_touch_the_first_ones_files(dataset_path: Path) -> None:
    with writer(dataset_path, mode="append", block_steps=1) as w:
        w.add_episode(make_episodes(n=1)[0])  # the transaction's journal exists now
        for mode in ("append", "overwrite", "create"):
            with pytest.raises((DatasetLockedError, DatasetError)):
                writer(dataset_path, mode=mode)
        import gc
        gc.collect()  # the refused writers are gone
        from demokit.data.storage.journal import journal_path_for

        assert journal_path_for(dataset_path).exists()
        assert load_dataset(dataset_path).num_episodes == 4  # a reader meanwhile: the committed episodes
        w.add_episode(make_episodes(n=1)[0])
    assert load_dataset(dataset_path).num_episodes == 6


def test_ctrl_c_during_the_commit_is_held_back_until_it_is_done(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import signal

    import demokit.data.storage.hdf5 as storage_hdf5

    real_commit = storage_hdf5.commit_file

    def commit_then_interrupted(*args: object, **kwargs: object) -> None:
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C arrives in the middle of the commit
        real_commit(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(storage_hdf5, "commit_file", commit_then_interrupted)
    path = tmp_path / "d.h5"
    with pytest.raises(KeyboardInterrupt):
        with writer(path) as w:
            w.add_episodes(make_episodes(n=2))
    assert load_dataset(path).num_episodes == 2  # committed, then the interrupt was delivered
    assert leftovers(tmp_path) == []


def test_append_and_overwrite_keep_file_permissions(dataset_path: Path) -> None:
    dataset_path.chmod(0o600)
    write(dataset_path, make_episodes(n=1), mode="append")
    assert dataset_path.stat().st_mode & 0o777 == 0o600
    write(dataset_path, make_episodes(n=1), mode="overwrite")
    assert dataset_path.stat().st_mode & 0o777 == 0o600
