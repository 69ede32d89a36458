"""Behavioral cloning: losses (known answers), the episode split, learning, seeding, bad inputs."""

from __future__ import annotations

import math
import warnings

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces

import il_data
from demokit.data import Episode, load_dataset
from demokit.errors import ConfigError, DatasetError, SpaceMismatchError
from demokit.evaluation import evaluate_policy
from demokit.il import BCConfig, bc_loss, train_bc
from demokit.il.bc import episode_rows, resolve_schedule, split_episodes
from demokit.policies import file_sha256, load_checkpoint, make_policy
from demokit.policies.distributions import HALF_LOG_2PI

FAST = {"eval_episodes": 0, "epochs": 3}


# -- losses ---------------------------------------------------------------------------------


def test_cross_entropy_known_answer():
    logits = torch.tensor([[0.0, 0.0], [math.log(3.0), 0.0], [0.0, math.log(3.0)]])
    target = torch.tensor([0, 0, 0])
    policy = make_policy(spaces.Box(-1, 1, (2,)), spaces.Discrete(2))
    got = bc_loss(policy, logits, target)
    np.testing.assert_allclose(got.numpy(), [math.log(2.0), -math.log(0.75), -math.log(0.25)], rtol=1e-6)


def test_gaussian_nll_known_answer():
    out = torch.zeros(1, 2)
    target = torch.tensor([[1.0, 2.0]])
    log_std = torch.tensor([0.0, math.log(2.0)])
    # dim 0: z = 1 -> 0.5 + 0 + c; dim 1: z = 2 / 2 = 1 -> 0.5 + ln 2 + c
    expected = 1.0 + math.log(2.0) + 2 * HALF_LOG_2PI
    policy = make_policy(spaces.Box(-1, 1, (2,)), spaces.Box(-1, 1, (2,)))
    with torch.no_grad():
        policy.head.log_std.copy_(log_std)
    got = bc_loss(policy, out, target, loss="nll").detach()
    np.testing.assert_allclose(got.numpy(), [expected], rtol=1e-6)
    ref = -torch.distributions.Normal(out, log_std.exp()).log_prob(target).sum(-1)
    np.testing.assert_allclose(got.numpy(), ref.numpy(), rtol=1e-6)


def test_mse_known_answer():
    policy = make_policy(spaces.Box(-1, 1, (2,)), spaces.Box(-1, 1, (2,)))
    got = bc_loss(policy, torch.tensor([[1.0, 2.0], [0.0, 0.0]]), torch.zeros(2, 2), loss="mse")
    np.testing.assert_allclose(got.numpy(), [2.5, 0.0])


# -- split ----------------------------------------------------------------------------------


@pytest.mark.parametrize("episodes,fraction,n_val", [(10, 0.1, 1), (10, 0.25, 2), (3, 0.1, 1), (2, 0.9, 1),
                                                     (1, 0.5, 0), (10, 0.0, 0), (40, 0.2, 8)])
def test_split_is_by_whole_episodes(episodes, fraction, n_val):
    train, val = split_episodes(episodes, fraction, seed=5)
    assert len(val) == n_val
    assert not set(train) & set(val)
    assert sorted([*train, *val]) == list(range(episodes))
    lengths = np.arange(1, episodes + 1) * 3
    starts = np.cumsum(lengths) - lengths
    tr, va = episode_rows(starts, lengths, train), episode_rows(starts, lengths, val)
    owner = np.repeat(np.arange(episodes), lengths)
    assert not set(owner[tr]) & set(owner[va])
    assert len(tr) + len(va) == lengths.sum() and not set(tr) & set(va)


def test_split_depends_on_seed_only():
    assert np.array_equal(split_episodes(20, 0.2, 1)[1], split_episodes(20, 0.2, 1)[1])
    assert any(not np.array_equal(split_episodes(20, 0.2, 1)[1], split_episodes(20, 0.2, s)[1]) for s in range(2, 6))


def test_default_schedule_follows_gradient_steps():
    cfg = BCConfig()
    assert resolve_schedule(cfg, 500) == (5000, 125)  # 2 steps per epoch: 10,000 steps, eval every ~250
    assert resolve_schedule(cfg, 4500) == (556, 14)  # 18 steps per epoch
    assert resolve_schedule(cfg, 1_000_000) == (20, 1)  # at least 20 epochs, at most one evaluation per epoch
    assert resolve_schedule(cfg, 4500, world_size=2) == (1112, 28)  # global batch 512: 9 steps per epoch
    assert resolve_schedule(BCConfig(epochs=7, eval_every=0), 4500) == (7, 0)


# -- learning -------------------------------------------------------------------------------


def test_cartpole_bc_reaches_475_from_10_episodes(cartpole10):
    res = train_bc(cartpole10, stop_value=500, seed=0)
    assert res.converged and res.mean_return >= 475
    assert res.wall_s > 0 and res.samples_per_s > 0  # speed is benchmarks/bench_bc.py's job, never a test's
    # an independent 20-episode evaluation on other seeds agrees
    ev = evaluate_policy(res.policy, "CartPole-v1", episodes=20, seed=12345, deterministic=True)
    assert ev.mean_return >= 475
    assert res.history[-1]["val_accuracy"] > 0.85


def test_stops_early_at_the_env_threshold(cartpole10):
    res = train_bc(cartpole10, eval_every=1, epochs=50)
    assert res.converged and res.epochs < 50 and res.mean_return >= 475
    evals = [h for h in res.history if "eval_mean" in h]
    assert len(evals) == res.epochs and evals[-1]["eval_mean"] == res.mean_return


def test_no_convergence_reported_below_stop_value(cartpole10):
    res = train_bc(cartpole10, epochs=2, eval_every=0, eval_episodes=3, stop_value=10_000)
    assert not res.converged and res.epochs == 2 and res.mean_return is not None


def test_same_seed_same_weights(cartpole3):
    a = train_bc(cartpole3, seed=3, **FAST).policy.state_dict()
    b = train_bc(cartpole3, seed=3, **FAST).policy.state_dict()
    c = train_bc(cartpole3, seed=4, **FAST).policy.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a if k.startswith(("encoder.", "head.")))


def test_training_loop_is_bitwise_the_plain_torch_loop(cartpole3):
    """The fast loop (split views, seeded backward, FusedAdam with one step counter, layers called by
    their forward functions) makes exactly the updates of the plain loop it replaced: per batch,
    ``(per-sample losses).sum() * (1 / rows)`` backward and torch's fused Adam (batch 100 leaves a
    smaller last batch, whose 1 / rows is not a power of two)."""
    import torch.nn.functional as F

    from demokit.il.bc import _init_policy, resolve_bc_config
    from demokit.runtime import torch_threads
    from demokit.seeding import derive_seed

    cfg = BCConfig(epochs=3, batch_size=100, val_fraction=0.0, eval_episodes=0, seed=2)
    res = train_bc(cartpole3, cfg)
    ds = load_dataset(cartpole3)
    cfg = resolve_bc_config(cfg, ds.env_id)[0]  # the generic lr (1e-3) among the defaults filled in
    ref = _init_policy(ds, cfg, "categorical")
    obs = np.asarray(ds.flat_observations(), dtype=np.float32)
    ref.fit_obs_statistics(obs)
    with torch_threads(1), torch.no_grad():
        x = ref.normalize(torch.from_numpy(obs))
    y = torch.from_numpy(np.asarray(ds.actions, dtype=np.int64))
    opt = torch.optim.Adam(ref.parameters(), lr=cfg.lr, fused=True)
    gen = torch.Generator().manual_seed(derive_seed(cfg.seed, "bc-order"))
    losses = []
    with torch_threads(1):
        for _ in range(cfg.epochs):
            perm = torch.randperm(len(x), generator=gen)
            total = torch.zeros(())
            for k in range(0, len(x), cfg.batch_size):
                idx = perm[k:k + cfg.batch_size]
                summed = F.cross_entropy(ref(x[idx]), y[idx], reduction="none").sum()
                opt.zero_grad(set_to_none=True)
                (summed * (1 / len(idx))).backward()
                opt.step()
                total += summed.detach()
            losses.append(float(total) / len(x))
    got, want = res.policy.state_dict(), ref.state_dict()
    assert got.keys() == want.keys() and all(torch.equal(got[k], want[k]) for k in got)
    assert [h["loss"] for h in res.history] == losses


def test_loss_decreases_and_history_has_validation_accuracy(cartpole10):
    res = train_bc(cartpole10, epochs=8, eval_episodes=0)
    losses = [h["loss"] for h in res.history]
    assert losses[-1] < losses[0] * 0.7
    assert all(0.0 <= h["val_accuracy"] <= 1.0 for h in res.history)
    assert res.mean_return is None and not res.converged


def test_continuous_nll_learns_mean_and_noise_std(pendulum):
    res = train_bc(pendulum, epochs=40, batch_size=64, eval_episodes=0, lr=3e-3, seed=0)
    std = float(res.policy.head.log_std.detach().exp())
    assert 0.07 < std < 0.2, std  # the data's action noise is 0.1
    assert res.history[-1]["val_error"] < 0.2
    assert res.history[-1]["val_loss"] < res.history[0]["val_loss"]


def test_continuous_mse_fits_the_mean_only(pendulum):
    res = train_bc(pendulum, epochs=40, batch_size=64, eval_episodes=0, lr=3e-3, loss="mse", seed=0)
    assert float(res.policy.head.log_std.detach()) == 0.0  # not trained with MSE
    assert res.history[-1]["val_error"] < 0.2
    ds = load_dataset(pendulum)
    obs = ds.observations[:200]
    target = il_data.NoisyLinearPendulum(0.0, 0).mean_action(obs)
    assert np.mean(np.abs(res.policy.act(obs) - target)) < 0.15


class _DictCartPole(gym.Wrapper):
    """CartPole with Dict observations {"cart": (x, x_dot), "pole": (theta, theta_dot)}."""

    def __init__(self) -> None:
        super().__init__(gym.make("CartPole-v1"))
        inner = self.env.observation_space
        self.observation_space = spaces.Dict({"cart": spaces.Box(inner.low[:2], inner.high[:2]),
                                              "pole": spaces.Box(inner.low[2:], inner.high[2:])})

    @staticmethod
    def _split(obs):
        return {"cart": obs[:2], "pole": obs[2:]}

    def reset(self, *, seed=None, options=None):
        obs, info = self.env.reset(seed=seed, options=options)
        return self._split(obs), info

    def step(self, action):
        obs, r, term, trunc, info = self.env.step(action)
        return self._split(obs), r, term, trunc, info


def test_dict_observations_are_flattened(il_dir):
    env_id = "DemokitTestDictCartPole-v0"
    if env_id not in gym.registry:
        gym.register(env_id, entry_point=_DictCartPole, max_episode_steps=500, reward_threshold=475.0)
    flat = il_data.rollouts("CartPole-v1", il_data.controller_policy(), 10, seed=3)
    eps = [Episode(observations={"cart": e.observations[:, :2], "pole": e.observations[:, 2:]}, actions=e.actions,
                   rewards=e.rewards, terminated=e.terminated, truncated=e.truncated,
                   final_observation={"cart": e.final_observation[:, :2], "pole": e.final_observation[:, 2:]})
           for e in flat]
    path = il_data.write_episodes(il_dir / "dict.h5", env_id, eps, spaces_from=_DictCartPole())
    res = train_bc(path, seed=0, eval_every=2, eval_episodes=10, epochs=30)
    assert res.converged and res.mean_return >= 475
    assert res.policy.obs_dim == 4


def test_single_episode_warns_and_skips_validation(cartpole1):
    with pytest.warns(UserWarning, match="single episode"):
        res = train_bc(cartpole1, **FAST)
    assert "val_loss" not in res.history[0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        train_bc(cartpole1, val_fraction=0.0, **FAST)


def test_checkpoint_holds_dataset_config_and_normalisation(cartpole3, tmp_path):
    out = tmp_path / "pol" / "bc.pt"
    res = train_bc(cartpole3, out=str(out), epochs=2, eval_episodes=2, eval_every=1, stop_value=10_000)
    assert res.checkpoint == str(out) and out.exists()
    ck = load_checkpoint(out)
    assert ck.algo == "bc" and ck.env_id == "CartPole-v1"
    tr = ck.training
    assert tr["dataset"] == str(cartpole3) and tr["dataset_sha256"] == file_sha256(cartpole3)
    assert tr["config"]["epochs"] == 2 and tr["config"]["hidden_sizes"] == [64, 64]
    assert tr["epochs"] == 2 and tr["mean_return"] == res.mean_return and len(tr["history"]) == 2
    assert tr["train_episodes"] + tr["val_episodes"] == 3
    obs = load_dataset(cartpole3).observations[:50]
    np.testing.assert_array_equal(ck.policy.act(obs), res.policy.act(obs))
    np.testing.assert_allclose(ck.policy.obs_norm.mean.numpy(), res.policy.obs_norm.mean.numpy())
    assert float(ck.policy.obs_norm.var.sum()) != 4.0  # real statistics, not the identity


def test_restores_the_thread_count(cartpole3):
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        train_bc(cartpole3, **FAST)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


# -- bad inputs -----------------------------------------------------------------------------


def test_mismatched_env_is_a_space_mismatch(cartpole3, tmp_path):
    out = tmp_path / "x.pt"
    with pytest.raises(SpaceMismatchError, match="Acrobot"):
        train_bc(cartpole3, env_id="Acrobot-v1", out=str(out), **FAST)
    assert not out.exists()


def test_empty_dataset_is_refused(il_dir, tmp_path):
    path = il_data.write_empty(il_dir / "empty.h5")
    with pytest.raises(DatasetError, match="empty"):
        train_bc(path, out=str(tmp_path / "x.pt"))
    assert not (tmp_path / "x.pt").exists()


@pytest.mark.parametrize("where", ["observations", "inf"])
def test_nan_or_inf_dataset_is_refused(il_dir, tmp_path, where):
    path = il_data.write_with_nan(il_dir / f"nan-{where}.h5", where)
    with pytest.raises(DatasetError, match="NaN/inf observation"):
        train_bc(path, out=str(tmp_path / "x.pt"))
    assert not (tmp_path / "x.pt").exists()


def test_out_of_range_discrete_action_is_refused(il_dir):
    eps = il_data.rollouts("CartPole-v1", il_data.controller_policy(), 2, 0)
    bad = eps[0].actions.copy()
    bad[3] = 7
    e = eps[0]
    eps[0] = Episode(observations=e.observations, actions=bad, rewards=e.rewards, terminated=e.terminated,
                     truncated=e.truncated, final_observation=e.final_observation)
    path = il_data.write_episodes(il_dir / "badact.h5", "CartPole-v1", eps)
    with pytest.raises(DatasetError, match="outside the action space"):
        train_bc(path, **FAST)


@pytest.mark.parametrize("bad", [{"epochz": 3}, {"epochs": 0}, {"val_fraction": 1.0}, {"lr": -1.0}, {"lr": float("nan")},
                                 {"loss": "huber"}, {"hidden_sizes": "64,x"}])
def test_bad_config_is_a_config_error(cartpole3, bad):
    with pytest.raises(ConfigError):
        train_bc(cartpole3, bad)


def test_config_accepts_mapping_and_dataclass(cartpole3):
    a = train_bc(cartpole3, {"epochs": 2, "eval_episodes": 0, "hidden_sizes": [16]})
    b = train_bc(cartpole3, BCConfig(epochs=2, eval_episodes=0, hidden_sizes=(16,)))
    assert a.epochs == b.epochs == 2
    assert all(torch.equal(a.policy.state_dict()[k], b.policy.state_dict()[k]) for k in a.policy.state_dict())


# -- input noise (obs_noise) -------------------------------------------------------------------


def test_obs_noise_zero_is_the_default_and_draws_nothing(cartpole3):
    """obs_noise 0 (the generic default) trains exactly as before the option existed: no extra draws."""
    a = train_bc(cartpole3, seed=1, **FAST).policy.state_dict()
    b = train_bc(cartpole3, seed=1, obs_noise=0.0, **FAST).policy.state_dict()
    c = train_bc(cartpole3, seed=1, obs_noise=0.3, **FAST).policy.state_dict()
    d = train_bc(cartpole3, seed=1, obs_noise=0.3, **FAST).policy.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a) and all(torch.equal(c[k], d[k]) for k in c)
    assert any(not torch.equal(a[k], c[k]) for k in a if k.startswith(("encoder.", "head.")))


def test_obs_noise_draws_the_std_it_names(cartpole3):
    """The augmentation adds N(0, obs_noise^2) per input value: its draws have that std and mean 0."""
    from demokit.il.bc import _Trainer

    class Probe:  # the one attribute _noisy reads besides the generator
        def __init__(self, std):
            self.cfg = BCConfig(obs_noise=std)
            self.noise_gen = torch.Generator().manual_seed(0)

    x = torch.full((20_000, 4), 3.0)
    got = _Trainer._noisy(Probe(0.5), x) - x
    assert abs(float(got.std()) - 0.5) < 0.01 and abs(float(got.mean())) < 0.01


def test_obs_noise_shrinks_the_fitted_slope_like_ridge_regression(pendulum):
    """Least squares on inputs with added N(0, s^2) noise is, for a linear model, ridge regression on the clean
    (normalised) inputs with penalty s^2 (E over the noise of (w.(z + e) - t)^2 = (w.z - t)^2 + s^2 |w|^2): the
    response to the linear target shrinks to the ridge solution's (0.50 here at s = 1). The net fits
    E[t | noisy input] instead, which on these non-Gaussian inputs (cos, sin of an angle) shrinks less (~0.66):
    between ridge's and 1 with noise; near 1 without."""
    ds = load_dataset(pendulum)
    obs = ds.observations[:].astype(np.float64)
    target = il_data.NoisyLinearPendulum(0.0, 0).mean_action(obs)[:, 0]
    t = target - target.mean()
    z = (obs - obs.mean(0)) / obs.std(0)

    def slope(pred):
        return float(((pred - pred.mean()) * t).sum() / (t * t).sum())

    for std in (0.0, 1.0):
        res = train_bc(pendulum, epochs=30, batch_size=64, eval_episodes=0, lr=3e-3, loss="mse", seed=0,
                       val_fraction=0.0, obs_noise=std)
        ridge = z @ np.linalg.solve(z.T @ z / len(z) + std**2 * np.eye(z.shape[1]), z.T @ t / len(z))
        got, want = slope(res.policy.act(obs)[:, 0].astype(np.float64)), slope(ridge)
        if std == 0:
            assert abs(got - 1) < 0.08 and abs(want - 1) < 0.01, (got, want)
        else:
            assert want - 0.05 < got < 0.85, (got, want)


@pytest.mark.parametrize("bad", [-0.1, float("nan"), float("inf")])
def test_bad_obs_noise_is_a_config_error(cartpole3, bad):
    with pytest.raises(ConfigError, match="obs_noise"):
        train_bc(cartpole3, obs_noise=bad, **FAST)


def test_linear_lr_schedule_known_steps(cartpole3):
    """lr_schedule="linear": epoch e of E trains at lr * (1 - (e - 1) / E); the first epoch is the constant run's."""
    lin = train_bc(cartpole3, seed=2, lr=2e-3, lr_schedule="linear", epochs=4, eval_episodes=0)
    const = train_bc(cartpole3, seed=2, lr=2e-3, epochs=4, eval_episodes=0)
    assert [h["lr"] for h in lin.history] == pytest.approx([2e-3, 1.5e-3, 1e-3, 0.5e-3])
    assert lin.history[0]["loss"] == const.history[0]["loss"] and lin.history[1]["loss"] != const.history[1]["loss"]
    assert "lr" not in const.history[0]


def test_weight_decay_known_answer_after_one_step(cartpole3):
    """One gradient step (one batch holds every row): the same Adam update, then each weight matrix times
    1 - lr * weight_decay; biases as without decay."""
    one = {"epochs": 1, "batch_size": 10_000, "val_fraction": 0.0, "eval_episodes": 0, "seed": 4, "lr": 0.01}
    plain = train_bc(cartpole3, **one).policy.state_dict()
    decayed = train_bc(cartpole3, weight_decay=20.0, **one).policy.state_dict()
    for k, v in plain.items():
        want = v * (1 - 0.01 * 20.0) if k.endswith("weight") and v.dim() > 1 else v
        assert torch.allclose(decayed[k], want, rtol=0, atol=1e-7), k
    with pytest.raises(ConfigError, match="weight_decay"):
        train_bc(cartpole3, weight_decay=200.0, **one)  # lr * weight_decay >= 1 would flip the weights' sign


def test_keep_best_ends_with_the_best_evaluations_weights(cartpole3, monkeypatch):
    """keep_best: with evaluations scripted to 10, 30, 20 the result holds epoch 2's weights (those of a run
    stopped after 2 epochs) and that evaluation's return; without it, the last epoch's."""
    from demokit.il import bc

    def scripted(returns):
        it = iter(returns)
        monkeypatch.setattr(bc._Trainer, "_evaluate", lambda self: (next(it), 0.0))

    cfg = dict(eval_every=1, eval_episodes=1, stop_value=10_000, seed=0)
    scripted([10.0, 30.0, 20.0])
    best = train_bc(cartpole3, epochs=3, keep_best=True, **cfg)
    scripted([10.0, 30.0])
    two = train_bc(cartpole3, epochs=2, **cfg)
    scripted([10.0, 30.0, 20.0])
    last = train_bc(cartpole3, epochs=3, **cfg)
    assert best.mean_return == 30.0 and best.history[-1]["kept_epoch"] == 2 and last.mean_return == 20.0
    for k, v in best.policy.state_dict().items():
        assert torch.equal(v, two.policy.state_dict()[k]), k
    assert any(not torch.equal(v, last.policy.state_dict()[k]) for k, v in best.policy.state_dict().items())
