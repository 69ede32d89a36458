"""SACTrainer: replay contents (autoreset, terminated vs truncated, dtypes), checkpoints that
eval / collect act from, refusals, and (slow) learning Pendulum-v1."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces

from demokit.cli.app import main
from demokit.errors import UserError
from demokit.policies import load_checkpoint
from demokit.rl.expert import evaluate_checkpoint
from demokit.rl.hyperparams import tuned_config
from demokit.rl.sac import SACConfig, SACTrainer

BOX_ID = "DemokitScriptedBox-v0"
#: (length, how it ends) of the scripted episodes, cycled
SCRIPT = ((3, "term"), (2, "trunc"), (4, "term"))


class ScriptedBoxEnv(gym.Env):
    """float64 observation [episode index, step in episode]; Box actions in [-2, 2] x [0, 1];
    episode k lasts SCRIPT[k % 3][0] steps and ends as SCRIPT[k % 3][1]."""

    observation_space = spaces.Box(-1e6, 1e6, shape=(2,), dtype=np.float64)
    action_space = spaces.Box(np.array([-2.0, 0.0], dtype=np.float32), np.array([2.0, 1.0], dtype=np.float32))

    def __init__(self) -> None:
        self.episode, self.t = -1, 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.episode += 1
        self.t = 0
        return np.array([self.episode, 0.0]), {}

    def step(self, action):
        assert self.action_space.contains(np.asarray(action, dtype=np.float32)), action
        length, kind = SCRIPT[self.episode % len(SCRIPT)]
        self.t += 1
        end = self.t >= length
        return np.array([self.episode, self.t], dtype=np.float64), 1.0, end and kind == "term", \
            end and kind == "trunc", {}


if BOX_ID not in gym.registry:
    gym.register(BOX_ID, entry_point=ScriptedBoxEnv)


def small(env_id: str = BOX_ID, **kw) -> SACConfig:
    base = dict(env_id=env_id, total_timesteps=400, learning_starts=50, batch_size=32, hidden_sizes=(16, 16),
                buffer_size=1000, device="cpu", eval_every=200, final_eval_episodes=2, eval_episodes=2)
    return SACConfig(**{**base, **kw})


def test_replay_holds_real_transitions_in_the_observation_dtype():
    trainer = SACTrainer(small(num_envs=2))
    try:
        trainer.collect(40)
        r = trainer.replay
        n = len(r)
        assert n >= 40 and trainer.env_steps == n
        assert r.obs.dtype == np.float64 and r.action.dtype == np.float32
        obs, nxt = r.obs[:n], r.next_obs[:n]
        # no autoreset step was stored: every next observation continues its episode by one step
        assert np.all(nxt[:, 0] == obs[:, 0]) and np.all(nxt[:, 1] == obs[:, 1] + 1)
        for (ep, t), term, trunc in zip(nxt, r.terminated[:n], r.truncated[:n]):
            length, kind = SCRIPT[int(ep) % 3]
            assert term == (t == length and kind == "term") and trunc == (t == length and kind == "trunc")
        assert np.all(np.abs(r.action[:n]) <= 1.0)
    finally:
        trainer.close()


def test_env_actions_rescale_without_clipping_inside_the_bounds():
    trainer = SACTrainer(small())
    try:
        a = np.array([[-1.0, -1.0], [0.0, 0.0], [1.0, 1.0], [0.5, -0.5]], dtype=np.float32)
        np.testing.assert_allclose(trainer.to_env_actions(a), [[-2, 0], [0, 0.5], [2, 1], [1, 0.25]])
    finally:
        trainer.close()


def test_training_checkpoint_acts_in_eval_and_collect(tmp_path):
    out = tmp_path / "box-sac.pt"
    trainer = SACTrainer(small(total_timesteps=300))
    try:
        res = trainer.learn(out=out)
    finally:
        trainer.close()
    assert res.env_steps == 300 and trainer.gradient_steps_done == 300 - 50 + 1  # from the 50th step on
    ck = load_checkpoint(out)
    assert ck.algo == "sac" and ck.policy.arch.head == "squashed_gaussian"
    assert {"critic", "critic_target", "log_alpha"} <= set(ck.extra)
    assert ck.training["config"]["hidden_sizes"] == [16, 16]
    # the loaded actor acts as the trained one
    obs = np.array([[0.0, 1.0], [3.0, 2.0]])
    np.testing.assert_array_equal(ck.policy.act(obs), trainer.policy.act(obs))
    figures = evaluate_checkpoint({"policy": str(out), "episodes": 3})
    assert figures["episodes"] == 3 and figures["algo"] == "sac"
    from demokit.data.dataset import load_dataset
    from demokit.pipelines.collect import collect_demo_data
    collect_demo_data(str(out), BOX_ID, tmp_path / "d.h5", n_episodes=4, num_envs=2)
    ds = load_dataset(tmp_path / "d.h5")
    assert ds.num_episodes == 4 and ds.actions.dtype == np.float32
    assert np.all(ds.actions >= ScriptedBoxEnv.action_space.low) and np.all(ds.actions <= ScriptedBoxEnv.action_space.high)


def test_same_seed_same_checkpoint(tmp_path):
    shas = []
    for name in ("a.pt", "b.pt"):
        trainer = SACTrainer(small(total_timesteps=150, learning_starts=100, seed=3))
        try:
            trainer.learn(out=tmp_path / name, stop_at_goal=False)
        finally:
            trainer.close()
        shas.append({k: v for k, v in torch.load(tmp_path / name, weights_only=True)["state_dict"].items()})
    for k in shas[0]:
        torch.testing.assert_close(shas[0][k], shas[1][k], rtol=0, atol=0)


def test_sac_on_discrete_actions_is_one_error_line(capsys):
    with pytest.raises(UserError, match="--algo ppo or --algo dqn"):
        SACTrainer(small(env_id="CartPole-v1"))
    rc = main(["train-expert", "--env", "CartPole-v1", "--algo", "sac"])
    _, err = capsys.readouterr()
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert rc == 2 and len(lines) == 1 and lines[0].startswith("error: ") and "Discrete" in err
    assert not Path("experts").exists()


def test_train_expert_cli_sac_then_collect_by_name(capsys, tmp_path):
    rc = main(["train-expert", "--env", "Pendulum-v1", "--algo", "sac", "--timesteps", "300", "--device", "cpu",
               "--json"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    res = json.loads(out.strip().splitlines()[-1])
    assert res["checkpoint"] == "experts/Pendulum-v1-sac.pt" and res["algo"] == "sac" and res["env_steps"] == 300
    rc = main(["collect", "--policy", "sac", "--env", "Pendulum-v1", "--episodes", "2", "--out",
               str(tmp_path / "p.h5")])
    _, err = capsys.readouterr()
    assert rc == 0, err
    assert (tmp_path / "p.h5").exists()


def test_config_is_validated():
    from demokit.errors import ConfigError
    for bad in (dict(tau=0.0), dict(gradient_steps=0), dict(ent_coef=-1.0), dict(batch_size=0),
                dict(hidden_sizes=())):
        with pytest.raises(ConfigError):
            SACConfig(env_id="Pendulum-v1", **bad)


@pytest.mark.slow
def test_sac_learns_pendulum():
    """The tuned Pendulum row reaches -200 (5 quick episodes, confirmed on 20): ~5k steps, ~20 s."""
    trainer = SACTrainer(tuned_config("sac", "Pendulum-v1", seed=0, device="cpu"))
    try:
        res = trainer.learn()
    finally:
        trainer.close()
    assert res.reached_threshold and res.mean_return >= -200.0, res


def _state(trainer: SACTrainer) -> dict[str, torch.Tensor]:
    out = {f"p.{k}": v for k, v in trainer.policy.state_dict().items()}
    out.update({f"c.{k}": v for k, v in trainer.critic.state_dict().items()})
    out.update({f"t.{k}": v for k, v in trainer.critic_target.state_dict().items()})
    out["log_alpha"] = trainer.log_alpha.detach()
    for name, opt in trainer._optimizers().items():
        for i, t in enumerate(opt.state_dict()["exp_avg_sqs"]):
            out[f"{name}.v{i}"] = t
    return out


def test_training_state_resumes_the_same_run(tmp_path):
    """A run continued from save_training_state takes the same gradient steps as the original:
    same weights, optimiser moments, replay contents and random streams."""
    cfg = small(total_timesteps=150, learning_starts=60, seed=5)
    # a budget and the stop rule may change
    a, b = SACTrainer(cfg), SACTrainer(dataclasses.replace(cfg, total_timesteps=900, stop_margin_se=1.0))
    try:
        a.collect(60)
        for _ in range(40):
            a.collect(1)
            a.train_steps(1)
        a.save_training_state(tmp_path / "state.pt")
        b.load_training_state(tmp_path / "state.pt")
        assert (b.env_steps, b.gradient_steps_done, len(b.replay)) == (100, 40, 100)
        for f in ("obs", "action", "reward", "next_obs", "terminated", "truncated"):
            np.testing.assert_array_equal(getattr(a.replay, f), getattr(b.replay, f))
        for trainer in (a, b):
            trainer.train_steps(5)
        sa, sb = _state(a), _state(b)
        assert sa.keys() == sb.keys()
        for k in sa:
            torch.testing.assert_close(sa[k], sb[k], rtol=0, atol=0, msg=k)
        b.collect(3)  # the resumed run goes on with fresh episodes
        assert b.env_steps == 103
    finally:
        a.close()
        b.close()


def test_training_state_refuses_other_settings_and_foreign_files(tmp_path):
    from demokit.errors import CheckpointError
    a = SACTrainer(small(seed=1))
    b = SACTrainer(small(seed=1, tau=0.01))
    try:
        a.collect(10)
        a.save_training_state(tmp_path / "state.pt")
        with pytest.raises(UserError, match="tau=0.005"):
            b.load_training_state(tmp_path / "state.pt")
        torch.save({"x": torch.zeros(1)}, tmp_path / "other.pt")
        for path in (tmp_path / "other.pt", tmp_path / "missing.pt"):
            with pytest.raises(CheckpointError):
                a.load_training_state(path)
    finally:
        a.close()
        b.close()


def test_bfloat16_precision_trains_with_float32_weights_and_outputs(monkeypatch):
    monkeypatch.setattr("demokit.rl.sac.has_fast_bfloat16", lambda device: True)  # the warning: its own test
    trainer = SACTrainer(small(precision="bfloat16", seed=2))
    try:
        trainer.collect(80)
        before = {k: v.clone() for k, v in trainer.critic.state_dict().items()}
        trainer.train_steps(3)
        assert all(v.dtype == torch.float32 for v in trainer.critic.state_dict().values())
        assert all(p.dtype == torch.float32 for p in trainer.policy.parameters())
        assert any(not torch.equal(before[k], v) for k, v in trainer.critic.state_dict().items())
        batch = trainer.replay.sample(8)
        x = torch.cat([trainer.policy.preprocess(batch["obs"]), batch["action"]], -1)
        low, full = trainer.critic(x, compute_dtype=torch.bfloat16), trainer.critic(x)
        assert low.dtype == torch.float32 and low.shape == full.shape == (2, 8)
        torch.testing.assert_close(low, full, rtol=0.05, atol=0.05)  # bfloat16 keeps ~3 significant digits
    finally:
        trainer.close()


@pytest.mark.parametrize("native", [True, False])
def test_bfloat16_warns_where_the_device_emulates_it(monkeypatch, recwarn, native):
    monkeypatch.setattr("demokit.rl.sac.has_fast_bfloat16", lambda device: native)
    SACTrainer(small(precision="bfloat16", seed=2)).close()
    SACTrainer(small(seed=2)).close()  # float32 never warns
    messages = [str(w.message) for w in recwarn if "bfloat16" in str(w.message)]
    if native:
        assert messages == []
    else:
        assert len(messages) == 1 and "no native bfloat16" in messages[0] and "use precision float32" in messages[0]


def test_learn_with_a_state_path_saves_continues_and_survives_ctrl_c(tmp_path, monkeypatch):
    """learn(state_path=...): a save every state_every env steps and at the budget's end; a longer run given
    the file goes on from it; Ctrl-C (SIGINT) ends the iteration in progress, saves, then raises; the
    signal handlers are the caller's again afterwards."""
    import os
    import signal

    state = tmp_path / "run.state.pt"
    cfg = small(total_timesteps=300, stop_value=1e9, eval_every=50)  # iterations of 50 env steps
    saves: list[int] = []
    original = SACTrainer.save_training_state

    def counting(self, path):
        saves.append(self.env_steps)
        original(self, path)

    monkeypatch.setattr(SACTrainer, "save_training_state", counting)
    handler = signal.getsignal(signal.SIGINT)
    a = SACTrainer(cfg)
    try:
        a.learn(state_path=state, state_every=100)
    finally:
        a.close()
    assert saves[-1] == 300 and all(later - earlier >= 100 for earlier, later in zip(saves, saves[1:]))
    assert len(saves) == 3 and signal.getsignal(signal.SIGINT) is handler

    seen: list[int] = []
    b = SACTrainer(dataclasses.replace(cfg, total_timesteps=400), progress=lambda info: seen.append(info["env_steps"]))
    try:
        b.learn(state_path=state, state_every=1000)
    finally:
        b.close()
    assert seen[0] == 350 and b.env_steps == 400 and saves[-1] == 400  # went on from 300; saved at its end

    sent: list[int] = []

    def interrupt(info):
        if info["env_steps"] >= 450 and not sent:
            sent.append(int(info["env_steps"]))
            os.kill(os.getpid(), signal.SIGINT)

    c = SACTrainer(dataclasses.replace(cfg, total_timesteps=10_000), progress=interrupt)
    try:
        with pytest.raises(KeyboardInterrupt, match="stopped at 450 env steps; its state is in"):
            c.learn(state_path=state, state_every=1000)
    finally:
        c.close()
    assert saves[-1] == sent[0] == 450 and signal.getsignal(signal.SIGINT) is handler
    d = SACTrainer(dataclasses.replace(cfg, total_timesteps=10_000))
    try:
        d.load_training_state(state)
        assert d.env_steps == 450
    finally:
        d.close()


def test_learn_state_path_refusals(tmp_path):
    from demokit.errors import ConfigError
    from demokit.rl import PPOConfig, PPOTrainer

    ppo = PPOTrainer(PPOConfig(env_id="CartPole-v1", total_timesteps=256, device="cpu"))
    sac = SACTrainer(small())
    try:
        with pytest.raises(ConfigError, match="learner has none"):
            ppo.learn(state_path=tmp_path / "s.pt")
        with pytest.raises(ConfigError, match="state_every must be >= 1"):
            sac.learn(state_path=tmp_path / "s.pt", state_every=0)
        with pytest.raises(UserError, match="is also the checkpoint"):
            sac.learn(out=tmp_path / "p.pt", state_path=tmp_path / "p.pt")
    finally:
        ppo.close()
        sac.close()
    assert not (tmp_path / "s.pt").exists()
