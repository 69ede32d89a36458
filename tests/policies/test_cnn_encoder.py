"""The Nature CNN encoder's mean-frame centring (``normalize_obs``): known answers and the checkpoint."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch

from demokit.policies import load_checkpoint, make_policy, save_checkpoint


def _policy(shape, normalize_obs=True):
    return make_policy(gym.spaces.Box(0, 255, shape, np.uint8), gym.spaces.Discrete(2), encoder="nature_cnn",
                       normalize_obs=normalize_obs)


def test_mean_frame_known_answers_and_layout():
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (10, 2, 36, 36, 3), dtype=np.uint8)  # channels-last RGB, 2 stacked
    policy = _policy((2, 36, 36, 3))
    enc = policy.encoder
    assert policy.normalizes_obs and policy.obs_norm is None and enc.channels == 6
    policy.fit_obs_statistics(frames)
    want = np.moveaxis(frames.mean(0) / 255.0, -1, -3).reshape(6, 36, 36)  # (2, 3, H, W) -> 6 channels
    np.testing.assert_allclose(enc.frame_mean.numpy(), want, atol=1e-6)
    assert float(enc.frame_count) == 10
    # running updates in two parts give the same mean; a flat mean in pixel units sets the same too
    fresh = _policy((2, 36, 36, 3))
    fresh.update_obs_statistics(frames[:3])
    fresh.update_obs_statistics(frames[3:])
    np.testing.assert_allclose(fresh.encoder.frame_mean.numpy(), want, atol=1e-6)
    flat = torch.from_numpy(frames.reshape(10, -1).astype(np.float64).mean(0))
    fresh.set_obs_statistics(flat, None, 10)
    np.testing.assert_allclose(fresh.encoder.frame_mean.numpy(), want, atol=1e-6)
    # the first convolution sees x / 255 - mean frame
    seen = {}
    enc.convs[0].register_forward_hook(lambda m, inp, out: seen.update(x=inp[0]))
    enc(torch.from_numpy(frames[:2]))
    x = np.moveaxis(frames[:2] / 255.0, -1, -3).reshape(2, 6, 36, 36) - want
    np.testing.assert_allclose(seen["x"].numpy(), x, atol=1e-6)


def test_uncentred_input_is_unchanged_and_centred_checkpoints_round_trip(tmp_path):
    obs = np.random.default_rng(1).integers(0, 256, (4, 2, 36, 36), dtype=np.uint8)
    plain = _policy((2, 36, 36), normalize_obs=False)
    assert not plain.normalizes_obs and "encoder.frame_mean" not in plain.state_dict()
    seen = {}
    plain.encoder.convs[0].register_forward_hook(lambda m, inp, out: seen.update(x=inp[0]))
    plain(plain.preprocess(obs))
    assert torch.equal(seen["x"], torch.from_numpy(obs).float() / 255.0)  # x / 255 exactly, as before
    policy = _policy((2, 36, 36))
    policy.fit_obs_statistics(obs)
    save_checkpoint(tmp_path / "cnn.pt", policy, algo="bc", env_id="pixels36-gray-stack2/CartPole-v1")
    loaded = load_checkpoint(tmp_path / "cnn.pt").policy
    assert torch.equal(loaded.encoder.frame_mean, policy.encoder.frame_mean)
    with torch.no_grad():
        assert torch.equal(loaded(loaded.preprocess(obs)), policy(policy.preprocess(obs)))
