import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces

from demokit.errors import UserError
from demokit.policies import ObsNormalizer, RandomPolicy, make_policy
from demokit.policies.neural import ROW_INVARIANT_BATCH, pad_rows


def test_obs_normalizer_matches_numpy_in_chunks():
    rng = np.random.default_rng(0)
    data = rng.normal(3.0, 2.0, size=(1000, 3))
    norm = ObsNormalizer(3)
    for chunk in np.array_split(data, 7):
        norm.update(chunk)
    np.testing.assert_allclose(norm.mean.numpy(), data.mean(0), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(norm.var.numpy(), data.var(0), rtol=1e-4)
    out = norm(torch.tensor(data[:2], dtype=torch.float32))
    np.testing.assert_allclose(out.numpy(), (data[:2] - data.mean(0)) / data.std(0), rtol=1e-3, atol=1e-3)
    norm.set_from_data(np.array([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]]))
    np.testing.assert_allclose(norm.mean.numpy(), [2.0, 2.0, 2.0])


def test_discrete_start_offset_and_stochastic_seeding():
    pol = make_policy(spaces.Box(-1, 1, (2,)), spaces.Discrete(3, start=5))
    obs = np.zeros((50, 2), np.float32)
    assert set(pol.act(obs).tolist()) <= {5, 6, 7}
    pol.seed(1)
    a = pol.act(obs, deterministic=False)
    pol.seed(1)
    np.testing.assert_array_equal(a, pol.act(obs, deterministic=False))
    assert len(set(a.tolist())) > 1  # near-uniform logits at init


def test_gaussian_actions_are_clipped_to_bounds():
    pol = make_policy(spaces.Box(-1, 1, (2,)), spaces.Box(-0.5, 0.5, (2,)), log_std_init=3.0)
    pol.seed(0)
    a = pol.act(np.zeros((100, 2), np.float32), deterministic=False)
    assert a.shape == (100, 2) and a.dtype == np.float32
    assert a.min() >= -0.5 and a.max() <= 0.5


def test_log_prob_of_env_actions():
    pol = make_policy(spaces.Box(-1, 1, (2,)), spaces.Discrete(2, start=1))
    x = pol.preprocess(np.zeros((3, 2), np.float32))
    lp = pol.distribution(x).log_prob(pol.actions_to_tensor(np.array([1, 2, 1])))
    torch.testing.assert_close(lp, torch.full((3,), float(np.log(0.5))), atol=1e-2, rtol=0)


def test_unsupported_heads_are_user_errors():
    with pytest.raises(UserError):
        make_policy(spaces.Box(-1, 1, (2,)), spaces.MultiDiscrete([2, 2]))
    with pytest.raises(UserError):
        make_policy(spaces.Box(-1, 1, (2,)), spaces.Box(-1, 1, (1,)), head="qvalue")


def test_random_policy_is_seeded_and_batched():
    env = gym.make("CartPole-v1")
    p = RandomPolicy(env.observation_space, env.action_space, seed=3)
    a = p.act(np.zeros((20, 4)))
    p.seed(3)
    np.testing.assert_array_equal(a, p.act(np.zeros((20, 4))))
    assert a.shape == (20,)


def test_pad_rows_appends_zero_rows_only_when_short():
    t = torch.ones(3, 2)
    padded = pad_rows(t, 5)
    assert padded.shape == (5, 2) and torch.equal(padded[:3], t) and not padded[3:].any()
    assert pad_rows(t, 3) is t and pad_rows(t, 0) is t


def test_padded_acting_gives_each_row_the_same_bits_whatever_the_batch():
    pol = make_policy(spaces.Box(-5, 5, (6,)), spaces.Box(-1, 1, (3,)), hidden_sizes=(32, 32))
    obs = np.random.default_rng(0).standard_normal((12, 6)).astype(np.float32)
    full = pol.act(obs, pad_to=ROW_INVARIANT_BATCH)
    for n in (1, 3, 7):
        np.testing.assert_array_equal(pol.act(obs[:n], pad_to=ROW_INVARIANT_BATCH), full[:n])
    np.testing.assert_allclose(pol.act(obs), full, rtol=1e-6, atol=1e-6)  # unpadded: same up to rounding


@pytest.mark.parametrize("act_space", [spaces.Discrete(4, start=2), spaces.Box(-1, 1, (2,))])
def test_sampling_with_per_row_generators_uses_one_stream_per_row(act_space):
    pol = make_policy(spaces.Box(-5, 5, (3,)), act_space, hidden_sizes=(16,), log_std_init=-1.0)
    obs = np.random.default_rng(1).standard_normal((5, 3)).astype(np.float32)

    def rngs(n: int) -> list[np.random.Generator]:
        return [np.random.default_rng(100 + i) for i in range(n)]

    a5, lp5 = pol.sample(pol.preprocess(obs), rngs=rngs(5), pad_to=ROW_INVARIANT_BATCH)
    a2, lp2 = pol.sample(pol.preprocess(obs[:2]), rngs=rngs(2), pad_to=ROW_INVARIANT_BATCH)
    torch.testing.assert_close(a5[:2], a2, rtol=0, atol=0)
    torch.testing.assert_close(lp5[:2], lp2, rtol=0, atol=0)
    assert pol.to_env_action(a5).shape == (5, *act_space.shape) and lp5.dtype == torch.float32
    with torch.no_grad():
        ref = pol.distribution(pol.preprocess(obs)).log_prob(a5)
    torch.testing.assert_close(lp5, ref, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="one generator per row"):
        pol.sample(pol.preprocess(obs), rngs=rngs(4))


def test_qvalue_policy_cannot_sample():
    pol = make_policy(spaces.Box(-1, 1, (2,)), spaces.Discrete(3), head="qvalue")
    with pytest.raises(ValueError, match="greedily"):
        pol.sample(pol.preprocess(np.zeros((1, 2), np.float32)), rngs=[np.random.default_rng(0)])
