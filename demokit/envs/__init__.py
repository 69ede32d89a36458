"""Gymnasium environments: creation with clear errors, vector envs, env specs."""

from demokit.envs.make import (
    env_spec_json,
    make_env,
    make_env_from_spec_json,
    make_vec_env,
    max_episode_steps,
    reward_threshold,
)

__all__ = ["env_spec_json", "make_env", "make_env_from_spec_json", "make_vec_env", "max_episode_steps", "reward_threshold"]
