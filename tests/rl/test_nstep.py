"""n-step returns of the off-policy learners: NStepWindows' known answers (episode ends, several envs),
the replay's ``discount`` field, the targets with per-transition discounts, SAC / DQN wiring and refusals."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from demokit.errors import ConfigError, UserError
from demokit.rl.buffers import NStepWindows, ReplayBuffer
from demokit.rl.dqn import DQNConfig, DQNTrainer, double_dqn_targets
from demokit.rl.sac import SACConfig, SACTrainer, sac_critic_target
from tests.rl.test_sac import small


def _push_one(w: NStepWindows, env: int, obs: float, reward: float, nxt: float, term=False, trunc=False):
    return w.push(np.array([env]), np.array([[obs]]), np.array([[obs * 10]]), np.array([reward]),
                  np.array([[nxt]]), np.array([term]), np.array([trunc]))


def test_windows_known_answer_with_a_terminated_episode():
    """n 3, gamma 0.5, rewards 1..5, the 5th step terminates."""
    w = NStepWindows(3, 0.5, 1)
    outs = [_push_one(w, 0, t, t + 1.0, t + 1, term=(t == 4)) for t in range(5)]
    assert outs[0] is None and outs[1] is None  # the window fills first
    assert outs[2]["obs"].ravel().tolist() == [0.0] and outs[2]["next_obs"].ravel().tolist() == [3.0]
    assert outs[2]["reward"].tolist() == [1 + 0.5 * 2 + 0.25 * 3] and outs[2]["discount"].tolist() == [0.125]
    assert outs[3]["reward"].tolist() == [2 + 0.5 * 3 + 0.25 * 4] and not outs[3]["terminated"].any()
    end = outs[4]  # the episode's end flushes the window: shorter horizons, the final observation, terminated
    assert end["obs"].ravel().tolist() == [2.0, 3.0, 4.0]
    assert end["action"].ravel().tolist() == [20.0, 30.0, 40.0]
    assert end["reward"].tolist() == [3 + 0.5 * 4 + 0.25 * 5, 4 + 0.5 * 5, 5.0]
    assert end["discount"].tolist() == [0.125, 0.25, 0.5]
    assert end["next_obs"].ravel().tolist() == [5.0, 5.0, 5.0]
    assert end["terminated"].all() and not end["truncated"].any()
    assert w.pending() == 0


def _reference(episodes, n: int, gamma: float):
    """Each transition's n-step form computed directly from its episode (obs = (env, episode, t))."""
    rows = []
    for (env, k, rewards, kind) in episodes:
        length = len(rewards)
        for t in range(length):
            m = min(n, length - t)
            ret = sum(gamma ** i * rewards[t + i] for i in range(m))
            end = t + m == length
            rows.append(((env, k, t), ret, (env, k, t + m), end and kind == "term", end and kind == "trunc",
                         gamma ** m))
    return sorted(rows)


@pytest.mark.parametrize("n", [1, 2, 4])
def test_windows_match_the_direct_computation_over_interleaved_envs(n):
    """Three envs stepped together, some rows invalid (autoreset steps), episodes ending by termination or
    truncation at random: every 1-step transition leaves once, with its episode's n-step sum, bootstrap
    state and factor."""
    rng = np.random.default_rng(0)
    gamma, n_envs = 0.9, 3
    w = NStepWindows(n, gamma, n_envs)
    state = [[0, 0, []] for _ in range(n_envs)]  # episode index, t, rewards so far
    done_eps, got = [], []
    for _ in range(300):
        rows = [e for e in range(n_envs) if rng.random() > 0.2]
        obs, nxt, rew, term, trunc = [], [], [], [], []
        for e in rows:
            k, t, rs = state[e]
            r = float(rng.integers(-3, 4))
            end = rng.random() < 0.15
            kind = ("term" if rng.random() < 0.5 else "trunc") if end else None
            obs.append((e, k, t))
            nxt.append((e, k, t + 1))
            rew.append(r)
            term.append(kind == "term")
            trunc.append(kind == "trunc")
            rs.append(r)
            if end:
                done_eps.append((e, k, list(rs), kind))
                state[e] = [k + 1, 0, []]
            else:
                state[e] = [k, t + 1, rs]
        if not rows:
            continue
        out = w.push(np.array(rows), np.array(obs, float), np.zeros((len(rows), 1)), np.array(rew),
                     np.array(nxt, float), np.array(term), np.array(trunc))
        if out is not None:
            for i in range(len(out["reward"])):
                got.append((tuple(int(x) for x in out["obs"][i]), float(out["reward"][i]),
                            tuple(int(x) for x in out["next_obs"][i]), bool(out["terminated"][i]),
                            bool(out["truncated"][i]), float(out["discount"][i])))
    # transitions of episodes still running are pending; every finished episode's are out
    finished = {(e, k) for (e, k, _, _) in done_eps}
    got_done = sorted(g for g in got if g[0][:2] in finished)
    want = _reference(done_eps, n, gamma)
    assert len(got_done) == len(want) > 100
    for g, r in zip(got_done, want):
        assert g[0] == r[0] and g[2:5] == r[2:5], (g, r)
        assert g[1] == pytest.approx(r[1], rel=1e-5) and g[5] == pytest.approx(r[5], rel=1e-6)
    running = sum(len(rs) for (_, _, rs) in state)
    assert len(got) - len(got_done) == running - w.pending()  # running episodes' full windows left already


def test_replay_stores_discount_only_with_n_steps():
    one = ReplayBuffer(10, 1)
    three = ReplayBuffer(10, 1, n_steps=3, gamma=0.5)
    for buf in (one, three):
        for t in range(4):
            buf.add(np.array([[t]], np.float32), np.array([0]), np.array([1.0]), np.array([[t + 1]], np.float32),
                    np.array([t == 3]), np.array([False]))
    assert "discount" not in one.sample(4) and len(one) == 4
    assert len(three) == 4  # 2 left full windows, 2 left at the termination
    np.testing.assert_allclose(three.discount[:4], [0.125, 0.125, 0.25, 0.5])
    np.testing.assert_allclose(three.reward[:4], [1.75, 1.75, 1.5, 1.0])
    assert three.terminated[:4].tolist() == [False, True, True, True]
    assert "discount" in three.sample(4)


def test_targets_take_per_transition_discounts():
    r = torch.tensor([1.0, 2.0, 3.0])
    term = torch.tensor([False, False, True])
    disc = torch.tensor([0.25, 0.5, 0.5])
    next_q = torch.tensor([[4.0, 8.0, 8.0], [6.0, 10.0, 8.0]])
    y = sac_critic_target(r, next_q, torch.zeros(3), term, disc, 0.0)
    torch.testing.assert_close(y, torch.tensor([1.0 + 0.25 * 4.0, 2.0 + 0.5 * 8.0, 3.0]))
    q = torch.tensor([[1.0, 5.0], [2.0, 0.0], [9.0, 9.0]])
    y2 = double_dqn_targets(r, q, q, term, disc)
    torch.testing.assert_close(y2, torch.tensor([1.0 + 0.25 * 5.0, 2.0 + 0.5 * 2.0, 3.0]))


def test_sac_replay_holds_n_step_transitions_of_the_scripted_episodes():
    """The scripted episodes (3 steps terminated, 2 truncated, 4 terminated; reward 1 a step), n 2:
    exactly the 2-step forms of the 9 transitions, in the order they left their windows."""
    trainer = SACTrainer(small(n_steps=2, gamma=0.5, learning_starts=100))
    try:
        trainer.collect(9)
        r = trainer.replay
        assert len(r) == 9
        obs = [tuple(int(x) for x in o) for o in r.obs[:9]]
        nxt = [tuple(int(x) for x in o) for o in r.next_obs[:9]]
        assert obs == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (2, 0), (2, 1), (2, 2), (2, 3)]
        assert nxt == [(0, 2), (0, 3), (0, 3), (1, 2), (1, 2), (2, 2), (2, 3), (2, 4), (2, 4)]
        np.testing.assert_allclose(r.reward[:9], [1.5, 1.5, 1.0, 1.5, 1.0, 1.5, 1.5, 1.5, 1.0])
        np.testing.assert_allclose(r.discount[:9], [0.25, 0.25, 0.5, 0.25, 0.5, 0.25, 0.25, 0.25, 0.5])
        assert r.terminated[:9].tolist() == [False, True, True, False, False, False, False, True, True]
        assert r.truncated[:9].tolist() == [False, False, False, True, True, False, False, False, False]
        trainer.train_steps(2)  # trains on the discount field
    finally:
        trainer.close()


def test_n_steps_is_validated_and_refused_with_a_reward_model():
    with pytest.raises(ConfigError):
        SACConfig(env_id="Pendulum-v1", n_steps=0)
    with pytest.raises(ConfigError):
        DQNConfig(env_id="CartPole-v1", n_steps=0)
    with pytest.raises(ConfigError, match="n_steps"):
        SACTrainer(small(n_steps=3), reward_model=object())
    with pytest.raises(ConfigError, match="n_steps"):
        DQNTrainer(DQNConfig(env_id="CartPole-v1", n_steps=3, device="cpu"), reward_model=object())


def test_dqn_n_step_replay_and_training():
    trainer = DQNTrainer(DQNConfig(env_id="CartPole-v1", n_steps=3, gamma=0.5, num_envs=2, learning_starts=0,
                                   batch_size=8, device="cpu", seed=3))
    try:
        trainer.collect(40)
        r = trainer.replay
        assert 0 < len(r) <= 40 and set(np.unique(r.discount[:len(r)])) <= {0.125, 0.25, 0.5}
        full = r.discount[:len(r)] == 0.125
        np.testing.assert_allclose(r.reward[:len(r)][full], 1.75)  # CartPole: reward 1 a step
        before = [p.detach().clone() for p in trainer.policy.parameters()]
        trainer.train_steps(3)
        assert any(not torch.equal(a, b) for a, b in zip(before, trainer.policy.parameters()))
    finally:
        trainer.close()


def test_training_state_keeps_n_step_replay_and_old_states_resume_as_one_step(tmp_path):
    cfg = small(n_steps=2, seed=2)
    a, b = SACTrainer(cfg), SACTrainer(dataclasses.replace(cfg, total_timesteps=800))
    try:
        a.collect(20)
        a.save_training_state(tmp_path / "state.pt")
        b.load_training_state(tmp_path / "state.pt")
        n = len(a.replay)
        np.testing.assert_array_equal(a.replay.discount[:n], b.replay.discount[:n])
    finally:
        a.close()
        b.close()
    # a state written before n_steps existed: its config has no such key, it trained 1-step
    one = SACTrainer(small(seed=2))
    try:
        one.collect(20)
        one.save_training_state(tmp_path / "old.pt")
        payload = torch.load(tmp_path / "old.pt", weights_only=True)
        config = json.loads(payload["config"])
        del config["n_steps"]
        payload["config"] = json.dumps(config)
        torch.save(payload, tmp_path / "old.pt")
        one.load_training_state(tmp_path / "old.pt")
        assert len(one.replay) == 20
    finally:
        one.close()
    three = SACTrainer(small(seed=2, n_steps=3))
    try:
        with pytest.raises(UserError, match="n_steps=1"):
            three.load_training_state(tmp_path / "old.pt")
    finally:
        three.close()
