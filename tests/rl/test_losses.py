"""PPO's clipped surrogate and value loss, the policy log-prob/entropy, double-DQN targets."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from gymnasium import spaces

from demokit.policies import make_policy
from demokit.rl.dqn import double_dqn_targets
from demokit.rl.ppo import clipped_surrogate_loss, surrogate_loss, value_loss


def test_clipped_surrogate_hand_computed():
    new = torch.log(torch.tensor([1.5, 0.5, 1.1])).requires_grad_(True)
    old = torch.zeros(3)
    adv = torch.tensor([1.0, -1.0, 2.0])
    loss, clip_frac, kl = clipped_surrogate_loss(new, old, adv, 0.2)
    # min(1.5, 1.2) = 1.2; min(-0.5, -0.8) = -0.8; min(2.2, 2.2) = 2.2
    assert loss.item() == pytest.approx(-(1.2 - 0.8 + 2.2) / 3)
    assert clip_frac == pytest.approx(2 / 3)
    expected_kl = np.mean([(r - 1) - math.log(r) for r in (1.5, 0.5, 1.1)])
    assert kl == pytest.approx(expected_kl, rel=1e-5)
    loss.backward()
    # clipped terms carry no gradient; the unclipped one: d(-r*A/3)/dlogp = -r*A/3
    np.testing.assert_allclose(new.grad.numpy(), [0.0, 0.0, -1.1 * 2.0 / 3], rtol=1e-5)



def test_surrogate_select_gives_torch_minimum_values_and_gradients():
    """min(u, c) is taken as a select: loss and gradient equal torch.minimum's, ties included
    (ratio 1: u == c inside the clip range; advantage 0: u == c outside it)."""
    g = torch.Generator().manual_seed(0)
    new = torch.randn(4096, generator=g) * 0.3
    new[::5] = 0.0
    old = torch.zeros(4096)
    adv = torch.randn(4096, generator=g)
    adv[::7] = 0.0
    a, b = new.clone().requires_grad_(True), new.clone().requires_grad_(True)
    loss_a, log_ratio = surrogate_loss(a, old, adv, 0.2)
    loss_a.backward()
    ratio = torch.exp(b - old)
    loss_b = -torch.minimum(adv * ratio, adv * torch.clamp(ratio, 0.8, 1.2)).mean()
    loss_b.backward()
    assert torch.equal(loss_a, loss_b) and torch.equal(a.grad, b.grad)
    assert not log_ratio.requires_grad and torch.equal(log_ratio, new)

def test_value_loss_with_and_without_clipping():
    new, old, ret = torch.tensor([1.0, 3.0]), torch.zeros(2), torch.tensor([2.0, 2.0])
    assert value_loss(new, old, ret, None).item() == pytest.approx(1.0)
    # clipped values 0.5, 0.5 -> errors 2.25 each, larger than the unclipped 1.0
    assert value_loss(new, old, ret, 0.5).item() == pytest.approx(2.25)


@pytest.mark.parametrize("act_space", [spaces.Discrete(3), spaces.Box(-1, 1, shape=(2,), dtype=np.float32)])
def test_log_prob_entropy_match_torch_distributions(act_space):
    torch.manual_seed(0)
    obs_space = spaces.Box(-5, 5, shape=(4,), dtype=np.float32)
    policy = make_policy(obs_space, act_space, log_std_init=-0.3)
    x = torch.randn(6, 4)
    dist = policy.distribution(x)
    actions = dist.sample()
    logp, ent = policy.evaluate_actions(x, actions)
    torch.testing.assert_close(logp, dist.log_prob(actions))
    torch.testing.assert_close(ent, dist.entropy())


def test_double_dqn_targets_hand_computed():
    r = torch.tensor([1.0, 2.0, 3.0])
    online = torch.tensor([[1.0, 5.0], [3.0, 2.0], [0.0, 1.0]])
    target = torch.tensor([[10.0, 20.0], [30.0, 40.0], [50.0, 60.0]])
    term = torch.tensor([False, False, True])
    # double: a* from online = [1, 0, 1] -> target values 20, 30; terminal row: no bootstrap
    y = double_dqn_targets(r, online, target, term, 0.9)
    torch.testing.assert_close(y, torch.tensor([19.0, 29.0, 3.0]))
    # plain DQN: max of the target network = 20, 40
    y_plain = double_dqn_targets(r, online, target, term, 0.9, double_q=False)
    torch.testing.assert_close(y_plain, torch.tensor([19.0, 38.0, 3.0]))
