"""`demokit doctor`: each check finds what it should, names the episodes, and a clean file passes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import gymnasium as gym
import pytest

from demokit.cli.app import main
from demokit.data import DatasetWriter, Episode
from demokit.data.doctor import diagnose

_ENV = gym.make("CartPole-v1")
CARTPOLE_OBS, CARTPOLE_ACT = _ENV.observation_space, _ENV.action_space


def episode(length: int, seed: int, *, terminated: bool = True, truncated: bool = False) -> Episode:
    rng = np.random.default_rng(seed)
    term = np.zeros(length, dtype=bool)
    trunc = np.zeros(length, dtype=bool)
    term[-1], trunc[-1] = terminated, truncated
    return Episode(observations=rng.uniform(-0.1, 0.1, size=(length, 4)).astype(np.float32),
                   actions=rng.integers(0, 2, size=length), rewards=np.ones(length), terminated=term,
                   truncated=trunc, final_observation=rng.uniform(-0.1, 0.1, size=(1, 4)).astype(np.float32),
                   seed=seed)


def write(path: Path, episodes: list[Episode], **kwargs) -> Path:
    kwargs.setdefault("env_id", "CartPole-v1")
    with DatasetWriter(path, observation_space=CARTPOLE_OBS, action_space=CARTPOLE_ACT, **kwargs) as w:
        w.add_episodes(episodes)
    return path


def by_check(report) -> dict[str, list]:
    out: dict[str, list] = {}
    for f in report.findings:
        out.setdefault(f.check, []).append(f)
    return out


def test_clean_dataset_has_no_findings(tmp_path, capsys):
    path = write(tmp_path / "ok.h5", [episode(20, 0), episode(500, 1, terminated=False, truncated=True)],
                 env_spec=gym.spec("CartPole-v1"))
    report = diagnose(path)
    assert report.ok and report.episodes == 2 and report.steps == 520
    assert main(["doctor", str(path)]) == 0
    assert "no problems found" in capsys.readouterr().out


def test_each_problem_is_found_with_its_episodes(tmp_path):
    eps = [episode(10, 0), episode(12, 1), episode(500, 2), episode(10, 0), episode(7, 4, terminated=False)]
    nan_obs = eps[1].observations.copy()
    nan_obs[3, 1] = np.nan
    eps[1] = Episode(observations=nan_obs, actions=eps[1].actions, rewards=eps[1].rewards,
                     terminated=eps[1].terminated, truncated=eps[1].truncated,
                     final_observation=eps[1].final_observation)
    far = eps[4].observations.copy()
    far[2, 0] = 9.0  # cart position beyond 4.8
    eps[4] = Episode(observations=far, actions=eps[4].actions, rewards=eps[4].rewards,
                     terminated=eps[4].terminated, truncated=eps[4].truncated,
                     final_observation=eps[4].final_observation)
    spec = json.loads(gym.spec("CartPole-v1").to_json())
    spec["max_episode_steps"] = 500
    spec["reward_threshold"] = 195.0
    path = write(tmp_path / "bad.h5", eps, env_spec=spec)
    found = by_check(diagnose(path))
    assert set(found) == {"non_finite", "out_of_space", "time_limit_terminated", "unmarked_end",
                          "duplicate_episodes", "env"}
    assert found["non_finite"][0].episodes == (1,) and "observations" in found["non_finite"][0].message
    assert found["out_of_space"][0].episodes == (4,) and "9" in found["out_of_space"][0].message
    assert found["time_limit_terminated"][0].episodes == (2,)
    assert found["unmarked_end"][0].episodes == (4,)
    assert found["duplicate_episodes"][0].episodes == (3,) and "0 = 3" in found["duplicate_episodes"][0].message
    assert "reward_threshold: recorded 195.0, installed 475.0" in found["env"][0].message
    assert all(f.fix for fs in found.values() for f in fs)
    cheap = by_check(diagnose(path, cheap=True))
    assert "duplicate_episodes" not in cheap and "env" not in cheap and "non_finite" in cheap


def test_json_report_and_exit_status(tmp_path, capsys):
    path = write(tmp_path / "tl.h5", [episode(500, 0)])
    assert main(["doctor", str(path), "--json"]) == 1
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["ok"] is False and report["episodes"] == 1
    (finding,) = report["findings"]
    assert finding["check"] == "time_limit_terminated" and finding["episodes"] == [0] and finding["fix"]
    assert main(["doctor", str(path)]) == 1
    out = capsys.readouterr().out
    assert "[time_limit_terminated]" in out and "fix:" in out


def test_stale_episode_index_is_a_finding(tmp_path):
    h5py = pytest.importorskip("h5py")
    path = write(tmp_path / "stale.h5", [episode(5, 0), episode(6, 1)])
    with h5py.File(path, "r+") as f:  # corrupt the stored index the way a buggy writer would
        f["episodes/return"][1] = 100.0
        f["episodes/truncated"][0] = True
    found = by_check(diagnose(path))
    assert [f.episodes for f in found["episode_index"]] == [(1,), (0,)]


def test_env_missing_or_unnamed(tmp_path):
    no_env = write(tmp_path / "noenv.h5", [episode(5, 0)], env_id=None)
    assert by_check(diagnose(no_env))["env"][0].severity == "warning"
    unknown = write(tmp_path / "unknown.h5", [episode(5, 0)], env_id="NoSuchEnv-v3")
    assert "not installed" in by_check(diagnose(unknown))["env"][0].message


@pytest.mark.parametrize("content", [None, b"not a dataset"])
def test_not_a_dataset_is_a_user_error(tmp_path, capsys, content):
    path = tmp_path / "x.h5"
    if content is not None:
        path.write_bytes(content)
    assert main(["doctor", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ")


def test_convert_and_collect_run_the_cheap_checks(tmp_path, capsys):
    from tests.data.convert.sources import write_d4rl

    rng = np.random.default_rng(0)
    obs = rng.normal(size=(20, 4)).astype(np.float32)
    obs[7, 2] = np.nan
    terminals = np.zeros(20, dtype=bool)
    terminals[[9, 19]] = True
    src = write_d4rl(tmp_path / "d4rl.hdf5", {"observations": obs, "actions": rng.normal(size=(20, 2)),
                                              "rewards": rng.normal(size=20), "terminals": terminals,
                                              "timeouts": np.zeros(20, dtype=bool)})
    assert main(["convert", str(src), str(tmp_path / "out.h5")]) == 0
    err = capsys.readouterr().err
    assert "warning: doctor: error [non_finite] observations holds NaN in 1 row(s) of 1 episode(s): 0" in err
    assert main(["collect", "--policy", "random", "--env", "CartPole-v1", "--episodes", "2",
                 "--out", str(tmp_path / "c.h5")]) == 0
    assert "doctor:" not in capsys.readouterr().err  # clean data: no warnings
