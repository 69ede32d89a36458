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


#: log std bounds of the squashed-Gaussian head (state-dependent log std, as SAC's actors use)
SQUASHED_LOG_STD_MIN, SQUASHED_LOG_STD_MAX = -20.0, 2.0


def tanh_log_det_jacobian(pre_tanh: torch.Tensor) -> torch.Tensor:
    """``sum log(1 - tanh(u)^2)`` over the last axis, computed stably as
    ``2 * (log 2 - u - softplus(-2u))`` (no ``1 - tanh^2`` that rounds to 0 for large ``|u|``)."""
    return (2.0 * (math.log(2.0) - pre_tanh - torch.nn.functional.softplus(-2.0 * pre_tanh))).sum(-1)


def squashed_gaussian_sample(mean: torch.Tensor, log_std: torch.Tensor,
                             noise: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``a = tanh(mean + exp(log_std) * noise)`` and ``log pi(a)`` (the Gaussian log-density of
    the pre-tanh value minus the tanh Jacobian term): shapes (B, A) and (B,)."""
    pre = mean + log_std.exp() * noise
    log_prob = -diag_gaussian_nll_of_noise(noise, log_std) - tanh_log_det_jacobian(pre)
    return torch.tanh(pre), log_prob
