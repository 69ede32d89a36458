"""Generalised advantage estimation over a vector-env rollout with NEXT_STEP autoreset.

Arrays have shape (T, N): step t of sub-env n. ``values[t]`` is V(obs_t), the value of
the observation action t was taken at; ``last_values`` (N,) is V of the observation after
the rollout. In NEXT_STEP mode the observation returned by step t is the input of step
t+1 -- including an episode's final observation, which becomes the input of the
(invalid) autoreset step -- so V(next_obs_t) = ``values[t+1]`` (``last_values`` for t = T-1).

For every valid step::

    delta_t = r_t + gamma * V(next_obs_t) * (1 - terminated_t) - V(obs_t)
    A_t     = delta_t + gamma * lambda * (1 - done_t) * A_{t+1}

with done = terminated | truncated. Termination does not bootstrap. Truncation does:
its delta is r_t + gamma * V(final obs) - V(obs_t), i.e. gamma * V(final obs) added to
the episode's last reward, and the recursion is cut at every episode end. Invalid
(autoreset) steps get advantage 0 and never leak into a neighbour.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch


def _np(x: Any, dtype: Any = np.float64) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=dtype)


def compute_gae(rewards: Any, values: Any, last_values: Any, terminated: Any, truncated: Any, valid: Any, *,
                gamma: float, gae_lambda: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Advantages and value targets (returns = advantages + values), both float32 (T, N) tensors.

    Inputs are numpy arrays or tensors of shape (T, N) (``last_values``: (N,)); boolean
    ``terminated`` / ``truncated`` / ``valid``. Invalid steps get advantage 0 and
    return = value (they are masked out of the loss anyway).
    """
    r = _np(rewards)
    v = _np(values)
    if r.ndim == 1:  # a single env given as (T,)
        r, v = r[:, None], v[:, None]
    steps, n = r.shape
    last = _np(last_values).reshape(n)
    term = _np(terminated, bool).reshape(steps, n)
    trunc = _np(truncated, bool).reshape(steps, n)
    ok = _np(valid, bool).reshape(steps, n)
    not_term = 1.0 - term
    cont = 1.0 - (term | trunc)
    next_v = np.concatenate([v[1:], last[None]], axis=0)
    delta = r + gamma * next_v * not_term - v
    adv = np.zeros_like(r)
    running = np.zeros(n)
    decay = gamma * gae_lambda
    for t in range(steps - 1, -1, -1):
        running = np.where(ok[t], delta[t] + decay * cont[t] * running, 0.0)
        adv[t] = running
    returns = np.where(ok, adv + v, v)
    shape = _np(rewards).shape
    return (torch.from_numpy(adv.astype(np.float32).reshape(shape)),
            torch.from_numpy(returns.astype(np.float32).reshape(shape)))
