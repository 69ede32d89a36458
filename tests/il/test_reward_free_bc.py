"""BC trains on a reward-free dataset exactly as on the same data with rewards."""

from __future__ import annotations

import torch

from demokit.il import train_bc
from tests.helpers_reward_free import reward_free_copy


def test_bc_learns_from_a_reward_free_dataset(cartpole10, tmp_path):
    free = reward_free_copy(cartpole10, tmp_path / "free.h5")
    res = train_bc(free, stop_value=500, seed=0)
    assert res.converged and res.mean_return >= 475
    ref = train_bc(cartpole10, seed=0, eval_episodes=0, epochs=2)
    same = train_bc(free, seed=0, eval_episodes=0, epochs=2)
    for a, b in zip(ref.policy.state_dict().values(), same.policy.state_dict().values()):
        assert torch.equal(a, b)  # rewards play no part in BC: same seed, same weights
