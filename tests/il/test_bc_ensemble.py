"""BC's ensemble option: N members trained in one run (one checkpoint), the default 1 trains bit for bit as
without the option, bad values are refused before anything is written; DAgger passes it to its learner."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from demokit.errors import ConfigError
from demokit.il.bc import train_bc
from demokit.il.dagger import train_dagger
from demokit.policies import EnsemblePolicy, load_checkpoint
from demokit.policies.random import RandomPolicy

ONE = {"epochs": 3, "eval_episodes": 0, "hidden_sizes": (16, 16), "loss": "mse", "seed": 3}


def test_default_ensemble_is_one_network_bit_for_bit(pendulum, cartpole3):
    for data, kw in ((pendulum, ONE), (cartpole3, {"epochs": 2, "eval_episodes": 0})):
        unset = train_bc(data, **kw).policy.state_dict()
        one = train_bc(data, ensemble=1, **kw).policy.state_dict()
        assert unset.keys() == one.keys() and all(torch.equal(unset[k], one[k]) for k in unset)


@pytest.mark.parametrize("loss", ["mse", "nll"])
def test_member_0_trains_like_the_single_network(pendulum, loss):
    """Same initial weights and batch order as the one-network run: member 0 ends where it ends (up to the
    rounding of batched products); the other members from their own weights and orders end elsewhere."""
    single = train_bc(pendulum, **{**ONE, "loss": loss}).policy
    res = train_bc(pendulum, ensemble=3, **{**ONE, "loss": loss})
    ens = res.policy
    assert isinstance(ens, EnsemblePolicy) and ens.members == 3
    m0, m1 = ens.member(0), ens.member(1)
    for k, v in single.state_dict().items():
        torch.testing.assert_close(m0.state_dict()[k], v, rtol=1e-4, atol=1e-5)
    assert not torch.allclose(m1.encoder.net[0].weight, m0.encoder.net[0].weight, atol=1e-3)
    assert np.isfinite(res.history[-1]["loss"]) and "val_error" in res.history[-1]
    if loss == "mse":  # MSE fits the means only
        assert torch.equal(ens.head.log_std, torch.zeros(3, 1))


def test_ensemble_learns_and_round_trips(pendulum, tmp_path):
    """The pendulum data's actions are a linear map of the observation plus noise: every member, and their
    mean, fit it; the checkpoint holds all members and acts the same after loading."""
    res = train_bc(pendulum, ensemble=2, epochs=40, eval_episodes=0, hidden_sizes=(32,), loss="mse", seed=0,
                   out=str(tmp_path / "ens.pt"))
    assert res.history[-1]["val_error"] < 0.25 and res.history[-1]["val_error"] < res.history[0]["val_error"]
    ck = load_checkpoint(tmp_path / "ens.pt")
    assert isinstance(ck.policy, EnsemblePolicy) and ck.training["config"]["ensemble"] == 2
    obs = np.random.default_rng(0).uniform(-1, 1, size=(6, 3)).astype(np.float32)
    assert np.array_equal(ck.policy.act(obs), res.policy.act(obs))


def test_weight_decay_skips_an_ensembles_biases(pendulum):
    kw = {**ONE, "epochs": 1, "lr": 1e-3}
    plain = train_bc(pendulum, ensemble=2, **kw).policy.state_dict()
    decayed = train_bc(pendulum, ensemble=2, weight_decay=5.0, **kw).policy.state_dict()
    assert not torch.equal(plain["encoder.net.0.weight"], decayed["encoder.net.0.weight"])
    assert plain["encoder.net.0.weight"].abs().sum() > decayed["encoder.net.0.weight"].abs().sum()


@pytest.mark.parametrize("bad", [0, -2])
def test_bad_ensemble_is_a_config_error(pendulum, tmp_path, bad):
    with pytest.raises(ConfigError, match="ensemble"):
        train_bc(pendulum, ensemble=bad, out=str(tmp_path / "no.pt"), **ONE)
    assert not (tmp_path / "no.pt").exists()


def test_ensemble_refuses_discrete_actions_and_state_heads(cartpole3, tmp_path):
    with pytest.raises(ConfigError, match="continuous actions"):
        train_bc(cartpole3, ensemble=2, epochs=1, eval_episodes=0, out=str(tmp_path / "no.pt"))
    with pytest.raises(ConfigError, match="aux_state"):
        train_bc(cartpole3, ensemble=2, aux_state=1.0, epochs=1, eval_episodes=0)
    assert not (tmp_path / "no.pt").exists()


def test_dagger_trains_an_ensemble_learner(pendulum, tmp_path):
    from demokit.envs import make_env

    env = make_env("Pendulum-v1")
    expert = RandomPolicy(env.observation_space, env.action_space, seed=1)
    env.close()
    res = train_dagger(expert_policy=expert, env_id="Pendulum-v1", rounds=2, episodes_per_round=1, epochs=1,
                       eval_episodes=0, demonstrations=str(pendulum), ensemble=2, out=str(tmp_path / "d.pt"))
    ck = load_checkpoint(res.checkpoint)
    assert isinstance(ck.policy, EnsemblePolicy) and ck.policy.members == 2
    assert ck.training["config"]["ensemble"] == 2
    with pytest.raises(ConfigError, match="ensemble"):
        train_dagger(expert_policy=expert, env_id="Pendulum-v1", ensemble=0, out=str(tmp_path / "no.pt"))
    assert not (tmp_path / "no.pt").exists()


def test_streamed_ensemble_members_share_the_batches(pendulum):
    """Streamed from the file, every member sees the same batches (from its own initial weights)."""
    res = train_bc(pendulum, ensemble=2, stream=True, **ONE)
    assert isinstance(res.policy, EnsemblePolicy) and np.isfinite(res.history[-1]["loss"])
    w = res.policy.encoder.net[0].weight
    assert not torch.allclose(w[0], w[1])


def test_a_row_sets_the_ensemble_and_a_given_value_wins(monkeypatch):
    """An env's tuned BC row may set the ensemble (Walker2d-v5's does); a given value wins."""
    from demokit.il.bc import BCConfig, describe_defaults, resolve_bc_config
    from demokit.rl import hyperparams

    row = 3
    monkeypatch.setitem(hyperparams.TUNED["Walker2d-v5"], "bc", {**hyperparams.TUNED["Walker2d-v5"]["bc"],
                                                                 "ensemble": row})
    cfg, taken = resolve_bc_config(BCConfig(), "Walker2d-v5")
    assert cfg.ensemble == row and taken["ensemble"] == row
    assert f"ensemble={row}" in describe_defaults("Walker2d-v5", taken)
    cfg, taken = resolve_bc_config(BCConfig(ensemble=1), "Walker2d-v5")
    assert cfg.ensemble == 1 and "ensemble" not in taken
    assert resolve_bc_config(BCConfig(), "Hopper-v5")[0].ensemble == 1  # its row leaves the generic one network
