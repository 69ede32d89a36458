"""PPO with the Nature CNN: image observations pick it, uint8 frames reach it, it learns a tiny image task,
and its checkpoint acts as it did in training."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces

from demokit.errors import UserError
from demokit.policies import load_checkpoint
from demokit.policies.encoders import NatureCNNEncoder
from demokit.rl import PPOTrainer

SIDE_ID = "DemokitImageSide-v0"


class ImageSideEnv(gym.Env):
    """uint8 (1, 36, 36) frames: white, with a dark 6x6 block in the left or the right half (random each
    step); reward 1 for the action naming the block's side (0 left, 1 right), else 0; 8 steps (truncated)."""

    observation_space = spaces.Box(0, 255, (1, 36, 36), np.uint8)
    action_space = spaces.Discrete(2)

    def _frame(self):
        self.side = int(self.np_random.integers(2))
        col = int(self.np_random.integers(0, 12)) + 18 * self.side
        row = int(self.np_random.integers(0, 30))
        frame = np.full((1, 36, 36), 255, np.uint8)
        frame[0, row:row + 6, col:col + 6] = 0
        return frame

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self._frame(), {}

    def step(self, action):
        reward = float(int(action) == self.side)
        self.t += 1
        return self._frame(), reward, False, self.t >= 8, {}


if SIDE_ID not in gym.registry:
    gym.register(SIDE_ID, entry_point=ImageSideEnv)


def _trainer(**kw):
    cfg = dict(env_id=SIDE_ID, num_envs=4, n_steps=32, batch_size=64, n_epochs=4, device="cpu", seed=0,
               total_timesteps=2_048, learning_rate=1e-3, normalize_obs=True)
    return PPOTrainer({**cfg, **kw})


def test_image_observations_pick_the_cnn_and_ppo_learns_the_side_of_a_block(tmp_path):
    torch.set_num_threads(1)
    trainer = _trainer()
    policy = trainer.policy
    assert isinstance(policy.encoder, NatureCNNEncoder) and isinstance(trainer.critic.encoder, NatureCNNEncoder)
    ro = trainer.collect_rollout()
    assert ro.obs_raw.dtype == torch.uint8 and tuple(ro.obs_raw.shape) == (32, 4, 1, 36, 36)
    assert ro.obs.dtype == torch.uint8  # no float copy: the encoder scales (and centres) in forward
    # the mean frame: first the reset frames, then each rollout's after its update; the critic shares it
    assert trainer.critic.encoder.frame_mean is policy.encoder.frame_mean and policy.encoder.statistics_seen() == 4
    first = [float(ro.rewards.mean())]
    trainer.update(ro)
    while trainer.env_steps < 2_048:
        ro = trainer.collect_rollout()
        first.append(float(ro.rewards.mean()))
        trainer.update(ro)
    assert policy.encoder.statistics_seen() > 4 + 100 * (len(first) - 2)
    assert np.mean(first[:2]) < 0.6 and np.mean(first[-2:]) >= 0.75, first  # a learning signal (0.53 -> 0.80)
    # the checkpoint acts as the trained policy does
    trainer.save(tmp_path / "ppo-cnn.pt")
    loaded = load_checkpoint(tmp_path / "ppo-cnn.pt").policy
    assert loaded.arch.encoder == "nature_cnn" and loaded.arch.normalize_obs
    frames = ro.obs_raw.reshape(-1, 1, 36, 36).numpy()
    policy.eval()
    np.testing.assert_array_equal(loaded.act(frames), policy.act(frames))
    with torch.no_grad():
        torch.testing.assert_close(loaded(loaded.preprocess(frames)), policy(policy.preprocess(frames)), rtol=0,
                                   atol=0)
    trainer.close()


def test_an_explicit_encoder_and_images_the_cnn_cannot_take():
    trainer = _trainer(encoder="mlp", normalize_obs=False)
    assert trainer.policy.arch.encoder == "mlp" and trainer.policy.encoder.input_dim == 36 * 36
    trainer.close()
    with pytest.raises(UserError, match="unknown|known"):
        _trainer(encoder="resnet")
    with pytest.raises(UserError, match="uint8 image"):
        PPOTrainer(dict(env_id="CartPole-v1", encoder="nature_cnn", num_envs=1, device="cpu"))
