"""A full disk and a read-only file system from the command line: one `error:` line naming the
path, exit 2, nothing left behind.

The disks are real: small tmpfs mounts made for the test (root only; skipped elsewhere).
"""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import pytest

import il_data
from demokit.cli.app import main


def _mount(tmp_path: Path, options: str):
    mnt = tmp_path / f"disk-{uuid.uuid4().hex[:6]}"
    mnt.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(mnt)],
                                           capture_output=True).returncode != 0:
        pytest.skip("mounting a small tmpfs needs root")
    return mnt


@pytest.fixture
def full_disk(tmp_path: Path):
    mnt = _mount(tmp_path, "size=48k")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


@pytest.fixture
def read_only_disk(tmp_path: Path):
    mnt = _mount(tmp_path, "size=48k,ro")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


@pytest.fixture(scope="module")
def big(tmp_path_factory) -> Path:
    return il_data.write_cartpole(tmp_path_factory.mktemp("full") / "cp.h5", 6, seed=1)


def _one_error(capsys, argv: list[str], needle: str) -> None:
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and needle in lines[0] and "no space left" in lines[0], err


@pytest.mark.parametrize("dst,extra", [("sub/m-v0", []), ("sub/m-v0", ["--minari-format", "arrow"]),
                                       ("sub/m-v0", ["--minari-format", "parquet"]), ("sub/d.hdf5", ["--to", "d4rl"])])
def test_convert_to_a_full_disk(full_disk, big, capsys, dst, extra):
    _one_error(capsys, ["convert", str(big), str(full_disk / dst), *extra], str(full_disk / dst))
    assert list(full_disk.iterdir()) == []  # no temp dir, no DST, not even the parent it made


def test_checkpoint_to_a_full_disk(full_disk, big, capsys):
    (full_disk / "filler").write_bytes(b"x" * 40_000)
    out = full_disk / "bc.pt"
    _one_error(capsys, ["bc-train", str(big), "--epochs", "1", "--eval-episodes", "0", "--out", str(out)], str(out))
    assert sorted(p.name for p in full_disk.iterdir()) == ["filler"]


def test_collect_to_a_full_disk(full_disk, capsys):
    out = full_disk / "c.h5"
    rc = main(["collect", "--policy", "random", "--env", "CartPole-v1", "--steps", "20000", "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and str(out) in lines[0] and "no space left" in lines[0], err
    assert list(full_disk.iterdir()) == []  # no dataset, temp file or lock file


@pytest.mark.parametrize("argv", [
    ["collect", "--policy", "random", "--env", "CartPole-v1", "--episodes", "1", "--out", "{d}/c.h5"],
    ["bc-train", "{big}", "--epochs", "1", "--out", "{d}/bc.pt"],
    ["convert", "{big}", "{d}/m-v0"],
])
def test_read_only_file_system(read_only_disk, big, capsys, argv):
    argv = [a.format(d=read_only_disk, big=big) for a in argv]
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err and err.strip().splitlines()[-1].startswith("error:"), err
    assert list(read_only_disk.iterdir()) == []


def test_default_output_folder_in_a_read_only_working_directory(read_only_disk, monkeypatch, capsys):
    monkeypatch.chdir(read_only_disk)  # collect's default output is datasets/<env>-<policy>.h5
    rc = main(["collect", "--policy", "random", "--env", "CartPole-v1", "--episodes", "1"])
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err and err.strip().splitlines()[-1].startswith("error:"), err
