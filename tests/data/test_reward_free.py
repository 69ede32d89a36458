"""Reward-free datasets: written without rewards, read back with None for rewards / returns."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import h5py
import numpy as np
import pytest
from tests.data.helpers import make_episodes, write

from demokit.data import DatasetWriter, load_dataset
from demokit.data import format as fmt
from demokit.errors import DatasetError, UserError


def reward_free(episodes):
    return [dataclasses.replace(ep, rewards=None) for ep in episodes]


def test_episode_without_rewards() -> None:
    ep = reward_free(make_episodes(n=1))[0]
    assert ep.rewards is None and ep.episode_return is None and not ep.has_rewards
    assert len(ep) == ep.terminated.shape[0]


def test_write_and_read_reward_free(tmp_path: Path) -> None:
    eps = reward_free(make_episodes(n=5))
    path = write(tmp_path / "free.h5", eps)
    with h5py.File(path, "r") as f:
        assert fmt.REWARDS not in f and "return" not in f[fmt.EPISODES]
        assert f.attrs[fmt.ATTR_REWARDS] == fmt.REWARDS_NONE
    ds = load_dataset(path)
    assert not ds.has_rewards and ds.rewards is None and ds.episode_returns is None
    assert len(ds) == sum(len(e) for e in eps) and ds.num_episodes == 5
    np.testing.assert_array_equal(ds.observations, np.concatenate([e.observations for e in eps]))
    np.testing.assert_array_equal(ds.actions, np.concatenate([e.actions for e in eps]))
    np.testing.assert_array_equal(ds.terminated, np.concatenate([e.terminated for e in eps]))
    batch = ds.sample(8, rng=0)
    assert set(batch) == {"obs", "action", "next_obs", "terminated", "truncated"}
    assert "rewards" not in ds.field_names()
    with pytest.raises(UserError, match="no field 'rewards'"):
        ds.read("rewards")
    rows = ds.read(["observations", "terminated"], rows=slice(1, 4))
    np.testing.assert_array_equal(rows["terminated"], ds.terminated[1:4])
    assert sum(len(b["actions"]) for b in ds.iter_batches(3, shuffle=True, seed=1)) == len(ds)
    back = list(ds.iter_episodes())
    assert all(e.rewards is None for e in back)
    assert "reward" not in ds.to_pandas().columns and "return" not in ds.episodes_frame().columns
    with pytest.raises(DatasetError, match="has no rewards"):
        ds.require_rewards("--top-k")


def test_add_columns_without_rewards_matches_episodes(tmp_path: Path) -> None:
    eps = reward_free(make_episodes(n=3))
    a = load_dataset(write(tmp_path / "a.h5", eps))
    with DatasetWriter(tmp_path / "b.h5", observation_space=a.observation_space, action_space=a.action_space,
                       env_id="Test-v0") as w:
        w.add_columns(observations=a.observations, actions=a.actions, rewards=None, terminated=a.terminated,
                      truncated=a.truncated, final_observations=a.final_observations,
                      episode_lengths=a.episode_lengths)
    b = load_dataset(tmp_path / "b.h5")
    assert not b.has_rewards
    for name in ("observations", "actions", "terminated", "truncated", "final_observations", "episode_lengths"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))


def test_mixing_refused_and_nothing_written(tmp_path: Path) -> None:
    eps = make_episodes(n=2)
    with pytest.raises(UserError, match="has rewards or none"):
        write(tmp_path / "mixed.h5", [eps[0], *reward_free(eps[1:])])
    assert not (tmp_path / "mixed.h5").exists()
    path = write(tmp_path / "free.h5", reward_free(eps))
    ds = load_dataset(path)
    with pytest.raises(UserError, match="reward-free"):
        with DatasetWriter(path, observation_space=ds.observation_space, action_space=ds.action_space,
                           mode="append") as w:
            w.add_episode(eps[0])
    assert load_dataset(path).num_episodes == 2
    with DatasetWriter(path, observation_space=ds.observation_space, action_space=ds.action_space,
                       mode="append") as w:
        w.add_episodes(reward_free(make_episodes(n=2, seed=5)))
    assert load_dataset(path).num_episodes == 4 and not load_dataset(path).has_rewards


def test_files_with_rewards_have_no_marker(tmp_path: Path) -> None:
    path = write(tmp_path / "r.h5", make_episodes(n=2))
    with h5py.File(path, "r") as f:
        assert fmt.ATTR_REWARDS not in f.attrs and fmt.REWARDS in f
    assert load_dataset(path).has_rewards


def test_damaged_marker_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "r.h5", make_episodes(n=2))
    with h5py.File(path, "r+") as f:
        f.attrs[fmt.ATTR_REWARDS] = fmt.REWARDS_NONE
    with pytest.raises(DatasetError, match="marked reward-free but holds"):
        load_dataset(path)


@pytest.fixture
def free_path(tmp_path: Path) -> Path:
    return write(tmp_path / "free.h5", reward_free(make_episodes(n=6)))


def run_cli(args: list[str]) -> int:
    from demokit.cli.app import main

    try:
        return int(main(args) or 0)
    except SystemExit as exc:
        return int(exc.code or 0)


def test_commands_that_need_returns_say_the_dataset_has_none(free_path: Path, tmp_path: Path, capsys) -> None:
    for option in (["--top-k", "2"], ["--min-return", "0"]):
        assert run_cli(["filter", str(free_path), "--out", str(tmp_path / "f.h5"), *option]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error:") and "has no rewards" in err[0], err
        assert not (tmp_path / "f.h5").exists()
    assert run_cli(["filter", str(free_path), "--out", str(tmp_path / "f.h5"), "--max-length", "4"]) == 0
    kept = load_dataset(tmp_path / "f.h5")
    assert not kept.has_rewards and kept.num_episodes and int(kept.episode_lengths.max()) <= 4
    capsys.readouterr()
    assert run_cli(["inspect", str(free_path)]) == 0
    assert "no rewards" in capsys.readouterr().out
    assert run_cli(["inspect", str(free_path), "--json"]) == 0
    import json

    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["has_rewards"] is False and summary["mean_return"] is None


def test_doctor_and_plot_on_reward_free(free_path: Path, tmp_path: Path) -> None:
    from demokit.data.doctor import diagnose
    from demokit.plot import plot

    report = diagnose(free_path)
    assert not [f for f in report.findings if f.severity == "error"], report.findings
    out = plot([free_path], tmp_path / "free.png")
    assert out.stat().st_size > 0
