"""The learner registry: a toy learner plugged in from outside the package with one call, run through
``train_expert`` and ``demokit train-expert --algo toy``; lookups and refusals."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from gymnasium import spaces

from demokit.cli.app import main
from demokit.config import option
from demokit.errors import ConfigError, UserError
from demokit.policies import load_checkpoint, make_policy
from demokit.rl import DQNConfig, DQNTrainer, PPOConfig, PPOTrainer, train_expert
from demokit.rl.common import BaseTrainer, LoopConfig
from demokit.rl.registry import check_action_space, get_learner, learner_names, register_learner


@dataclass(frozen=True)
class ToyConfig(LoopConfig):
    """Random search over a linear policy (the toy learner's settings)."""

    noise: float = option(0.5, "std of the weight perturbation per step")
    episodes_per_step: int = option(2, "episodes that score a candidate")


class ToyTrainer(BaseTrainer):
    """Hill climbing: perturb the linear policy's weights, keep the candidate when it scores better.

    Uses only the BaseTrainer API (evaluate, policy, env_steps), so it also shows what a
    learner needs to provide: ``_policy`` and ``_iteration``.
    """

    algo = "toy"

    def __init__(self, config: ToyConfig, *, progress=None, tb_writer=None, reward_model=None,
                 cooptrain_reward=True) -> None:
        super().__init__(config, progress=progress, tb_writer=tb_writer, reward_model=reward_model,
                         cooptrain_reward=cooptrain_reward)
        self._policy = make_policy(self.runner.observation_space, self.runner.action_space, hidden_sizes=())
        self.best_score = -float("inf")
        self.torch_gen = torch.Generator().manual_seed(int(config.seed))

    def _score(self) -> float:
        result = self.evaluate(self.config.episodes_per_step, seed=int(self.config.seed) + self.iterations * 10)
        self.env_steps += int(result.lengths.sum())
        return result.mean_return

    def _iteration(self) -> dict[str, float]:
        params = list(self.policy.parameters())
        saved = [p.detach().clone() for p in params]
        with torch.no_grad():
            for p in params:
                p.add_(torch.randn(p.shape, generator=self.torch_gen) * self.config.noise)
        score = self._score()
        if score >= self.best_score:
            self.best_score = score
        else:
            with torch.no_grad():
                for p, old in zip(params, saved):
                    p.copy_(old)
        return {"toy/best_score": self.best_score}


#: the one registration (a learner's module calls this once)
register_learner("toy", config=ToyConfig, trainer=ToyTrainer, off_policy=False, action_spaces=(spaces.Discrete,),
                 summary="random search (test plug-in)")


def test_builtin_learners_are_registered() -> None:
    assert {"ppo", "dqn", "toy"} <= set(learner_names())
    ppo, dqn = get_learner("ppo"), get_learner("dqn")
    assert (ppo.config, ppo.trainer, ppo.off_policy) == (PPOConfig, PPOTrainer, False)
    assert (dqn.config, dqn.trainer, dqn.off_policy) == (DQNConfig, DQNTrainer, True)
    assert "log_probs" in ppo.provides and "log_probs" not in dqn.provides
    assert dqn.budget_fractions == ("exploration_fraction",)
    assert "dqn" in learner_names(off_policy=True) and "ppo" not in learner_names(off_policy=True)


def test_toy_learner_through_train_expert(tmp_path: Path) -> None:
    out = tmp_path / "toy.pt"
    result = train_expert({"env_id": "CartPole-v1", "algo": "toy", "total_timesteps": 6000, "out": str(out),
                           "device": "cpu", "seed": 1})
    assert result.algo == "toy" and result.env_steps >= 6000
    ckpt = load_checkpoint(out)
    assert ckpt.algo == "toy" and ckpt.training["config"]["noise"] == 0.5
    assert result.mean_return > 100  # random play scores ~20; the search learned something


def test_toy_learner_through_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli-toy.pt"
    code = main(["train-expert", "--env", "CartPole-v1", "--algo", "toy", "--timesteps", "1500", "--device", "cpu",
                 "--out", str(out), "--json"])
    assert code == 0
    figures = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert figures["algo"] == "toy" and Path(figures["checkpoint"]) == out and out.exists()


def test_a_learner_that_does_not_fit_the_action_space(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "never.pt"
    code = main(["train-expert", "--env", "Pendulum-v1", "--algo", "toy", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and not out.exists()
    assert err.count("error:") == 1 and "Box" in err and "learners that fit: ppo" in err and "toy" in err
    with pytest.raises(UserError, match="learners that fit: ppo"):
        check_action_space("dqn", spaces.Box(-1, 1, (1,)), "Pendulum-v1")


def test_unknown_learner_lists_the_registered_ones(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train-expert", "--env", "CartPole-v1", "--algo", "nope"]) == 2
    err = capsys.readouterr().err
    assert "unknown learner 'nope'" in err and "ppo" in err and "toy" in err
    with pytest.raises(ConfigError, match="registered learners"):
        get_learner("nope")


def test_registration_errors() -> None:
    register_learner("toy", config=ToyConfig, trainer=ToyTrainer, off_policy=False,
                     action_spaces=(spaces.Discrete,))  # the same classes again: a no-op
    with pytest.raises(ValueError, match="already registered"):
        register_learner("ppo", config=ToyConfig, trainer=ToyTrainer, off_policy=False,
                         action_spaces=(spaces.Discrete,))
    with pytest.raises(TypeError, match="action_spaces"):
        register_learner("bad", config=ToyConfig, trainer=ToyTrainer, off_policy=False, action_spaces=(int,))
    with pytest.raises(ValueError, match="provides"):
        register_learner("bad", config=ToyConfig, trainer=ToyTrainer, off_policy=False,
                         action_spaces=(spaces.Discrete,), provides=("q_values",))
    assert "bad" not in learner_names()


def test_tuned_config_of_a_plugged_in_learner_uses_its_config_class() -> None:
    from demokit.rl.hyperparams import tuned_config

    cfg = tuned_config("toy", "CartPole-v1", noise=0.1)
    assert isinstance(cfg, ToyConfig) and cfg.noise == 0.1 and cfg.total_timesteps == ToyConfig.total_timesteps
