"""Driver run by the real LeRobot's python (``.venv-lerobot``, see scripts/setup_peers.sh lerobot).

``make ROOT``: LeRobot's own recording API (``LeRobotDataset.create``, ``add_frame``, ``save_episode``,
``finalize``) writes the datasets the interop tests convert, and ``ROOT/ref.npz`` holds what was given.
``read ROOT OUT.npz``: LeRobot's loader (``LeRobotDataset``) reads a folder; every frame's features,
the metadata totals and tasks go to ``OUT.npz``.

Not a test module: it imports lerobot, which demokit's own venv does not have.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach for the hub: every dataset here is local

import numpy as np
import torch

# The PyPI torchvision wheel that matches the CPU torch is a CUDA build: its C extension does not load,
# and torchvision's import then fails registering fake kernels for these two ops. LeRobot's dataset code
# uses no torchvision op, so declaring the two schemas lets torchvision (and lerobot) import.
for _op in ("nms", "qnms"):
    try:
        torch.library.define(f"torchvision::{_op}", "(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    except RuntimeError:  # a torchvision whose extension loaded defines them itself
        pass

import lerobot.datasets.lerobot_dataset as lerobot_dataset  # noqa: E402
from lerobot.datasets.lerobot_dataset import LeRobotDataset, LeRobotDatasetMetadata  # noqa: E402

FPS = 10
LENGTHS = (5, 7, 4)
TASKS = ("push the cube", "pull the cube", "push the cube")


def _image(rng: np.random.Generator, side: int) -> np.ndarray:
    """A picture of 2 x 2 flat coloured quadrants (video codecs are lossy: flat areas decode close to what was
    given; the reference file stays small)."""
    colours = rng.integers(40, 216, size=(2, 2, 3)).astype(np.uint8)
    return np.repeat(np.repeat(colours, side // 2, axis=0), side // 2, axis=1)


def make(root: Path) -> None:
    rng = np.random.default_rng(7)
    ref: dict[str, np.ndarray] = {}
    state = {"dtype": "float32", "shape": (4,), "names": ["x", "v", "theta", "omega"]}
    kinds = {
        # state + environment state, continuous actions, rewards and done flags, several tasks
        "state": {"observation.state": state,
                  "observation.environment_state": {"dtype": "float32", "shape": (2,), "names": None},
                  "action": {"dtype": "float32", "shape": (2,), "names": ["fx", "fy"]},
                  "next.reward": {"dtype": "float32", "shape": (1,), "names": None},
                  "next.done": {"dtype": "bool", "shape": (1,), "names": None}},
        # teleoperation-like: no reward, no done; a discrete action of shape (1,)
        "noreward": {"observation.state": state, "action": {"dtype": "int64", "shape": (1,), "names": None}},
        # a camera stored as images (PNG in the Parquet files)
        "images": {"observation.state": state, "action": {"dtype": "float32", "shape": (2,), "names": None},
                   "next.reward": {"dtype": "float32", "shape": (1,), "names": None},
                   "observation.images.cam": {"dtype": "image", "shape": (32, 32, 3),
                                              "names": ["height", "width", "channels"]}},
        # the same camera stored as video (AV1 MP4 files, several episodes per file)
        "video": {"observation.state": state, "action": {"dtype": "float32", "shape": (2,), "names": None},
                  "next.reward": {"dtype": "float32", "shape": (1,), "names": None},
                  "observation.images.cam": {"dtype": "video", "shape": (64, 64, 3),
                                             "names": ["height", "width", "channels"]}},
    }
    for name, features in kinds.items():
        ds = LeRobotDataset.create(repo_id=f"demokit/{name}", fps=FPS, features=features, root=root / name,
                                   use_videos=name == "video", robot_type="toy")
        if name == "video":  # small files: episodes spread over several data and video files and chunks
            ds.meta.update_chunk_settings(chunks_size=2, data_files_size_in_mb=0.002, video_files_size_in_mb=0.0025)
        for ep, (length, task) in enumerate(zip(LENGTHS, TASKS)):
            for t in range(length):
                frame: dict = {"task": task}
                for key, ft in features.items():
                    if key == "next.done":
                        value = np.array([t == length - 1 and ep != 1])  # episode 1 ends by a time limit
                    elif ft["dtype"] in ("image", "video"):
                        value = _image(rng, ft["shape"][0])
                    elif ft["dtype"] == "int64":
                        value = rng.integers(0, 3, size=ft["shape"]).astype(np.int64)
                    else:
                        value = rng.normal(size=ft["shape"]).astype(np.float32)
                    frame[key] = value
                    ref.setdefault(f"{name}/{key}", []).append(value)
                ds.add_frame(frame)
            ds.save_episode()
        ds.finalize()
    np.savez_compressed(root / "ref.npz", **{k: np.stack(v) for k, v in ref.items()})


def _decode_with_pyav(video_path, timestamps, tolerance_s, backend=None):
    """LeRobot's two decoders cannot run on a CPU-only torch 2.13 (torchvision 0.28 has no VideoReader, the
    torchcodec wheels link CUDA libraries): this stands in for them with PyAV (the library LeRobot encodes
    with), same contract: the frames at ``timestamps`` (within ``tolerance_s``), float (N, C, H, W) in [0, 1]."""
    import av

    with av.open(str(video_path)) as container:
        stream = container.streams.video[0]
        frames = [(float(f.pts * stream.time_base), f.to_ndarray(format="rgb24")) for f in container.decode(stream)]
    times = np.array([t for t, _ in frames])
    picked = []
    for ts in timestamps:
        k = int(np.argmin(np.abs(times - ts)))
        assert abs(times[k] - ts) <= tolerance_s, (ts, times[k])
        picked.append(frames[k][1])
    return torch.from_numpy(np.stack(picked)).permute(0, 3, 1, 2).float() / 255


lerobot_dataset.decode_video_frames = _decode_with_pyav


def read(root: Path, out: Path) -> None:
    meta = LeRobotDatasetMetadata("demokit/read", root=root)
    ds = LeRobotDataset("demokit/read", root=root)
    arrays: dict[str, list] = {}
    for i in range(len(ds)):
        item = ds[i]
        for key, value in item.items():
            if isinstance(value, torch.Tensor):
                arrays.setdefault(key, []).append(value.numpy())
            elif key == "task":
                arrays.setdefault(key, []).append(value)
    found = {k: np.stack(v) for k, v in arrays.items()}
    info = {"total_episodes": meta.total_episodes, "total_frames": meta.total_frames, "fps": meta.fps,
            "tasks": list(meta.tasks.index), "video_keys": meta.video_keys, "image_keys": meta.image_keys,
            "features": sorted(meta.features), "num_episodes": ds.num_episodes, "num_frames": ds.num_frames,
            "version": str(meta._version)}
    np.savez(out, info=np.array(json.dumps(info)), **found)


if __name__ == "__main__":
    if sys.argv[1] == "make":
        make(Path(sys.argv[2]))
    else:
        read(Path(sys.argv[2]), Path(sys.argv[3]))
