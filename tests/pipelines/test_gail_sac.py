"""GAIL with SAC as the learner (through the reward-model hook): the discriminator's sliding window of
recent replay transitions, and (slow) imitating a Pendulum-v1 SAC expert."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from demokit.errors import ConfigError
from demokit.evaluation import evaluate_policy
from demokit.pipelines.collect import collect_demo_data
from demokit.pipelines.reward_model import serial_pipeline_reward_model_offpolicy
from demokit.policies import load_checkpoint
from demokit.reward_models import GailRewardModel
from demokit.reward_models.gail import MUJOCO_PPO, MUJOCO_REWARD, MUJOCO_SAC
from demokit.rl.hyperparams import tuned_config
from demokit.rl.sac import SACTrainer
from tests.reward_models.experts import random_cartpole_batch, write_cartpole_expert


def test_policy_window_keeps_the_latest_transitions(tmp_path: Path) -> None:
    """With policy_window, clear_data(round) keeps the latest N policy transitions (the discriminator's view of
    the replay buffer's recent data); without it, rounds clear everything; clear_data() always clears."""
    expert = write_cartpole_expert(tmp_path / "expert.h5", episodes=2)
    batches = [random_cartpole_batch(4, seed=s) for s in range(3)]
    for b in batches:
        b["terminated"][:] = False
    windowed = GailRewardModel({"expert_data_path": str(expert), "policy_window": 6}, "cpu")
    plain = GailRewardModel({"expert_data_path": str(expert)}, "cpu")
    for round_, b in enumerate(batches, start=1):
        for model in (windowed, plain):
            model.collect_data(b)
            model.train()
            model.clear_data(round_)
    assert plain.num_policy_transitions == 0
    assert windowed.num_policy_transitions == 6
    latest = torch.cat([windowed.features(b["obs"], b["action"]) for b in batches[1:]])[-6:]
    assert torch.equal(windowed._policy_features(), latest)
    windowed.clear_data()
    assert windowed.num_policy_transitions == 0
    with pytest.raises(ConfigError, match="policy_window"):
        GailRewardModel({"expert_data_path": str(expert), "policy_window": 0}, "cpu")


@pytest.mark.slow
def test_gail_sac_imitates_a_pendulum_expert(tmp_path: Path) -> None:
    """SAC expert (~5k steps) -> 10 episodes -> GAIL-SAC from the demonstrations alone, evaluated on 20 fresh
    episodes: at the expert's level (>= -200, or within 10% of its return). ~1-1.5 min on 2 loaded cores."""
    trainer = SACTrainer(tuned_config("sac", "Pendulum-v1", seed=0, device="cpu"))
    try:
        trainer.learn(out=tmp_path / "sac.pt")
    finally:
        trainer.close()
    data = tmp_path / "pendulum.h5"
    collect_demo_data({"policy": str(tmp_path / "sac.pt"), "path": str(data), "n_episodes": 10})
    expert = evaluate_policy(load_checkpoint(tmp_path / "sac.pt").policy, "Pendulum-v1", episodes=20, seed=1000)
    result = serial_pipeline_reward_model_offpolicy(
        {"expert_data_path": str(data), "algo": "sac", "device": "cpu"}, seed=0, out=tmp_path / "gail.pt")
    assert result.algo == "gail-sac" and result.converged
    fresh = evaluate_policy(load_checkpoint(tmp_path / "gail.pt").policy, "Pendulum-v1", episodes=20, seed=1000)
    assert fresh.mean_return >= min(-200.0, expert.mean_return * 1.1), (fresh, expert)


def test_gail_mujoco_defaults_resolve_per_env_and_yield_to_the_user() -> None:
    """GAIL on Hopper-v5 (sac and ppo): 1M-step budget, stop at the SAC expert's goal 3000, the positive reward
    without the absorbing state; the user's settings win; classic-control defaults are not touched."""
    from demokit.pipelines.reward_model import irl_config, irl_defaults, irl_rl_config
    from demokit.rl.registry import get_learner

    data = str(Path(__file__).resolve().parents[2] / "datasets" / "hopper-v5-expert.h5")
    for algo in ("sac", "ppo"):
        rl = irl_rl_config(get_learner(algo), "Hopper-v5", irl_config({"expert_data_path": data}), seed=0)
        assert (rl.total_timesteps, rl.stop_value) == (1_000_000, 3000.0)
        rm = irl_defaults(GailRewardModel, "Hopper-v5", algo, "reward_model")
        assert rm["reward_form"] == "positive" and rm["absorbing"] is False
        mine = irl_rl_config(get_learner(algo), "Hopper-v5",
                             irl_config({"expert_data_path": data, "total_timesteps": 20_000, "stop_value": 2500.0}),
                             seed=0)
        assert (mine.total_timesteps, mine.stop_value) == (20_000, 2500.0)
    hopper = irl_rl_config(get_learner("ppo"), "Hopper-v5", irl_config({"expert_data_path": data}), seed=0)
    # as measured: PPO's starting Gaussian, its reward normalisation, minibatches of 64 (PPO's 256, and 128: slower)
    assert hopper.normalize_obs and (hopper.log_std_init, hopper.normalize_reward, hopper.batch_size) == (0.0, True, 64)
    # GAIL-SAC, as measured: a gradient penalty of 1, one discriminator update per round of 10 env steps (each round
    # still 10 gradient steps), 128x128 networks; the SAC row's other settings; the user's values win
    sac = irl_rl_config(get_learner("sac"), "Hopper-v5", irl_config({"expert_data_path": data}), seed=0)
    assert (sac.train_freq, sac.gradient_steps, sac.hidden_sizes, sac.batch_size) == (10, -1, (128, 128), 256)
    assert MUJOCO_SAC["reward_model"] == {"grad_penalty": 1.0}
    assert irl_defaults(GailRewardModel, "Hopper-v5", "sac", "reward_model") == {
        "policy_window": 1_000, "update_per_collect": 1, **MUJOCO_REWARD, "grad_penalty": 1.0}
    mine = irl_rl_config(get_learner("sac"), "Hopper-v5",
                         irl_config({"expert_data_path": data, "rl": {"train_freq": 1, "hidden_sizes": (256, 256)}}),
                         seed=0)
    assert (mine.train_freq, mine.hidden_sizes) == (1, (256, 256))
    for env, row in MUJOCO_PPO.items():  # the other tasks' own GAIL-PPO rows, over the shared MuJoCo settings
        rl = irl_rl_config(get_learner("ppo"), env, irl_config({"expert_data_path": data}), seed=0)
        assert rl.normalize_obs and all(getattr(rl, key) == value for key, value in row.get("rl", {}).items())
        rm = irl_defaults(GailRewardModel, env, "ppo", "reward_model")
        assert rm == {**MUJOCO_REWARD, **row.get("reward_model", {})}
    assert irl_defaults(GailRewardModel, "Pendulum-v1", "sac", "reward_model") == {"policy_window": 1_000,
                                                                                   "update_per_collect": 1}
    assert irl_defaults(GailRewardModel, "CartPole-v1", "ppo", "reward_model") == {}
