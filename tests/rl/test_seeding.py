"""One seed drives everything: the same seed gives the same training run."""

from __future__ import annotations

import torch

from demokit.rl import DQNTrainer, PPOTrainer


def _ppo_params(seed: int, env_id: str = "CartPole-v1") -> torch.Tensor:
    trainer = PPOTrainer(dict(env_id=env_id, num_envs=2, n_steps=64, n_epochs=2, batch_size=64, device="cpu",
                              seed=seed))
    for _ in range(3):
        trainer.update(trainer.collect_rollout())
    trainer.close()
    return torch.cat([p.detach().flatten() for p in trainer.params])


def _dqn_params(seed: int) -> torch.Tensor:
    trainer = DQNTrainer(dict(env_id="CartPole-v1", num_envs=2, learning_starts=0, device="cpu", seed=seed))
    trainer.collect(200)
    trainer.train_steps(20)
    trainer.close()
    return torch.cat([p.detach().flatten() for p in trainer.policy.parameters()])


def test_ppo_same_seed_same_run():
    torch.testing.assert_close(_ppo_params(4), _ppo_params(4), rtol=0, atol=0)
    assert not torch.equal(_ppo_params(4), _ppo_params(5))


def test_ppo_gaussian_same_seed_same_run():
    torch.testing.assert_close(_ppo_params(4, "Pendulum-v1"), _ppo_params(4, "Pendulum-v1"), rtol=0, atol=0)


def test_dqn_same_seed_same_run():
    torch.testing.assert_close(_dqn_params(4), _dqn_params(4), rtol=0, atol=0)
    assert not torch.equal(_dqn_params(4), _dqn_params(5))


def test_initial_weights_do_not_depend_on_the_callers_thread_count():
    old = torch.get_num_threads()
    params = []
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            trainer = PPOTrainer(dict(env_id="CartPole-v1", num_envs=1, device="cpu", seed=7))
            params.append(torch.cat([p.detach().flatten() for p in trainer.params]))
            trainer.close()
    finally:
        torch.set_num_threads(old)
    torch.testing.assert_close(params[0], params[1], rtol=0, atol=0)
