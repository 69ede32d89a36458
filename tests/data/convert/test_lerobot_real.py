"""LeRobot v3.0 against the real lerobot package (0.4.4, codebase v3.0).

The folders under fixtures/lerobot-0.4.4/ were written by LeRobot's own recording API
(``LeRobotDataset.create`` / ``add_frame`` / ``save_episode`` / ``finalize``, see lerobot_peer.py)
with ``ref.npz`` holding the values given to it: state-only with several observation features and
several tasks, reward-free with a discrete action, a camera stored as images, and stored as video.
These run everywhere demokit's lerobot extra is installed. With ``.venv-lerobot`` (scripts/setup_peers.sh
lerobot) or ``DEMOKIT_LEROBOT_PYTHON``, the peer tests also make fresh folders with LeRobot and read
demokit's exports back with LeRobot's ``LeRobotDataset`` (its schema cast, metadata and frame access).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from demokit.cli.app import main
from demokit.data import load_dataset
from demokit.data.convert import convert, media
from tests.data.convert.sources import write_demokit_cartpole

pytest.importorskip("pyarrow")

FIXTURES = Path(__file__).parent / "fixtures" / "lerobot-0.4.4"
DRIVER = Path(__file__).parent / "lerobot_peer.py"
LENGTHS = [5, 7, 4]
TASKS = ["push the cube", "pull the cube"]
_PEER = Path(__file__).resolve().parents[3] / ".venv-lerobot" / "bin" / "python"
PEER = os.environ.get("DEMOKIT_LEROBOT_PYTHON") or (str(_PEER) if _PEER.exists() else None)
needs_peer = pytest.mark.skipif(not PEER, reason="no python with lerobot (DEMOKIT_LEROBOT_PYTHON or .venv-lerobot "
                                                 "from scripts/setup_peers.sh lerobot)")
needs_pictures = pytest.mark.skipif(media.image_decoder() is not None or media.video_decoder() is not None,
                                    reason="Pillow and PyAV (demokit[lerobot]) are not installed")


def _peer(*args: str | Path) -> None:
    done = subprocess.run([PEER, str(DRIVER), *map(str, args)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]


def _convert(src: Path, dst: Path):
    with pytest.warns(UserWarning) as caught:
        res = convert(src, dst)
    return load_dataset(res.path), " ".join(str(w.message) for w in caught)


def check_lerobot_folders(root: Path, tmp_path: Path) -> None:
    """Every folder LeRobot wrote converts to what was given to LeRobot."""
    ref = np.load(root / "ref.npz")
    ds, notes = _convert(root / "state", tmp_path / "state.h5")
    assert ds.episode_lengths.tolist() == LENGTHS and ds.has_rewards
    np.testing.assert_array_equal(ds.observations["state"], ref["state/observation.state"])
    np.testing.assert_array_equal(ds.observations["environment_state"], ref["state/observation.environment_state"])
    np.testing.assert_array_equal(ds.actions, ref["state/action"])
    np.testing.assert_array_equal(ds.rewards, ref["state/next.reward"][:, 0].astype(np.float64))
    assert ds.episode_terminated.tolist() == [True, False, True]  # next.done; episode 1 ended by a time limit
    assert ds.episode_truncated.tolist() == [False, True, False]
    assert ds.extras["task_index"].tolist() == [0] * 5 + [1] * 7 + [0] * 4
    origin = ds.provenance["converted_from"]
    assert origin["tasks"] == TASKS and origin["episode_tasks"] == [[TASKS[0]], [TASKS[1]], [TASKS[0]]]
    assert "placeholder" in notes and "inferred" in notes

    ds, notes = _convert(root / "noreward", tmp_path / "noreward.h5")
    assert not ds.has_rewards and "reward-free" in notes and "next.done" in notes
    assert ds.action_space.__class__.__name__ == "Discrete"
    np.testing.assert_array_equal(ds.actions, ref["noreward/action"][:, 0])
    np.testing.assert_array_equal(ds.observations, ref["noreward/observation.state"])
    assert ds.episode_truncated.all() and not ds.episode_terminated.any()
    assert ds.extras["task_index"].tolist() == [0] * 5 + [1] * 7 + [0] * 4

    if media.image_decoder() is None:
        ds, _ = _convert(root / "images", tmp_path / "images.h5")
        np.testing.assert_array_equal(ds.observations["images.cam"], ref["images/observation.images.cam"])
        np.testing.assert_array_equal(ds.observations["state"], ref["images/observation.state"])
        assert ds.observation_space["images.cam"].dtype == np.uint8
    if media.video_decoder() is None:
        ds, notes = _convert(root / "video", tmp_path / "video.h5")
        got = ds.observations["images.cam"].astype(np.int64)
        want = ref["video/observation.images.cam"].astype(np.int64)
        assert got.shape == want.shape and "lossy" in notes
        # AV1 at LeRobot's CRF 30: flat areas come back within a few levels, the edges ring a little
        assert np.median(np.abs(got - want)) <= 2 and np.abs(got - want).max() <= 48
        np.testing.assert_array_equal(ds.observations["state"], ref["video/observation.state"])


def test_folders_written_by_lerobot_convert(tmp_path: Path) -> None:
    # the video folder spreads its 3 episodes over 2 data files and 2 video files, episodes 0 and 1 packed
    # in one video (LeRobot's update_chunk_settings with small file sizes)
    assert len(list((FIXTURES / "video" / "videos").rglob("*.mp4"))) == 2
    assert len(list((FIXTURES / "video" / "data").rglob("*.parquet"))) == 2
    check_lerobot_folders(FIXTURES, tmp_path)


def test_cli_converts_a_lerobot_folder(tmp_path: Path, capsys) -> None:
    assert main(["convert", str(FIXTURES / "state"), str(tmp_path / "s.h5"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["episodes"] == 3


def test_without_a_video_decoder_the_video_is_named_and_skipped(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(media, "video_decoder", lambda: "PyAV is not installed (pip install 'demokit[lerobot]')")
    ds, notes = _convert(FIXTURES / "video", tmp_path / "v.h5")
    assert "observation.images.cam (PyAV is not installed" in notes and "skipped" in notes
    assert ds.observation_space.shape == (4,)  # the state alone
    assert "observation.images.cam" in " ".join(ds.provenance["conversion_notes"])


@needs_pictures
def test_image_and_video_datasets_round_trip_through_demokit(tmp_path: Path) -> None:
    """LeRobot (images) -> demokit -> LeRobot -> demokit keeps every array (PNG is lossless)."""
    first, _ = _convert(FIXTURES / "images", tmp_path / "a.h5")
    convert(first.path, tmp_path / "mid", to="lerobot")
    info = json.loads((tmp_path / "mid" / "meta" / "info.json").read_text())
    assert info["features"]["observation.images.cam"]["dtype"] == "image"
    assert (info["fps"], info["robot_type"]) == (10, "toy")  # kept from the LeRobot source
    back = load_dataset(convert(tmp_path / "mid", tmp_path / "b.h5").path)
    for key in ("state", "images.cam"):
        np.testing.assert_array_equal(first.observations[key], back.observations[key])
        np.testing.assert_array_equal(first.final_observations[key], back.final_observations[key])
    np.testing.assert_array_equal(first.actions, back.actions)
    np.testing.assert_array_equal(first.rewards, back.rewards)


@needs_peer
def test_fresh_lerobot_folders_convert(tmp_path: Path) -> None:
    _peer("make", tmp_path / "lr")
    check_lerobot_folders(tmp_path / "lr", tmp_path)


def _lerobot_reads(folder: Path, tmp_path: Path) -> tuple[dict, dict]:
    out = tmp_path / f"{folder.name}-read.npz"
    _peer("read", folder, out)
    got = np.load(out)
    return {k: got[k] for k in got.files if k != "info"}, json.loads(str(got["info"]))


@needs_peer
def test_lerobot_reads_demokit_exports(tmp_path: Path) -> None:
    # a CartPole dataset: Discrete actions (scalar int64 column), rewards, extras as features
    cart = load_dataset(write_demokit_cartpole(tmp_path / "cp.h5"))
    convert(cart.path, tmp_path / "cart", to="lerobot")
    got, info = _lerobot_reads(tmp_path / "cart", tmp_path)
    assert info["total_episodes"] == cart.num_episodes and info["num_frames"] == len(cart)
    assert info["tasks"] == ["CartPole-v1"] and info["version"] == "3.0"
    np.testing.assert_array_equal(got["observation.state"], cart.observations)
    np.testing.assert_array_equal(got["action"], cart.actions)
    np.testing.assert_array_equal(got["next.reward"], cart.rewards.astype(np.float32))  # LeRobot gives float32
    np.testing.assert_array_equal(got["next.done"], cart.terminated)
    np.testing.assert_array_equal(got["value"], cart.extras["value"])
    np.testing.assert_array_equal(got["logit"], cart.extras["logit"])
    np.testing.assert_array_equal(got["episode_index"], np.repeat(np.arange(cart.num_episodes), cart.episode_lengths))

    # LeRobot -> demokit -> LeRobot: several observation features, several tasks
    state, _ = _convert(FIXTURES / "state", tmp_path / "state.h5")
    convert(state.path, tmp_path / "state-out", to="lerobot")
    got, info = _lerobot_reads(tmp_path / "state-out", tmp_path)
    assert info["tasks"] == TASKS
    assert got["task"].tolist() == [TASKS[0]] * 5 + [TASKS[1]] * 7 + [TASKS[0]] * 4
    np.testing.assert_array_equal(got["observation.state"], state.observations["state"])
    np.testing.assert_array_equal(got["observation.environment_state"], state.observations["environment_state"])
    np.testing.assert_array_equal(got["action"], state.actions)

    # reward-free, and images stored as images
    free, _ = _convert(FIXTURES / "noreward", tmp_path / "free.h5")
    convert(free.path, tmp_path / "free-out", to="lerobot")
    got, info = _lerobot_reads(tmp_path / "free-out", tmp_path)
    assert "next.reward" not in info["features"] and info["num_frames"] == len(free)
    np.testing.assert_array_equal(got["action"], free.actions)
    if media.image_decoder() is None:
        img, _ = _convert(FIXTURES / "images", tmp_path / "img.h5")
        convert(img.path, tmp_path / "img-out", to="lerobot")
        got, info = _lerobot_reads(tmp_path / "img-out", tmp_path)
        assert info["image_keys"] == ["observation.images.cam"]
        # LeRobot gives images as float (C, H, W) in [0, 1]
        np.testing.assert_allclose(got["observation.images.cam"] * 255,
                                   img.observations["images.cam"].transpose(0, 3, 1, 2), atol=1e-3)
