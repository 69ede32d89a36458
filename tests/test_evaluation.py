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


class Weak(Controller):
    """Pushes right whatever it sees: episodes of different lengths (about 10 steps)."""

    def act(self, obs, *, deterministic=True):
        return np.ones(len(obs), dtype=np.int64)


def test_returns_equal_a_plain_loop_of_seeded_episodes():
    """Known answer: episode i of a plain single-env loop reset with seed + i; 7 episodes on 3
    envs exercise explicit per-episode resets, idle envs and a batch of the running envs only."""
    expected = []
    env = gym.make("CartPole-v1")
    for i in range(7):
        env.reset(seed=20 + i)
        total, steps, done = 0.0, 0, False
        while not done:
            _, r, term, trunc, _ = env.step(1)
            total, steps, done = total + r, steps + 1, term or trunc
        expected.append((total, steps))
    res = evaluate_policy(Weak(), "CartPole-v1", episodes=7, seed=20, max_parallel=3)
    assert res.returns.tolist() == [e[0] for e in expected]
    assert res.lengths.tolist() == [e[1] for e in expected]
    assert len(set(res.lengths.tolist())) > 1
    assert res.as_dict() == {"mean_return": res.mean_return, "std_return": res.std_return, "episodes": 7,
                             "mean_length": float(np.mean(res.lengths))}
