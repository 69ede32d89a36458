"""Commits that cost what they add: in-place journaled appends, periodic commits, kill -9 during a new
collection, and a full disk (issue 13 appends; issue 15 hostile items 3 and 4)."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from tests.data.helpers import BOX, DISCRETE, make_episodes, write

from demokit.data import DatasetWriter, load_dataset
from demokit.data.locking import lock_path_for
from demokit.data.storage import hdf5 as storage_hdf5
from demokit.data.storage import journal
from demokit.errors import DatasetError

REPO = Path(__file__).resolve().parents[2]


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".") or p.name.endswith(".lock"))


def test_append_writes_in_place_and_only_adds(dataset_path: Path) -> None:
    before = dataset_path.read_bytes()
    inode = dataset_path.stat().st_ino
    write(dataset_path, make_episodes(n=3, seed=50), mode="append")
    after = dataset_path.read_bytes()
    assert dataset_path.stat().st_ino == inode  # no copy, no replace: the same file grew
    changed = sum(a != b for a, b in zip(before, after))
    assert changed < 0.1 * len(before)  # only HDF5's metadata and the partly filled chunks were rewritten
    ds = load_dataset(dataset_path)
    assert ds.num_episodes == 7 and ds.metadata["appends"][0]["episodes"] == [4, 7]
    np.testing.assert_array_equal(ds.episode(5).observations, make_episodes(n=3, seed=50)[1].observations)


def test_periodic_commits_are_visible_while_writing_and_make_one_appends_record(dataset_path: Path) -> None:
    eps = make_episodes(n=6, seed=80)
    with DatasetWriter(dataset_path, observation_space=BOX, action_space=DISCRETE, mode="append",
                       commit_interval=0.05) as w:
        w.add_episodes(eps[:2])
        time.sleep(0.06)
        w.add_episode(eps[2])  # the interval has passed: this add commits
        assert load_dataset(dataset_path).num_episodes == 4 + 3
        time.sleep(0.06)
        w.add_episodes(eps[3:])
    ds = load_dataset(dataset_path)
    assert ds.num_episodes == 10
    assert [r["episodes"] for r in ds.metadata["appends"]] == [[4, 10]]
    with pytest.raises(ValueError, match="commit_interval must be > 0"):
        DatasetWriter(dataset_path, observation_space=BOX, action_space=DISCRETE, mode="append", commit_interval=0)


def test_an_exception_after_a_periodic_commit_keeps_what_was_committed(tmp_path: Path) -> None:
    path = tmp_path / "new.h5"
    eps = make_episodes(n=4)
    with pytest.raises(RuntimeError):
        with DatasetWriter(path, observation_space=BOX, action_space=DISCRETE, commit_interval=0.01) as w:
            w.add_episode(eps[0])
            time.sleep(0.02)
            w.add_episode(eps[1])  # commits the first two
            w.add_episode(eps[2])
            raise RuntimeError("boom")
    assert load_dataset(path).num_episodes == 2
    assert leftovers(tmp_path) == []


COLLECTOR = textwrap.dedent("""
    import sys, time
    from tests.data.helpers import BOX, DISCRETE, make_episodes
    from demokit.data import DatasetWriter
    with DatasetWriter(sys.argv[1], observation_space=BOX, action_space=DISCRETE, commit_interval=float(sys.argv[2]),
                       block_steps=50) as w:
        start = time.monotonic()
        for r in range(10_000_000):
            w.add_episodes(make_episodes(n=2, seed=r))
            if r == 0:
                print("started", flush=True)
            time.sleep(0.001)
""")


@pytest.mark.parametrize("interval, wait", [(0.2, 1.5), (1000.0, 0.5)])
def test_kill_9_during_a_new_collection_loses_at_most_the_last_interval(tmp_path: Path, interval: float,
                                                                          wait: float) -> None:
    path = tmp_path / "demos.h5"
    script = tmp_path / "collector.py"
    script.write_text(COLLECTOR)
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    proc = subprocess.Popen([sys.executable, str(script), str(path), str(interval)], stdout=subprocess.PIPE,
                            text=True, env=env)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "started"
        time.sleep(wait)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    if interval < wait:  # several commits happened: the episodes up to the last one are there
        ds = load_dataset(path)
        ds.load()
        assert ds.num_episodes >= 2
        last = ds.num_episodes - 1  # the last committed episode is whole and the right one
        np.testing.assert_array_equal(ds.episode(last).observations,
                                      make_episodes(n=2, seed=last // 2)[last % 2].observations)
    else:  # killed before its first commit: no dataset, only its temp file and lock
        assert not path.exists() and lock_path_for(path).exists()
    # the next writer (or reader) cleans what the dead one left: temp file, journal, lock
    write(path, make_episodes(n=1), mode="append")
    assert leftovers(tmp_path) == []
    assert load_dataset(path).num_episodes >= 1


def _full_disk_after(monkeypatch: pytest.MonkeyPatch, module: object, name: str, calls: int) -> None:
    real = getattr(module, name)
    count = {"n": 0}

    def write(*args: object, **kwargs: object) -> object:
        count["n"] += 1
        if count["n"] > calls:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, write)


@pytest.mark.parametrize("when", [0.0, 0.1, 0.5, 0.9, "last"])
def test_full_disk_during_an_append_leaves_the_original_byte_for_byte(dataset_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch,
                                                                      when: float | str) -> None:
    """The disk fills at the k-th OS write of an append (k from a dry run: journal header, HDF5's
    writes, the journal's pages, the overlay written over the file)."""
    episodes = make_episodes(n=40, seed=3)
    dry = dataset_path.with_name("dry.h5")
    dry.write_bytes(dataset_path.read_bytes())
    real, count = journal._pwrite, {"n": 0}
    monkeypatch.setattr(journal, "_pwrite", lambda *a: (count.__setitem__("n", count["n"] + 1), real(*a))[1])
    write(dry, episodes, mode="append", block_steps=7)
    dry.unlink()
    monkeypatch.undo()
    total = count["n"]
    assert total > 5
    calls = total - 1 if when == "last" else int(when * total)

    before = dataset_path.read_bytes()
    _full_disk_after(monkeypatch, journal, "_pwrite", calls)
    with pytest.raises(DatasetError, match=r"no space left on the device of .*demos\.h5 \(.* MiB free\)"):
        write(dataset_path, episodes, mode="append", block_steps=7)
    monkeypatch.undo()
    assert dataset_path.read_bytes() == before
    assert leftovers(dataset_path.parent) == []
    assert load_dataset(dataset_path).num_episodes == 4


def test_full_disk_during_a_new_collection_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _full_disk_after(monkeypatch, storage_hdf5, "_write_rows", 2)
    with pytest.raises(DatasetError, match=r"no space left on the device of .*new\.h5"):
        write(tmp_path / "new.h5", make_episodes(n=10), block_steps=3)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("append", [False, True])
def test_full_disk_through_the_cli_is_one_error_line_and_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                        capsys: pytest.CaptureFixture[str],
                                                                        append: bool) -> None:
    from demokit.cli.app import main

    out = tmp_path / "demos.h5"
    cmd = ["collect", "--policy", "random", "--env", "CartPole-v1", "--episodes", "3", "--out", str(out)]
    if append:
        assert main(cmd) == 0
        capsys.readouterr()
    before = out.read_bytes() if append else None
    _full_disk_after(monkeypatch, journal if append else storage_hdf5, "_pwrite" if append else "_write_rows", 1)
    assert main([*cmd, "--seed", "9", *(["--append"] if append else [])]) == 2
    stderr = capsys.readouterr().err
    err = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(err) == 1 and err[0].startswith("error: no space left on the device of ") and "MiB free" in err[0], err
    assert str(out) in err[0] and "Traceback" not in stderr
    if append:
        assert out.read_bytes() == before
    else:
        assert not out.exists()
    assert leftovers(tmp_path) == []
