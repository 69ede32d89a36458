"""GAE on hand-computed cases: termination, truncation bootstrap, autoreset-masked steps."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from demokit.rl.gae import compute_gae

G, L = 0.9, 0.8  # gamma, lambda; gamma * lambda = 0.72


def col(*x):
    return np.array(x, dtype=np.float64)[:, None]


def bcol(*x):
    return np.array(x, dtype=bool)[:, None]


def test_termination_does_not_bootstrap():
    adv, ret = compute_gae(col(1, 2, 3), col(0.5, 0.4, 0.3), np.array([9.0]), bcol(0, 0, 1), bcol(0, 0, 0),
                           bcol(1, 1, 1), gamma=G, gae_lambda=L)
    # delta2 = 3 - 0.3; delta1 = 2 + 0.9*0.3 - 0.4; delta0 = 1 + 0.9*0.4 - 0.5
    np.testing.assert_allclose(adv[:, 0].numpy(), [3.60608, 3.814, 2.7], rtol=1e-5)
    np.testing.assert_allclose(ret[:, 0].numpy(), [4.10608, 4.214, 3.0], rtol=1e-5)


def test_truncation_bootstraps_from_the_final_observation():
    # step 1 is truncated; step 2 is the autoreset step whose input is the final observation,
    # so values[2] = V(final obs) = 7 is the bootstrap value.
    adv, _ = compute_gae(col(1, 2, 0), col(0.5, 0.4, 7.0), np.array([100.0]), bcol(0, 0, 0), bcol(0, 1, 0),
                         bcol(1, 1, 0), gamma=G, gae_lambda=L)
    np.testing.assert_allclose(adv[:, 0].numpy(), [0.86 + 0.72 * 7.9, 2 + 0.9 * 7.0 - 0.4, 0.0], rtol=1e-5)
    # the same step terminated instead: no bootstrap
    adv_t, _ = compute_gae(col(1, 2, 0), col(0.5, 0.4, 7.0), np.array([100.0]), bcol(0, 1, 0), bcol(0, 0, 0),
                           bcol(1, 1, 0), gamma=G, gae_lambda=L)
    assert adv_t[1, 0].item() == pytest.approx(1.6)


def test_autoreset_step_is_masked_and_cuts_the_episode():
    # episode ends (terminated) at t=1; t=2 is the autoreset step with garbage reward/value;
    # t=3 starts the next episode and bootstraps from last_values.
    r, v = col(1, 2, 5, 3), col(0.5, 0.4, 100.0, 0.2)
    adv, ret = compute_gae(r, v, np.array([1.0]), bcol(0, 1, 0, 0), bcol(0, 0, 0, 0), bcol(1, 1, 0, 1),
                           gamma=G, gae_lambda=L)
    np.testing.assert_allclose(adv[:, 0].numpy(), [2.012, 1.6, 0.0, 3.7], rtol=1e-5)
    assert ret[2, 0].item() == pytest.approx(100.0)  # invalid: return = value, no loss signal
    # 0.29-style handling (every step a transition, no mask) gives a different, wrong answer
    wrong, _ = compute_gae(r, v, np.array([1.0]), bcol(0, 1, 0, 0), bcol(0, 0, 0, 0), bcol(1, 1, 1, 1),
                           gamma=G, gae_lambda=L)
    assert wrong[2, 0].item() != pytest.approx(0.0)


def test_columns_are_independent_envs_and_tensors_work():
    r = torch.tensor([[1.0, 1.0], [2.0, 2.0], [3.0, 0.0]])
    v = torch.tensor([[0.5, 0.5], [0.4, 0.4], [0.3, 7.0]])
    term = torch.tensor([[False, False], [False, False], [True, False]])
    trunc = torch.tensor([[False, False], [False, True], [False, False]])
    valid = torch.tensor([[True, True], [True, True], [True, False]])
    adv, _ = compute_gae(r, v, torch.tensor([9.0, 100.0]), term, trunc, valid, gamma=G, gae_lambda=L)
    assert adv.shape == (3, 2) and adv.dtype == torch.float32
    np.testing.assert_allclose(adv[:, 0].numpy(), [3.60608, 3.814, 2.7], rtol=1e-5)
    np.testing.assert_allclose(adv[:, 1].numpy(), [0.86 + 0.72 * 7.9, 7.9, 0.0], rtol=1e-5)
