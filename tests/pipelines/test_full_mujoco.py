"""`demokit pipeline --env Hopper-v5` end to end with tiny budgets (a smoke run: expert -> demonstrations ->
BC and GAIL-SAC -> table), and the pipeline's budget options."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from demokit.cli.app import main
from demokit.data import load_dataset
from demokit.errors import ConfigError, UserError
from demokit.pipelines.full import PipelineConfig, expert_learner, use_reference


def test_expert_learner_follows_the_tuned_table() -> None:
    assert expert_learner(PipelineConfig(env_id="CartPole-v1")) == "ppo"
    assert expert_learner(PipelineConfig(env_id="Hopper-v5")) == "sac"  # the table has no ppo row for Hopper
    assert expert_learner(PipelineConfig(env_id="Hopper-v5", expert_algo="ppo")) == "ppo"
    with pytest.raises(ConfigError, match="gail_timesteps"):
        PipelineConfig(env_id="CartPole-v1", gail_timesteps=0)


@pytest.mark.skipif(importlib.util.find_spec("mujoco") is None, reason="needs the mujoco extra")
def test_hopper_pipeline_smoke(capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["pipeline", "--env", "Hopper-v5", "--episodes", "1", "--expert-timesteps", "300", "--bc-epochs", "1",
               "--gail-algo", "sac",
               "--gail-timesteps", "300", "--eval-episodes", "1", "--device", "cpu", "--json"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    res = json.loads(out.strip().splitlines()[-1])
    assert [r["policy"] for r in res["rows"]] == ["expert (sac)", "BC", "GAIL (sac)", "random"]
    assert res["gail_train_s"] is not None and "300 env steps" in res["rows"][2]["detail"]
    assert Path("experts/Hopper-v5-sac.pt").exists() and Path(res["summary"]).exists()
    assert Path("runs/Hopper-v5/gail-sac.pt").exists()


def test_auto_expert_source_uses_the_reference_data_only_for_long_experts(tmp_path: Path) -> None:
    hopper = PipelineConfig(env_id="Hopper-v5", experts_dir=str(tmp_path))
    assert use_reference(hopper, "sac", tmp_path / "Hopper-v5-sac.pt")  # 1M tuned steps, reference data present
    assert not use_reference(PipelineConfig(env_id="Hopper-v5", expert_timesteps=300), "sac", tmp_path / "x.pt")
    assert not use_reference(PipelineConfig(env_id="Hopper-v5", expert_source="expert"), "sac", tmp_path / "x.pt")
    (tmp_path / "Hopper-v5-sac.pt").write_bytes(b"")  # a checkpoint there: reused, not the reference data
    assert not use_reference(hopper, "sac", tmp_path / "Hopper-v5-sac.pt")
    assert not use_reference(PipelineConfig(env_id="CartPole-v1"), "ppo", tmp_path / "no.pt")  # cheap: trained
    with pytest.raises(UserError, match="has no reference dataset"):
        use_reference(PipelineConfig(env_id="CartPole-v1", expert_source="reference", reference_dir=str(tmp_path)),
                      "ppo", tmp_path / "no.pt")


@pytest.mark.skipif(importlib.util.find_spec("mujoco") is None, reason="needs the mujoco extra")
def test_hopper_pipeline_learns_from_the_reference_data_without_an_expert(capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["pipeline", "--env", "Hopper-v5", "--episodes", "1", "--bc-epochs", "1", "--gail-timesteps", "300",
               "--eval-episodes", "1", "--device", "cpu", "--json"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    res = json.loads(out.strip().splitlines()[-1])
    assert [r["policy"] for r in res["rows"]] == ["expert (reference data)", "BC", "GAIL (ppo)", "random"]
    assert res["expert_return"] > 2900 and res["expert_train_s"] is None  # the dataset's first episode
    assert "reference dataset" in err and not Path("experts").exists()  # no expert trained
    assert load_dataset(Path(res["dataset"])).num_episodes == 1


def test_reference_source_refuses_more_episodes_than_the_dataset_holds(capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["pipeline", "--env", "Hopper-v5", "--expert-source", "reference", "--episodes", "26", "--no-gail"])
    err = capsys.readouterr().err
    assert rc == 2 and err.strip().splitlines()[-1].startswith("error:") and "holds 25 episodes" in err
