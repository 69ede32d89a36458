"""The diagonal-Gaussian maths: known answers and agreement with torch.distributions."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from demokit.policies.distributions import (HALF_LOG_2PI, diag_gaussian_entropy, diag_gaussian_log_prob,
                                            diag_gaussian_nll, diag_gaussian_nll_of_noise)


def test_half_log_2pi():
    assert HALF_LOG_2PI == pytest.approx(0.918938533204672)


def test_log_prob_known_answer():
    # dim 0: z = 1, std 1 -> -0.5 - 0 - c; dim 1: z = 2 / 2 = 1, std 2 -> -0.5 - ln 2 - c
    got = diag_gaussian_log_prob(torch.tensor([[1.0, 2.0]]), torch.zeros(1, 2), torch.tensor([0.0, math.log(2.0)]))
    np.testing.assert_allclose(got.numpy(), [-1.0 - math.log(2.0) - 2 * HALF_LOG_2PI], rtol=1e-6)


def test_log_prob_and_entropy_match_torch_normal():
    gen = torch.Generator().manual_seed(0)
    mean = torch.randn(64, 3, generator=gen, dtype=torch.float64)
    log_std = torch.randn(3, generator=gen, dtype=torch.float64) * 0.5
    actions = mean + torch.randn(64, 3, generator=gen, dtype=torch.float64) * 2.0
    ref = torch.distributions.Normal(mean, log_std.exp())
    torch.testing.assert_close(diag_gaussian_log_prob(actions, mean, log_std), ref.log_prob(actions).sum(-1))
    torch.testing.assert_close(diag_gaussian_entropy(log_std).expand(64), ref.entropy().sum(-1))


def test_nll_of_noise_is_minus_the_log_prob_of_the_sample():
    gen = torch.Generator().manual_seed(1)
    mean, log_std = torch.randn(16, 2, generator=gen), torch.tensor([-0.3, 0.7])
    noise = torch.randn(16, 2, generator=gen)
    sample = mean + noise * log_std.exp()
    torch.testing.assert_close(-diag_gaussian_nll_of_noise(noise, log_std),
                               torch.distributions.Normal(mean, log_std.exp()).log_prob(sample).sum(-1))


def test_gradients_match_torch_normal():
    mean = torch.tensor([[0.2, -1.0], [1.5, 0.3]], dtype=torch.float64, requires_grad=True)
    log_std = torch.tensor([0.1, -0.4], dtype=torch.float64, requires_grad=True)
    actions = torch.tensor([[0.0, 0.5], [1.0, -2.0]], dtype=torch.float64)
    ours = torch.autograd.grad(diag_gaussian_log_prob(actions, mean, log_std).sum(), (mean, log_std))
    ref = torch.autograd.grad(torch.distributions.Normal(mean, log_std.exp()).log_prob(actions).sum(), (mean, log_std))
    for a, b in zip(ours, ref):
        torch.testing.assert_close(a, b)


def test_nll_is_exactly_minus_the_log_prob():
    gen = torch.Generator().manual_seed(2)
    mean, actions = torch.randn(8, 3, generator=gen), torch.randn(8, 3, generator=gen)
    log_std = torch.randn(3, generator=gen)
    assert torch.equal(diag_gaussian_nll(actions, mean, log_std), -diag_gaussian_log_prob(actions, mean, log_std))
