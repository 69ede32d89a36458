"""collect_demo_data: budgets, policies, reproducibility, modes, locks, interrupts, failures."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import numpy as np
import pytest
import torch
from collect_helpers import DICT_ENV_ID, write_checkpoint

from demokit.data import DatasetWriter, load_dataset
from demokit.envs import make_env
from demokit.errors import DatasetError, DatasetLockedError, SpaceMismatchError, UserError
from demokit.pipelines import CollectConfig, CollectionInterrupted, collect_demo_data
from demokit.pipelines.collect import default_dataset_path
from demokit.policies import Policy, file_sha256, load_policy, make_policy


def arrays(path: Path) -> dict[str, np.ndarray]:
    ds = load_dataset(path)
    out = {"obs": ds.flat_observations(), "actions": np.asarray(ds.actions), "rewards": ds.rewards,
           "terminated": ds.terminated, "truncated": ds.truncated, "lengths": ds.episode_lengths,
           "seeds": ds.episode_seeds, "final": np.asarray(ds.final_observations)}
    out.update({f"extra_{k}": v for k, v in ds.extras.items()})
    return out


def assert_same(a: Path, b: Path) -> None:
    """Bitwise-equal arrays, extras included."""
    x, y = arrays(a), arrays(b)
    assert x.keys() == y.keys()
    for key in x:
        np.testing.assert_array_equal(x[key], y[key], err_msg=key)


def assert_complete(path: Path) -> None:
    """Every stored episode ended (terminated or time-limit truncated), with consistent flags."""
    ds = load_dataset(path)
    ends = ds.episode_starts + ds.episode_lengths - 1
    assert np.all(ds.terminated[ends] | ds.truncated[ends])
    assert (ds.terminated | ds.truncated).sum() == ds.num_episodes


# ---- budgets and policies ----------------------------------------------------------------

def test_random_episodes_budget(tmp_path: Path) -> None:
    out = tmp_path / "r.h5"
    res = collect_demo_data("random", "CartPole-v1", out, n_episodes=25, seed=7, num_envs=4)
    ds = load_dataset(out)
    assert ds.num_episodes == res.episodes == 25 and len(ds) == res.steps
    assert_complete(out)
    np.testing.assert_array_equal(ds.episode_seeds, np.arange(7, 32))  # episode k reset with seed + k, in order
    assert res.mean_return == pytest.approx(float(ds.episode_returns.mean()))
    assert res.std_return == pytest.approx(float(ds.episode_returns.std()))
    assert res.steps_per_s > 0 and not res.interrupted and res.cut_episodes == 0
    assert ds.env_id == "CartPole-v1" and ds.extras == {}
    # next_obs is consistent: within an episode, next obs of step t is obs of step t+1
    np.testing.assert_array_equal(ds.next_observations[:-1][~(ds.terminated | ds.truncated)[:-1]],
                                  ds.observations[1:][~(ds.terminated | ds.truncated)[:-1]])
    prov = ds.provenance
    assert prov["policy"] == "random" and prov["seed"] == 7 and prov["deterministic"] is True
    assert prov["n_episodes"] == 25 and prov["num_envs"] == 4 and prov["demokit_version"]
    assert isinstance(prov["command"], list)


def test_first_observation_is_the_seeded_reset(tmp_path: Path) -> None:
    out = tmp_path / "r.h5"
    collect_demo_data("random", "CartPole-v1", out, n_episodes=3, seed=11, num_envs=2)
    ds = load_dataset(out)
    env = make_env("CartPole-v1")
    for k in range(3):
        obs0, _ = env.reset(seed=11 + k)
        np.testing.assert_array_equal(ds.episode(k).observations[0], obs0)


def test_checkpoint_policy_provenance_and_actions(tmp_path: Path, cartpole_ckpt: Path) -> None:
    out = tmp_path / "c.h5"
    res = collect_demo_data(str(cartpole_ckpt), None, out, n_episodes=6, seed=0, num_envs=3)  # env from ckpt
    ds = load_dataset(out)
    assert ds.env_id == "CartPole-v1" and ds.num_episodes == 6
    prov = ds.provenance
    assert prov["checkpoint_sha256"] == file_sha256(cartpole_ckpt) and prov["algo"] == "bc"
    assert prov["policy_kind"] == "checkpoint" and prov["policy_return_source"].startswith("evaluated")
    assert isinstance(prov["policy_return"], float) and res.policy_return == prov["policy_return"]
    policy = load_policy(cartpole_ckpt)  # deterministic: the stored actions are the policy's greedy actions
    np.testing.assert_array_equal(ds.actions, policy.act(np.array(ds.observations)))


def test_policy_object_and_training_figures(tmp_path: Path, pendulum_ckpt: Path) -> None:
    out = tmp_path / "p.h5"
    res = collect_demo_data(pendulum_ckpt, "Pendulum-v1", out, n_episodes=2, num_envs=2)
    ds = load_dataset(out)
    assert ds.provenance["policy_return"] == -1234.5 and ds.provenance["policy_return_source"] == "checkpoint"
    assert len(ds) == 400 and ds.episode_truncated.all()  # Pendulum's 200-step time limit
    low, high = ds.action_space.low, ds.action_space.high
    assert np.all(ds.actions >= low) and np.all(ds.actions <= high)
    out2 = tmp_path / "p2.h5"
    res2 = collect_demo_data(load_policy(pendulum_ckpt), "Pendulum-v1", out2, n_episodes=2, num_envs=2)
    assert_same(out, out2)
    assert load_dataset(out2).provenance["policy_kind"] == "object"
    assert res2.mean_return == pytest.approx(res.mean_return)


def test_steps_budget_cuts_the_last_episode_as_truncated(tmp_path: Path) -> None:
    out = tmp_path / "s.h5"
    res = collect_demo_data("random", "CartPole-v1", out, n_steps=500, seed=1, num_envs=4)
    ds = load_dataset(out)
    assert len(ds) == res.steps == 500
    assert_complete(out)  # the cut episode is marked truncated, never left open
    full = load_dataset(out)
    # the cut episode is a prefix of the full episode with the same seed
    collect_demo_data("random", "CartPole-v1", tmp_path / "e.h5", n_episodes=ds.num_episodes, seed=1, num_envs=4)
    whole = load_dataset(tmp_path / "e.h5")
    last = ds.num_episodes - 1
    n = int(ds.episode_lengths[last])
    if res.cut_episodes:
        assert whole.episode_lengths[last] > n and not ds.episode_terminated[last] and ds.episode_truncated[last]
        np.testing.assert_array_equal(whole.episode(last).observations[n], ds.final_observations[last])
    np.testing.assert_array_equal(whole.observations[:500], full.observations)
    assert ds.provenance["n_steps"] == 500


def test_steps_budget_on_an_episode_boundary_is_not_a_cut(tmp_path: Path) -> None:
    collect_demo_data("random", "CartPole-v1", tmp_path / "e.h5", n_episodes=3, seed=4, num_envs=2)
    total = len(load_dataset(tmp_path / "e.h5"))
    res = collect_demo_data("random", "CartPole-v1", tmp_path / "s.h5", n_steps=total, seed=4, num_envs=2)
    assert res.cut_episodes == 0 and res.episodes == 3
    assert_same(tmp_path / "e.h5", tmp_path / "s.h5")


# ---- reproducibility ---------------------------------------------------------------------

@pytest.mark.parametrize("budget", [{"n_episodes": 30}, {"n_steps": 777}])
def test_random_same_seed_identical_across_num_envs(tmp_path: Path, budget: dict) -> None:
    paths = []
    for i, k in enumerate((1, 3, 8, 8)):
        paths.append(tmp_path / f"{i}.h5")
        collect_demo_data("random", "CartPole-v1", paths[-1], seed=5, num_envs=k, **budget)
    for p in paths[1:]:
        assert_same(paths[0], p)


def test_different_seeds_differ(tmp_path: Path) -> None:
    collect_demo_data("random", "CartPole-v1", tmp_path / "a.h5", n_episodes=5, seed=0)
    collect_demo_data("random", "CartPole-v1", tmp_path / "b.h5", n_episodes=5, seed=1)
    a, b = arrays(tmp_path / "a.h5"), arrays(tmp_path / "b.h5")
    assert a["obs"].shape != b["obs"].shape or not np.array_equal(a["obs"], b["obs"])


@pytest.mark.parametrize("deterministic", [True, False])
@pytest.mark.parametrize("env_id", ["CartPole-v1", "Pendulum-v1"])
def test_neural_identical_across_num_envs(tmp_path: Path, env_id: str, deterministic: bool) -> None:
    """Bitwise, log-probs and continuous actions included (policy batches are padded to 16 rows)."""
    ckpt = write_checkpoint(tmp_path / "p.pt", env_id, hidden_sizes=(64, 64))
    budget = {"n_episodes": 9} if env_id == "CartPole-v1" else {"n_steps": 700}
    for i, k in enumerate((1, 3, 20)):
        collect_demo_data(ckpt, env_id, tmp_path / f"{i}.h5", seed=3, num_envs=k, deterministic=deterministic,
                          eval_episodes=0, **budget)
    assert_same(tmp_path / "0.h5", tmp_path / "1.h5")
    assert_same(tmp_path / "0.h5", tmp_path / "2.h5")


def test_stochastic_stores_log_probs_and_differs_from_greedy(tmp_path: Path, cartpole_ckpt: Path) -> None:
    collect_demo_data(cartpole_ckpt, "CartPole-v1", tmp_path / "s.h5", n_episodes=8, deterministic=False)
    collect_demo_data(cartpole_ckpt, "CartPole-v1", tmp_path / "g.h5", n_episodes=8)
    ds = load_dataset(tmp_path / "s.h5")
    assert set(ds.extras) == {"log_prob"} and load_dataset(tmp_path / "g.h5").extras == {}
    policy, obs = load_policy(cartpole_ckpt), np.array(ds.observations)
    with torch.no_grad():  # known answer: the stored log-prob is the policy's log-prob of the stored action
        lp = policy.distribution(policy.preprocess(obs)).log_prob(policy.actions_to_tensor(np.array(ds.actions)))
    np.testing.assert_allclose(ds.extras["log_prob"], lp.numpy(), rtol=1e-5, atol=1e-6)
    assert ds.provenance["deterministic"] is False
    greedy = policy.act(obs)
    assert (greedy != ds.actions).any()  # it really sampled


def test_stochastic_gaussian_same_seed_identical(tmp_path: Path, pendulum_ckpt: Path) -> None:
    for name in ("a", "b"):
        collect_demo_data(pendulum_ckpt, "Pendulum-v1", tmp_path / f"{name}.h5", n_episodes=3, seed=2, num_envs=3,
                          deterministic=False)
    assert_same(tmp_path / "a.h5", tmp_path / "b.h5")
    ds = load_dataset(tmp_path / "a.h5")
    assert ds.extras["log_prob"].shape == (600,) and np.isfinite(ds.extras["log_prob"]).all()


def test_dict_observations(tmp_path: Path) -> None:
    for i, k in enumerate((1, 5)):
        collect_demo_data("random", DICT_ENV_ID, tmp_path / f"{i}.h5", n_episodes=12, seed=0, num_envs=k)
    a, b = load_dataset(tmp_path / "0.h5"), load_dataset(tmp_path / "1.h5")
    assert set(a.observations) == {"pos", "count"}
    for key in ("pos", "count"):
        np.testing.assert_array_equal(a.observations[key], b.observations[key])
    np.testing.assert_array_equal(a.actions, b.actions)
    ep = a.episode(0)  # observation t's step counter is t
    np.testing.assert_array_equal(ep.observations["count"], np.arange(len(ep)))


# ---- modes, locks, failures --------------------------------------------------------------

def test_append_adds_episodes_and_warns_on_repeated_seeds(tmp_path: Path) -> None:
    out = tmp_path / "a.h5"
    collect_demo_data("random", "CartPole-v1", out, n_episodes=4, seed=0)
    res = collect_demo_data("random", "CartPole-v1", out, n_episodes=3, seed=4, mode="append")
    ds = load_dataset(out)
    assert ds.num_episodes == 7 == res.total_episodes and res.episodes == 3
    np.testing.assert_array_equal(ds.episode_seeds, np.arange(7))
    assert len(ds.metadata["appends"]) == 1
    with pytest.warns(UserWarning, match="--seed 7"):
        collect_demo_data("random", "CartPole-v1", out, n_episodes=2, seed=0, mode="append")


def test_existing_file_is_refused_then_overwritten_with_force(tmp_path: Path) -> None:
    out = tmp_path / "a.h5"
    collect_demo_data("random", "CartPole-v1", out, n_episodes=4)
    before = out.read_bytes()
    with pytest.raises(DatasetError, match="--append"):
        collect_demo_data("random", "CartPole-v1", out, n_episodes=2)
    assert out.read_bytes() == before
    collect_demo_data("random", "CartPole-v1", out, n_episodes=2, mode="overwrite")
    assert load_dataset(out).num_episodes == 2


def test_second_writer_is_refused_by_the_lock(tmp_path: Path) -> None:
    out = tmp_path / "a.h5"
    collect_demo_data("random", "CartPole-v1", out, n_episodes=3)
    before = out.read_bytes()
    env = make_env("CartPole-v1")
    with DatasetWriter(out, observation_space=env.observation_space, action_space=env.action_space,
                       env_id="CartPole-v1", mode="append"):
        with pytest.raises(DatasetLockedError, match="another process"):
            collect_demo_data("random", "CartPole-v1", out, n_episodes=2, seed=3, mode="append")
    assert out.read_bytes() == before


def test_mismatched_env_leaves_no_file(tmp_path: Path, cartpole_ckpt: Path) -> None:
    out = tmp_path / "sub" / "x.h5"
    with pytest.raises(SpaceMismatchError, match="Pendulum-v1"):
        collect_demo_data(cartpole_ckpt, "Pendulum-v1", out, n_episodes=2)
    assert not out.exists() and not out.parent.exists()


class _FailingPolicy(Policy):
    """Acts randomly, then raises on its 30th call (a bug half-way through a collection)."""

    def __init__(self) -> None:
        env = make_env("CartPole-v1")
        self.observation_space, self.action_space, self.calls = env.observation_space, env.action_space, 0

    def act(self, obs: np.ndarray, *, deterministic: bool = True) -> np.ndarray:
        self.calls += 1
        if self.calls == 30:
            raise RuntimeError("policy bug")
        return np.zeros(len(obs), np.int64)


@pytest.mark.parametrize("mode", ["create", "append"])
def test_failure_mid_collection_writes_nothing(tmp_path: Path, mode: str) -> None:
    out = tmp_path / "f.h5"
    if mode == "append":
        collect_demo_data("random", "CartPole-v1", out, n_episodes=3)
    before = out.read_bytes() if out.exists() else None
    with pytest.raises(RuntimeError, match="policy bug"):
        collect_demo_data(_FailingPolicy(), "CartPole-v1", out, n_episodes=50, seed=3, num_envs=2, mode=mode,
                          eval_episodes=0, write_block_steps=8)
    assert (out.read_bytes() if out.exists() else None) == before
    assert [p.name for p in tmp_path.iterdir()] == ([] if mode == "create" else ["f.h5"])


@pytest.mark.parametrize("kwargs, match", [
    ({"env_id": "NoSuchEnv-v0", "n_episodes": 2}, "unknown env id"),
    ({"env_id": "CartPole-v1"}, "exactly one budget"),
    ({"env_id": "CartPole-v1", "n_episodes": 2, "n_steps": 5}, "exactly one budget"),
    ({"env_id": "CartPole-v1", "n_episodes": 0}, "n_episodes must be >= 1"),
    ({"env_id": "CartPole-v1", "n_episodes": 2, "num_envs": 0}, "num_envs"),
    ({"env_id": "CartPole-v1", "n_episodes": 2, "compression": "zip"}, "compression"),
    ({"n_episodes": 2}, "needs --env"),
])
def test_user_errors_leave_no_file(tmp_path: Path, kwargs: dict, match: str) -> None:
    out = tmp_path / "x.h5"
    with pytest.raises(UserError, match=match):
        collect_demo_data("random", path=out, **kwargs)
    assert list(tmp_path.iterdir()) == []


def test_bad_policy_spec_and_unknown_config_key(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no such checkpoint"):
        collect_demo_data("nonexistent.pt", "CartPole-v1", tmp_path / "x.h5", n_episodes=1)
    with pytest.raises(UserError, match="unknown CollectConfig key"):
        collect_demo_data({"policy": "random", "env_id": "CartPole-v1", "n_episode": 3})
    assert list(tmp_path.iterdir()) == []


def test_named_expert_from_experts_dir_and_default_path(tmp_path: Path) -> None:
    experts = tmp_path / "experts"
    write_checkpoint(experts / "CartPole-v1-ppo.pt", "CartPole-v1", hidden_sizes=(8,), training={"mean_return": 500.0})
    cfg = CollectConfig(policy="ppo", env_id="CartPole-v1", n_episodes=2, experts_dir=str(experts))
    res = collect_demo_data(cfg)  # path unset: datasets/<env>-<policy>.h5 under the working directory
    assert Path(res.path) == default_dataset_path("CartPole-v1", "ppo") == Path("datasets/cartpole-v1-ppo.h5")
    ds = load_dataset(res.path)
    assert ds.provenance["policy_kind"] == "expert" and ds.provenance["policy_return"] == 500.0
    with pytest.raises(UserError, match="train-expert"):
        collect_demo_data("dqn", "CartPole-v1", tmp_path / "d.h5", n_episodes=1, experts_dir=str(experts),
                          train_missing_expert=False)


# ---- interrupts --------------------------------------------------------------------------

@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
@pytest.mark.parametrize("budget", [{"n_episodes": 10**6}, {"n_steps": 10**8}])
def test_signal_keeps_completed_episodes(tmp_path: Path, sig: int, budget: dict) -> None:
    out = tmp_path / "i.h5"
    sent = []

    def progress(info: dict) -> None:
        if info.get("episodes", 0) >= 20 and not sent:
            sent.append(True)
            os.kill(os.getpid(), sig)

    with pytest.raises(CollectionInterrupted) as exc:
        collect_demo_data("random", "CartPole-v1", out, seed=0, num_envs=8, progress=progress, **budget)
    res = exc.value.result
    assert res.interrupted and res.episodes >= 20
    ds = load_dataset(out)
    assert ds.num_episodes == res.episodes and len(ds) == res.steps
    assert_complete(out)
    assert sorted(ds.episode_seeds) == list(ds.episode_seeds)  # index order
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handlers restored


def test_interrupt_before_any_episode_leaves_no_file(tmp_path: Path) -> None:
    out = tmp_path / "i.h5"

    def progress(info: dict) -> None:
        if info.get("event") == "start":
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(CollectionInterrupted) as exc:
        collect_demo_data("random", "CartPole-v1", out, n_episodes=100, progress=progress)
    assert exc.value.result.episodes == 0 and not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_interrupted_append_keeps_the_original(tmp_path: Path) -> None:
    out = tmp_path / "a.h5"
    collect_demo_data("random", "CartPole-v1", out, n_episodes=5)

    def progress(info: dict) -> None:
        if info.get("episodes", 0) >= 10:
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(CollectionInterrupted) as exc:
        collect_demo_data("random", "CartPole-v1", out, n_episodes=10**6, seed=5, mode="append", progress=progress)
    ds = load_dataset(out)
    assert ds.num_episodes == 5 + exc.value.result.episodes == exc.value.result.total_episodes
    seeds = ds.episode_seeds  # the originals, then the finished new episodes in index order (running ones dropped)
    np.testing.assert_array_equal(seeds[:5], np.arange(5))
    assert np.all(np.diff(seeds) > 0)
    assert_complete(out)


def test_random_weight_policy_matches_policy_object(tmp_path: Path) -> None:
    env = make_env("Acrobot-v1")
    torch.manual_seed(0)
    policy = make_policy(env.observation_space, env.action_space, hidden_sizes=(8,))
    res = collect_demo_data(policy, "Acrobot-v1", tmp_path / "a.h5", n_steps=300, eval_episodes=0)
    assert res.steps == 300 and res.policy_return is None
