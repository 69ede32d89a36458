"""The hand-written BC gradient (demokit.il.mlp_grad) against autograd, bit for bit, and where it applies."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from gymnasium import spaces

from demokit.il import train_bc
from demokit.il.mlp_grad import hand_written_grad
from demokit.policies import make_policy


def _policy(activation: str = "tanh", action_space: spaces.Space = spaces.Discrete(3), hidden=(16, 8)):
    torch.manual_seed(0)
    obs = spaces.Box(-np.inf, np.inf, (5,), np.float32)
    return make_policy(obs, action_space, hidden_sizes=hidden, activation=activation)


def test_gradients_and_loss_are_autograds_bit_for_bit():
    policy = _policy()
    trainable = [p for p in policy.parameters() if p.requires_grad]
    grad = hand_written_grad(policy, trainable, loss="nll", world_size=1)
    assert grad is not None and grad.params == trainable
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(37, 5, generator=g), torch.randint(0, 3, (37,), generator=g)
    seed = torch.tensor(1 / 37, dtype=torch.float32)
    summed, grads = grad(x, y, seed)
    want = F.cross_entropy(policy(x), y, reduction="none").sum()
    want.backward(seed)
    assert torch.equal(summed, want.detach())
    assert all(torch.equal(a, p.grad) for a, p in zip(grads, trainable))


@pytest.mark.parametrize("case", ["relu", "box", "mse", "ddp", "frozen"])
def test_other_cases_train_through_autograd(case):
    policy = _policy("relu") if case == "relu" else \
        _policy(action_space=spaces.Box(-1, 1, (2,), np.float32)) if case == "box" else _policy()
    trainable = [p for p in policy.parameters() if p.requires_grad]
    if case == "frozen":
        trainable = trainable[:-1]
    got = hand_written_grad(policy, trainable, loss="mse" if case == "mse" else "nll",
                            world_size=2 if case == "ddp" else 1)
    assert got is None


def test_train_bc_weights_are_the_same_with_and_without_it(cartpole3, monkeypatch):
    made = []

    def spy(*args, **kwargs):
        made.append(hand_written_grad(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr("demokit.il.bc.hand_written_grad", spy)
    fast = train_bc(cartpole3, epochs=3, batch_size=100, eval_episodes=0, seed=5)
    assert len(made) == 1 and made[0] is not None  # the default 2x64 tanh policy takes the fast path
    monkeypatch.setattr("demokit.il.bc.hand_written_grad", lambda *a, **k: None)
    slow = train_bc(cartpole3, epochs=3, batch_size=100, eval_episodes=0, seed=5)
    a, b = fast.policy.state_dict(), slow.policy.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert [h["loss"] for h in fast.history] == [h["loss"] for h in slow.history]
    assert [h["val_loss"] for h in fast.history] == [h["val_loss"] for h in slow.history]
