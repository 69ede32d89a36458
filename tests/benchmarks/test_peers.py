"""benchmarks/_peers.py: the npz exporter, the argument mapping, and the runner plumbing."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from gymnasium import spaces

from demokit.data import DatasetWriter, Episode

REPO = Path(__file__).resolve().parents[2]


def _load(name: str, path: Path) -> Any:
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


peers = _load("benchmarks_peers_helper", REPO / "benchmarks" / "_peers.py")
common = peers._peers_common()

OBS = spaces.Box(-5.0, 5.0, (4,), np.float32)


def _episode(length: int, *, terminated: bool, start: float, act_space: spaces.Space) -> Episode:
    obs = (start + np.arange(length * 4, dtype=np.float32).reshape(length, 4)) / 100
    if isinstance(act_space, spaces.Discrete):
        acts = np.arange(length) % act_space.n
    else:
        acts = np.linspace(-1, 1, length * act_space.shape[0], dtype=np.float32).reshape(length, -1)
    end = np.zeros(length, dtype=bool)
    end[-1] = True
    return Episode(observations=obs, actions=acts, rewards=np.ones(length),
                   terminated=end if terminated else np.zeros(length, dtype=bool),
                   truncated=np.zeros(length, dtype=bool) if terminated else end,
                   final_observation=np.full((1, 4), -start / 100, dtype=np.float32))


def _dataset(path: Path, act_space: spaces.Space) -> list[Episode]:
    eps = [_episode(3, terminated=True, start=1.0, act_space=act_space),
           _episode(1, terminated=False, start=2.0, act_space=act_space),
           _episode(4, terminated=False, start=3.0, act_space=act_space)]
    with DatasetWriter(path, observation_space=OBS, action_space=act_space, env_id="CartPole-v1") as w:
        w.add_episodes(eps)
    return eps


def test_export_npz_discrete_layout(tmp_path: Path) -> None:
    eps = _dataset(tmp_path / "d.h5", spaces.Discrete(2))
    summary = peers.export_npz(tmp_path / "d.h5", tmp_path / "d.npz")
    assert summary["transitions"] == 8 and summary["episodes"] == 3
    data = common.load_demos(str(tmp_path / "d.npz"))
    assert data["obs"].dtype == np.float32 and data["obs"].shape == (8, 4)
    assert data["acts"].dtype == np.int64 and data["acts"].tolist() == [0, 1, 0, 0, 0, 1, 0, 1]
    assert data["episode_starts"].tolist() == [0, 3, 4] and data["episode_lengths"].tolist() == [3, 1, 4]
    assert data["dones"].tolist() == [False, False, True, True, False, False, False, True]
    assert data["terminated"].tolist() == [False, False, True] + [False] * 5
    assert data["truncated"].nonzero()[0].tolist() == [3, 7]
    assert str(data["env_id"]) == "CartPole-v1"
    np.testing.assert_array_equal(data["obs"][:3], eps[0].observations)
    # next_obs: the following row inside an episode, the final observation at its end
    np.testing.assert_array_equal(data["next_obs"][0], eps[0].observations[1])
    np.testing.assert_array_equal(data["next_obs"][2], eps[0].final_observation[0])
    np.testing.assert_array_equal(data["next_obs"][3], eps[1].final_observation[0])


def test_export_npz_box_actions(tmp_path: Path) -> None:
    act = spaces.Box(-1.0, 1.0, (2,), np.float32)
    eps = _dataset(tmp_path / "d.h5", act)
    peers.export_npz(tmp_path / "d.h5", tmp_path / "d.npz")
    data = common.load_demos(str(tmp_path / "d.npz"))
    assert data["acts"].dtype == np.float32 and data["acts"].shape == (8, 2)
    np.testing.assert_allclose(data["acts"][3:4], eps[1].actions)


def test_export_npz_refuses_nested_observations(tmp_path: Path) -> None:
    obs = spaces.Dict({"a": spaces.Box(-1, 1, (2,), np.float32)})
    ep = Episode(observations={"a": np.zeros((2, 2), np.float32)}, actions=np.zeros(2, np.int64),
                 rewards=np.ones(2), terminated=[False, True], truncated=[False, False],
                 final_observation={"a": np.zeros((1, 2), np.float32)})
    with DatasetWriter(tmp_path / "d.h5", observation_space=obs, action_space=spaces.Discrete(2)) as w:
        w.add_episode(ep)
    with pytest.raises(ValueError, match="1-D Box observations"):
        peers.export_npz(tmp_path / "d.h5", tmp_path / "d.npz")
    assert not (tmp_path / "d.npz").exists()


def test_load_demos_rejects_broken_index(tmp_path: Path) -> None:
    _dataset(tmp_path / "d.h5", spaces.Discrete(2))
    peers.export_npz(tmp_path / "d.h5", tmp_path / "d.npz")
    with np.load(tmp_path / "d.npz") as z:
        arrays = {k: z[k] for k in z.files}
    arrays["episode_lengths"] = np.array([3, 1, 3])
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(common.PeerError, match="episode index"):
        common.load_demos(str(tmp_path / "bad.npz"))
    del arrays["dones"]
    np.savez(tmp_path / "bad2.npz", **arrays)
    with pytest.raises(common.PeerError, match="lacks key"):
        common.load_demos(str(tmp_path / "bad2.npz"))


def test_argv_mapping() -> None:
    argv = peers._argv({"n_epochs": 5, "stop_at_threshold": True, "env_id": None, "quiet": False,
                        "demos": Path("/x/d.npz")})
    assert argv == ["--n-epochs", "5", "--stop-at-threshold", "--demos", "/x/d.npz"]


def test_threshold_tracker_confirms_a_passing_check(monkeypatch: pytest.MonkeyPatch) -> None:
    """With --confirm-episodes, a quick check at the threshold counts only when the longer evaluation (the
    check's episodes and the next seeds) averages at it too: demokit's MuJoCo stopping rule."""
    import argparse

    later: list[float] = [0.0]
    seen: list[tuple[int, int]] = []

    def fake_evaluate(predict: Any, env_id: str, episodes: int, seed: int) -> dict[str, Any]:
        seen.append((episodes, seed))
        return {"mean_return": 100.0 if episodes == 5 else later[0]}

    monkeypatch.setattr(common, "evaluate", fake_evaluate)
    args = argparse.Namespace(eval_every=10, check_episodes=5, confirm_episodes=50, threshold=50.0, seed=0)
    tracker = common.ThresholdTracker(args, "CartPole-v1")
    assert not tracker.check(10, lambda o: 0)  # 5 x 100 + 45 x 0: 10 < 50
    assert tracker.checks[-1] == {"env_steps": 10, "mean_return": 100.0, "confirm_return": 10.0}
    assert seen == [(5, 30_000), (45, 30_005)]
    later[0] = 100.0
    assert tracker.check(20, lambda o: 0) and tracker.summary()["reached_env_steps"] == 20
    assert tracker.summary()["confirm_episodes"] == 50
    plain = common.ThresholdTracker(argparse.Namespace(**{**vars(args), "confirm_episodes": 0}), "CartPole-v1")
    assert plain.check(10, lambda o: 0) and "confirm_return" not in plain.checks[-1]
    with pytest.raises(common.PeerError, match="--confirm-episodes must be 0 or more"):
        common.check_training_args(argparse.Namespace(total_timesteps=1, n_envs=1, eval_every=0, check_episodes=5,
                                                      confirm_episodes=5))


def test_missing_peer_venv_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(peers.VENVS, "imitation", tmp_path / "nowhere")
    assert not peers.peer_available("imitation")
    with pytest.raises(peers.PeerUnavailable, match="setup_peers.sh"):
        peers.run_peer("imitation_bc.py", {"demos": "x.npz"}, venv="imitation")
    with pytest.raises(peers.PeerUnavailable, match="no peer runner"):
        peers.run_peer("no_such_runner.py", {}, venv="main")


@pytest.mark.skipif(importlib.util.find_spec("stable_baselines3") is None
                    or not peers.peer_available("main"), reason="needs the bench extra (scripts/setup_peers.sh main)")
def test_run_peer_sb3_ppo_round_trip_and_failure(tmp_path: Path) -> None:
    out = tmp_path / "demos.npz"
    result = peers.run_peer("sb3_ppo.py", {"total_timesteps": 256, "eval_episodes": 2, "export_demos": out,
                                           "demo_episodes": 2}, venv="main", timeout=300)
    assert result["peer"] == "sb3-ppo" and result["env_steps"] == 256 and result["eval_episodes"] == 2
    assert result["demos"]["episodes"] == 2 and result["peer_process_wall_s"] >= result["wall_s"]
    assert common.load_demos(str(out))["episode_lengths"].shape == (2,)
    with pytest.raises(peers.PeerFailed, match="--eval-every must be >= 0"):
        peers.run_peer("sb3_ppo.py", {"eval_every": -1}, venv="main", timeout=300)


@pytest.mark.skipif(not peers.peer_available("imitation-mj"),
                    reason="needs .venv-imitation-mj (scripts/setup_peers.sh imitation-mj)")
def test_imitation_gail_mujoco_preset_runs_one_round_on_hopper_v4(tmp_path: Path) -> None:
    npz = tmp_path / "hopper.npz"
    peers.export_npz(REPO / "datasets" / "hopper-v5-expert.h5", npz)
    args = {"demos": npz, "env_id": "Hopper-v4", "preset": "mujoco", "total_timesteps": 4096, "eval_every": 4096,
            "check_episodes": 1, "threshold": 2720, "eval_episodes": 1}
    result = peers.run_peer("imitation_gail.py", args, venv="imitation-mj", timeout=600)
    assert result["preset"] == "mujoco" and result["env_id"] == "Hopper-v4" and result["env_steps"] == 4096
    assert result["round_env_steps"] == 4096 and [c["env_steps"] for c in result["checks"]] == [4096]
    with pytest.raises(peers.PeerFailed, match="--preset mujoco is GAIL's"):
        peers.run_peer("imitation_gail.py", {**args, "algo": "airl"}, venv="imitation-mj", timeout=300)


def test_imitation_sqil_rows_are_demokits_tuned_rows() -> None:
    """imitation's SQIL off CartPole-v1 runs the DQN row demokit's SQIL uses (target updates in SB3's env steps);
    Pendulum-v1 takes SAC; an env without a row is one PeerError."""
    sys.path.insert(0, str(REPO / "benchmarks" / "peers"))
    try:
        sqil = _load("benchmarks_peers_imitation_sqil", REPO / "benchmarks" / "peers" / "imitation_sqil.py")
    finally:
        sys.path.remove(str(REPO / "benchmarks" / "peers"))
    from demokit.rl.hyperparams import tuned_config

    for env_id in ("Acrobot-v1", "MountainCar-v0"):
        algo, row = sqil.learner_settings("rl-zoo", env_id, False)
        tuned = tuned_config("dqn", env_id)
        assert algo == "dqn" and row["policy_kwargs"]["net_arch"] == list(tuned.hidden_sizes)
        for name in ("learning_rate", "batch_size", "buffer_size", "learning_starts", "gamma", "train_freq",
                     "gradient_steps", "exploration_fraction", "exploration_final_eps"):
            assert row[name] == getattr(tuned, name), (env_id, name)
        assert row["target_update_interval"] == tuned.target_update_interval * tuned.train_freq // tuned.gradient_steps
    assert sqil.learner_settings("rl-zoo", "Pendulum-v1", True) == ("sac", {"learning_rate": 1e-3})
    assert sqil.learner_settings("sb3", "Pendulum-v1", True) == ("sac", {})
    with pytest.raises(sqil.PeerError, match="LunarLander-v3"):
        sqil.learner_settings("rl-zoo", "LunarLander-v3", False)
