"""DI-engine expert pickles as DI-engine's serial collector writes them (issue 15, defect 2):
several envs, per-env chunks flushed in turn, done as bool and as tensor. The pieces are
re-linked into the envs' real episodes; time-limit ends become truncations with --env."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tests.data.convert import ding_collector

from demokit.data.convert import convert
from demokit.data.dataset import load_dataset

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _by_first_obs(episodes: list[dict]) -> dict[bytes, dict]:
    return {np.ascontiguousarray(ep["obs"][0]).tobytes(): ep for ep in episodes}


def _check_episodes(path: Path, truth: list[dict], *, limit: int | None) -> None:
    ds = load_dataset(path)
    assert ds.num_episodes == len(truth) and len(ds) == sum(len(ep["obs"]) for ep in truth)
    expected = _by_first_obs(truth)
    assert len(expected) == len(truth)  # distinct starts: every episode is identified by its first obs
    for i in range(ds.num_episodes):
        got = ds.episode(i)
        want = expected[np.ascontiguousarray(got.observations[0]).tobytes()]
        np.testing.assert_array_equal(got.observations, want["obs"])
        np.testing.assert_array_equal(got.actions, want["action"])
        np.testing.assert_array_equal(got.final_observation[0], want["next_obs"][-1])
        T = len(want["obs"])
        ended_by_limit = want["done"] and limit is not None and T == limit
        assert bool(got.terminated[-1]) == (want["done"] and not ended_by_limit)
        assert bool(got.truncated[-1]) == (not want["done"] or ended_by_limit)


@pytest.mark.parametrize("done_as", ["bool", "tensor"])
def test_chunked_multi_env_pickle_is_relinked_into_the_real_episodes(tmp_path, done_as):
    # the case: 2,048 steps of 8 CartPole-v0 envs, flushed in chunks of 64 // 8 = 8 steps
    trs, truth = ding_collector.collect("CartPole-v0", collect_count=2048, env_num=8, policy_n_sample=64,
                                        done_as=done_as)
    complete = [ep for ep in truth if ep["done"]]
    assert len(complete) == 8 and all(len(ep["obs"]) == 200 for ep in complete)
    src = ding_collector.write(tmp_path / "expert_data.pkl", trs)
    res = convert(src, tmp_path / "with-env.h5", env_id="CartPole-v0")
    assert res.steps == 2048 and res.episodes == len(truth) == 16
    _check_episodes(tmp_path / "with-env.h5", truth, limit=200)
    ds = load_dataset(tmp_path / "with-env.h5")
    assert int(ds.episode_truncated.sum()) == 16 and not ds.episode_terminated.any()  # 8 time limits, 8 cut
    assert np.isclose(ds.episode_returns[ds.episode_lengths == 200].mean(), 200.0)
    notes = " ".join(res.notes)
    assert "re-linked" in notes and "time limit" in notes and "ambiguous" not in notes


def test_without_env_the_time_limit_ends_stay_terminations_and_the_report_says_so(tmp_path):
    trs, truth = ding_collector.collect("CartPole-v0", collect_count=800, env_num=4, policy_n_sample=40)
    src = ding_collector.write(tmp_path / "e.pkl", trs)
    res = convert(src, tmp_path / "o.h5")
    _check_episodes(tmp_path / "o.h5", truth, limit=None)
    assert any("every done counts as a termination" in n for n in res.notes)


def test_ppo_extras_follow_their_transitions(tmp_path):
    trs, truth = ding_collector.collect("CartPole-v1", collect_count=300, env_num=3, policy_n_sample=30, ppo=True)
    src = ding_collector.write(tmp_path / "ppo.pkl", trs)
    convert(src, tmp_path / "ppo.h5", env_id="CartPole-v1")
    ds = load_dataset(tmp_path / "ppo.h5")
    value_of = {np.ascontiguousarray(t["obs"].numpy()).tobytes(): float(t["value"]) for t in trs}
    for row in range(len(ds)):
        assert ds.extras["value"][row] == np.float32(value_of[np.ascontiguousarray(ds.observations[row]).tobytes()])
    _check_episodes(tmp_path / "ppo.h5", truth, limit=500)


def test_identical_states_in_two_envs_are_reported_as_ambiguous(tmp_path):
    # two envs reset with the same seed and a deterministic policy walk identical states
    trs, _ = ding_collector.collect("CartPole-v0", collect_count=160, env_num=2, policy_n_sample=16, same_seed=True)
    src = ding_collector.write(tmp_path / "twin.pkl", trs)
    res = convert(src, tmp_path / "twin.h5", env_id="CartPole-v0")
    assert any("ambiguous" in n for n in res.notes)
    ds = load_dataset(tmp_path / "twin.h5")
    for i in range(ds.num_episodes):  # every kept transition still has its true next observation
        ep = ds.episode(i)
        np.testing.assert_array_equal(ds.next_observations[ds.episode_starts[i]:ds.episode_starts[i] + len(ep) - 1],
                                      ep.observations[1:])
