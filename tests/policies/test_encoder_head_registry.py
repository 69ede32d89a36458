"""Encoders and heads plug in with one registration; old checkpoints load and act identically."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from gymnasium import spaces
from torch import nn

from demokit.errors import UserError
from demokit.policies import load_checkpoint, make_policy, save_checkpoint
from demokit.policies.encoders import Encoder, register_encoder
from demokit.policies.heads import CategoricalHead, register_head

FIXTURES = Path(__file__).parent / "fixtures"


class TinyPixels(Encoder):
    """A toy image encoder: uint8 (B, H, W) in, scaled to [0, 1] and flattened inside the network."""

    def __init__(self, observation_space, arch):
        super().__init__(observation_space, arch)
        self.out_dim = 8
        self.seen_dtypes: list[torch.dtype] = []
        self.proj = nn.Linear(int(np.prod(observation_space.shape)), self.out_dim)

    def prepare(self, obs, device):
        return torch.as_tensor(np.asarray(obs) if not isinstance(obs, torch.Tensor) else obs, device=device)

    def forward(self, x):
        self.seen_dtypes.append(x.dtype)
        return torch.tanh(self.proj(x.reshape(x.shape[0], -1).float() / 255.0))


class HalfTemperature(CategoricalHead):
    """A toy head: a categorical distribution over logits / 2."""

    def forward(self, features):
        return self.linear(features) / 2.0


register_encoder("test-tiny-pixels", TinyPixels)
register_head("test-half-temperature", HalfTemperature)

IMAGES = spaces.Box(0, 255, (4, 5), np.uint8)


def test_a_registered_encoder_sees_uint8_and_the_policy_acts():
    pol = make_policy(IMAGES, spaces.Discrete(3), encoder="test-tiny-pixels")
    obs = np.random.default_rng(0).integers(0, 256, (6, 4, 5), dtype=np.uint8)
    a = pol.act(obs)
    assert a.shape == (6,) and set(a.tolist()) <= {0, 1, 2}
    assert pol.encoder.seen_dtypes[-1] == torch.uint8  # flattening to float happens in the network
    x = pol.preprocess(obs)
    assert x.dtype == torch.uint8
    logp, ent = pol.evaluate_actions(x, torch.as_tensor(a))
    assert logp.shape == (6,) and bool((ent > 0).all())


def test_normalisation_is_refused_for_an_encoder_without_flat_inputs():
    with pytest.raises(UserError, match="normalize_obs"):
        make_policy(IMAGES, spaces.Discrete(3), encoder="test-tiny-pixels", normalize_obs=True)


def test_a_registered_head_samples_evaluates_and_round_trips_a_checkpoint(tmp_path: Path):
    pol = make_policy(spaces.Box(-1, 1, (3,)), spaces.Discrete(4), head="test-half-temperature")
    x = pol.preprocess(np.random.default_rng(1).standard_normal((5, 3)).astype(np.float32))
    with torch.no_grad():
        out = pol(x)
        torch.testing.assert_close(out, pol.head.linear(pol.encoder(x)) / 2.0)
    actions, logp = pol.sample(x, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(logp, pol.distribution(x).log_prob(actions))
    save_checkpoint(tmp_path / "p.pt", pol, algo="test", env_id=None)
    ck = load_checkpoint(tmp_path / "p.pt")
    assert ck.policy.arch.head == "test-half-temperature" and isinstance(ck.policy.head, HalfTemperature)
    obs = np.random.default_rng(2).standard_normal((7, 3)).astype(np.float32)
    np.testing.assert_array_equal(ck.policy.act(obs), pol.act(obs))


def test_unknown_names_and_double_registration_are_refused():
    with pytest.raises(UserError, match="registered: .*mlp"):
        make_policy(spaces.Box(-1, 1, (3,)), spaces.Discrete(2), encoder="no-such-encoder")
    with pytest.raises(UserError, match="registered: .*categorical"):
        make_policy(spaces.Box(-1, 1, (3,)), spaces.Discrete(2), head="no-such-head")
    with pytest.raises(ValueError, match="already registered"):
        register_head("categorical", HalfTemperature)


@pytest.mark.parametrize("name", ["v1-categorical", "v1-gaussian", "v1-qvalue"])
def test_checkpoints_of_the_one_mlp_layout_load_and_act_identically(name: str):
    """The fixtures were written by the code before the encoder + head split (checkpoint format 1,
    keys net.<i>.* and log_std) with the actions and log-probabilities it computed. Discrete actions must match
    exactly; floats up to rounding (another CPU's kernels, e.g. AVX512 against AVX2, round the products differently:
    ~1e-7 apart)."""
    expected = np.load(FIXTURES / "v1-expected.npz")
    ck = load_checkpoint(FIXTURES / f"{name}.pt")
    pol, obs = ck.policy, expected[f"{name}/obs"]
    act = pol.act(obs)
    if np.issubdtype(act.dtype, np.integer):
        np.testing.assert_array_equal(act, expected[f"{name}/act"])
    else:
        np.testing.assert_allclose(act, expected[f"{name}/act"], rtol=1e-5, atol=1e-6)
    with torch.no_grad():
        x = pol.preprocess(obs)
        if f"{name}/logp" in expected:
            actions = pol.actions_to_tensor(expected[f"{name}/act"])
            np.testing.assert_allclose(pol.distribution(x).log_prob(actions).numpy(), expected[f"{name}/logp"],
                                       rtol=1e-5, atol=1e-6)
            logp, _ = pol.evaluate_actions(x, actions)  # the learners' formula: equal up to rounding
            np.testing.assert_allclose(logp.numpy(), expected[f"{name}/logp"], rtol=1e-6, atol=1e-6)
        else:
            np.testing.assert_allclose(pol.value(x).numpy(), expected[f"{name}/q"], rtol=1e-5, atol=1e-5)
    assert all(k.startswith(("encoder.", "head.", "obs_norm.")) for k in pol.state_dict())
