"""LeRobot v3.0 <-> demokit: a folder in LeRobot's documented v3.0 layout, round trips, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from demokit.cli.app import main
from demokit.data import load_dataset
from demokit.data.convert import convert, detect_source_kind

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")


def write_lerobot_by_hand(root: Path, lengths=(4, 6, 3), *, rewards: bool = True, video: bool = True,
                          version: str = "v3.0") -> dict:
    """The v3.0 layout (meta/info.json, meta/tasks.parquet, meta/episodes/chunk-000/file-000.parquet,
    data/chunk-000/file-00N.parquet: episodes packed into files), with a video feature whose mp4 is absent."""
    rng = np.random.default_rng(0)
    n = sum(lengths)
    state = rng.normal(size=(n, 6)).astype(np.float32)
    action = rng.normal(size=(n, 2)).astype(np.float32)
    reward = rng.normal(size=n).astype(np.float32)
    episode = np.repeat(np.arange(len(lengths)), lengths)
    starts = np.cumsum(lengths) - np.asarray(lengths)
    frame = np.arange(n) - np.repeat(starts, lengths)
    done = np.zeros(n, dtype=bool)
    done[starts + np.asarray(lengths) - 1] = [True, False, True][: len(lengths)]
    features = {"observation.state": {"dtype": "float32", "shape": [6], "names": None},
                "action": {"dtype": "float32", "shape": [2], "names": None},
                "next.done": {"dtype": "bool", "shape": [1], "names": None},
                "timestamp": {"dtype": "float32", "shape": [1], "names": None},
                "frame_index": {"dtype": "int64", "shape": [1], "names": None},
                "episode_index": {"dtype": "int64", "shape": [1], "names": None},
                "index": {"dtype": "int64", "shape": [1], "names": None},
                "task_index": {"dtype": "int64", "shape": [1], "names": None}}
    if rewards:
        features["next.reward"] = {"dtype": "float32", "shape": [1], "names": None}
    if video:
        features["observation.images.top"] = {"dtype": "video", "shape": [3, 96, 96], "names": ["c", "h", "w"],
                                              "info": {"video.codec": "av1", "video.fps": 10}}
    (root / "meta" / "episodes" / "chunk-000").mkdir(parents=True)
    (root / "data" / "chunk-000").mkdir(parents=True)
    info = {"codebase_version": version, "robot_type": None, "total_episodes": len(lengths), "total_frames": n,
            "total_tasks": 1, "chunks_size": 1000, "data_files_size_in_mb": 100, "video_files_size_in_mb": 200,
            "fps": 10, "splits": {"train": f"0:{len(lengths)}"},
            "data_path": "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet",
            "video_path": "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4", "features": features}
    (root / "meta" / "info.json").write_text(json.dumps(info))
    cols = {"observation.state": list(state), "action": list(action), "next.done": done,
            "timestamp": (frame / 10).astype(np.float32), "frame_index": frame, "episode_index": episode,
            "index": np.arange(n), "task_index": np.zeros(n, dtype=np.int64)}
    if rewards:
        cols["next.reward"] = reward
    table = pa.table({k: pa.array(v if not isinstance(v, list) else [x.tolist() for x in v]) for k, v in cols.items()})
    cut = int(starts[1])  # two data files: the first episode in file-000, the rest in file-001
    pq.write_table(table.slice(cut), root / "data" / "chunk-000" / "file-001.parquet")
    pq.write_table(table.slice(0, cut), root / "data" / "chunk-000" / "file-000.parquet")
    pq.write_table(pa.table({"episode_index": np.arange(len(lengths)), "length": np.asarray(lengths)}),
                   root / "meta" / "episodes" / "chunk-000" / "file-000.parquet")
    pq.write_table(pa.table({"task_index": [0], "task": ["push"]}), root / "meta" / "tasks.parquet")
    return {"state": state, "action": action, "reward": reward, "done": done, "lengths": lengths}


def test_v3_folder_converts_array_for_array(tmp_path: Path) -> None:
    src = tmp_path / "lr"
    data = write_lerobot_by_hand(src)
    assert detect_source_kind(src) == "lerobot"
    with pytest.warns(UserWarning) as caught:
        res = convert(src, tmp_path / "out.h5")
    notes = " ".join(str(w.message) for w in caught)
    assert "observation.images.top" in notes and "skipped" in notes and "placeholder" in notes
    ds = load_dataset(res.path)
    assert res.spaces_inferred and ds.has_rewards
    np.testing.assert_array_equal(ds.observations, data["state"])
    np.testing.assert_array_equal(ds.actions, data["action"])
    np.testing.assert_array_equal(ds.rewards, data["reward"].astype(np.float64))
    np.testing.assert_array_equal(ds.episode_lengths, data["lengths"])
    assert ds.episode_terminated.tolist() == [True, False, True]
    assert ds.episode_truncated.tolist() == [False, True, False]


def test_without_reward_is_reward_free_and_env_is_recorded(tmp_path: Path) -> None:
    src = tmp_path / "lr"
    data = write_lerobot_by_hand(src, rewards=False, video=False)
    with pytest.warns(UserWarning, match="reward-free"):
        res = convert(src, tmp_path / "out.h5")
    ds = load_dataset(res.path)
    assert not ds.has_rewards
    np.testing.assert_array_equal(ds.observations, data["state"])


@pytest.mark.parametrize("rewards", [True, False])
def test_demokit_lerobot_demokit_is_exact(tmp_path: Path, rewards: bool) -> None:
    src = tmp_path / "lr"
    write_lerobot_by_hand(src, rewards=rewards, video=False)
    with pytest.warns(UserWarning):
        first = load_dataset(convert(src, tmp_path / "a.h5").path)
    convert(first.path, tmp_path / "mid", to="lerobot")
    info = json.loads((tmp_path / "mid" / "meta" / "info.json").read_text())
    assert info["codebase_version"] == "v3.0" and ("next.reward" in info["features"]) == rewards
    assert (tmp_path / "mid" / "data" / "chunk-000" / "file-000.parquet").is_file()
    assert (tmp_path / "mid" / "meta" / "episodes" / "chunk-000" / "file-000.parquet").is_file()
    back = load_dataset(convert(tmp_path / "mid", tmp_path / "b.h5").path)
    assert back.observation_space == first.observation_space and back.action_space == first.action_space
    assert back.has_rewards == rewards
    names = ["observations", "actions", "terminated", "truncated", "final_observations", "episode_lengths",
             "episode_seeds", *(["rewards"] if rewards else [])]
    for name in names:
        a, b = getattr(first, name), getattr(back, name)
        np.testing.assert_array_equal(a, b)
        assert a.dtype == b.dtype, name


def test_discrete_actions_round_trip(tmp_path: Path, demokit_cartpole) -> None:
    convert(demokit_cartpole, tmp_path / "mid", to="lerobot")
    src, back = load_dataset(demokit_cartpole), load_dataset(convert(tmp_path / "mid", tmp_path / "b.h5").path)
    assert back.env_id == src.env_id and back.action_space == src.action_space
    assert set(back.extras) == set(src.extras)  # one task: no task_index extra is added
    for name in src.extras:
        np.testing.assert_array_equal(src.extras[name], back.extras[name])
    for name in ("observations", "actions", "rewards", "terminated", "truncated", "final_observations"):
        np.testing.assert_array_equal(getattr(src, name), getattr(back, name))


@pytest.mark.parametrize("case,needle", [("v2", "codebase_version 'v2.1'"), ("v4", "codebase_version 'v4.0'")])
def test_other_versions_are_one_error_line(tmp_path: Path, capsys, case: str, needle: str) -> None:
    src = tmp_path / "lr"
    write_lerobot_by_hand(src, version={"v2": "v2.1", "v4": "v4.0"}[case])
    assert main(["convert", str(src), str(tmp_path / "o.h5")]) == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("error")]
    assert len(err) == 1 and needle in err[0], err
    assert not (tmp_path / "o.h5").exists()


def test_env_option(tmp_path: Path) -> None:
    src = tmp_path / "lr"
    write_lerobot_by_hand(src, video=False)
    with pytest.warns(UserWarning, match="not a Gymnasium env installed here"):
        ds = load_dataset(convert(src, tmp_path / "robot.h5", env_id="so100-push").path)
    assert ds.env_id == "so100-push" and ds.observation_space.shape == (6,)
    from demokit.errors import SpaceMismatchError

    with pytest.raises(SpaceMismatchError):
        convert(src, tmp_path / "cp.h5", env_id="CartPole-v1")  # 6-d state, 2-d float actions: not CartPole's
    assert not (tmp_path / "cp.h5").exists()


FIXTURES = Path(__file__).parent / "fixtures" / "lerobot-0.4.4"


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_a_damaged_video_is_one_error_line(tmp_path: Path, capsys, damage: str) -> None:
    pytest.importorskip("av")
    import shutil

    src = tmp_path / "video"
    shutil.copytree(FIXTURES / "video", src)
    mp4 = src / "videos" / "observation.images.cam" / "chunk-000" / "file-000.mp4"
    data = mp4.read_bytes()
    mp4.write_bytes(data[: len(data) // 3] if damage == "truncated" else b"\x00" * 64)
    assert main(["convert", str(src), str(tmp_path / "o.h5")]) == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("error")]
    assert len(err) == 1 and "observation.images.cam" in err[0], err
    assert not (tmp_path / "o.h5").exists()


def test_what_lerobot_cannot_hold_is_refused_in_one_line(tmp_path: Path, capsys) -> None:
    from gymnasium import spaces

    from demokit.data import DatasetWriter

    grid = tmp_path / "grid.h5"  # a 2-D float observation: neither a vector nor a picture
    with DatasetWriter(grid, observation_space=spaces.Box(-1, 1, (3, 4), np.float32),
                       action_space=spaces.Discrete(2), env_id=None) as w:
        w.add_columns(observations=np.zeros((2, 3, 4), np.float32), actions=np.zeros(2, np.int64),
                      rewards=np.zeros(2), terminated=np.array([False, True]), truncated=np.zeros(2, bool),
                      final_observations=np.zeros((1, 3, 4), np.float32), episode_lengths=np.array([2]))
    assert main(["convert", str(grid), str(tmp_path / "lr"), "--to", "lerobot"]) == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("error")]
    assert len(err) == 1 and "vectors or uint8 (H, W, 1|3) images" in err[0], err
    assert not (tmp_path / "lr").exists()


def test_string_features_are_named_in_a_note(tmp_path: Path) -> None:
    src = tmp_path / "lr"
    write_lerobot_by_hand(src, video=False)
    info = json.loads((src / "meta" / "info.json").read_text())
    info["features"]["language_instruction"] = {"dtype": "string", "shape": [1], "names": None}
    (src / "meta" / "info.json").write_text(json.dumps(info))
    with pytest.warns(UserWarning, match="string feature\\(s\\) not converted .*language_instruction"):
        convert(src, tmp_path / "o.h5")
