"""`demokit gail`: --json, the checkpoint other commands accept, errors before training."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from demokit.cli.app import main
from demokit.policies import load_checkpoint
from tests.reward_models.experts import write_cartpole_expert


@pytest.fixture(scope="module")
def expert(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(write_cartpole_expert(tmp_path_factory.mktemp("expert") / "cartpole-expert.h5", episodes=4))


def _one_error_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and "Traceback" not in err, err
    return lines[0]


def test_gail_json_and_checkpoint(expert: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "gail.pt"
    rc = main(["gail", "--expert", expert, "--timesteps", "1500", "--seed", "1", "--device", "cpu",
               "--out", str(out), "--json"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    result = json.loads(captured.out.strip().splitlines()[-1])
    assert {"checkpoint", "mean_return", "std_return", "env_steps", "wall_s"} <= set(result)
    assert result["checkpoint"] == str(out) and result["env_steps"] >= 1500 and result["wall_s"] > 0
    ckpt = load_checkpoint(out)
    assert ckpt.algo == "gail-ppo" and ckpt.env_id == "CartPole-v1"
    assert any(k.startswith("discriminator.") for k in ckpt.extra["reward_model"])
    assert ckpt.training["mean_return"] == pytest.approx(result["mean_return"])

    rc = main(["eval", "--policy", str(out), "--episodes", "2", "--json"])  # `demokit eval` accepts it
    assert rc == 0 and json.loads(capsys.readouterr().out.strip().splitlines()[-1])["episodes"] == 2
    data = tmp_path / "from-gail.h5"
    rc = main(["collect", "--policy", str(out), "--episodes", "2", "--out", str(data), "--json"])
    assert rc == 0 and data.exists(), capsys.readouterr().err


def test_gail_dqn_default_output_path(expert: str, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["gail", "--expert", expert, "--algo", "dqn", "--timesteps", "1200", "--device", "cpu"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    target = Path("policies") / "cartpole-expert-gail-dqn.pt"   # the tests run in a temp cwd
    assert target.exists() and load_checkpoint(target).algo == "gail-dqn"
    assert "gail-dqn CartPole-v1" in captured.out


def test_mismatched_spaces_exit_2_and_write_nothing(expert: str, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "never.pt"
    rc = main(["gail", "--expert", expert, "--env", "Acrobot-v1", "--out", str(out)])
    line = _one_error_line(capsys.readouterr().err)
    assert rc == 2 and "observation space" in line and "Acrobot-v1" in line
    assert not out.exists() and not Path("policies").exists()


@pytest.mark.parametrize(("args", "match"), [
    (["--algo", "nope"], "unknown learner 'nope'; registered learners: ppo, dqn"),
    (["--device", "tpu"], "--device"),
    (["--timesteps", "0"], "total_timesteps"),
    (["--env", "NoSuchEnv-v0"], "NoSuchEnv-v0"),
])
def test_bad_options_exit_2(expert: str, capsys: pytest.CaptureFixture[str], args: list[str], match: str) -> None:
    rc = main(["gail", "--expert", expert, *args])
    assert rc == 2 and match in _one_error_line(capsys.readouterr().err)


def test_missing_dataset_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["gail", "--expert", str(tmp_path / "none.h5")])
    assert rc == 2 and "does not exist" in _one_error_line(capsys.readouterr().err)


def test_gail_default_learner_is_the_envs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """No --algo: GAIL picks the env's default learner (DQN on MountainCar-v0, see default_gail_algo)."""
    data = tmp_path / "mc.h5"
    assert main(["collect", "--env", "MountainCar-v0", "--policy", "random", "--episodes", "1",
                 "--out", str(data)]) == 0
    rc = main(["gail", "--expert", str(data), "--timesteps", "1200", "--device", "cpu", "--json"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    result = json.loads(captured.out.strip().splitlines()[-1])
    assert Path(result["checkpoint"]) == Path("policies") / "mc-gail-dqn.pt"
    assert load_checkpoint(result["checkpoint"]).algo == "gail-dqn"


def test_gail_set_reaches_the_learner_and_the_reward_model(expert: str, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "gail.pt"
    rc = main(["gail", "--expert", expert, "--timesteps", "600", "--device", "cpu", "--out", str(out),
               "--set", "rl.n_epochs=2", "--set", "reward_model.grad_penalty=0.5", "--set", "stop_value=450",
               "--json"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    training = load_checkpoint(out).training
    assert training["config"]["n_epochs"] == 2 and training["config"]["stop_value"] == 450
    run_dir = Path(json.loads(captured.out.strip().splitlines()[-1])["run_dir"])
    config = json.loads((run_dir / "config.json").read_text())["config"]
    assert config["reward_model"] == {"grad_penalty": 0.5, "type": "gail"} and config["rl"] == {"n_epochs": 2}


@pytest.mark.parametrize(("pair", "match"), [
    ("n_epochs=2", "--set rl.n_epochs=..."),
    ("rl.n_epoch=2", "did you mean 'n_epochs'"),
    ("reward_model.grad_penalty=-1", "grad_penalty must be >= 0"),
    ("reward_model.type=airl", "demokit irl --reward-model"),
    ("env_id=Acrobot-v1", "use --env"),
    ("rl.seed=1", "must not set seed"),
    ("rl=3", "--set rl.KEY=VALUE"),
])
def test_gail_bad_set_exit_2_and_write_nothing(expert: str, capsys: pytest.CaptureFixture[str], pair: str,
                                               match: str) -> None:
    rc = main(["gail", "--expert", expert, "--set", pair])
    assert rc == 2 and match in _one_error_line(capsys.readouterr().err)
    assert not Path("policies").exists() and not Path("runs").exists()


PENDULUM = str(Path(__file__).resolve().parents[2] / "datasets" / "pendulum-v1-expert.h5")
SMALL_SAC = ["--set", "rl.learning_starts=100", "--set", "rl.hidden_sizes=[16,16]", "--set", "rl.batch_size=16",
             "--set", "rl.final_eval_episodes=1", "--set", "stop_value=1e9"]


def test_gail_state_saves_and_continues(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--state: GAIL-SAC writes its training state every --state-every env steps; the same command with a
    larger budget goes on from it."""
    state, out = tmp_path / "gail.state.pt", tmp_path / "gail.pt"
    base = ["gail", "--expert", PENDULUM, "--algo", "sac", "--device", "cpu", "--out", str(out), "--state",
            str(state), "--state-every", "250", "--json", *SMALL_SAC]
    assert main([*base, "--timesteps", "500"]) == 0, capsys.readouterr().err
    capsys.readouterr()
    assert state.is_file()
    assert main([*base, "--timesteps", "750", "--overwrite"]) == 0
    run_dir = Path(json.loads(capsys.readouterr().out.strip().splitlines()[-1])["run_dir"])
    steps = [json.loads(line)["env_steps"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert steps[0] == 750 and load_checkpoint(out).training["env_steps"] == 750  # one iteration after 500


@pytest.mark.parametrize(("args", "match"), [
    (["--algo", "ppo"], "the ppo learner has none"),
    (["--algo", "sac", "--state", PENDULUM], "is the input"),
])
def test_gail_state_refusals_exit_2_and_write_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                      args: list[str], match: str) -> None:
    state = tmp_path / "s.pt"
    rc = main(["gail", "--expert", PENDULUM, "--device", "cpu", "--state", str(state), *args])
    assert rc == 2 and match in _one_error_line(capsys.readouterr().err)
    assert not state.exists() and not Path("policies").exists() and not Path("runs").exists()


def test_irl_state_refuses_a_reward_model_without_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["irl", "--reward-model", "airl", "--expert", PENDULUM, "--algo", "sac", "--device", "cpu",
               "--state", str(tmp_path / "s.pt")])
    assert rc == 2 and "the airl reward model has none" in _one_error_line(capsys.readouterr().err)
    assert not Path("runs").exists()
