import subprocess
import sys

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


def test_each_distinct_mujoco_warning_is_shown_once(capsys):
    from demokit.envs.mujoco_warnings import show_once

    for _ in range(3):
        show_once("compiler attribute 'x' is deprecated\n")
    show_once("another one")
    err = capsys.readouterr().err
    assert err.count("compiler attribute 'x' is deprecated") == 1 and err.count("another one") == 1


def test_mujoco_envs_print_a_model_warning_once_and_keep_a_users_handler(tmp_path):
    """Every HalfCheetah-v5 model load warns under mujoco 4.0 (gymnasium's XML uses the deprecated settotalmass):
    in one process it is printed once, however many envs are made; a handler the user installed stays in place."""
    pytest.importorskip("mujoco")
    ours = ("from demokit.envs import make_env, make_vec_env\n"
            "for _ in range(3): make_env('HalfCheetah-v5').close()\n"
            "make_vec_env('HalfCheetah-v5', 2).close()\n")
    err = subprocess.run([sys.executable, "-c", ours], capture_output=True, text=True, check=True, cwd=tmp_path).stderr
    assert err.count("settotalmass") <= 1 and err.count("MuJoCo warning:") <= 1
    users = ("import mujoco\nseen = []\nmine = seen.append\nmujoco.set_mju_user_warning(mine)\n"
             "from demokit.envs import make_env\nfor _ in range(2): make_env('HalfCheetah-v5').close()\n"
             "assert mujoco.get_mju_user_warning() is mine\nprint(len(seen))\n")
    out = subprocess.run([sys.executable, "-c", users], capture_output=True, text=True, check=True, cwd=tmp_path)
    assert "MuJoCo warning:" not in out.stderr and "settotalmass" not in out.stderr
