import pytest

from demokit.envs import env_spec_json, make_env, make_env_from_spec_json, make_vec_env, reward_threshold
from demokit.errors import UserError


def test_unknown_env_suggests_close_match():
    with pytest.raises(UserError, match="did you mean 'CartPole-v1'"):
        make_env("CartPol-v1")
    with pytest.raises(UserError):
        make_vec_env("Nope-v0", 2)


def test_spec_round_trip_and_threshold():
    env = make_env_from_spec_json(env_spec_json("CartPole-v1"))
    assert env.spec.id == "CartPole-v1" and env.spec.max_episode_steps == 500
    assert reward_threshold("CartPole-v1") == 475.0
    assert reward_threshold("Pendulum-v1") is None


def test_vec_env_is_next_step_autoreset():
    from gymnasium.vector import AutoresetMode
    venv = make_vec_env("CartPole-v1", 3, seed=0)
    assert venv.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
    obs, _ = venv.reset(seed=0)
    assert obs.shape == (3, 4)
