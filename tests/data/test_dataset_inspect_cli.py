"""`demokit inspect` through the real CLI entry point."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from demokit.cli.app import main
from demokit.data import Episode


def test_inspect_human(dataset_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", str(dataset_path), "--episodes", "2"]) == 0
    out = capsys.readouterr().out
    for text in ("Test-v0", "Box(3,) float32", "Discrete(3)", "episodes", "2 terminated, 2 truncated",
                 "provenance.policy", "random", "demokit v1", "size on disk", "first 2 of 4 episodes"):
        assert text in out, text


def test_inspect_json(dataset_path: Path, episodes: list[Episode], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", str(dataset_path), "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    returns = np.array([e.episode_return for e in episodes])
    assert result["path"] == str(dataset_path)
    assert result["episodes"] == 4 and result["steps"] == sum(len(e) for e in episodes)
    assert result["env_id"] == "Test-v0" and result["format_version"] == 1
    assert result["mean_return"] == pytest.approx(returns.mean()) and result["std_return"] == pytest.approx(returns.std())
    assert result["min_return"] == pytest.approx(returns.min()) and result["max_return"] == pytest.approx(returns.max())
    assert result["observation_space"]["type"] == "Box" and result["action_space"] == {"type": "Discrete", "n": 3, "start": 0}
    assert result["provenance"] == {"policy": "random", "seed": 7}
    assert result["terminated_episodes"] == 2 and result["truncated_episodes"] == 2
    assert result["size_bytes"] == dataset_path.stat().st_size


@pytest.mark.parametrize("problem", ["missing", "not-hdf5", "foreign", "too-new"])
def test_inspect_bad_file(tmp_path: Path, dataset_path: Path, problem: str, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.h5"
    if problem == "not-hdf5":
        path.write_text("not a dataset")
    elif problem == "foreign":
        with h5py.File(path, "w") as f:
            f["x"] = np.zeros(3)
    elif problem == "too-new":
        path = dataset_path
        with h5py.File(path, "r+") as f:
            f.attrs["format_version"] = 7
    assert main(["inspect", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and str(path) in err and "Traceback" not in err
