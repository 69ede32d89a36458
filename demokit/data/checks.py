"""Checks of transition values before learning from them (shared by BC and GAIL).

``bad_value_counts`` counts what no learner can use (NaN / inf observation or action
values, discrete actions outside the space); ``bad_values_error`` turns non-zero counts
into one :class:`~demokit.errors.DatasetError`. The counts are separate from the error
so that ranks of a distributed run can add theirs up first.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces

from demokit.errors import DatasetError


def bad_value_counts(flat_obs: np.ndarray, actions: Any, action_space: spaces.Space) -> list[int]:
    """[non-finite observation values, non-finite action values, out-of-range discrete actions]
    of flat observations ``(B, D)`` and stored actions ``(B, ...)``."""
    x = np.asarray(flat_obs)
    bad_obs = int(x.size - np.count_nonzero(np.isfinite(x)))
    a = np.asarray(actions)
    if isinstance(action_space, spaces.Discrete):
        lo = int(action_space.start)
        return [bad_obs, 0, int(np.count_nonzero((a < lo) | (a >= lo + int(action_space.n))))]
    if a.dtype.kind in "fc":
        return [bad_obs, int(a.size - np.count_nonzero(np.isfinite(a))), 0]
    return [bad_obs, 0, 0]


def bad_values_error(path: Any, counts: list[int], action_space: spaces.Space, learner: str) -> DatasetError:
    """The error for non-zero ``counts`` (see :func:`bad_value_counts`) of ``learner``'s data at ``path``."""
    parts = []
    if counts[0]:
        parts.append(f"{counts[0]} NaN/inf observation value(s)")
    if counts[1]:
        parts.append(f"{counts[1]} NaN/inf action value(s)")
    if counts[2]:
        parts.append(f"{counts[2]} action(s) outside the action space {action_space}")
    return DatasetError(f"dataset {path} has {' and '.join(parts)}; {learner} cannot learn from them: drop the bad "
                        f"episodes or re-collect the data")


def check_values(path: Any, flat_obs: np.ndarray, actions: Any, action_space: spaces.Space, learner: str) -> None:
    """Raise :func:`bad_values_error` when the transitions hold values no learner can use."""
    counts = bad_value_counts(flat_obs, actions, action_space)
    if any(counts):
        raise bad_values_error(path, counts, action_space, learner)
