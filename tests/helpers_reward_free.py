"""A reward-free copy of a dataset (the tests of BC and GAIL on data without rewards)."""

from __future__ import annotations

from pathlib import Path

from demokit.data import DatasetWriter, load_dataset


def reward_free_copy(src: str | Path, dst: Path) -> Path:
    ds = load_dataset(src)
    with DatasetWriter(dst, observation_space=ds.observation_space, action_space=ds.action_space, env_id=ds.env_id,
                       env_spec=ds.env_spec, extras=ds.extras_spec or None) as w:
        w.add_columns(observations=ds.observations, actions=ds.actions, rewards=None, terminated=ds.terminated,
                      truncated=ds.truncated, final_observations=ds.final_observations,
                      episode_lengths=ds.episode_lengths, seeds=ds.episode_seeds, extras=ds.extras or None)
    assert not load_dataset(dst).has_rewards
    return dst
