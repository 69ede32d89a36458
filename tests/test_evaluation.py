import gymnasium as gym
import numpy as np
import pytest

from demokit.errors import SpaceMismatchError, UserError
from demokit.evaluation import evaluate_policy
from demokit.policies import make_policy
from demokit.policies.base import Policy

from tests.helpers import cartpole_controller


class Controller(Policy):
    def __init__(self):
        env = gym.make("CartPole-v1")
        self.observation_space, self.action_space = env.observation_space, env.action_space

    def act(self, obs, *, deterministic=True):
        return cartpole_controller(obs)


def test_exact_episode_count_and_independent_of_parallelism():
    r1 = evaluate_policy(Controller(), "CartPole-v1", episodes=5, seed=3, max_parallel=1)
    r2 = evaluate_policy(Controller(), "CartPole-v1", episodes=5, seed=3, max_parallel=4)
    assert r1.episodes == 5
    np.testing.assert_array_equal(r1.returns, r2.returns)
    assert r1.mean_return == 500.0  # the hand-written controller balances to the time limit


def test_mismatched_env_and_bad_episode_count():
    env = gym.make("Pendulum-v1")
    pol = make_policy(env.observation_space, env.action_space)
    with pytest.raises(SpaceMismatchError):
        evaluate_policy(pol, "CartPole-v1", episodes=1)
    with pytest.raises(UserError):
        evaluate_policy(pol, "Pendulum-v1", episodes=0)
