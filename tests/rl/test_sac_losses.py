"""Known answers for SAC's maths: the tanh log-prob correction, the losses, the Polyak update, the critics."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from gymnasium import spaces
from torch import nn
from torch.distributions import Independent, Normal, TransformedDistribution
from torch.distributions.transforms import TanhTransform

from demokit.policies import make_policy
from demokit.policies.distributions import squashed_gaussian_sample, tanh_log_det_jacobian
from demokit.rl.sac import (QEnsemble, polyak_update_, sac_actor_loss, sac_alpha_grad, sac_alpha_loss,
                            sac_critic_loss, sac_critic_target)


def test_squashed_log_prob_matches_torch_transformed_distribution():
    g = torch.Generator().manual_seed(0)
    mean = torch.randn(64, 3, generator=g, dtype=torch.float64)
    log_std = torch.randn(64, 3, generator=g, dtype=torch.float64) * 0.5
    noise = torch.randn(64, 3, generator=g, dtype=torch.float64)
    action, log_prob = squashed_gaussian_sample(mean, log_std, noise)
    dist = Independent(TransformedDistribution(Normal(mean, log_std.exp()), [TanhTransform()]), 1)
    pre = mean + log_std.exp() * noise
    torch.testing.assert_close(action, torch.tanh(pre))
    # TanhTransform(cache_size=0) inverts through atanh: compare where that is accurate in float64
    torch.testing.assert_close(log_prob, dist.log_prob(action), rtol=1e-7, atol=1e-7)


def test_tanh_correction_is_stable_where_the_naive_form_is_not():
    u = torch.tensor([[0.0], [3.0], [-12.0], [40.0]])
    stable = tanh_log_det_jacobian(u)
    naive = torch.log(1 - torch.tanh(u).pow(2)).sum(-1)
    # log(1 - tanh(u)^2) = log(4) - 2|u| - 2 log(1 + exp(-2|u|)) exactly
    exact = torch.tensor([math.log(4) - 2 * abs(v) - 2 * math.log1p(math.exp(-2 * abs(v))) for v in (0, 3, -12, 40)])
    torch.testing.assert_close(stable, exact)
    assert torch.isinf(naive[3])  # float32 tanh(40) == 1: the naive form is -inf
    assert torch.isfinite(stable).all()


def test_critic_target_terminated_cuts_truncated_bootstraps():
    rewards = torch.tensor([1.0, 2.0, 3.0])
    next_q = torch.tensor([[3.0, 4.0, 6.0], [5.0, 1.0, 2.0]])  # min over critics: 3, 1, 2
    next_logp = torch.tensor([0.5, -1.0, 1.0])
    terminated = torch.tensor([False, True, False])  # row 2 stands for a truncated step: it bootstraps
    y = sac_critic_target(rewards, next_q, next_logp, terminated, 0.9, 0.2)
    # row 0: 1 + 0.9 * (3 - 0.2 * 0.5) = 3.61; row 1: 2 (no bootstrap); row 2: 3 + 0.9 * (2 - 0.2) = 4.62
    torch.testing.assert_close(y, torch.tensor([3.61, 2.0, 4.62]))


def test_critic_actor_and_alpha_losses_hand_computed():
    q = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    assert sac_critic_loss(q, torch.tensor([1.0, 1.0])).item() == pytest.approx(0.5 * (0.5 + 6.5))
    logp = torch.tensor([0.5, -1.0])
    q_pi = torch.tensor([[3.0, 4.0], [5.0, 1.0]])  # min: 3, 1
    assert sac_actor_loss(logp, q_pi, 0.2).item() == pytest.approx(((0.1 - 3) + (-0.2 - 1)) / 2)
    log_alpha = torch.tensor([math.log(0.5)], requires_grad=True)
    loss = sac_alpha_loss(log_alpha, logp, target_entropy=-1.0)
    # -(log 0.5 * (0.5 - 1) + log 0.5 * (-1 - 1)) / 2 = 1.25 * log 0.5
    assert loss.item() == pytest.approx(1.25 * math.log(0.5))
    loss.backward()
    # the entropy estimate (-mean log pi = 0.25) is above the target (-1): descent lowers alpha
    assert log_alpha.grad.item() == pytest.approx(1.25)
    torch.testing.assert_close(sac_alpha_grad(logp, -1.0), log_alpha.grad)  # what the trainer sets directly


def test_polyak_update():
    target = [torch.tensor([1.0, 2.0]), torch.tensor([[0.0]])]
    source = [torch.tensor([3.0, 4.0]), torch.tensor([[8.0]])]
    polyak_update_(target, source, 0.25)
    torch.testing.assert_close(target[0], torch.tensor([1.5, 2.5]))
    torch.testing.assert_close(target[1], torch.tensor([[2.0]]))
    polyak_update_(target, source, 1.0)
    torch.testing.assert_close(target[0], source[0])


def test_q_ensemble_equals_separate_mlps_and_detached_params_pass_gradient_only_to_inputs():
    torch.manual_seed(0)
    ens = QEnsemble(5, (8, 7), n=2, activation="relu")
    x = torch.randn(4, 5, requires_grad=True)
    out = ens(x)
    assert out.shape == (2, 4)
    for i in range(2):
        h = x
        for layer, (w, b) in enumerate(zip(ens.weights, ens.biases)):
            h = h @ w[i] + b[i, 0]
            if layer < len(ens.weights) - 1:
                h = nn.functional.relu(h)
        torch.testing.assert_close(out[i], h.squeeze(-1))
    frozen = [p.detach() for p in ens.param_list()]
    ens(x, frozen).sum().backward()
    assert x.grad is not None and all(p.grad is None for p in ens.parameters())


def test_squashed_policy_acts_with_tanh_mean_rescaled_to_the_bounds():
    torch.manual_seed(0)
    obs_space = spaces.Box(-1, 1, shape=(3,), dtype=np.float32)
    act_space = spaces.Box(np.array([-2.0, 0.0], dtype=np.float32), np.array([2.0, 10.0], dtype=np.float32))
    policy = make_policy(obs_space, act_space, head="squashed_gaussian", hidden_sizes=(16,))
    with torch.no_grad():  # push the means far out so the squash saturates in one dimension
        policy.head.linear.bias[:2] = torch.tensor([0.3, 30.0])
    obs = np.random.default_rng(0).uniform(-1, 1, size=(5, 3)).astype(np.float32)
    act = policy.act(obs, deterministic=True)
    mean, _ = policy.head.mean_log_std(policy(policy.preprocess(obs)))
    expected = act_space.low + (np.tanh(mean.detach().numpy()) + 1) * 0.5 * (act_space.high - act_space.low)
    np.testing.assert_allclose(act, expected, rtol=1e-5, atol=1e-5)
    assert act.dtype == np.float32 and np.all(act >= act_space.low) and np.all(act <= act_space.high)
    policy.seed(1)
    sampled = policy.act(obs, deterministic=False)
    assert np.all(sampled >= act_space.low) and np.all(sampled <= act_space.high)
    # env actions map back to the head's [-1, 1]
    torch.testing.assert_close(policy.actions_to_tensor(act), torch.tanh(mean.detach()), rtol=1e-5, atol=1e-5)


def test_squashed_head_refuses_unbounded_actions():
    from demokit.errors import UserError
    obs_space = spaces.Box(-1, 1, shape=(3,), dtype=np.float32)
    with pytest.raises(UserError, match="finite"):
        make_policy(obs_space, spaces.Box(-np.inf, np.inf, shape=(2,), dtype=np.float32), head="squashed_gaussian")
