"""Per-env BC defaults: the tuned table's "bc" rows fill what the caller leaves unset, never a given value;
the classic-control tasks keep the generic defaults; BC and DAgger record what they took."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import il_data
from demokit.il.bc import GENERIC_DEFAULTS, BCConfig, describe_defaults, resolve_bc_config, train_bc
from demokit.il.dagger import train_dagger
from demokit.policies import load_checkpoint
from demokit.policies.random import RandomPolicy
from demokit.rl.hyperparams import IMITATION_ROWS, TUNED, learner_rows, tuned_overrides

MUJOCO = ("Hopper-v5", "HalfCheetah-v5", "Walker2d-v5")


def test_bc_rows_only_name_fields_that_default_to_unset():
    """A row fills unset (None) fields only, so every key must be a BCConfig field whose default is None."""
    unset = {f.name for f in dataclasses.fields(BCConfig) if f.default is None}
    rows = {env: row["bc"] for env, row in TUNED.items() if "bc" in row}
    assert set(MUJOCO) <= set(rows)
    for env, row in rows.items():
        assert set(row) <= unset, (env, set(row) - unset)
        cfg, taken = resolve_bc_config(BCConfig(), env)
        assert taken == row and all(getattr(cfg, k) == v for k, v in row.items())
        # DAgger's learner: the env's own "dagger" row where it has one, else the same "bc" row
        dagger = TUNED[env].get("dagger", row)
        assert set(dagger) <= unset, (env, set(dagger) - unset)
        assert resolve_bc_config(BCConfig(), env, row_name="dagger")[1] == dagger
    assert "dagger" in TUNED["HalfCheetah-v5"] and TUNED["HalfCheetah-v5"]["dagger"] != rows["HalfCheetah-v5"]


def test_mujoco_defaults_and_a_given_value_wins():
    cfg, taken = resolve_bc_config(BCConfig(), "Hopper-v5")
    assert (cfg.loss, cfg.hidden_sizes, cfg.activation, cfg.eval_every) == ("mse", (256, 256), "relu", 0)
    assert taken == {"loss": "mse", "hidden_sizes": (256, 256), "activation": "relu", "eval_every": 0}
    cfg, taken = resolve_bc_config(BCConfig(loss="nll", hidden_sizes=(64, 64)), "Hopper-v5")
    assert (cfg.loss, cfg.hidden_sizes) == ("nll", (64, 64)) and taken == {"activation": "relu", "eval_every": 0}
    assert "loss" not in describe_defaults("Hopper-v5", taken) and "eval_every=0" in describe_defaults("Hopper-v5", taken)


@pytest.mark.parametrize("env_id", ["CartPole-v1", "Acrobot-v1", "MountainCar-v0", "Pendulum-v1"])
def test_classic_control_keeps_the_generic_defaults(env_id):
    """The classic-control checkpoints must not change: same network and loss as before the rows existed."""
    cfg, taken = resolve_bc_config(BCConfig(), env_id)
    assert taken == {} and (cfg.loss, cfg.hidden_sizes, cfg.activation, cfg.eval_every) == ("nll", (64, 64), "tanh", None)
    assert GENERIC_DEFAULTS == {"lr": 1e-3, "loss": "nll", "hidden_sizes": (64, 64), "activation": "tanh",
                                "obs_noise": 0.0, "weight_decay": 0.0, "lr_schedule": "constant", "ensemble": 1,
                                "val_fraction": 0.1}
    # the same lr, no input noise, no decay, a constant lr, one network, a tenth of the episodes held out: the same
    # weights as before these options
    assert (cfg.lr, cfg.obs_noise, cfg.weight_decay, cfg.lr_schedule, cfg.ensemble, cfg.val_fraction) == (
        1e-3, 0.0, 0.0, "constant", 1, 0.1)
    assert "generic" in describe_defaults(env_id, taken)


def test_a_row_sets_the_learning_rate_and_a_given_one_wins():
    """lr is a per-env default (Walker2d-v5's row lowers it); the rows without one keep Adam's 1e-3."""
    row_lr = tuned_overrides("bc", "Walker2d-v5")["lr"]
    cfg, taken = resolve_bc_config(BCConfig(), "Walker2d-v5")
    assert cfg.lr == taken["lr"] == row_lr < 1e-3
    cfg, taken = resolve_bc_config(BCConfig(lr=1e-3), "Walker2d-v5")
    assert cfg.lr == 1e-3 and "lr" not in taken
    assert resolve_bc_config(BCConfig(), "Hopper-v5")[0].lr == 1e-3


def test_imitation_rows_are_not_learners():
    """The pipeline picks an expert learner from the env's rows: the bc row is not one."""
    assert "bc" in IMITATION_ROWS and tuned_overrides("bc", "Hopper-v5")["loss"] == "mse"
    assert "bc" not in learner_rows("Hopper-v5") and "sac" in learner_rows("Hopper-v5")


def _hopper_data(path, episodes: int = 2):
    """A few short random-action Hopper-v5 episodes (only their spaces and shapes matter here)."""
    pytest.importorskip("mujoco")
    from demokit.envs import make_env

    env = make_env("Hopper-v5")
    policy = RandomPolicy(env.observation_space, env.action_space, seed=0)
    env.close()
    return il_data.write_episodes(path, "Hopper-v5", il_data.rollouts("Hopper-v5", policy, episodes, 0))


def test_train_bc_takes_and_records_the_env_row(tmp_path):
    data = _hopper_data(tmp_path / "hopper.h5")
    res = train_bc(data, epochs=1, eval_episodes=0, out=str(tmp_path / "bc.pt"))
    assert res.tuned_defaults == {"loss": "mse", "hidden_sizes": [256, 256], "activation": "relu", "eval_every": 0}
    ck = load_checkpoint(tmp_path / "bc.pt")
    assert ck.policy.arch.hidden_sizes == (256, 256)
    assert ck.training["config"]["loss"] == "mse" and ck.training["tuned_defaults"] == res.tuned_defaults
    mine = train_bc(data, epochs=1, eval_episodes=0, hidden_sizes=(16,), loss="nll")
    assert mine.policy.arch.hidden_sizes == (16,) and mine.tuned_defaults == {"activation": "relu", "eval_every": 0}
    assert mine.policy.arch.activation == "relu"


def test_dagger_learner_takes_bc_defaults_of_the_env(tmp_path):
    data = _hopper_data(tmp_path / "hopper.h5", episodes=1)
    from demokit.envs import make_env

    env = make_env("Hopper-v5")
    expert = RandomPolicy(env.observation_space, env.action_space, seed=1)
    env.close()
    res = train_dagger(expert_policy=expert, env_id="Hopper-v5", rounds=2, episodes_per_round=1, epochs=1,
                       eval_episodes=0, demonstrations=str(data), out=str(tmp_path / "dagger.pt"))
    ck = load_checkpoint(res.checkpoint)
    assert ck.policy.arch.hidden_sizes == (256, 256) and ck.policy.arch.activation == "relu"
    assert ck.training["config"]["loss"] == "mse" and ck.training["config"]["hidden_sizes"] == [256, 256]
    assert ck.training["config"]["lr"] == 1e-3  # Hopper's row leaves BC's learning rate
    assert np.isfinite(res.rounds[-1]["rollout_return"])


def test_dagger_takes_its_own_row_over_bcs(tmp_path, monkeypatch):
    """An env's "dagger" row configures DAgger's learner in place of its "bc" row (HalfCheetah-v5's keeps 5 members
    where BC trains 10); BC itself is not affected."""
    data = _hopper_data(tmp_path / "hopper.h5", episodes=1)
    monkeypatch.setitem(TUNED["Hopper-v5"], "dagger", {**TUNED["Hopper-v5"]["bc"], "hidden_sizes": (32,), "ensemble": 2})
    from demokit.envs import make_env

    env = make_env("Hopper-v5")
    expert = RandomPolicy(env.observation_space, env.action_space, seed=1)
    env.close()
    res = train_dagger(expert_policy=expert, env_id="Hopper-v5", rounds=1, episodes_per_round=1, epochs=1,
                       eval_episodes=0, demonstrations=str(data), out=str(tmp_path / "dagger.pt"))
    cfg = load_checkpoint(res.checkpoint).training["config"]
    assert cfg["hidden_sizes"] == [32] and cfg["ensemble"] == 2
    assert train_bc(data, epochs=1, eval_episodes=0).policy.arch.hidden_sizes == (256, 256)


def test_a_row_sets_the_validation_split_and_a_given_one_wins(tmp_path, monkeypatch):
    """val_fraction is a per-env default: a row of 0 trains on every episode (4 of 4, not 3 of 4 as 0.1's
    one held-out episode would leave); a value the caller gives wins over the row."""
    data = _hopper_data(tmp_path / "hopper.h5", episodes=4)
    monkeypatch.setitem(TUNED["Hopper-v5"], "bc", {**TUNED["Hopper-v5"]["bc"], "val_fraction": 0.0})
    res = train_bc(data, epochs=1, eval_episodes=0, out=str(tmp_path / "all.pt"))
    assert res.tuned_defaults["val_fraction"] == 0.0
    tr = load_checkpoint(tmp_path / "all.pt").training
    assert (tr["train_episodes"], tr["val_episodes"]) == (4, 0)
    train_bc(data, epochs=1, eval_episodes=0, val_fraction=0.25, out=str(tmp_path / "split.pt"))
    tr = load_checkpoint(tmp_path / "split.pt").training
    assert (tr["train_episodes"], tr["val_episodes"]) == (3, 1) and "val_fraction" not in tr["tuned_defaults"]
