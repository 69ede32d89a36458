"""The diagonal-Gaussian maths of the gaussian policy head, without distribution objects.

PPO (rollout log-probabilities and its loss) and BC (the Gaussian negative log-likelihood)
share these; ``NeuralPolicy.distribution`` gives the same values through
``torch.distributions`` (slower: object construction and argument checks on every call).
The negative log-likelihood is the primary form, so that BC's small training steps (the
hot path) pay for no negation; the log-probability negates it (same bits).
"""

from __future__ import annotations

import math

import torch

#: log(sqrt(2 pi)), the normalising constant of each Gaussian dimension
HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


def diag_gaussian_nll_of_noise(noise: torch.Tensor, log_std: torch.Tensor) -> torch.Tensor:
    """``-log N(actions; mean, diag(exp(log_std))^2)`` summed over the last axis, from the standardised
    action ``noise = (actions - mean) / std`` (e.g. the standard-normal draw of ``mean + std * noise``)."""
    return (0.5 * noise.pow(2) + log_std + HALF_LOG_2PI).sum(-1)


def diag_gaussian_nll(actions: torch.Tensor, mean: torch.Tensor, log_std: torch.Tensor) -> torch.Tensor:
    """``-log N(actions; mean, diag(exp(log_std))^2)`` summed over the last axis: shape (B,)."""
    return diag_gaussian_nll_of_noise((actions - mean) * torch.exp(-log_std), log_std)


def diag_gaussian_log_prob(actions: torch.Tensor, mean: torch.Tensor, log_std: torch.Tensor) -> torch.Tensor:
    """``log N(actions; mean, diag(exp(log_std))^2)`` summed over the last axis: shape (B,)."""
    return -diag_gaussian_nll(actions, mean, log_std)


def diag_gaussian_entropy(log_std: torch.Tensor) -> torch.Tensor:
    """Entropy of the diagonal Gaussian with ``log_std``, summed over the last axis."""
    return (0.5 + HALF_LOG_2PI + log_std).sum(-1)
