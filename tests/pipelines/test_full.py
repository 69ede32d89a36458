"""The README's main job: expert -> demonstrations -> BC and GAIL -> table."""

import importlib.util
import json

import pytest

from demokit.cli.app import main
from demokit.pipelines.full import PipelineConfig, run_pipeline


def test_unknown_env_fails_before_writing(tmp_path, capsys):
    rc = main(["pipeline", "--env", "NoSuchEnv-v0", "--workdir", str(tmp_path / "runs")])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error:") and "NoSuchEnv-v0" in err
    assert not (tmp_path / "runs").exists()


def test_unknown_config_key_is_refused():
    with pytest.raises(Exception, match="unknown PipelineConfig key"):
        run_pipeline({"env_id": "CartPole-v1", "episode": 3})


@pytest.mark.slow
def test_whole_path_on_cartpole(tmp_path, capsys):
    rc = main(["pipeline", "--env", "CartPole-v1", "--workdir", str(tmp_path / "runs"), "--json"])
    out = capsys.readouterr().out
    assert rc == 0
    res = json.loads(out.strip().splitlines()[-1])
    assert res["expert_return"] >= 475 and res["bc_return"] >= 475 and res["gail_return"] >= 475
    assert res["random_return"] < 100
    summary = json.loads((tmp_path / "runs" / "CartPole-v1" / "summary.json").read_text())
    assert [r["policy"] for r in summary["rows"]] == ["expert (ppo)", "BC", "GAIL (ppo)", "random"]
    base = tmp_path / "runs" / "CartPole-v1"  # a run folder per stage, the plots beside summary.json
    assert {p.name for p in (base / "runs").iterdir()} == {"train-expert", "bc-train", "gail"}
    if importlib.util.find_spec("matplotlib") is not None:
        for name in ("dataset.png", "train-expert.png", "bc-train.png", "gail.png"):
            assert (base / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    # a second run reuses the expert
    rc = main(["pipeline", "--env", "CartPole-v1", "--workdir", str(tmp_path / "runs"), "--no-gail", "--json"])
    res2 = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert rc == 0 and res2["expert_train_s"] is None
