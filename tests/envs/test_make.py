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


def test_env_spec_json_is_one_function_for_ids_specs_dicts_and_text():
    import json

    import gymnasium as gym
    import numpy as np
    import pytest

    from demokit.errors import UserError

    by_id = env_spec_json("CartPole-v1")
    assert json.loads(by_id)["id"] == "CartPole-v1"
    assert env_spec_json(gym.spec("CartPole-v1")) == by_id
    assert env_spec_json(by_id) is by_id  # JSON text is kept as given
    assert json.loads(env_spec_json({"id": "X-v0", "max_episode_steps": np.int64(7)})) == {
        "id": "X-v0", "max_episode_steps": 7}
    assert env_spec_json(None) is None
    with pytest.raises(UserError, match="JSON text"):
        env_spec_json("{not json")
    with pytest.raises(UserError, match="unknown env id"):
        env_spec_json("NoSuchEnv-v9")
    with pytest.raises(UserError, match="EnvSpec"):
        env_spec_json(3.5)
