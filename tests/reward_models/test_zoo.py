"""The reward-model zoo (AIRL, SQIL, PWIL, RED, T-REX, D-REX): known answers, the contract, bad input."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from demokit.data import DatasetWriter, Episode
from demokit.data.dataset import load_dataset
from demokit.envs import make_env
from demokit.errors import ConfigError, UserError
from demokit.pipelines.reward_model import IRLConfig, resolve_learner, expert_dataset_and_env
from demokit.reward_models import create_reward_model, registered_reward_models
from demokit.reward_models.expert import ExpertData
from demokit.reward_models.pwil import greedy_coupling_cost
from demokit.reward_models.trex import bradley_terry_loss
from demokit.transitions import TransitionBatch
from tests.helpers import cartpole_controller

CPU = torch.device("cpu")
#: the committed 10-episode reference dataset (PPO expert, return 500)
REFERENCE = Path(__file__).resolve().parents[2] / "datasets" / "cartpole-v1-expert.h5"


def _batch(path: Path, rows: slice, *, log_prob: float | None = None) -> TransitionBatch:
    expert = ExpertData(load_dataset(path), CPU, who="test")
    b = expert.transitions(torch.arange(rows.start, rows.stop))
    return b if log_prob is None else dataclasses.replace(b, log_probs=torch.full((len(b),), log_prob))


def _random_batch(n: int, seed: int = 0, *, log_prob: float | None = None) -> TransitionBatch:
    """CartPole transitions of a uniformly random policy."""
    env = make_env("CartPole-v1")
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    rows = {"obs": [], "act": [], "next": [], "term": [], "trunc": []}
    while len(rows["obs"]) < n:
        a = int(rng.integers(2))
        nxt, _, term, trunc, _ = env.step(a)
        for k, v in zip(rows, (obs, a, nxt, term, trunc)):
            rows[k].append(v)
        obs = env.reset(seed=int(rng.integers(1 << 30)))[0] if term or trunc else nxt
    env.close()
    t = lambda v, d: torch.as_tensor(np.asarray(v), dtype=d)  # noqa: E731
    return TransitionBatch(observations=t(rows["obs"], torch.float32), actions=t(rows["act"], torch.int64),
                           rewards=torch.ones(n), next_observations=t(rows["next"], torch.float32),
                           terminated=t(rows["term"], torch.bool), truncated=t(rows["trunc"], torch.bool),
                           log_probs=None if log_prob is None else torch.full((n,), log_prob))


def _model(name: str, path: Path, **cfg):
    return create_reward_model({"type": name, "expert_data_path": str(path), **cfg}, "cpu", None, seed=0)


def test_the_zoo_is_registered() -> None:
    assert {"gail", "airl", "sqil", "pwil", "red", "trex", "drex"} <= set(registered_reward_models())


# -- AIRL ---------------------------------------------------------------------------------

class _Linear(nn.Module):
    def __init__(self, w: list[float], b: float) -> None:
        super().__init__()
        self.lin = nn.Linear(len(w), 1)
        with torch.no_grad():
            self.lin.weight.copy_(torch.tensor([w]))
            self.lin.bias.fill_(b)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(x)


def test_airl_logit_and_shaping_known_answer(cartpole_expert: Path) -> None:
    rm = _model("airl", cartpole_expert, gamma=0.9, reward_form="logit")
    rm.shaped.g, rm.shaped.h = _Linear([1.0, 0, 0, 0], 0.5), _Linear([0, 2.0, 0, 0], -1.0)
    mean, std = rm.expert.obs_mean, rm.expert.obs_std
    s = mean + std * torch.tensor([[1.0, 0.5, 0, 0], [2.0, -1.0, 0, 0]])
    s2 = mean + std * torch.tensor([[0.0, 3.0, 0, 0], [0.0, 4.0, 0, 0]])
    batch = TransitionBatch(observations=s, actions=torch.tensor([0, 1]), rewards=torch.zeros(2),
                            next_observations=s2, terminated=torch.tensor([False, True]),
                            truncated=torch.tensor([False, False]), log_probs=torch.tensor([-0.5, -2.0]))
    # f = g(s) + gamma h(s') - h(s); g = s0 + 0.5, h = 2 s1 - 1 (h(s') = 0 when terminated)
    f0 = (1.0 + 0.5) + 0.9 * (2 * 3.0 - 1) - (2 * 0.5 - 1)
    f1 = (2.0 + 0.5) + 0.0 - (2 * -1.0 - 1)
    assert torch.allclose(rm.f(batch), torch.tensor([f0, f1]), atol=1e-5)
    assert torch.allclose(rm.logits(batch), torch.tensor([f0 + 0.5, f1 + 2.0]), atol=1e-5)
    assert torch.allclose(rm.estimate(batch).rewards, torch.tensor([f0 + 0.5, f1 + 2.0]), atol=1e-5)
    assert torch.allclose(rm.recovered_reward(batch), torch.tensor([1.5, 2.5]), atol=1e-5)
    assert torch.allclose(rm.reward_network()(s), torch.tensor([1.5, 2.5]), atol=1e-5)


def test_airl_gradient_penalty_known_answer(cartpole_expert: Path) -> None:
    """``grad_penalty``: GAIL's zero-centred penalty on f's inputs [s, s'] (state-only g). With linear g = s0 + 0.5
    and h = 2 s1 - 1 (gamma 0.9), df/ds = (1, -2, 0, 0) and df/ds' = 0.9 * (0, 2, 0, 0) at every interpolate, or 0
    where either row of the pair terminated: ||.||^2 = 1 + 4 + 3.24 = 8.24 and 5, mean 6.62."""
    rm = _model("airl", cartpole_expert, gamma=0.9, grad_penalty=2.0)
    rm.shaped.g, rm.shaped.h = _Linear([1.0, 0, 0, 0], 0.5), _Linear([0, 2.0, 0, 0], -1.0)
    expert = dataclasses.replace(_batch(cartpole_expert, slice(0, 2)), terminated=torch.tensor([False, True]))
    policy = _random_batch(3)  # one row more: the first min(2, 3) pairs
    policy = dataclasses.replace(policy, terminated=torch.tensor([False, False, True]))
    assert rm._grad_penalty(expert, policy).item() == pytest.approx(6.62, abs=1e-5)
    # the shared maths (GAIL's): a linear logit w.x has gradient w at every interpolate
    from demokit.reward_models.gail import interpolate_grad_penalty
    w = torch.tensor([3.0, -4.0])
    assert interpolate_grad_penalty(lambda x: x @ w, torch.randn(5, 2), torch.randn(4, 2)).item() == pytest.approx(25.0)
    with pytest.raises(ConfigError, match="grad_penalty must be >= 0"):
        _model("airl", cartpole_expert, grad_penalty=-1.0)
    # in training: the penalised loss is larger from the same start and batches; 0 (the default) adds nothing
    losses = {}
    for gp in (0.0, 10.0):
        torch.manual_seed(0)
        m = _model("airl", cartpole_expert, grad_penalty=gp, update_per_collect=1)
        m.use_policy_log_probs(lambda obs, act: torch.full((obs.shape[0],), math.log(0.5)))
        m.collect_data(_random_batch(50))
        losses[gp] = m.train()["loss"]
    assert losses[10.0] > losses[0.0]
    assert _model("airl", cartpole_expert).cfg.grad_penalty == 0.0


def test_airl_learns_expert_over_random(cartpole_expert: Path) -> None:
    torch.manual_seed(0)
    rm = _model("airl", cartpole_expert, update_per_collect=200)
    rm.use_policy_log_probs(lambda obs, act: torch.full((obs.shape[0],), math.log(0.5)))
    rm.collect_data(_random_batch(1000, log_prob=math.log(0.5)))
    stats = rm.train()
    assert stats["d_expert"] > 0.6 > 0.4 > stats["d_policy"]
    expert_g = rm.recovered_reward(_batch(cartpole_expert, slice(0, 500))).mean()
    random_g = rm.recovered_reward(_random_batch(500, seed=3)).mean()
    assert expert_g > random_g


def test_airl_log_probs_from_the_batch_or_the_current_policy(cartpole_expert: Path) -> None:
    """A batch's own log-probs (PPO's rollouts) are used; data without them (off-policy replay) gets the bound
    current policy's; without either it is an error, and a learner that gives neither is refused."""
    from gymnasium import spaces

    from demokit.pipelines.reward_model import missing_facts
    from demokit.rl.registry import LearnerSpec

    rm = _model("airl", cartpole_expert)
    with pytest.raises(UserError, match="log-probabilities"):
        rm.collect_data(_random_batch(10))
    rm.use_policy_log_probs(lambda obs, act: torch.full((obs.shape[0],), math.log(0.25)))
    plain = _random_batch(10)
    carried = dataclasses.replace(plain, log_probs=torch.full((10,), math.log(0.5)))
    with torch.no_grad():
        assert torch.allclose(rm.logits(plain), rm.f(plain) - math.log(0.25))
        assert torch.allclose(rm.logits(carried), rm.f(plain) - math.log(0.5))
    rm.collect_data(plain)
    assert set(rm.train()) == {"loss", "d_expert", "d_policy"}
    shaped = _model("airl", cartpole_expert, reward_form="shaped")  # f alone: no policy term, none needed
    assert torch.equal(shaped.estimate(plain).rewards, shaped.f(plain).detach())
    with pytest.raises(ConfigError, match="shaped"):
        _model("airl", cartpole_expert, reward_form="shape")
    bare = LearnerSpec(name="bare", config=object, trainer=object, off_policy=True, action_spaces=(spaces.Discrete,))
    assert missing_facts(type(rm), bare) == ["policy_log_probs"]
    cfg = IRLConfig(expert_data_path=str(cartpole_expert), reward_model={"type": "airl"}, algo="dqn")
    assert resolve_learner(cfg, *expert_dataset_and_env(cfg)).name == "dqn"  # DQN: its epsilon-greedy policy


def test_airl_without_the_policy_term(cartpole_expert: Path) -> None:
    """``policy_term=False``: the logit is f itself (log pi never asked for), trained and paid as GAIL's forms."""
    rm = _model("airl", cartpole_expert, policy_term=False, reward_form="negative")
    plain = _random_batch(10)
    rm.collect_data(plain)  # no log-probs and no bound policy: none needed
    with torch.no_grad():
        assert torch.equal(rm.logits(plain), rm.f(plain))
        assert torch.allclose(rm.estimate(plain).rewards, torch.nn.functional.logsigmoid(rm.f(plain)))
    assert set(rm.train()) == {"loss", "d_expert", "d_policy"}


def test_airl_policy_window_keeps_the_latest_transitions(cartpole_expert: Path) -> None:
    rm = _model("airl", cartpole_expert, policy_window=15)
    rm.use_policy_log_probs(lambda obs, act: torch.zeros(obs.shape[0]))
    batches = [_random_batch(10, seed=s) for s in range(3)]
    for b in batches:
        rm.collect_data(b)
    rm.clear_data(1)
    kept = rm._policy[0].observations
    assert rm.num_policy_transitions == 15
    assert torch.equal(kept, torch.cat([batches[1].observations[5:], batches[2].observations]))
    rm.clear_data()  # without a round: now
    assert rm.num_policy_transitions == 0


def test_airl_with_sac_on_replay_data() -> None:
    """AIRL end to end with SAC (no log-probs in replay batches: the actor's current ones), its Pendulum-v1 defaults."""
    from demokit.pipelines.reward_model import run_irl

    data = REFERENCE.parent / "pendulum-v1-expert.h5"
    r = run_irl({"expert_data_path": str(data), "device": "cpu", "total_timesteps": 300, "stop_at_threshold": False,
                 "reward_model": {"type": "airl"}}, 0)
    assert r.algo == "airl-sac" and r.env_steps >= 300
    assert r.reward_model.cfg.policy_window == 1000 and 0 < r.reward_model.num_policy_transitions <= 1000
    assert r.reward_model.cfg.grad_penalty == 1.0
    assert r.reward_model.train_iter == r.rounds  # one discriminator update per SAC round


# -- SQIL ---------------------------------------------------------------------------------

def test_sqil_rewards_and_balanced_minibatches(cartpole_expert: Path) -> None:
    from demokit.rl.dqn import DQNTrainer
    from demokit.rl.hyperparams import tuned_config

    rm = _model("sqil", cartpole_expert)
    assert torch.equal(rm.estimate(_random_batch(6)).rewards, torch.zeros(6))
    trainer = DQNTrainer(tuned_config("dqn", "CartPole-v1", seed=0, device="cpu", total_timesteps=1000),
                         reward_model=rm)
    try:
        batch = {"obs": torch.full((8, 4), 7.0), "next_obs": torch.full((8, 4), 7.0),
                 "action": torch.zeros(8, dtype=torch.int64), "reward": torch.zeros(8),
                 "terminated": torch.zeros(8, dtype=torch.bool), "truncated": torch.zeros(8, dtype=torch.bool)}
        mixed, rewards = trainer.mix_supplied_transitions(batch, torch.zeros(8))
    finally:
        trainer.close()
    assert torch.equal(rewards, torch.tensor([0.0] * 4 + [1.0] * 4))
    assert torch.equal(mixed["obs"][:4], batch["obs"][:4]) and batch["obs"].eq(7.0).all()  # input untouched
    expert = ExpertData(load_dataset(cartpole_expert), CPU, who="test")
    for row in range(4, 8):  # each supplied row is an expert transition, action as DQN stores it
        hit = (expert.observations == mixed["obs"][row]).all(1).nonzero()[:, 0]
        assert len(hit) >= 1 and int(expert.actions[hit[0]]) == int(mixed["action"][row])
        assert torch.equal(expert.next_observations[hit[0]], mixed["next_obs"][row])


def test_sqil_refuses_on_policy_learners(cartpole_expert: Path) -> None:
    cfg = IRLConfig(expert_data_path=str(cartpole_expert), reward_model={"type": "sqil"}, algo="ppo")
    dataset, env_id = expert_dataset_and_env(cfg)
    with pytest.raises(ConfigError, match=r"sqil needs replay .* learners that do: dqn"):
        resolve_learner(cfg, dataset, env_id)
    default = IRLConfig(expert_data_path=str(cartpole_expert), reward_model={"type": "sqil"})
    assert resolve_learner(default, dataset, env_id).name == "dqn"  # the default learner fits


# -- PWIL ---------------------------------------------------------------------------------

def test_pwil_greedy_coupling_known_answer() -> None:
    atoms = np.array([[0.0], [1.0], [3.0]])
    weights = np.full(3, 1 / 3)
    # mass 1/2 at x = 0: all of atom 0 (distance 0), then 1/6 of atom 1 (distance 1)
    assert greedy_coupling_cost(np.array([0.0]), atoms, weights, 0.5) == pytest.approx(1 / 6)
    assert weights == pytest.approx([0.0, 1 / 6, 1 / 3])
    # the next mass 1/2 at x = 3: atom 2 (1/3 at distance 0), then the rest of atom 1 (1/6 at distance 2)
    assert greedy_coupling_cost(np.array([3.0]), atoms, weights, 0.5) == pytest.approx(1 / 3)
    assert weights == pytest.approx([0.0, 0.0, 0.0])


def test_pwil_reward_formula_and_episodes() -> None:
    rm = _model("pwil", REFERENCE)
    assert rm.horizon == 500 and rm.dim == 6
    assert rm.reward_of_cost(0.0) == pytest.approx(5.0)
    assert rm.reward_of_cost(0.01) == pytest.approx(5 * math.exp(-5 * 500 * 0.01 / math.sqrt(6)))
    expert_r = rm.episode_rewards(_batch(REFERENCE, slice(0, 500)))
    random_r = rm.episode_rewards(_random_batch(500))
    assert expert_r.mean() > 2 * random_r.mean()
    batch = _random_batch(300, seed=2)
    rm.collect_data(batch)  # collected in order: estimate gives the same (episode-coupled) rewards
    assert np.allclose(rm.estimate(batch).rewards.numpy(), rm.episode_rewards(batch), atol=1e-5)
    neg = _model("pwil", REFERENCE, reward_form="negative")  # r - alpha: same ranking, every step costs
    assert neg.reward_of_cost(0.0) == pytest.approx(0.0)
    assert neg.reward_of_cost(0.01) == pytest.approx(rm.reward_of_cost(0.01) - 5.0)
    with pytest.raises(ConfigError, match="reward_form"):
        _model("pwil", REFERENCE, reward_form="logit")


def test_pwil_mass_per_step_and_the_rarer_expert_mode() -> None:
    """MountainCar-v0's 10 demonstrations: with T = 200 a step takes 5 atoms, so the 3 episodes of the rarer way
    up the hill earn far less than the others; with T = 500 (2 atoms a step) every expert episode earns alike."""
    data = load_dataset(REFERENCE.parent / "mountaincar-v0-expert.h5")
    expert = ExpertData(data, CPU, who="test")
    episodes = [expert.transitions(torch.arange(s.start, s.stop)) for s in expert.episode_slices()]

    def returns(horizon: int) -> np.ndarray:
        rm = create_reward_model({"type": "pwil", "reward_form": "negative", "horizon": horizon}, "cpu", None,
                                 expert_data=data)
        return np.array([rm.episode_rewards(b).sum() for b in episodes])

    short, long = returns(200), returns(500)
    assert short.min() < 3 * np.median(short)  # negative returns: the worst is over 3x the median cost
    assert long.min() > 3 * np.median(long) and (long > short).all()


# -- RED ----------------------------------------------------------------------------------

def test_red_reward_known_answer_and_sigma(cartpole_expert: Path) -> None:
    rm = _model("red", cartpole_expert, train_steps=400)
    with pytest.raises(UserError, match="not trained"):
        rm.estimate(_random_batch(4))
    stats = rm.train()
    assert rm.sigma == pytest.approx(0.1 / stats["expert_error"])
    b = _batch(cartpole_expert, slice(0, 200))
    x = rm.expert.features(b.observations, b.actions)
    with torch.no_grad():
        err = (rm.target(x) - rm.predictor(x)).pow(2).sum(-1)
    assert torch.allclose(rm.estimate(b).rewards, torch.exp(-rm.sigma * err), atol=1e-6)
    assert rm.estimate(b).rewards.mean() > rm.estimate(_random_batch(200)).rewards.mean()
    assert rm.train() == stats  # fitted once
    neg = _model("red", cartpole_expert, train_steps=400, reward_form="negative")
    neg.train()  # same seed, same fit: exactly the positive reward minus 1
    assert torch.allclose(neg.estimate(b).rewards, rm.estimate(b).rewards - 1.0, atol=1e-6)
    assert float(neg.estimate(b).rewards.max()) <= 0.0


# -- T-REX / D-REX --------------------------------------------------------------------------

def test_bradley_terry_known_answer() -> None:
    assert float(bradley_terry_loss(torch.zeros(3), torch.zeros(3))) == pytest.approx(math.log(2))
    w, b = torch.tensor([1.0]), torch.tensor([3.0])
    assert float(bradley_terry_loss(w, b)) == pytest.approx(math.log(1 + math.exp(-2.0)))


@pytest.fixture(scope="module")
def ranked_cartpole(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """CartPole episodes of the controller with noise 0.0 / 0.3 / 0.6 / 0.9, rank = -noise as a per-step extra."""
    path = tmp_path_factory.mktemp("ranked") / "ranked.h5"
    env = make_env("CartPole-v1")
    with DatasetWriter(path, observation_space=env.observation_space, action_space=env.action_space,
                       env_id="CartPole-v1") as writer:
        for k, noise in enumerate((0.9, 0.6, 0.3, 0.0, 0.9, 0.6, 0.3, 0.0)):
            rng = np.random.default_rng(k)
            obs, _ = env.reset(seed=k)
            rows, acts, rewards = [], [], []
            term = trunc = False
            while not (term or trunc):
                a = int(rng.integers(2)) if rng.random() < noise else int(cartpole_controller(obs)[0])
                rows.append(obs), acts.append(a)
                obs, r, term, trunc, _ = env.step(a)
                rewards.append(r)
            t = len(rows)
            flags = np.zeros(t, bool)
            te, tr = flags.copy(), flags.copy()
            te[-1], tr[-1] = term, trunc
            writer.add_episode(Episode(observations=np.asarray(rows, np.float32), actions=np.asarray(acts),
                                       rewards=np.asarray(rewards), terminated=te, truncated=tr,
                                       final_observation=np.asarray(obs, np.float32)[None],
                                       extras={"rank": np.full(t, -noise, np.float32)}, seed=k))
    env.close()
    return path


def test_trex_learns_the_ranking(ranked_cartpole: Path) -> None:
    rm = _model("trex", ranked_cartpole, train_steps=300)
    assert sorted({t.score for t in rm.trajectories}) == pytest.approx([-0.9, -0.6, -0.3, 0.0])
    stats = rm.train()
    assert stats["accuracy"] > 0.8
    data = load_dataset(ranked_cartpole)
    expert = ExpertData(data, CPU, who="test")
    best = [s for s, n in zip(expert.episode_slices(), [0.9, 0.6, 0.3, 0.0] * 2) if n == 0.0][0]
    best_r = rm.estimate(expert.transitions(torch.arange(best.start, best.stop))).rewards.mean()
    assert best_r > rm.estimate(_random_batch(300)).rewards.mean()
    negative = _model("trex", ranked_cartpole, reward_form="negative")  # the same R, every step costs
    negative.load_state_dict(rm.state_dict())
    batch = _random_batch(50)
    r_neg = negative.estimate(batch).rewards
    assert torch.allclose(r_neg, rm.estimate(batch).rewards - 1.0) and bool((r_neg < 0).all())
    returns = create_reward_model({"type": "trex", "expert_data_path": str(ranked_cartpole), "ranking": "returns"},
                                  "cpu", None)
    assert len({t.score for t in returns.trajectories}) > 2  # episode returns as scores


def test_trex_without_rankings_names_drex(cartpole_expert: Path) -> None:
    with pytest.raises(UserError, match="no per-episode rank.*drex"):
        _model("trex", cartpole_expert)
    with pytest.raises(UserError, match="same score.*drex"):  # all returns are 500
        _model("trex", cartpole_expert, ranking="returns")


def test_drex_ranks_noisy_bc_rollouts(cartpole_expert: Path) -> None:
    rm = _model("drex", cartpole_expert, bc_epochs=2, rollouts_per_level=2, noise_levels=(1.0, 0.5),
                train_steps=100)
    scores = [t.score for t in rm.trajectories]
    assert scores.count(-1.0) == 2 and scores.count(-0.5) == 2 and scores.count(1.0) == 10
    noisy = [t.observations.shape[0] for t in rm.trajectories if t.score == -1.0]
    assert max(noisy) < 200  # uniformly random CartPole episodes are short
    assert rm.train()["accuracy"] > 0.7


# -- the contract, for every model -----------------------------------------------------------

ZOO = {"airl": {}, "sqil": {}, "pwil": {}, "red": {"train_steps": 50}, "drex": {
    "bc_epochs": 1, "rollouts_per_level": 1, "noise_levels": (1.0, 0.5), "train_steps": 20}}


def _ready(name: str, path: Path):
    rm = _model(name, path, **ZOO[name])
    if name == "airl":
        rm.use_policy_log_probs(lambda obs, act: torch.full((obs.shape[0],), -0.7))
        rm.collect_data(_random_batch(100, log_prob=-0.7))
    rm.train()
    return rm


@pytest.mark.parametrize("name", sorted(ZOO))
def test_estimate_never_mutates_and_state_round_trips(name: str, cartpole_expert: Path) -> None:
    rm = _ready(name, cartpole_expert)
    batch = _random_batch(40, seed=5, log_prob=-0.7)
    dicts = [{"obs": batch.observations[i].numpy(), "action": int(batch.actions[i]), "reward": 1.0,
              "next_obs": batch.next_observations[i].numpy(), "terminated": bool(batch.terminated[i]),
              "log_prob": -0.7} for i in range(40)]
    before = [dict(d) for d in dicts]
    out = rm.estimate(dicts)
    assert all(d["reward"] == 1.0 for d in dicts) and [d.keys() for d in dicts] == [d.keys() for d in before]
    assert torch.equal(batch.rewards, torch.ones(40))
    from_batch = rm.estimate(batch).rewards
    assert torch.equal(batch.rewards, torch.ones(40))
    assert np.allclose([d["reward"] for d in out], from_batch.numpy(), atol=1e-5)
    state = rm.state_dict()
    assert all(isinstance(v, torch.Tensor) for v in state.values())
    fresh = _model(name, cartpole_expert, **ZOO[name]) if name != "drex" else _ready(name, cartpole_expert)
    if name == "airl":
        fresh.use_policy_log_probs(lambda obs, act: torch.full((obs.shape[0],), -0.7))
    fresh.load_state_dict(state)
    assert torch.allclose(fresh.estimate(batch).rewards, from_batch, atol=1e-6)


@pytest.mark.parametrize(("name", "key", "closest"), [("airl", "absorbing", None), ("sqil", "expert_fracton",
                                                                                   "expert_fraction"),
                                                      ("red", "sigma_scal", "sigma_scale"),
                                                      ("pwil", "alpa", "alpha")])
def test_a_key_of_another_model_is_refused(cartpole_expert: Path, name: str, key: str, closest: str | None) -> None:
    with pytest.raises(ConfigError, match=key) as info:
        IRLConfig(expert_data_path=str(cartpole_expert), reward_model={"type": name, key: 1})
    if closest:
        assert closest in str(info.value)


def test_supplied_transitions_reach_sac_in_policy_space() -> None:
    """The same hook on SAC (Box actions): supplied env actions become the squashed policy's [-1, 1] actions."""
    from demokit.rl.sac import SACConfig, SACTrainer

    class Supplier:
        supplied_fraction = 0.5

        def supply_transitions(self, n: int) -> TransitionBatch:
            return TransitionBatch(observations=torch.ones(n, 3), actions=torch.tensor([[2.0], [-2.0], [0.0]])[:n],
                                   rewards=torch.full((n,), 1.0), next_observations=torch.ones(n, 3),
                                   terminated=torch.zeros(n, dtype=torch.bool),
                                   truncated=torch.zeros(n, dtype=torch.bool))

    trainer = SACTrainer(SACConfig(env_id="Pendulum-v1", total_timesteps=200, learning_starts=50, batch_size=6,
                                   hidden_sizes=(8,), buffer_size=500, device="cpu"), reward_model=Supplier())
    try:
        batch = {"obs": torch.zeros(6, 3), "next_obs": torch.zeros(6, 3), "action": torch.zeros(6, 1),
                 "reward": torch.zeros(6), "terminated": torch.zeros(6, dtype=torch.bool),
                 "truncated": torch.zeros(6, dtype=torch.bool)}
        mixed, rewards = trainer.mix_supplied_transitions(batch, torch.zeros(6))
    finally:
        trainer.close()
    assert torch.allclose(mixed["action"][3:, 0], torch.tensor([1.0, -1.0, 0.0]))
    assert torch.equal(rewards, torch.tensor([0.0, 0, 0, 1, 1, 1])) and mixed["obs"][3:].eq(1).all()


def test_per_env_defaults_of_the_zoo() -> None:
    """Measured per-env defaults live in each model's tables (docs/benchmarks.md, reward-model zoo)."""
    from gymnasium import spaces

    from demokit.pipelines.reward_model import default_learner, irl_defaults
    from demokit.reward_models import reward_model_class

    box = spaces.Box(-2.0, 2.0, (1,))
    for name in ("airl", "red", "pwil", "trex", "drex"):  # Acrobot-v1 is solved by ending it: every step costs
        model = reward_model_class(name)
        # RED: a sharper sigma, so that stalling at rest (the demonstrations' start) costs more than the swing-up
        assert irl_defaults(model, "Acrobot-v1", "ppo", "reward_model") == {
            "reward_form": "negative", **({"sigma_scale": 1.0} if name == "red" else {})}
        assert irl_defaults(model, "CartPole-v1", "ppo", "reward_model") == {}
    for name in ("red", "pwil", "sqil", "trex", "drex"):
        assert default_learner("Pendulum-v1", box, reward_model=name) == "sac"
    # AIRL: the off-policy learners give the current policy's log-probs (SAC's actor, DQN's epsilon-greedy)
    assert default_learner("Pendulum-v1", box, reward_model="airl") == "sac"
    assert default_learner("MountainCar-v0", spaces.Discrete(3), reward_model="airl") == "dqn"
    assert default_learner("CartPole-v1", spaces.Discrete(2), reward_model="airl") == "ppo"
    # MountainCar-v0 (DQN): no -log pi of the epsilon-greedy policy in the logit (docs/benchmarks.md, zoo)
    assert irl_defaults(reward_model_class("airl"), "MountainCar-v0", "dqn", "reward_model") == {
        "reward_form": "negative", "policy_window": 1_000, "policy_term": False}
    # SQIL on CartPole-v1: learning from the first step, one gradient step per env step, frequent checks
    assert irl_defaults(reward_model_class("sqil"), "CartPole-v1", "dqn", "rl") == {
        "learning_starts": 0, "train_freq": 128, "gradient_steps": 128, "eval_every": 256}
    # SQIL on MountainCar-v0: plain DQN targets (as SB3's DQN under imitation's SQIL): the goal in half the steps
    assert irl_defaults(reward_model_class("sqil"), "MountainCar-v0", "dqn", "rl") == {"double_q": False}
    assert default_learner("CartPole-v1", spaces.Discrete(2), reward_model="red") == "ppo"
    for name in ("red", "trex", "drex"):  # MountainCar-v0: DQN (PPO does not solve it), every step costs
        assert default_learner("MountainCar-v0", spaces.Discrete(3), reward_model=name) == "dqn"
        assert irl_defaults(reward_model_class(name), "MountainCar-v0", "dqn", "reward_model") == {
            "reward_form": "negative"}
    # D-REX alone (T-REX keeps the tuned DQN row): a longer horizon and a stop at 0.95 of the expert on 50 episodes
    assert irl_defaults(reward_model_class("drex"), "MountainCar-v0", "dqn", "rl") == {
        "gamma": 0.99, "stop_value": -107.0, "final_eval_episodes": 50}
    assert irl_defaults(reward_model_class("trex"), "MountainCar-v0", "dqn", "rl") == {}
    assert default_learner("MountainCar-v0", spaces.Discrete(3), reward_model="pwil") == "dqn"
    # Pendulum-v1: RED and AIRL stop at -180 on 20 episodes (their seed 0 stopped at -200 at 0.949 / 0.9498 of the
    # expert), the rest at the env's -200; AIRL with a gradient penalty (its checks oscillated without)
    for name in ("red", "airl", "sqil", "pwil", "trex", "drex"):
        assert irl_defaults(reward_model_class(name), "Pendulum-v1", "sac", "rl") == (
            {"stop_value": -180.0, "eval_episodes": 20} if name in ("red", "airl") else {})
    assert irl_defaults(reward_model_class("airl"), "Pendulum-v1", "sac", "reward_model") == {
        "policy_window": 1_000, "update_per_collect": 1, "reward_form": "shaped", "state_only": False,
        "grad_penalty": 1.0}
    assert irl_defaults(reward_model_class("pwil"), "MountainCar-v0", "dqn", "reward_model") == {
        "reward_form": "negative", "horizon": 500}  # 2 atoms of the 10 demonstrations a step, not 5
