"""DAgger on reward-free demonstrations: round 0 is BC on them, later rounds aggregate the learner's states
labelled by the expert; the aggregate stays reward-free and what needs rewards says the dataset has none."""

from __future__ import annotations

import numpy as np
import pytest

import il_data
from demokit.cli.app import main
from demokit.data import load_dataset
from demokit.errors import UserError
from demokit.il import train_dagger
from tests.helpers_reward_free import reward_free_copy


def test_dagger_learns_from_reward_free_demonstrations(tmp_path, cartpole1):
    free = reward_free_copy(cartpole1, tmp_path / "free.h5")
    data = tmp_path / "agg.h5"
    with pytest.warns(UserWarning, match="reward-free: the aggregated dataset is written without rewards"):
        res = train_dagger(expert_policy=il_data.controller_policy(), env_id="CartPole-v1", demonstrations=str(free),
                           rounds=3, episodes_per_round=1, beta_schedule="constant:0", epochs=30, eval_episodes=10,
                           seed=0, dataset_out=str(data))
    returns = res.returns
    assert np.isnan(res.rounds[0]["rollout_return"]) and res.rounds[0]["expert_fraction"] == 1.0
    assert returns[-1] >= 475 and returns[-1] > returns[0]  # the learner's own states fix round 0's policy
    ds, demos = load_dataset(data), load_dataset(free)
    assert not ds.has_rewards and ds.episode_returns is None
    first = demos.episode_lengths[0]
    np.testing.assert_array_equal(ds.observations[:first], demos.observations[:first])  # round 0 = the demos
    np.testing.assert_array_equal(ds.actions[:first], demos.actions[:first])
    assert ds.extras["expert_executed"][:first].all() and (ds.extras["round"][:first] == 0).all()
    assert ds.num_episodes == demos.num_episodes + 2 and ds.provenance["demonstrations"] == str(free)
    with pytest.raises(UserError, match="rewards"):
        ds.require_rewards("--top-k (it ranks episodes by their return)")


def test_demonstrations_with_rewards_keep_them_and_the_cli_takes_them(tmp_path, cartpole1, expert_checkpoint, capsys):
    data, out = tmp_path / "agg.h5", tmp_path / "p.pt"
    code = main(["dagger", "--expert", str(expert_checkpoint), "--demonstrations", str(cartpole1), "--rounds", "2",
                 "--episodes-per-round", "1", "--epochs", "1", "--eval-episodes", "0", "--out", str(out),
                 "--dataset-out", str(data), "--run-dir", str(tmp_path / "run")])
    assert code == 0, capsys.readouterr().err
    ds = load_dataset(data)
    assert ds.has_rewards and ds.num_episodes == load_dataset(cartpole1).num_episodes + 1
    # demonstrations of another env: one error before anything is written
    code = main(["dagger", "--expert", str(expert_checkpoint), "--env", "Acrobot-v1", "--demonstrations",
                 str(cartpole1), "--dataset-out", str(tmp_path / "x.h5"), "--out", str(tmp_path / "x.pt")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("error:") == 1 and not (tmp_path / "x.h5").exists()


def test_demonstrations_of_another_env_are_refused(tmp_path, pendulum):
    with pytest.raises(UserError, match="Pendulum|space"):
        train_dagger(expert_policy=il_data.controller_policy(), env_id="CartPole-v1", demonstrations=str(pendulum),
                     rounds=1, dataset_out=str(tmp_path / "agg.h5"))
    assert not (tmp_path / "agg.h5").exists()
