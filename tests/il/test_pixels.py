"""Images end to end: rendered-frame collection (uint8, compressed), the Nature CNN encoder, BC from pixels."""

from __future__ import annotations

import subprocess
import sys

import gymnasium as gym
import h5py
import numpy as np
import pytest
import torch

pytest.importorskip("pygame")

from demokit.data import load_dataset  # noqa: E402
from demokit.envs import make_env  # noqa: E402
from demokit.envs.pixels import parse_pixel_env_id, pixel_env_id, process_frame  # noqa: E402
from demokit.errors import UserError  # noqa: E402
from demokit.evaluation import evaluate_policy  # noqa: E402
from demokit.il import train_bc  # noqa: E402
from demokit.pipelines.collect import collect_demo_data  # noqa: E402
from demokit.policies import load_checkpoint, make_policy  # noqa: E402
from demokit.policies.encoders import NatureCNNEncoder  # noqa: E402
from tests.helpers import write_leaning_poles  # noqa: E402

SMALL = dict(render_obs=True, render_size=36, grayscale=True, frame_stack=2)


def test_area_resize_and_luma_known_answer():
    frame = np.zeros((4, 6, 3), np.uint8)
    frame[:2, :3] = (255, 0, 0)  # top-left block red
    frame[2:, 3:] = (0, 0, 255)  # bottom-right block blue
    np.testing.assert_array_equal(process_frame(frame, 2, grayscale=False)[..., 0], [[255, 0], [0, 0]])
    np.testing.assert_array_equal(process_frame(frame, 2, grayscale=True), [[76, 0], [0, 29]])  # 0.299, 0.114 * 255


def test_crop_then_area_resize_known_answer():
    frame = np.full((6, 8, 3), 255, np.uint8)
    frame[2, 3] = 0  # one black pixel inside the crop rows [1, 5), columns [2, 6)
    out = process_frame(frame, 2, grayscale=True, crop=(1, 5, 2, 6))
    np.testing.assert_array_equal(out, [[191, 255], [255, 255]])  # 2x2 blocks: (3 * 255 + 0) / 4 = 191.25
    with pytest.raises(UserError, match="outside the rendered frame"):
        process_frame(frame, 2, grayscale=True, crop=(0, 7, 0, 8))


def test_cropped_pixel_env_ids_round_trip_and_bad_crops():
    env_id = pixel_env_id("CartPole-v1", size=36, grayscale=True, frame_stack=2, crop=(150, 330, 60, 540))
    assert env_id == "pixels36-gray-stack2-crop150-330-60-540/CartPole-v1"
    assert parse_pixel_env_id(env_id)["crop"] == (150, 330, 60, 540)
    assert parse_pixel_env_id(pixel_env_id("ns/Name-v0", crop=(0, 90, 0, 90)))["base"] == "ns/Name-v0"
    env = make_env(env_id)
    obs, _ = env.reset(seed=0)
    frame = env.unwrapped.render()
    np.testing.assert_array_equal(obs[-1], process_frame(frame[150:330, 60:540], 36, grayscale=True))
    env.close()
    for bad, needle in [((1, 2, 3), "four integers"), ((10, 5, 0, 90), "empty"), ((0, 20, 0, 90), "smaller than"),
                        ((0, 90.5, 0, 90), "four integers")]:
        with pytest.raises(UserError, match=needle):
            pixel_env_id("CartPole-v1", size=36, crop=bad)


def test_pixel_env_ids_round_trip():
    env_id = pixel_env_id("CartPole-v1", size=84, grayscale=True, frame_stack=4)
    assert env_id == "pixels84-gray-stack4/CartPole-v1"
    assert parse_pixel_env_id(env_id) == {"base": "CartPole-v1", "size": 84, "grayscale": True, "frame_stack": 4,
                                          "crop": None}
    assert pixel_env_id("ALE/Pong-v5") == "pixels84-rgb-stack1-in-ALE/Pong-v5"
    assert parse_pixel_env_id("pixels84-rgb-stack1-in-ALE/Pong-v5")["base"] == "ALE/Pong-v5"
    env = make_env(env_id)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (4, 84, 84) and obs.dtype == np.uint8 and (obs[0] == obs[3]).all()
    assert env.get_wrapper_attr("state_obs").shape == (4,)
    env.close()


def test_cnn_keeps_uint8_until_the_network_and_refuses_other_shapes():
    space = gym.spaces.Box(0, 255, (2, 36, 36), np.uint8)
    policy = make_policy(space, gym.spaces.Discrete(2), encoder="nature_cnn")
    assert isinstance(policy.encoder, NatureCNNEncoder) and policy.encoder.out_dim == 512
    obs = np.full((3, 2, 36, 36), 255, np.uint8)
    x = policy.preprocess(obs)
    assert x.dtype == torch.uint8 and policy(x).shape == (3, 2)
    with pytest.raises(UserError, match="built for observations of shape"):
        policy.preprocess(np.zeros((3, 2, 40, 40), np.uint8))
    with pytest.raises(UserError, match="uint8 image"):
        make_policy(gym.spaces.Box(-1, 1, (4,)), gym.spaces.Discrete(2), encoder="nature_cnn")
    with pytest.raises(UserError, match="at least 36x36"):
        make_policy(gym.spaces.Box(0, 255, (4, 20, 20), np.uint8), gym.spaces.Discrete(2), encoder="nature_cnn")
    rgb = make_policy(gym.spaces.Box(0, 255, (2, 40, 40, 3), np.uint8), gym.spaces.Discrete(2), encoder="nature_cnn")
    assert rgb.encoder.channels == 6 and rgb.encoder.channels_last


def test_collect_rendered_frames_then_bc_with_the_cnn(expert_checkpoint, tmp_path):
    path = tmp_path / "pix.h5"
    res = collect_demo_data(str(expert_checkpoint), "CartPole-v1", path, n_steps=120, num_envs=2, eval_episodes=0,
                            **SMALL)
    ds = load_dataset(path)
    assert ds.env_id == "pixels36-gray-stack2/CartPole-v1" and res.steps == 120
    assert ds.observations.dtype == np.uint8 and ds.observations.shape == (120, 2, 36, 36)
    assert ds.provenance["render_obs"]["state_env_id"] == "CartPole-v1"
    with h5py.File(path, "r") as f:
        assert f["observations"].compression == "lzf"  # frames are stored chunk-compressed by default
    out = tmp_path / "pix-bc.pt"
    bc = train_bc(path, epochs=1, batch_size=32, eval_episodes=1, out=str(out))
    assert bc.mean_return is not None
    policy = load_checkpoint(out).policy
    assert policy.arch.encoder == "nature_cnn" and policy.normalizes_obs and policy.obs_norm is None  # a mean frame
    np.testing.assert_allclose(policy.encoder.frame_mean.numpy(), ds.observations.mean(0) / 255.0, atol=1e-5)
    ev = evaluate_policy(policy, ds.env_id, episodes=2, seed=3)
    assert ev.episodes == 2


def test_blosc_compression_round_trips(expert_checkpoint, tmp_path):
    pytest.importorskip("hdf5plugin")
    a = tmp_path / "blosc.h5"
    collect_demo_data(str(expert_checkpoint), "CartPole-v1", a, n_steps=30, num_envs=2, eval_episodes=0,
                      compression="blosc", **SMALL)
    b = tmp_path / "plain.h5"
    collect_demo_data(str(expert_checkpoint), "CartPole-v1", b, n_steps=30, num_envs=2, eval_episodes=0,
                      compression="none", **SMALL)
    np.testing.assert_array_equal(load_dataset(a).observations, load_dataset(b).observations)
    # a fresh process reads it (the filter is registered when a file needs it)
    code = f"from demokit.data import load_dataset; print(load_dataset({str(a)!r}).observations.sum())"
    got = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert int(got) == int(load_dataset(b).observations.astype(np.int64).sum())


def test_render_obs_bad_inputs(tmp_path, expert_checkpoint):
    gym.register("demokit-test/NoRender-v0", entry_point="gymnasium.envs.classic_control:CartPoleEnv")
    try:
        no_render = gym.spec("demokit-test/NoRender-v0")
        assert no_render is not None
        from gymnasium.envs.classic_control import CartPoleEnv

        saved = CartPoleEnv.metadata
        CartPoleEnv.metadata = {**saved, "render_modes": ["human"]}
        try:
            with pytest.raises(UserError, match="cannot render"):
                collect_demo_data(str(expert_checkpoint), "demokit-test/NoRender-v0", tmp_path / "x.h5", n_steps=5,
                                  eval_episodes=0, render_obs=True)
        finally:
            CartPoleEnv.metadata = saved
    finally:
        gym.registry.pop("demokit-test/NoRender-v0", None)
    assert not (tmp_path / "x.h5").exists()
    with pytest.raises(UserError, match="add --render-obs"):
        collect_demo_data(str(expert_checkpoint), "CartPole-v1", tmp_path / "y.h5", n_steps=5, grayscale=True)
    with pytest.raises(UserError, match="uint8 image"):
        train_bc(load_dataset_path(tmp_path, expert_checkpoint), encoder="nature_cnn", epochs=1, eval_episodes=0)


def load_dataset_path(tmp_path, expert_checkpoint):
    path = tmp_path / "state.h5"
    collect_demo_data(str(expert_checkpoint), "CartPole-v1", path, n_steps=20, eval_episodes=0)
    return path


def test_bc_with_the_defaults_learns_a_dim_feature_on_a_white_background(tmp_path):
    """Regression: rendered frames are mostly white; without mean-frame centring BC's CNN (lr 1e-3) switched
    its first-layer units off and stayed at loss ln 2 / accuracy 0.5 (measured: 0.53 here). The label is a
    1-pixel grey pole leaning 1-2 pixels (tests.helpers.leaning_pole_frames)."""
    path = write_leaning_poles(tmp_path / "lean.h5", episodes=8, steps=64, seed=0)
    res = train_bc(path, epochs=8, batch_size=32, eval_episodes=0, val_fraction=0.25, seed=0)
    policy = res.policy
    assert policy.arch.normalize_obs and policy.normalizes_obs  # the default for the CNN: a mean frame
    assert float(policy.encoder.frame_mean.min()) < 0.9 < float(policy.encoder.frame_mean.max())
    assert res.history[-1]["val_accuracy"] >= 0.9 and res.history[-1]["loss"] < 0.5


def test_crop_and_label_noise_are_recorded_and_evaluation_sees_the_same_frames(expert_checkpoint, tmp_path):
    """A cropped, DART-style collection: the env id carries the crop (a policy trained on it is evaluated on
    frames made the same way), the labels are the expert's, the executed actions are an extra, and the
    data does not depend on how many envs ran side by side."""
    cfg = dict(SMALL, render_crop=(150, 330, 60, 540), label_noise=0.5, eval_episodes=0, n_episodes=2, seed=7)
    a, b = tmp_path / "a.h5", tmp_path / "b.h5"
    collect_demo_data(str(expert_checkpoint), "CartPole-v1", a, num_envs=2, **cfg)
    collect_demo_data(str(expert_checkpoint), "CartPole-v1", b, num_envs=1, **cfg)
    ds, other = load_dataset(a), load_dataset(b)
    assert ds.env_id == "pixels36-gray-stack2-crop150-330-60-540/CartPole-v1"
    assert ds.provenance["render_obs"]["crop"] == [150, 330, 60, 540]
    assert ds.provenance["label_noise"]["probability"] == 0.5
    np.testing.assert_array_equal(ds.observations, other.observations)
    np.testing.assert_array_equal(ds.actions, other.actions)
    executed = ds.extras["executed_action"]
    np.testing.assert_array_equal(executed, other.extras["executed_action"])
    assert 0.1 < (executed != ds.actions).mean() < 0.4  # half the noisy steps pick the label's action anyway
    env = make_env(ds.env_id)  # what evaluation makes from the dataset: the recorded pipeline
    obs, _ = env.reset(seed=int(ds.episode_seeds[0]))
    np.testing.assert_array_equal(obs, ds.observations[0])
    state = env.get_wrapper_attr("state_obs")  # the label is the expert's action on the state
    expert = load_checkpoint(expert_checkpoint).policy
    assert int(expert.act(np.asarray(state, np.float32)[None])[0]) == int(ds.actions[0])
    env.close()
    out = tmp_path / "bc.pt"
    train_bc(a, epochs=1, batch_size=32, eval_episodes=0, out=str(out))
    ck = load_checkpoint(out)
    assert ck.env_id == ds.env_id
    assert evaluate_policy(ck.policy, ck.env_id, episodes=1, seed=3).episodes == 1


def test_dagger_from_pixels_with_a_state_expert_as_oracle(expert_checkpoint, tmp_path):
    """A state expert on a frame env: it labels every visited state from the state (privileged), the learner
    (a CNN) acts on the frames; the aggregate holds frames with the expert's labels."""
    from demokit.il.dagger import train_dagger

    env_id = pixel_env_id("CartPole-v1", size=36, grayscale=True, frame_stack=2)
    data = tmp_path / "agg.h5"
    res = train_dagger({"expert": str(expert_checkpoint), "env_id": env_id, "rounds": 2, "episodes_per_round": 1,
                        "epochs": 1, "batch_size": 64, "eval_episodes": 0, "dataset_out": str(data)})
    assert res.policy.arch.encoder == "nature_cnn"
    ds = load_dataset(data)
    assert ds.env_id == env_id and ds.observations.dtype == np.uint8 and ds.num_episodes == 2
    assert ds.provenance["privileged_expert"]["state_env_id"] == "CartPole-v1"
    expert = load_checkpoint(expert_checkpoint).policy
    env = gym.make("CartPole-v1")  # the same states, without rendering: the labels are the expert's on them
    for k in range(ds.num_episodes):
        lo, n = int(ds.episode_starts[k]), int(ds.episode_lengths[k])
        state, _ = env.reset(seed=int(ds.episode_seeds[k]))
        labels = []
        for t in range(n):
            labels.append(int(expert.act(np.asarray(state, np.float32)[None])[0]))
            state, *_ = env.step(int(ds.extras["executed_action"][lo + t]))
        np.testing.assert_array_equal(labels, ds.actions[lo:lo + n])


def test_record_state_stores_the_state_the_expert_acted_on(expert_checkpoint, tmp_path):
    """collect --record-state: extras/state_observation is the state the privileged expert acted on at each
    step (its label is the expert's action on that row's state); frames and labels are those of the same
    collection without it; without --render-obs it is refused."""
    cfg = dict(SMALL, label_noise=0.5, eval_episodes=0, n_episodes=1, seed=7, num_envs=1)
    a, b = tmp_path / "a.h5", tmp_path / "b.h5"
    collect_demo_data(str(expert_checkpoint), "CartPole-v1", a, record_state=True, **cfg)
    collect_demo_data(str(expert_checkpoint), "CartPole-v1", b, **cfg)
    ds, plain = load_dataset(a), load_dataset(b)
    np.testing.assert_array_equal(ds.observations, plain.observations)
    np.testing.assert_array_equal(ds.actions, plain.actions)
    assert "state_observation" not in plain.extras_spec
    states = ds.extras["state_observation"]
    assert states.shape == (len(ds), 4) and states.dtype == np.float32
    env = gym.make("CartPole-v1")  # replay the executed actions in the state env: the same states
    state, _ = env.reset(seed=int(ds.episode_seeds[0]))
    for t in range(len(ds)):
        np.testing.assert_array_equal(states[t], state)
        state, *_ = env.step(int(ds.extras["executed_action"][t]))
    expert = load_checkpoint(expert_checkpoint).policy
    np.testing.assert_array_equal(expert.act(states), ds.actions)
    assert "state_observation" in ds.provenance["render_obs"]
    with pytest.raises(UserError, match="add --render-obs"):
        collect_demo_data(str(expert_checkpoint), "CartPole-v1", tmp_path / "c.h5", n_steps=5, record_state=True)
    assert not (tmp_path / "c.h5").exists()


def test_bc_aux_state_learns_the_privileged_state_and_acts_from_frames(tmp_path):
    """bc --aux-state: a linear layer on the CNN's features regresses the standardised state (here the cart's
    column and the lean, synthetic frames): its held-out error falls far below the state's variance (1.0),
    the action is still learned, and the checkpoint holds only the policy, which acts from frames."""
    path = write_leaning_poles(tmp_path / "lean.h5", episodes=8, steps=64, seed=0, with_state=True)
    out = tmp_path / "aux.pt"
    res = train_bc(path, epochs=12, batch_size=32, eval_episodes=0, val_fraction=0.25, seed=0, aux_state=1.0,
                   out=str(out))
    first, last = res.history[0], res.history[-1]
    assert last["val_state_mse"] < 0.3 and last["val_state_mse"] < first["val_state_mse"]
    assert last["aux_state_loss"] < 0.3 and last["val_accuracy"] >= 0.9
    ck = load_checkpoint(out)
    assert ck.training["config"]["aux_state"] == 1.0
    plain = train_bc(path, epochs=1, batch_size=32, eval_episodes=0, val_fraction=0.25, seed=0)
    assert set(ck.policy.state_dict()) == set(plain.policy.state_dict())  # the regressor is not saved
    assert "val_state_mse" not in plain.history[0]
    frames = np.array(load_dataset(path).observations[:5])
    np.testing.assert_array_equal(ck.policy.act(frames), res.policy.act(frames))


def test_bc_state_head_acts_through_the_predicted_state(tmp_path):
    """bc --aux-state --state-head state: the regressor stays in the policy and the action is an MLP of its
    predicted state alone (a constant prediction gives one action on every frame); it learns the synthetic
    scene's state and action, and the checkpoint rebuilds it and acts from frames as trained."""
    path = write_leaning_poles(tmp_path / "lean.h5", episodes=8, steps=64, seed=0, with_state=True)
    out = tmp_path / "head.pt"
    res = train_bc(path, epochs=12, batch_size=32, eval_episodes=0, val_fraction=0.25, seed=0, aux_state=1.0,
                   state_head="state", hidden_sizes=(16,), out=str(out))
    last = res.history[-1]
    assert last["val_state_mse"] < 0.3 and last["val_accuracy"] >= 0.9
    ck = load_checkpoint(out)
    assert ck.policy.arch.state_dim == 2 and ck.policy.arch.state_input == "state"
    assert ck.training["config"]["state_head"] == "state"
    frames = np.array(load_dataset(path).observations[:64])
    acts = ck.policy.act(frames)
    np.testing.assert_array_equal(acts, res.policy.act(frames))
    assert len(set(acts.tolist())) == 2
    with torch.no_grad():  # the head sees only the predicted state: make it constant, the action is constant
        lin = ck.policy.state_head.linear
        lin.weight.zero_()
        lin.bias.copy_(torch.tensor([0.0, 2.0]))
        up = ck.policy.act(frames)
        lin.bias.copy_(torch.tensor([0.0, -2.0]))
        down = ck.policy.act(frames)
    assert len(set(up.tolist())) == 1 and len(set(down.tolist())) == 1 and up[0] != down[0]
    both = train_bc(path, epochs=1, batch_size=32, eval_episodes=0, seed=0, aux_state=1.0, hidden_sizes=(16,),
                    state_head="features+state")  # the MLP sees the 512 features and the 2 predicted components
    assert both.policy.state_head.net[0].in_features == 512 + 2


@pytest.mark.parametrize("fit", ["recorded", "estimated"])
def test_bc_state_head_fit_trains_the_estimator_on_the_state_loss_alone(tmp_path, fit):
    """--state-head-fit recorded / estimated: the head's MLP learns the labels on the recorded states / on the
    estimates, the encoder and the state layer learn from the auxiliary loss alone, so other labels give the
    same estimator bit for bit."""
    import shutil

    path = write_leaning_poles(tmp_path / "lean.h5", episodes=4, steps=32, seed=0, with_state=True)
    flipped = shutil.copy(path, tmp_path / "flipped.h5")
    with h5py.File(flipped, "r+") as f:
        f["actions"][...] = 1 - f["actions"][...]
    cfg = dict(epochs=2, batch_size=32, eval_episodes=0, seed=0, aux_state=1.0, hidden_sizes=(16,),
               state_head="state", state_head_fit=fit)
    a, b = train_bc(path, **cfg).policy, train_bc(flipped, **cfg).policy
    for name, t in a.state_dict().items():
        same = torch.equal(t, b.state_dict()[name])
        assert same == (not name.startswith(("state_head.net", "head."))), name


def test_bc_aux_state_bad_inputs(tmp_path):
    from demokit.errors import ConfigError, DatasetError

    path = write_leaning_poles(tmp_path / "lean.h5", episodes=2, steps=8, seed=0)
    out = tmp_path / "x.pt"
    with pytest.raises(DatasetError, match="--record-state"):
        train_bc(path, epochs=1, eval_episodes=0, aux_state=1.0, out=str(out))
    with pytest.raises(ConfigError, match="aux_state"):
        train_bc(path, epochs=1, eval_episodes=0, aux_state=-1.0, out=str(out))
    with pytest.raises(ConfigError, match="aux_state"):
        train_bc(path, epochs=1, eval_episodes=0, aux_state=1.0, stream=True, out=str(out))
    with pytest.raises(ConfigError, match="state_head"):
        train_bc(path, epochs=1, eval_episodes=0, state_head="state", out=str(out))
    with pytest.raises(ConfigError, match="state_head_fit"):
        train_bc(path, epochs=1, eval_episodes=0, aux_state=1.0, state_head_fit="recorded", out=str(out))
    with pytest.raises(ConfigError, match="keep_best"):
        train_bc(path, epochs=1, eval_episodes=0, keep_best=True, out=str(out))
    assert not out.exists()
