"""Ensemble policies: members stacked on a leading axis, acting with the mean of their actions; checkpoints
round-trip with weights_only=True; no action distribution; Box actions only."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gymnasium import spaces

from demokit.errors import UserError
from demokit.policies import EnsemblePolicy, NeuralPolicy, load_checkpoint, make_policy, save_checkpoint

OBS = spaces.Box(-np.inf, np.inf, (5,), np.float32)
ACT = spaces.Box(-1.0, 1.0, (2,), np.float32)


def _ensemble(n: int = 3, seed: int = 0, **kw) -> EnsemblePolicy:
    torch.manual_seed(seed)
    return make_policy(OBS, ACT, hidden_sizes=(8, 8), activation="relu", ensemble=n, **kw)


def test_action_is_the_mean_of_the_members_known_answer():
    """Members whose weights are zero output their head biases: the action is the biases' mean, clipped."""
    pol = _ensemble(3)
    biases = torch.tensor([[0.3, -0.9], [0.6, -0.9], [-0.3, -0.9]])
    with torch.no_grad():
        for p in pol.parameters():
            p.zero_()
        pol.head.linear.bias.copy_(biases)
    obs = np.random.default_rng(0).normal(size=(4, 5)).astype(np.float32)
    np.testing.assert_allclose(pol.act(obs), np.tile([0.2, -0.9], (4, 1)), atol=1e-7)
    with torch.no_grad():
        pol.head.linear.bias[:, 1] = torch.tensor([2.0, 2.0, 1.5])  # mean 11/6: clipped to the Box like any action
    assert np.allclose(pol.act(obs)[:, 1], 1.0)


def test_action_is_the_mean_of_the_member_policies_actions():
    pol = _ensemble(3, normalize_obs=True)
    rng = np.random.default_rng(1)
    pol.fit_obs_statistics(torch.from_numpy(rng.normal(2.0, 3.0, size=(50, 5)).astype(np.float32)))
    obs = rng.normal(size=(7, 5)).astype(np.float32)
    members = [pol.member(i) for i in range(3)]
    assert all(type(m) is NeuralPolicy and m.arch.ensemble == 1 for m in members)
    means = np.mean([m.forward(m.preprocess(obs)).detach().numpy() for m in members], axis=0)
    np.testing.assert_allclose(pol.act(obs), np.clip(means, -1.0, 1.0), atol=1e-6)
    outs = pol.member_outputs(pol.preprocess(obs))
    for i, m in enumerate(members):
        torch.testing.assert_close(outs[i], m(m.preprocess(obs)), rtol=0, atol=1e-6)


def test_members_start_from_independent_weights_and_member_0_from_a_single_policys():
    pol = _ensemble(3, seed=5)
    torch.manual_seed(5)
    single = make_policy(OBS, ACT, hidden_sizes=(8, 8), activation="relu")
    for k, v in single.state_dict().items():
        assert torch.equal(pol.member(0).state_dict()[k], v)
    w = pol.encoder.net[0].weight
    assert w.shape == (3, 8, 5) and not torch.equal(w[0], w[1]) and not torch.equal(w[1], w[2])


def test_batched_mlp_path_equals_the_generic_vmap_path():
    pol = _ensemble(4)
    x = torch.randn(4, 6, 5)
    assert pol._plain_mlp
    fast = pol.member_outputs(x, per_member=True)
    pol._plain_mlp = False
    torch.testing.assert_close(pol.member_outputs(x, per_member=True), fast, rtol=0, atol=1e-6)
    shared = torch.stack([pol.member(i)(x[0]) for i in range(4)]).detach()  # one batch seen by every member
    torch.testing.assert_close(pol.member_outputs(x[0]).detach(), shared, rtol=0, atol=1e-6)


def test_checkpoint_round_trip_weights_only(tmp_path):
    pol = _ensemble(3, normalize_obs=True)
    pol.fit_obs_statistics(torch.randn(20, 5))
    path = tmp_path / "ens.pt"
    save_checkpoint(path, pol, algo="bc", env_id=None)
    payload = torch.load(path, weights_only=True)  # plain tensors and strings only
    assert '"ensemble": 3' in payload["arch"]
    back = load_checkpoint(path).policy
    assert isinstance(back, EnsemblePolicy) and back.arch == pol.arch
    for k, v in pol.state_dict().items():
        assert torch.equal(back.state_dict()[k], v)
    obs = np.random.default_rng(2).normal(size=(5, 5)).astype(np.float32)
    assert np.array_equal(back.act(obs), pol.act(obs))


def test_one_member_is_a_plain_policy_and_its_arch_dict_unchanged():
    torch.manual_seed(0)
    pol = make_policy(OBS, ACT, hidden_sizes=(8,), ensemble=1)
    assert type(pol) is NeuralPolicy and "ensemble" not in pol.arch.to_dict()


def test_no_action_distribution_and_bad_archs():
    pol = _ensemble(2)
    x = pol.preprocess(np.zeros((1, 5), np.float32))
    with pytest.raises(UserError, match="deterministically"):
        pol.act(np.zeros((1, 5), np.float32), deterministic=False)
    with pytest.raises(UserError, match="deterministically"):
        pol.evaluate_actions(x, torch.zeros(1, 2))
    with pytest.raises(UserError, match="Box action space"):
        make_policy(OBS, spaces.Discrete(3), ensemble=2)
    with pytest.raises(UserError, match="ensemble must be an integer"):
        make_policy(OBS, ACT, ensemble=0)
