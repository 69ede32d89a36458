"""GAIL's discriminator on image observations: the Nature CNN encodes the frames, the action is concatenated."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from demokit.data import load_dataset
from demokit.errors import UserError
from demokit.policies.encoders import NatureCNNEncoder
from demokit.reward_models import GailRewardModel
from demokit.transitions import TransitionBatch
from tests.helpers import leaning_pole_frames, write_leaning_poles


def _batch(frames: np.ndarray, actions: np.ndarray) -> TransitionBatch:
    n = len(actions)
    obs = torch.from_numpy(frames)
    return TransitionBatch(observations=obs, actions=torch.from_numpy(actions), rewards=torch.zeros(n),
                           next_observations=obs, terminated=torch.zeros(n, dtype=torch.bool),
                           truncated=torch.zeros(n, dtype=torch.bool))


@pytest.fixture(scope="module")
def poles(tmp_path_factory):
    return write_leaning_poles(tmp_path_factory.mktemp("gail-img") / "poles.h5", episodes=4, steps=64, seed=0)


def test_the_discriminator_encodes_frames_with_the_cnn_and_learns_the_action_given_the_image(poles):
    torch.set_num_threads(1)
    model = GailRewardModel({"expert_data_path": str(poles), "batch_size": 64, "update_per_collect": 30,
                             "learning_rate": 1e-3}, device="cpu", seed=0)
    disc = model.discriminator
    assert isinstance(disc.cnn, NatureCNNEncoder) and model.encoder == "nature_cnn"
    frames = load_dataset(poles).observations
    # expert feature rows keep the raw pixel values; the CNN centres them with the expert frames' mean frame
    assert model.expert_x.shape == (256 + 4, 2 * 36 * 36 + 2 + 1)  # + 4 absorbing rows (one per termination)
    assert float(model.expert_x[:256, : 2 * 36 * 36].max()) == 255.0
    np.testing.assert_allclose(disc.cnn.frame_mean.numpy(), frames.mean(0) / 255.0, atol=1e-5)
    assert disc.encode(model.expert_x[:3]).shape == (3, 512 + 2 + 1)
    # the action is a discriminator input beside the CNN's features
    one = model.expert_x[:1].clone()
    other = one.clone()
    other[:, 2 * 36 * 36:2 * 36 * 36 + 2] = one[:, 2 * 36 * 36:2 * 36 * 36 + 2].flip(1)
    assert float(disc(one)) != float(disc(other))
    # the policy's frames lack the pole (a few dim pixels on white): the CNN tells them apart
    x, y = leaning_pole_frames(256, np.random.default_rng(1))
    no_pole = np.where(x == 120, np.uint8(255), x)
    policy = _batch(no_pole, y)
    model.collect_data(policy)
    model.train()
    r_expert, r_policy = model.rewards(_batch(x, y)), model.rewards(policy)
    assert float((r_expert > r_policy).float().mean()) >= 0.9
    # the state (CNN weights and its mean frame) round-trips
    again = GailRewardModel({"expert_data_path": str(poles)}, device="cpu", seed=5)
    again.load_state_dict(model.state_dict())
    torch.testing.assert_close(again.rewards(policy), model.rewards(policy))


def test_an_explicit_mlp_discriminator_and_frames_the_cnn_cannot_take(poles, tmp_path):
    model = GailRewardModel({"expert_data_path": str(poles), "encoder": "mlp"}, device="cpu", seed=0)
    assert model.image_inputs is None and not hasattr(model.discriminator, "cnn")
    from demokit.data import DatasetWriter, Episode
    import gymnasium as gym

    small = tmp_path / "small.h5"
    with DatasetWriter(small, observation_space=gym.spaces.Box(0, 255, (2, 20, 20), np.uint8),
                       action_space=gym.spaces.Discrete(2), mode="overwrite") as w:
        w.add_episodes([Episode(observations=np.zeros((3, 2, 20, 20), np.uint8), actions=np.zeros(3, np.int64),
                                rewards=np.ones(3), terminated=np.array([False, False, True]),
                                truncated=np.zeros(3, bool), final_observation=np.zeros((1, 2, 20, 20), np.uint8))])
    with pytest.raises(UserError, match="at least 36x36"):
        GailRewardModel({"expert_data_path": str(small), "encoder": "nature_cnn"}, device="cpu")
    assert GailRewardModel({"expert_data_path": str(small)}, device="cpu").encoder == "mlp"  # auto: too small
