"""Sources without rewards become reward-free datasets (DI-engine obs/action data)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tests.data.convert.sources import ding_transitions, write_pickle

from demokit.data.convert import from_ding_pickle
from demokit.data.dataset import load_dataset


def _column(transitions: list[dict], key: str) -> np.ndarray:
    return np.stack([np.asarray(t[key]) for t in transitions])


def test_ding_without_reward_is_reward_free(tmp_path: Path) -> None:
    trs = [{k: v for k, v in t.items() if k != "reward"} for t in ding_transitions([4, 6, 3])]
    res = from_ding_pickle(write_pickle(tmp_path / "expert.pkl", trs), tmp_path / "out.h5")
    assert (res.episodes, res.steps) == (3, 13)
    ds = load_dataset(tmp_path / "out.h5")
    assert not ds.has_rewards and ds.rewards is None
    np.testing.assert_array_equal(ds.observations, _column(trs, "obs"))
    np.testing.assert_array_equal(ds.next_observations, _column(trs, "next_obs"))
    np.testing.assert_array_equal(ds.actions, _column(trs, "action")[:, 0])
    np.testing.assert_array_equal(ds.episode_terminated, [True, True, True])
    assert any("reward-free" in n for n in ds.provenance["conversion_notes"])


def test_ding_obs_action_only(tmp_path: Path) -> None:
    """DI-engine's GAIL expert data: obs and action only. Next observations are the following rows'."""
    full = ding_transitions([5])  # one episode of 5 steps: the last row's next obs is unknown without next_obs
    trs = [{"obs": t["obs"], "action": t["action"]} for t in full]
    res = from_ding_pickle(write_pickle(tmp_path / "gail.pkl", trs), tmp_path / "out.h5")
    ds = load_dataset(tmp_path / "out.h5")
    assert not ds.has_rewards and (res.episodes, res.steps) == (1, 4)
    obs = _column(trs, "obs")
    np.testing.assert_array_equal(ds.observations, obs[:4])
    np.testing.assert_array_equal(ds.next_observations, obs[1:5])
    np.testing.assert_array_equal(ds.actions, _column(trs, "action")[:4, 0])
    assert ds.episode_truncated.tolist() == [True] and not ds.terminated.any()
    notes = " ".join(ds.provenance["conversion_notes"])
    assert "no 'next_obs'" in notes and "no 'done'" in notes


def test_ding_done_without_next_obs(tmp_path: Path) -> None:
    full = ding_transitions([4, 3])
    trs = [{"obs": t["obs"], "action": t["action"], "done": t["done"]} for t in full]
    from_ding_pickle(write_pickle(tmp_path / "d.pkl", trs), tmp_path / "out.h5")
    ds = load_dataset(tmp_path / "out.h5")
    obs = _column(trs, "obs")
    np.testing.assert_array_equal(ds.episode_lengths, [3, 2])  # each episode's done row dropped
    np.testing.assert_array_equal(ds.observations, np.concatenate([obs[0:3], obs[4:6]]))
    np.testing.assert_array_equal(ds.final_observations, np.stack([obs[3], obs[6]]))
    assert ds.episode_truncated.all()


def test_imitation_trajectories_without_rews_round_trip(tmp_path: Path) -> None:
    import pytest

    datasets = pytest.importorskip("datasets")
    from tests.data.convert.test_imitation import save_like_imitation

    from demokit.data.convert import convert

    cols = save_like_imitation(tmp_path / "traj", rews=False)
    res = convert(tmp_path / "traj", tmp_path / "free.h5", env_id="CartPole-v1")
    ds = load_dataset(res.path)
    assert not ds.has_rewards and ds.num_episodes == 3
    for k in range(3):
        ep = ds.episode(k)
        assert ep.rewards is None
        np.testing.assert_array_equal(ep.observations, cols["obs"][k][:-1])
        np.testing.assert_array_equal(ep.final_observation[0], cols["obs"][k][-1])
        np.testing.assert_array_equal(ep.actions, cols["acts"][k])
    convert(res.path, tmp_path / "mid", to="imitation")
    assert "rews" not in datasets.load_from_disk(str(tmp_path / "mid")).column_names
    back = load_dataset(convert(tmp_path / "mid", tmp_path / "back.h5").path)
    assert not back.has_rewards
    for name in ("observations", "actions", "terminated", "truncated", "final_observations", "episode_lengths",
                 "episode_seeds"):
        a, b = getattr(ds, name), getattr(back, name)
        np.testing.assert_array_equal(a, b)
        assert a.dtype == b.dtype, name


def test_robomimic_demos_without_rewards_round_trip(tmp_path: Path) -> None:
    import pytest
    from tests.data.convert.test_robomimic import write_robomimic_by_hand

    from demokit.data.convert import convert

    demos = write_robomimic_by_hand(tmp_path / "raw.hdf5", rewards=False)
    with pytest.warns(UserWarning, match="reward-free"):
        res = convert(tmp_path / "raw.hdf5", tmp_path / "free.h5")
    ds = load_dataset(res.path)
    assert not ds.has_rewards and ds.num_episodes == len(demos)
    for k, demo in sorted(demos.items()):
        ep = ds.episode(k)
        np.testing.assert_array_equal(ep.actions, demo["actions"])
        for key, traj in demo["obs"].items():
            np.testing.assert_array_equal(ep.observations[key], traj[:-1])
    convert(res.path, tmp_path / "mid.hdf5", to="robomimic")
    back = load_dataset(convert(tmp_path / "mid.hdf5", tmp_path / "back.h5").path)
    assert not back.has_rewards
    for k in range(ds.num_episodes):
        a, b = ds.episode(k), back.episode(k)
        for name in ("actions", "terminated", "truncated"):
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
        for key in a.observations:
            np.testing.assert_array_equal(a.observations[key], b.observations[key])
            np.testing.assert_array_equal(a.final_observation[key], b.final_observation[key])


def test_reward_free_to_minari_or_d4rl_is_refused_in_one_line(tmp_path: Path, capsys) -> None:
    """Minari's EpisodeData and loader need rewards (so does a D4RL file): demokit refuses, never invents them."""
    from demokit.cli.app import main
    from tests.data.convert.sources import write_demokit_cartpole
    from tests.helpers_reward_free import reward_free_copy

    free = reward_free_copy(write_demokit_cartpole(tmp_path / "cp.h5"), tmp_path / "free.h5")
    for dst, extra in ((tmp_path / "out" / "cartpole-free-v0", []), (tmp_path / "flat.hdf5", ["--to", "d4rl"])):
        assert main(["convert", str(free), str(dst), *extra]) == 2
        err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
        assert len(err) == 1 and err[0].startswith("error:") and "reward-free" in err[0], err
        assert "does not invent rewards" in err[0] and not dst.exists()
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_minari_episode_without_rewards_is_refused_as_minari_refuses_it(tmp_path: Path, capsys) -> None:
    """Minari always records rewards; an episode without them is unreadable by Minari's own loader, and demokit
    says so in one line."""
    import h5py
    import pytest

    minari = pytest.importorskip("minari")
    from minari.dataset.minari_dataset import MinariDataset

    from demokit.cli.app import main
    from demokit.data.convert import convert
    from tests.data.convert.sources import write_demokit_cartpole

    dst = tmp_path / "cartpole-test-v0"
    convert(write_demokit_cartpole(tmp_path / "cp.h5"), dst)
    with h5py.File(dst / "data" / "main_data.hdf5", "r+") as f:
        del f["episode_1"]["rewards"]
    with pytest.raises(KeyError, match="rewards"):
        list(MinariDataset(dst / "data").iterate_episodes())  # Minari's own loader
    assert minari.__version__.startswith("0.5")
    assert main(["convert", str(dst), str(tmp_path / "o.h5")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "episode_1 has no 'rewards'" in err[0] and "Minari" in err[0]
    assert not (tmp_path / "o.h5").exists()
