"""Damaged files (issue 15, hostile items 6 and 7): wrong attribute types, wrong dtypes, flags in the
middle of an episode, NaN data. Each is refused with one DatasetError (the CLI: one `error:` line, exit 2)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
from gymnasium import spaces
from tests.data.helpers import make_episodes, write

from demokit.data import load_dataset
from demokit.data.checks import bad_value_counts, check_values
from demokit.errors import DatasetError

REPO = Path(__file__).resolve().parents[2]


def _replace(f: h5py.File, name: str, data: np.ndarray) -> None:
    del f[name]
    f.create_dataset(name, data=data, maxshape=(None, *data.shape[1:]), chunks=True)


@pytest.mark.parametrize("key, value, message", [
    ("env_id", np.int64(3), "root attribute 'env_id' should be a string but is int"),
    ("observation_space", "[1, 2]", "root attribute 'observation_space' should be a JSON object but is str"),
    ("action_space", np.int64(2), "'action_space' should be JSON text"),
    ("provenance", "[1, 2]", "root attribute 'provenance' should be a JSON object"),
    ("appends", '{"a": 1}', "root attribute 'appends' should be a JSON list"),
    ("env_spec", "[]", "'env_spec' should be a JSON object or null"),
    ("provenance", "{not json", "'provenance' is not valid JSON"),
    ("total_steps", "many", "'total_steps' should be a non-negative integer"),
    ("total_episodes", 2.0, "'total_episodes' should be a non-negative integer"),
    ("created", np.int64(5), "'created' should be a string"),
    ("format_version", 1.5, "unknown format version 1.5"),
])
def test_root_attributes_of_the_wrong_type(dataset_path: Path, key: str, value: Any, message: str) -> None:
    with h5py.File(dataset_path, "r+") as f:
        f.attrs[key] = value
    with pytest.raises(DatasetError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_dataset(dataset_path)


@pytest.mark.parametrize("name, convert, message", [
    ("episodes/length", lambda a: a.astype(np.float64), "'episodes/length' is stored as float64 but .* says int64"),
    ("actions", lambda a: a.astype("S8"), "'actions' is stored as |S8 but"),
    ("actions", lambda a: a.astype(np.float64) + 0.5, "'actions' is stored as float64 but .* says int64"),
    ("rewards", lambda a: a.astype("S8"), "'rewards' is stored as |S8"),
    ("observations", lambda a: a.astype(np.float64), "'observations' is stored as float64 but .* says float32"),
    ("terminated", lambda a: a.astype(np.int64), "'terminated' is stored as int64 but .* says bool"),
    ("extras/lp", lambda a: a.astype("S4"), "'extras/lp' is stored as |S4 but .* says bool, integer or float"),
])
def test_dtypes_that_do_not_match_the_spaces(tmp_path: Path, name: str, convert: Any, message: str) -> None:
    path = write(tmp_path / "d.h5", make_episodes(extras={"lp": lambda n, rng: rng.normal(size=n)}))
    with h5py.File(path, "r+") as f:
        _replace(f, name, convert(f[name][()]))
    with pytest.raises(DatasetError, match=message.replace("|", r"\|")):
        load_dataset(path)


def test_a_termination_flag_in_the_middle_of_an_episode(dataset_path: Path) -> None:
    with h5py.File(dataset_path, "r+") as f:
        f["terminated"][0] = True  # episode 0 is longer than one step
    ds = load_dataset(dataset_path)  # metadata only: still opens (doctor reports such files)
    with pytest.raises(DatasetError, match="'terminated' is set on step 0, in the middle of episode 0"):
        ds.terminated
    with pytest.raises(DatasetError, match="in the middle of episode 0"):
        ds.read(["observations", "terminated"], slice(0, 3))
    assert ds.read("truncated", slice(0, 3))["truncated"].shape == (3,)


def test_damaged_attribute_through_the_cli_is_one_error_line(dataset_path: Path) -> None:
    with h5py.File(dataset_path, "r+") as f:
        f.attrs["env_id"] = np.int64(3)
    proc = subprocess.run([sys.executable, "-m", "demokit", "inspect", str(dataset_path)], capture_output=True,
                          text=True, cwd=dataset_path.parent, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("error: ") and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "env_id" in proc.stderr and "Traceback" not in proc.stderr


def test_bad_value_counts_known_answers() -> None:
    x = np.array([[0.0, np.nan], [np.inf, 1.0]], dtype=np.float32)
    assert bad_value_counts(x, np.array([0, 2]), spaces.Discrete(2)) == [2, 0, 1]
    assert bad_value_counts(np.zeros((2, 2)), np.array([1, 4]), spaces.Discrete(3, start=1)) == [0, 0, 1]
    assert bad_value_counts(np.zeros((2, 2)), np.array([[np.nan], [-np.inf]]), spaces.Box(-1, 1, (1,))) == [0, 2, 0]
    with pytest.raises(DatasetError, match="1 NaN/inf observation value.* GAIL cannot learn from them"):
        check_values("d.h5", x[:1], np.array([0]), spaces.Discrete(2), "GAIL")


@pytest.fixture
def nan_cartpole(tmp_path: Path) -> Path:
    import gymnasium as gym

    env = gym.make("CartPole-v1")
    eps = make_episodes(env.observation_space, env.action_space, n=4)
    path = write(tmp_path / "nan.h5", eps, obs_space=env.observation_space, act_space=env.action_space,
                 env_id="CartPole-v1")
    with h5py.File(path, "r+") as f:
        f["observations"][1, 2] = np.nan
    return path


def test_gail_refuses_nan_observations_as_bc_does(nan_cartpole: Path) -> None:
    from demokit.il import train_bc
    from demokit.reward_models import create_reward_model

    with pytest.raises(DatasetError, match="1 NaN/inf observation value.*BC cannot learn"):
        train_bc(nan_cartpole, epochs=1, eval_episodes=0, device="cpu", val_fraction=0)
    with pytest.raises(DatasetError, match="1 NaN/inf observation value.*GAIL cannot learn"):
        create_reward_model({"type": "gail", "expert_data_path": str(nan_cartpole)}, device="cpu")
