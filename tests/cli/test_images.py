"""Issue 13's bad input for images through the CLI: a dataset whose frames the CNN cannot take (too small), or
that holds no images, with `--encoder nature_cnn`: one `error:` line, exit 2, nothing written."""

from __future__ import annotations

import os
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

from demokit.cli.app import main
from demokit.data import DatasetWriter, Episode
from demokit.pipelines.collect import collect_demo_data


def _files(root: Path) -> set[str]:
    return {os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs}


def _small_frames(path: Path) -> Path:
    """uint8 (2, 20, 20) frames: images, but smaller than the Nature CNN's 36x36."""
    space = gym.spaces.Box(0, 255, (2, 20, 20), np.uint8)
    with DatasetWriter(path, observation_space=space, action_space=gym.spaces.Discrete(2),
                       env_id="pixels20-gray-stack2/CartPole-v1") as w:
        frames = np.random.default_rng(0).integers(0, 256, (5, 2, 20, 20), dtype=np.uint8)
        w.add_episodes([Episode(observations=frames[:4], actions=np.array([0, 1, 0, 1]), rewards=np.ones(4),
                                terminated=np.array([False, False, False, True]), truncated=np.zeros(4, bool),
                                final_observation=frames[4:])])
    return path


@pytest.mark.parametrize("kind, needle", [("small", "at least 36x36"), ("state", "uint8 image")])
def test_frames_the_cnn_cannot_take_are_refused(kind: str, needle: str, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data.h5"
    if kind == "small":
        _small_frames(data)
    else:
        collect_demo_data({"policy": "random", "env_id": "CartPole-v1", "path": str(data), "n_episodes": 1})
    before = _files(tmp_path)
    rc = main(["bc-train", str(data), "--encoder", "nature_cnn", "--out", str(tmp_path / "bc.pt"),
               "--run-dir", str(tmp_path / "runs")])
    err = capsys.readouterr().err
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert rc == 2 and len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    assert needle in lines[0], lines[0]
    assert _files(tmp_path) == before  # no checkpoint, no run folder


@pytest.mark.parametrize("weight, needle", [("1", "--record-state"), ("-1", "aux_state must be a finite weight")])
def test_aux_state_without_recorded_states_or_with_a_bad_weight_is_refused(
        weight: str, needle: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.helpers import write_leaning_poles

    data = write_leaning_poles(tmp_path / "data.h5", episodes=2, steps=8, seed=0)
    before = _files(tmp_path)
    rc = main(["bc-train", str(data), "--aux-state", weight, "--out", str(tmp_path / "bc.pt"),
               "--run-dir", str(tmp_path / "runs")])
    err = capsys.readouterr().err
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert rc == 2 and len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    assert needle in lines[0], lines[0]
    assert _files(tmp_path) == before
