"""The nature_cnn_diff encoder: the newest frame (centred) and the gained differences of consecutive frames."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from demokit.errors import UserError
from demokit.policies import load_checkpoint, make_policy, save_checkpoint
from demokit.policies.encoders.cnn_diff import DIFF_GAIN


def _policy(shape):
    return make_policy(gym.spaces.Box(0, 255, shape, np.uint8), gym.spaces.Discrete(2), encoder="nature_cnn_diff",
                       normalize_obs=True)


def test_input_is_the_newest_frame_and_the_frame_differences_rgb_layout(tmp_path):
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (5, 3, 36, 36, 3), dtype=np.uint8)  # channels-last RGB, 3 stacked
    policy = _policy((3, 36, 36, 3))
    policy.fit_obs_statistics(frames)
    enc = policy.encoder
    seen = {}
    enc.convs[0].register_forward_hook(lambda m, inp, out: seen.update(x=inp[0]))
    enc(torch.from_numpy(frames[:2]))
    x = np.moveaxis(frames[:2] / 255.0, -1, -3)  # (2, 3 frames, 3 colours, H, W)
    mean = np.moveaxis(frames.mean(0) / 255.0, -1, -3)
    want = np.concatenate([x[:, 2] - mean[2], DIFF_GAIN * (x[:, 1] - x[:, 0]), DIFF_GAIN * (x[:, 2] - x[:, 1])], 1)
    np.testing.assert_allclose(seen["x"].numpy(), want, atol=1e-5)
    out = tmp_path / "p.pt"  # the checkpoint rebuilds the same encoder and mean frame
    save_checkpoint(out, policy, algo="bc", env_id="pixels36-rgb-stack3/CartPole-v1")
    again = load_checkpoint(out).policy
    assert again.arch.encoder == "nature_cnn_diff"
    batch = policy.preprocess(frames)
    torch.testing.assert_close(again(again.preprocess(frames)), policy(batch))


def test_one_frame_is_refused():
    with pytest.raises(UserError, match="needs stacked frames"):
        _policy((1, 36, 36))
