"""DAgger: beta schedules, mixture rollouts with expert labels, the aggregated dataset, improvement."""

from __future__ import annotations

import numpy as np
import pytest

import il_data
from demokit.data import load_dataset
from demokit.errors import ConfigError, UserError
from demokit.evaluation import evaluate_policy
from demokit.il import beta_schedule, rollout_mixture, train_dagger
from demokit.il.dagger import best_round
from demokit.policies import Policy, load_checkpoint
from demokit.seeding import derive_seed


class _Constant(Policy):
    def __init__(self, like: Policy, action: int) -> None:
        self.observation_space, self.action_space, self.action = like.observation_space, like.action_space, action

    def act(self, obs, *, deterministic=True):
        return np.full(len(obs), self.action, dtype=np.int64)


def test_beta_schedules_known_values():
    assert beta_schedule("linear", 5) == [1.0, 0.75, 0.5, 0.25, 0.0]
    assert beta_schedule("linear:2", 4) == [1.0, 0.5, 0.0, 0.0]
    assert beta_schedule("exponential", 4) == [1.0, 0.5, 0.25, 0.125]
    assert beta_schedule("exponential:0.9", 3) == pytest.approx([1.0, 0.9, 0.81])
    assert beta_schedule("constant", 3) == [1.0, 0.0, 0.0]
    assert beta_schedule("constant:0.3", 3) == [1.0, 0.3, 0.3]
    assert beta_schedule("linear", 1) == [1.0]
    for bad in ("cosine", "linear:x", "constant:2", "linear:0"):
        with pytest.raises(ConfigError):
            beta_schedule(bad, 3)


def test_mixture_labels_every_state_with_the_expert():
    expert = il_data.controller_policy()
    learner = _Constant(expert, 0)
    rng = np.random.default_rng(0)
    learner_only = rollout_mixture("CartPole-v1", expert=expert, learner=learner, beta=0.0, episodes=2, seed=5, rng=rng)
    for ep in learner_only:
        assert not ep.extras["expert_executed"].any()
        assert (ep.extras["executed_action"] == 0).all()
        np.testing.assert_array_equal(ep.actions, expert.act(ep.observations))  # labels are the expert's
        assert len(ep) < 100 and ep.is_terminated  # always pushing left falls quickly
    expert_only = rollout_mixture("CartPole-v1", expert=expert, learner=learner, beta=1.0, episodes=2, seed=5, rng=rng)
    for ep in expert_only:
        assert ep.extras["expert_executed"].all() and len(ep) == 500 and ep.is_truncated
        np.testing.assert_array_equal(ep.actions, ep.extras["executed_action"])
    half = rollout_mixture("CartPole-v1", expert=expert, learner=learner, beta=0.5, episodes=3, seed=5, rng=rng)
    frac = np.mean(np.concatenate([ep.extras["expert_executed"] for ep in half]))
    assert 0.3 < frac < 0.7
    assert [ep.seed for ep in half] == [5, 6, 7]


def test_dagger_improves_over_its_first_round(tmp_path):
    """BC from one expert episode is weak on CartPole; the learner's own states fix it."""
    data = tmp_path / "agg.h5"
    res = train_dagger(expert_policy=il_data.controller_policy(), env_id="CartPole-v1", rounds=3, episodes_per_round=1,
                       beta_schedule="constant:0", epochs=30, eval_episodes=10, seed=0, dataset_out=str(data))
    returns = res.returns
    assert len(returns) == 3 and res.rounds[0]["beta"] == 1.0
    assert returns[0] < 450
    assert returns[-1] >= 475 and returns[-1] > returns[0] + 50
    ds = load_dataset(data)
    assert ds.num_episodes == 3 and res.dataset == str(data)
    assert set(ds.extras) == {"executed_action", "expert_executed", "round"}
    assert ds.extras["expert_executed"][: ds.episode_lengths[0]].all()
    assert not ds.extras["expert_executed"][ds.episode_lengths[0]:].any()
    np.testing.assert_array_equal(np.unique(ds.extras["round"]), [0, 1, 2])
    assert ds.provenance["algo"] == "dagger"


def test_dagger_writes_a_checkpoint_and_refuses_to_clobber(tmp_path, expert_checkpoint):
    data, out = tmp_path / "d.h5", tmp_path / "p.pt"
    res = train_dagger({"expert": str(expert_checkpoint), "rounds": 2, "episodes_per_round": 1, "epochs": 2,
                        "eval_episodes": 0, "dataset_out": str(data), "out": str(out)})
    assert res.mean_return is None and res.checkpoint == str(out)
    ck = load_checkpoint(out)
    assert ck.algo == "dagger" and ck.env_id == "CartPole-v1" and len(ck.training["rounds"]) == 2
    with pytest.raises(UserError, match="already exists"):
        train_dagger({"expert": str(expert_checkpoint), "rounds": 1, "dataset_out": str(data)})
    res2 = train_dagger({"expert": str(expert_checkpoint), "rounds": 1, "episodes_per_round": 1, "epochs": 1,
                         "eval_episodes": 0, "dataset_out": str(data), "overwrite": True})
    assert load_dataset(data).num_episodes == 1 and res2.dataset == str(data)


def test_dagger_without_dataset_out_uses_a_temporary_file():
    res = train_dagger(expert_policy=il_data.controller_policy(), env_id="CartPole-v1", rounds=1, episodes_per_round=1,
                       epochs=1, eval_episodes=0)
    assert res.dataset is None and res.rounds[0]["dataset_steps"] == 500


def test_dagger_needs_an_expert_and_a_matching_env(expert_checkpoint):
    with pytest.raises(ConfigError, match="expert"):
        train_dagger({"env_id": "CartPole-v1"})
    with pytest.raises(UserError, match="observation space"):
        train_dagger({"expert": str(expert_checkpoint), "env_id": "Acrobot-v1"})


def test_best_round_is_the_first_highest_return():
    assert best_round([10.0, 30.0, 30.0, 20.0]) == 1
    assert best_round([5.0]) == 0
    assert best_round([-3.0, -1.0, -2.0]) == 1
    for bad in ([], [1.0, None], [1.0, float("nan")]):
        with pytest.raises(ValueError):
            best_round(bad)


def test_keep_best_returns_the_best_evaluated_rounds_policy(tmp_path, cartpole3):
    """A misleading oracle (it always labels "push left") makes every round after the demonstrations' worse:
    the last round's policy is the worst, keep_best returns round 0's, and says so."""
    oracle = _Constant(il_data.controller_policy(), 0)
    out = tmp_path / "best.pt"
    res = train_dagger(expert_policy=oracle, env_id="CartPole-v1", demonstrations=str(cartpole3), rounds=3,
                       episodes_per_round=2, beta_schedule="constant:0", epochs=20, eval_episodes=5, seed=0,
                       keep_best=True, out=str(out))
    returns = res.returns
    assert returns[0] >= 300 and max(returns[1:]) < returns[0] - 100  # the bad labels hurt
    assert res.chosen_round == best_round(returns) == 0
    assert res.mean_return == returns[0] and res.summary()["chosen_round"] == 0
    # the resulting policy is round 0's: its evaluation (same seed as round 0's) gives round 0's return exactly
    bc_seed = derive_seed(0, "dagger-bc", 0) % (2**31)
    again = evaluate_policy(res.policy, "CartPole-v1", episodes=5, seed=derive_seed(bc_seed, "bc-eval") % (2**31))
    assert again.mean_return == pytest.approx(returns[0])
    ck = load_checkpoint(out)
    assert ck.training["chosen_round"] == 0 and ck.training["mean_return"] == returns[0]
    obs = np.random.default_rng(0).normal(size=(64, 4)).astype(np.float32)
    np.testing.assert_array_equal(ck.policy.act(obs), res.policy.act(obs))
    last = train_dagger(expert_policy=oracle, env_id="CartPole-v1", demonstrations=str(cartpole3), rounds=3,
                        episodes_per_round=2, beta_schedule="constant:0", epochs=20, eval_episodes=5, seed=0)
    assert last.returns == returns  # the same rounds; only the result differs
    assert last.chosen_round == 2 and last.mean_return == returns[-1]


def test_keep_best_needs_evaluations(expert_checkpoint):
    with pytest.raises(ConfigError, match="keep_best"):
        train_dagger({"expert": str(expert_checkpoint), "keep_best": True, "eval_episodes": 0})
