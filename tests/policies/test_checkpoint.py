import pickle

import gymnasium as gym
import numpy as np
import pytest
import torch

from demokit.errors import CheckpointError
from demokit.policies import load_checkpoint, load_policy, make_policy, save_checkpoint


@pytest.mark.parametrize("env_id", ["CartPole-v1", "Pendulum-v1"])
def test_round_trip_acts_identically(tmp_path, env_id):
    env = gym.make(env_id)
    pol = make_policy(env.observation_space, env.action_space, hidden_sizes=(16,), normalize_obs=True)
    obs = np.random.default_rng(0).normal(size=(32, env.observation_space.shape[0])).astype(np.float32)
    pol.obs_norm.update(obs * 3 + 1)
    path = tmp_path / "p.pt"
    sha = save_checkpoint(path, pol, algo="ppo", env_id=env_id, training={"mean_return": 1.5, "arr": np.float32(2)},
                          extra={"critic": {"w": torch.ones(2)}})
    ck = load_checkpoint(path)
    assert ck.sha256 == sha and ck.algo == "ppo" and ck.env_id == env_id
    assert ck.training == {"mean_return": 1.5, "arr": 2.0}
    assert torch.equal(ck.extra["critic"]["w"], torch.ones(2))
    np.testing.assert_array_equal(ck.policy.act(obs), pol.act(obs))
    torch.testing.assert_close(ck.policy.obs_norm.mean, pol.obs_norm.mean)


def test_refuses_missing_truncated_and_foreign_files(tmp_path):
    env = gym.make("CartPole-v1")
    path = tmp_path / "p.pt"
    save_checkpoint(path, make_policy(env.observation_space, env.action_space), algo="bc", env_id="CartPole-v1")
    with pytest.raises(CheckpointError, match="no such"):
        load_policy(tmp_path / "missing.pt")
    trunc = tmp_path / "trunc.pt"
    trunc.write_bytes(path.read_bytes()[:300])
    with pytest.raises(CheckpointError, match="truncated"):
        load_policy(trunc)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    with pytest.raises(CheckpointError, match="not a demokit policy checkpoint"):
        load_policy(foreign)
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(CheckpointError):
        load_policy(text)


class _Evil:
    def __reduce__(self):
        import os
        return (os.system, ("touch pwned-by-checkpoint",))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_loading_never_runs_code(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    evil = tmp_path / "evil.pt"
    torch.save({"format": "demokit-policy", "payload": _Evil()}, evil, pickle_protocol=2)
    with pytest.raises(CheckpointError):
        load_policy(evil)
    assert not (tmp_path / "pwned-by-checkpoint").exists()
    raw = tmp_path / "evil.pkl"
    raw.write_bytes(pickle.dumps(_Evil()))
    with pytest.raises(CheckpointError):
        load_policy(raw)
    assert not (tmp_path / "pwned-by-checkpoint").exists()


def test_newer_format_version_refused(tmp_path):
    env = gym.make("CartPole-v1")
    path = tmp_path / "p.pt"
    save_checkpoint(path, make_policy(env.observation_space, env.action_space), algo="bc", env_id="CartPole-v1")
    payload = torch.load(path, weights_only=True)
    payload["format_version"] = 99
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match="upgrade demokit"):
        load_policy(path)
