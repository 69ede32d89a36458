"""load_dataset refuses bad files with one clear DatasetError naming the file and the problem."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from demokit.data import load_dataset
from demokit.errors import DatasetError


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"nope\.h5 does not exist"):
        load_dataset(tmp_path / "nope.h5")


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="is a directory"):
        load_dataset(tmp_path)


def test_not_hdf5(tmp_path: Path) -> None:
    path = tmp_path / "x.h5"
    path.write_bytes(b"\x00" * 100)
    with pytest.raises(DatasetError, match=r"x\.h5 is not an HDF5 file"):
        load_dataset(path)


def test_hdf5_but_not_demokit(tmp_path: Path) -> None:
    path = tmp_path / "d4rl.h5"
    with h5py.File(path, "w") as f:
        f["observations"] = np.zeros((3, 2))
    with pytest.raises(DatasetError, match=r"d4rl\.h5 is an HDF5 file but not a demokit dataset"):
        load_dataset(path)


def test_newer_format_version_refused(dataset_path: Path) -> None:
    with h5py.File(dataset_path, "r+") as f:
        f.attrs["format_version"] = 2
    with pytest.raises(DatasetError, match=r"was written by format version 2; this demokit reads up to 1: upgrade demokit"):
        load_dataset(dataset_path)


@pytest.mark.parametrize("version", [0, "one"])
def test_unknown_format_version_refused(dataset_path: Path, version: object) -> None:
    with h5py.File(dataset_path, "r+") as f:
        f.attrs["format_version"] = version
    with pytest.raises(DatasetError, match="unknown format version"):
        load_dataset(dataset_path)


def test_inconsistent_field_lengths(dataset_path: Path) -> None:
    with h5py.File(dataset_path, "r+") as f:
        f["actions"].resize(f["actions"].shape[0] - 1, axis=0)
    with pytest.raises(DatasetError, match=r"demos\.h5: field arrays have inconsistent lengths: 'actions' has"):
        load_dataset(dataset_path)


def test_missing_field(dataset_path: Path) -> None:
    with h5py.File(dataset_path, "r+") as f:
        del f["truncated"]
    with pytest.raises(DatasetError, match="missing dataset 'truncated'"):
        load_dataset(dataset_path)


def test_index_not_contiguous(dataset_path: Path) -> None:
    with h5py.File(dataset_path, "r+") as f:
        f["episodes/start"][2] += 1
    with pytest.raises(DatasetError, match="episode index does not add up: episode 2 starts at"):
        load_dataset(dataset_path)


def test_index_not_summing_to_n(dataset_path: Path) -> None:
    with h5py.File(dataset_path, "r+") as f:
        f["episodes/length"][-1] += 1
    with pytest.raises(DatasetError, match="episode lengths sum to"):
        load_dataset(dataset_path)


def test_zero_length_episode(dataset_path: Path) -> None:
    with h5py.File(dataset_path, "r+") as f:
        lengths = f["episodes/length"][()]
        f["episodes/length"][0] = 0
        f["episodes/length"][1] = lengths[1] + lengths[0]
    with pytest.raises(DatasetError, match="episode 0 has length 0"):
        load_dataset(dataset_path)


def test_final_observations_wrong_rows(dataset_path: Path) -> None:
    with h5py.File(dataset_path, "r+") as f:
        f["final_observations"].resize(2, axis=0)
    with pytest.raises(DatasetError, match="one row per episode"):
        load_dataset(dataset_path)


def test_truncated_file(dataset_path: Path) -> None:
    data = dataset_path.read_bytes()
    dataset_path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DatasetError, match=str(dataset_path.name)):
        ds = load_dataset(dataset_path)
        ds.load()
