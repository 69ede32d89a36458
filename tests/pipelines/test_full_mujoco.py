"""`demokit pipeline --env Hopper-v5` end to end with tiny budgets (a smoke run: expert -> demonstrations ->
BC and GAIL-SAC -> table), and the pipeline's budget options."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from demokit.cli.app import main
from demokit.errors import ConfigError
from demokit.pipelines.full import PipelineConfig, expert_learner


def test_expert_learner_follows_the_tuned_table() -> None:
    assert expert_learner(PipelineConfig(env_id="CartPole-v1")) == "ppo"
    assert expert_learner(PipelineConfig(env_id="Hopper-v5")) == "sac"  # the table has no ppo row for Hopper
    assert expert_learner(PipelineConfig(env_id="Hopper-v5", expert_algo="ppo")) == "ppo"
    with pytest.raises(ConfigError, match="gail_timesteps"):
        PipelineConfig(env_id="CartPole-v1", gail_timesteps=0)


@pytest.mark.skipif(importlib.util.find_spec("mujoco") is None, reason="needs the mujoco extra")
def test_hopper_pipeline_smoke(capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["pipeline", "--env", "Hopper-v5", "--episodes", "1", "--expert-timesteps", "300", "--bc-epochs", "1",
               "--gail-timesteps", "300", "--eval-episodes", "1", "--device", "cpu", "--json"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    res = json.loads(out.strip().splitlines()[-1])
    assert [r["policy"] for r in res["rows"]] == ["expert (sac)", "BC", "GAIL (sac)", "random"]
    assert res["gail_train_s"] is not None and "300 env steps" in res["rows"][2]["detail"]
    assert Path("experts/Hopper-v5-sac.pt").exists() and Path(res["summary"]).exists()
    assert Path("runs/Hopper-v5/gail-sac.pt").exists()
