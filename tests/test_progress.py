"""The shared progress-text formatters (demokit.progress)."""

from __future__ import annotations

import math

from demokit.progress import bc_progress_text, training_progress_text


def test_training_progress_text_before_and_after_the_first_episode_and_evaluation():
    info = {"episode_return": math.nan, "eval_return": math.nan, "steps_per_s": 1234.4, "env_steps": 10}
    assert training_progress_text(info) == "return - | 1234 steps/s"
    info.update(episode_return=21.04, eval_return=500.0)
    assert training_progress_text(info) == "return 21.0 | eval 500.0 | 1234 steps/s"


def test_training_progress_text_gail():
    info = {"episode_return": 9.0, "eval_return": math.nan, "steps_per_s": 10.0, "reward_model/d_expert": 0.612,
            "reward_model/d_policy": 0.388, "reward_model/loss": 1.2341}
    assert (training_progress_text(info, return_label="env return")
            == "env return 9.0 | D expert 0.61 policy 0.39 loss 1.234 | 10 steps/s")


def test_bc_progress_text():
    assert bc_progress_text({"epoch": 1, "loss": 0.123456}) == "loss 0.1235"
    assert (bc_progress_text({"loss": 0.5, "val_accuracy": 0.98, "eval_mean": 500.0})
            == "loss 0.5000 | val acc 0.980 | return 500.0")
    assert bc_progress_text({"loss": 0.5, "val_error": 0.25}) == "loss 0.5000 | val err 0.2500"
