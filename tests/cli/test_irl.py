"""`demokit irl --reward-model NAME`: the zoo on the command line, gail's conventions, bad input."""

from __future__ import annotations

import json
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

from demokit.cli.app import main
from demokit.policies import load_checkpoint
from demokit.reward_models import registry
from tests.reward_models.experts import write_cartpole_expert


@pytest.fixture(scope="module")
def expert(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(write_cartpole_expert(tmp_path_factory.mktemp("expert") / "cartpole-expert.h5", episodes=4))


def _one_error_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and "Traceback" not in err, err
    return lines[0]


def _nothing_written(out: Path) -> None:
    assert not out.exists() and not Path("policies").exists()
    assert not Path("runs").exists() or not any(Path("runs").rglob("*.json"))


@pytest.mark.parametrize(("name", "algo"), [("sqil", "dqn"), ("red", "ppo"), ("airl", "dqn")])
def test_irl_json_and_checkpoint(expert: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str,
                                 algo: str) -> None:
    out = tmp_path / f"{name}.pt"
    rc = main(["irl", "--reward-model", name, "--expert", expert, "--algo", algo, "--timesteps", "1200",
               "--device", "cpu", "--out", str(out), "--json"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    result = json.loads(captured.out.strip().splitlines()[-1])
    assert result["checkpoint"] == str(out) and result["algo"] == f"{name}-{algo}" and result["env_steps"] >= 1
    ckpt = load_checkpoint(out)
    assert ckpt.algo == f"{name}-{algo}" and "reward_model" in ckpt.extra


def test_irl_default_output_path_and_learner(expert: str, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["irl", "--reward-model", "sqil", "--expert", expert, "--timesteps", "800", "--device", "cpu"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert (Path("policies") / "cartpole-expert-sqil-dqn.pt").exists()  # sqil's default learner: dqn
    assert "sqil-dqn CartPole-v1" in captured.out


@pytest.mark.parametrize(("args", "match"), [
    (["--reward-model", "nope"], "unknown reward model type 'nope'; known types: airl, "),
    (["--reward-model", "sqil", "--algo", "ppo"], "sqil needs replay from the learner, which ppo does not "
                                                  "provide; learners that do: dqn"),
    (["--reward-model", "trex"], "no per-episode rank"),
    (["--reward-model", "red", "--algo", "nope"], "unknown learner 'nope'"),
])
def test_bad_input_one_error_line_nothing_written(expert: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                  args: list[str], match: str) -> None:
    out = tmp_path / "never.pt"
    rc = main(["irl", "--expert", expert, "--device", "cpu", "--timesteps", "500", "--out", str(out), *args])
    line = _one_error_line(capsys.readouterr().err)
    assert rc == 2 and match in line, line
    if "trex" in args:
        assert "drex" in line
    if args[1] == "nope":
        assert all(name in line for name in ("drex", "gail", "pwil", "red", "sqil", "trex")), line
    _nothing_written(out)


def test_a_plugin_model_is_listed_and_runs(expert: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    ep = EntryPoint(name="plugin_constant_test", value="tests.cli.irl_plugin", group=registry.ENTRY_POINT_GROUP)
    monkeypatch.setattr("importlib.metadata.entry_points",
                        lambda group=None: [ep] if group == registry.ENTRY_POINT_GROUP else [])
    monkeypatch.setattr(registry, "_plugins_loaded", False)
    assert "plugin_constant_test" in registry.registered_reward_models()
    out = tmp_path / "plugin.pt"
    rc = main(["irl", "--reward-model", "plugin_constant_test", "--expert", expert, "--algo", "dqn",
               "--timesteps", "600", "--device", "cpu", "--out", str(out), "--json"])
    assert rc == 0, capsys.readouterr().err
    assert load_checkpoint(out).algo == "plugin_constant_test-dqn"
