"""MuJoCo v5 tasks (the mujoco extra): they make and step, a Hopper SAC smoke run end to end
(train, eval, collect), and a clear error when the extra is missing."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from demokit.cli.app import main

MUJOCO_ENVS = ("Hopper-v5", "HalfCheetah-v5", "Walker2d-v5", "InvertedPendulum-v5", "Swimmer-v5")


@pytest.mark.parametrize("env_id", MUJOCO_ENVS)
def test_mujoco_envs_make_and_step(env_id):
    pytest.importorskip("mujoco")
    from demokit.envs import make_env
    env = make_env(env_id, seed=0)
    try:
        obs, _ = env.reset(seed=0)
        assert env.observation_space.contains(obs)
        for _ in range(5):
            obs, reward, terminated, truncated, _ = env.step(env.action_space.sample())
            assert np.isfinite(reward) and obs.shape == env.observation_space.shape
    finally:
        env.close()


def test_hopper_sac_smoke_train_eval_collect(tmp_path, capsys):
    pytest.importorskip("mujoco")
    from demokit.data.dataset import load_dataset
    from demokit.policies import load_checkpoint
    from demokit.rl.hyperparams import tuned_config
    from demokit.rl.sac import SACTrainer

    ckpt = tmp_path / "hopper-sac.pt"
    cfg = tuned_config("sac", "Hopper-v5", total_timesteps=1_500, learning_starts=1_000, hidden_sizes=(64, 64),
                       eval_every=1_000, final_eval_episodes=3, device="cpu")
    trainer = SACTrainer(cfg)
    try:
        assert trainer.replay.obs.dtype == np.float64  # MuJoCo observations keep their dtype in replay
        result = trainer.learn(out=ckpt)
    finally:
        trainer.close()
    assert result.env_steps == 1_500 and trainer.gradient_steps_done == 501
    assert load_checkpoint(ckpt).algo == "sac"
    assert main(["eval", "--policy", str(ckpt), "--episodes", "2", "--json"]) == 0
    figures = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert figures["env_id"] == "Hopper-v5" and figures["episodes"] == 2
    data = tmp_path / "hopper.h5"
    assert main(["collect", "--policy", str(ckpt), "--episodes", "3", "--out", str(data)]) == 0
    ds = load_dataset(data)
    assert ds.env_id == "Hopper-v5" and ds.num_episodes == 3 and ds.observations.dtype == np.float64
    assert np.all(np.abs(ds.actions) <= 1.0)


def test_mujoco_env_without_the_extra_is_one_error_line(tmp_path):
    code = ("import sys; sys.modules['mujoco'] = None\n"  # import mujoco -> ImportError, as when not installed
            "from demokit.cli.app import main\n"
            "sys.exit(main(['train-expert', '--env', 'Hopper-v5', '--algo', 'sac']))\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and lines[0].startswith("error: ") and "pip install demokit[mujoco]" in lines[0]
    assert not (tmp_path / "experts").exists()
