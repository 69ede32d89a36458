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


PENDULUM_DATA = Path(__file__).resolve().parents[2] / "datasets" / "pendulum-v1-expert.h5"


def _gail_sac(**gail: object) -> SACTrainer:
    model = GailRewardModel({"expert_data_path": str(PENDULUM_DATA), "policy_window": 50, "batch_size": 16,
                             "grad_penalty": 1.0, **gail}, "cpu", seed=4)
    cfg = tuned_config("sac", "Pendulum-v1", seed=3, device="cpu", learning_starts=30, hidden_sizes=(16, 16),
                       batch_size=16)
    return SACTrainer(cfg, reward_model=model)


def _irl_round(trainer: SACTrainer, gradient_steps: int, *, collect: bool = True) -> None:
    """One off-policy IRL round of the trainer's loop: collect, hand to GAIL, fit it, relabelled SAC steps."""
    if collect:
        new = trainer.collect(1)
        trainer.observe_transitions(lambda: trainer.replay_batch(new, new["env_action"]))
    trainer.fit_reward_model()
    trainer.train_steps(gradient_steps, trainer._relabel)


def _weights(trainer: SACTrainer) -> dict[str, torch.Tensor]:
    rm = trainer.reward_model
    out = {f"actor.{k}": v for k, v in trainer.policy.state_dict().items()}
    out.update({f"critic.{k}": v for k, v in trainer.critic.state_dict().items()})
    out.update({f"d.{k}": v for k, v in rm.discriminator.state_dict().items()})
    out.update({f"d_adam.{i}": v for i, v in enumerate(rm.optimizer.state_dict()["exp_avg_sqs"])})
    out["policy_rows"] = rm._policy_features().clone()
    return out


def test_gail_sac_training_state_continues_the_same_run(tmp_path: Path) -> None:
    """save_training_state with GAIL carries the discriminator, its Adam moments, its batch generator and its
    window of policy rows: a resumed trainer takes the same discriminator and SAC steps as the original."""
    a, b = _gail_sac(), _gail_sac()
    try:
        a.collect(30)
        for _ in range(20):
            _irl_round(a, 1)
        a.save_training_state(tmp_path / "state.pt")
        b.load_training_state(tmp_path / "state.pt")
        assert (b.env_steps, b.reward_rounds, b.reward_model.num_policy_transitions) == (50, 20, 20)
        for trainer in (a, b):
            for _ in range(3):
                _irl_round(trainer, 2, collect=False)  # the same replay and window: the same steps
        wa, wb = _weights(a), _weights(b)
        assert wa.keys() == wb.keys()
        for k in wa:
            torch.testing.assert_close(wa[k], wb[k], rtol=0, atol=0, msg=k)
    finally:
        a.close()
        b.close()


def test_gail_sac_training_state_refuses_other_settings(tmp_path: Path) -> None:
    from demokit.errors import UserError

    a, other, plain = _gail_sac(), _gail_sac(grad_penalty=0.5), SACTrainer(
        tuned_config("sac", "Pendulum-v1", seed=3, device="cpu", learning_starts=30, hidden_sizes=(16, 16),
                     batch_size=16))
    try:
        a.collect(31)
        _irl_round(a, 1)
        a.save_training_state(tmp_path / "state.pt")
        with pytest.raises(UserError, match="grad_penalty=1.0"):
            other.load_training_state(tmp_path / "state.pt")
        with pytest.raises(UserError, match="reward model GailRewardModel, this run has None"):
            plain.load_training_state(tmp_path / "state.pt")
        plain.save_training_state(tmp_path / "plain.pt")
        with pytest.raises(UserError, match="reward model None, this run has GailRewardModel"):
            a.load_training_state(tmp_path / "plain.pt")
    finally:
        for t in (a, other, plain):
            t.close()


def test_run_irl_with_a_state_path_continues_a_stopped_run(tmp_path: Path) -> None:
    """run_irl(state_path=...) writes the training state every state_every env steps; a later run given the
    same file goes on from there (a larger budget may be given), and one with other settings is refused."""
    from demokit.errors import UserError
    from demokit.pipelines.reward_model import run_irl

    state = tmp_path / "gail-sac.state.pt"
    base = {"expert_data_path": str(PENDULUM_DATA), "device": "cpu", "stop_at_threshold": False,
            "rl": {"learning_starts": 100, "hidden_sizes": [16, 16], "batch_size": 16, "eval_every": 250,
                   "eval_episodes": 1, "final_eval_episodes": 1}}
    first = run_irl({**base, "total_timesteps": 500}, 0, algo="sac", state_path=state, state_every=250)
    assert first.env_steps == 500 and state.is_file()
    seen: list[int] = []
    second = run_irl({**base, "total_timesteps": 750}, 0, algo="sac", state_path=state, state_every=250,
                     progress=lambda info: seen.append(int(info["env_steps"])))
    assert second.env_steps == 750 and seen[0] == 750  # one more iteration of 250 steps after the saved 500
    with pytest.raises(UserError, match="grad_penalty"):
        run_irl({**base, "total_timesteps": 1000, "reward_model": {"grad_penalty": 3.0}}, 0, algo="sac",
                state_path=state)
    # saves are also made at the end of the budget: a longer run goes on from the end, not from the last period
    end = tmp_path / "end.state.pt"
    run_irl({**base, "total_timesteps": 500}, 0, algo="sac", state_path=end, state_every=10_000)
    seen.clear()
    run_irl({**base, "total_timesteps": 750}, 0, algo="sac", state_path=end, state_every=10_000,
            progress=lambda info: seen.append(int(info["env_steps"])))
    assert seen[0] == 750
    with pytest.raises(ConfigError, match="the ppo learner has none \\(learners with one: sac\\)"):
        run_irl({**base, "rl": {}, "total_timesteps": 1000}, 0, algo="ppo", state_path=tmp_path / "ppo.state.pt")
    with pytest.raises(UserError, match="is the input"):
        run_irl({**base, "total_timesteps": 1000}, 0, algo="sac", state_path=PENDULUM_DATA)


def test_sqil_sac_state_path_continues(tmp_path: Path) -> None:
    """SQIL's training state (its expert-sampling generator) rides along with SAC's."""
    from demokit.pipelines.reward_model import run_irl

    state = tmp_path / "sqil.state.pt"
    base = {"expert_data_path": str(PENDULUM_DATA), "device": "cpu", "stop_at_threshold": False,
            "reward_model": {"type": "sqil"},
            "rl": {"learning_starts": 100, "hidden_sizes": [16, 16], "batch_size": 16, "eval_every": 250,
                   "eval_episodes": 1, "final_eval_episodes": 1}}
    run_irl({**base, "total_timesteps": 250}, 0, algo="sac", state_path=state, state_every=250)
    seen: list[int] = []
    result = run_irl({**base, "total_timesteps": 500}, 0, algo="sac", state_path=state, state_every=250,
                     progress=lambda info: seen.append(int(info["env_steps"])))
    assert result.algo == "sqil-sac" and result.env_steps == 500 and seen[0] == 500


def test_a_failed_state_save_warns_and_training_goes_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A full disk at a periodic save does not end an hour-long run: a warning, the previous state kept."""
    import errno

    from demokit.pipelines.reward_model import run_irl

    state = tmp_path / "gail.state.pt"
    state.write_bytes(b"the previous save")

    def full_disk(self: SACTrainer, path: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    base = {"expert_data_path": str(PENDULUM_DATA), "device": "cpu", "stop_at_threshold": False,
            "rl": {"learning_starts": 100, "hidden_sizes": [16, 16], "batch_size": 16, "eval_every": 250,
                   "eval_episodes": 1, "final_eval_episodes": 1}}
    monkeypatch.setattr(SACTrainer, "save_training_state", full_disk)
    monkeypatch.setattr(SACTrainer, "load_training_state", lambda self, path: None)  # the stand-in file
    with pytest.warns(UserWarning, match="No space left on device.*training goes on"):
        result = run_irl({**base, "total_timesteps": 500}, 0, algo="sac", state_path=state, state_every=250)
    assert result.env_steps == 500 and state.read_bytes() == b"the previous save"
