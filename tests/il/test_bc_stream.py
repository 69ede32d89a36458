"""Streaming BC: automatic selection under a memory budget, learning from streamed batches, bad budgets."""

from __future__ import annotations

import pytest

from demokit.data import load_dataset
from demokit.errors import ConfigError
from demokit.il import train_bc
from demokit.il.bc import BCConfig, plan_memory


def test_plan_streams_only_when_the_split_does_not_fit(cartpole10):
    ds = load_dataset(cartpole10)
    big = plan_memory(ds, BCConfig(max_memory_mb=64), 4500, 500)
    assert not big.stream and big.in_ram_bytes < big.budget_bytes
    small = plan_memory(ds, BCConfig(max_memory_mb=0.3), 4500, 500)
    assert small.stream and small.in_ram_bytes > small.budget_bytes
    assert small.stream_bytes <= small.budget_bytes and small.buffer_rows >= 256
    forced = plan_memory(ds, BCConfig(stream=True, max_memory_mb=64), 4500, 500)
    assert forced.stream


def test_budget_too_small_for_one_batch_is_refused(cartpole10):
    with pytest.raises(ConfigError, match="too small to stream batches"):
        train_bc(cartpole10, eval_episodes=0, epochs=1, max_memory_mb=0.05)


def test_streaming_bc_learns_under_a_tiny_budget(cartpole10, tmp_path):
    res = train_bc(cartpole10, {"max_memory_mb": 0.3, "epochs": 40, "eval_every": 10, "eval_episodes": 5,
                                "out": str(tmp_path / "bc.pt")}, )
    from demokit.policies import load_checkpoint

    data = load_checkpoint(res.checkpoint).training["data"]
    assert data["stream"] and data["in_ram_bytes"] > data["budget_bytes"]
    assert res.mean_return is not None and res.mean_return >= 450


def test_streaming_is_reproducible_and_workers_give_the_same_rows(cartpole3):
    a = train_bc(cartpole3, eval_episodes=0, epochs=2, stream=True, seed=3)
    b = train_bc(cartpole3, eval_episodes=0, epochs=2, stream=True, seed=3)
    for p, q in zip(a.policy.parameters(), b.policy.parameters()):
        assert (p == q).all()
    c = train_bc(cartpole3, eval_episodes=0, epochs=1, stream=True, workers=2)
    assert c.history[0]["loss"] > 0


@pytest.mark.parametrize("stream", [False, True])
def test_history_bc_checkpoint_acts_with_a_per_env_history(cartpole10, tmp_path, stream):
    from demokit.evaluation import evaluate_policy
    from demokit.pipelines.collect import collect_demo_data
    from demokit.policies import load_checkpoint

    out = tmp_path / "bc.pt"
    res = train_bc(cartpole10, {"history": 3, "epochs": 30, "eval_every": 10, "eval_episodes": 5,
                                "out": str(out), "stream": stream})
    assert res.mean_return is not None and res.mean_return >= 450
    policy = load_checkpoint(out).policy
    assert policy.arch.history == 3 and policy.encoder.input_dim == 12
    assert policy.observation_space.shape == (4,)  # acts in the plain env
    ev = evaluate_policy(policy, "CartPole-v1", episodes=3, seed=11)
    assert ev.mean_return >= 450
    got = collect_demo_data(str(out), "CartPole-v1", tmp_path / "d.h5", n_episodes=2, num_envs=2, eval_episodes=0)
    assert got.episodes == 2 and got.mean_return >= 450
