"""`demokit train-expert` and `demokit eval` through the CLI's main()."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from demokit.cli.app import main


def run(capsys, *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def last_json(out: str) -> dict:
    return json.loads(out.strip().splitlines()[-1])


def assert_one_error_line(err: str) -> None:
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A briefly trained CartPole PPO checkpoint (module-scoped: trained once)."""
    path = tmp_path_factory.mktemp("experts") / "cp.pt"
    assert main(["train-expert", "--env", "CartPole-v1", "--algo", "ppo", "--timesteps", "2048", "--seed", "3",
                 "--device", "cpu", "--out", str(path), "--json"]) == 0
    return path


def test_train_expert_json(tmp_path, capsys):
    out_path = tmp_path / "sub" / "cp.pt"
    rc, out, err = run(capsys, "train-expert", "--env", "CartPole-v1", "--algo", "ppo", "--timesteps", "1024",
                       "--num-envs", "4", "--device", "cpu", "--out", str(out_path), "--json")
    assert rc == 0, err
    res = last_json(out)
    assert {"checkpoint", "mean_return", "std_return", "env_steps", "wall_s"} <= set(res)
    assert res["checkpoint"] == str(out_path) and out_path.exists()
    assert 1024 <= res["env_steps"] < 1024 + 4 * 128 and res["mean_return"] > 0


def test_train_expert_default_out_and_dqn(capsys):
    rc, out, err = run(capsys, "train-expert", "--env", "CartPole-v1", "--algo", "dqn", "--timesteps", "500",
                       "--device", "cpu", "--json")
    assert rc == 0, err
    assert last_json(out)["checkpoint"] == "experts/CartPole-v1-dqn.pt"
    assert Path("experts/CartPole-v1-dqn.pt").exists()


def test_eval_json(trained, capsys):
    rc, out, err = run(capsys, "eval", "--policy", str(trained), "--episodes", "3", "--json")
    assert rc == 0, err
    res = last_json(out)
    assert res["episodes"] == 3 and res["env_id"] == "CartPole-v1"
    assert res["mean_return"] > 0 and res["std_return"] >= 0
    rc, out, _ = run(capsys, "eval", "--policy", str(trained), "--episodes", "3", "--stochastic", "--seed", "1")
    assert rc == 0 and "mean return" in out


def test_eval_mismatched_env_is_a_user_error(trained, capsys):
    rc, out, err = run(capsys, "eval", "--policy", str(trained), "--env", "Acrobot-v1", "--json")
    assert rc == 2 and out == ""
    assert_one_error_line(err)
    assert "observation space" in err


@pytest.mark.parametrize("content", [b"garbage bytes", b""])
def test_eval_garbage_file(tmp_path, capsys, content):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(content)
    rc, _, err = run(capsys, "eval", "--policy", str(bad))
    assert rc == 2
    assert_one_error_line(err)


def test_eval_missing_file(tmp_path, capsys):
    rc, _, err = run(capsys, "eval", "--policy", str(tmp_path / "nope.pt"))
    assert rc == 2
    assert_one_error_line(err)


def test_dqn_on_box_actions_is_refused_and_writes_nothing(capsys):
    rc, out, err = run(capsys, "train-expert", "--env", "Pendulum-v1", "--algo", "dqn")
    assert rc == 2
    assert_one_error_line(err)
    assert "learners that fit: ppo" in err and not Path("experts").exists()


def test_bad_options_are_user_errors(capsys):
    for argv in (["train-expert", "--env", "NoSuchEnv-v9", "--algo", "ppo"],
                 ["train-expert", "--env", "CartPole-v1", "--algo", "sac"],
                 ["train-expert", "--env", "CartPole-v1", "--timesteps", "0"]):
        rc, _, err = run(capsys, *argv)
        assert rc == 2, argv
        assert_one_error_line(err)
    assert not Path("experts").exists()


def test_tensorboard_without_the_package(tmp_path, capsys):
    try:
        import torch.utils.tensorboard  # noqa: F401
    except ImportError:
        rc, _, err = run(capsys, "train-expert", "--env", "CartPole-v1", "--timesteps", "256",
                         "--tensorboard", str(tmp_path / "tb"))
        assert rc == 2 and "pip install tensorboard" in err
        assert_one_error_line(err)
        return
    rc, _, err = run(capsys, "train-expert", "--env", "CartPole-v1", "--timesteps", "512", "--device", "cpu",
                     "--tensorboard", str(tmp_path / "tb"), "--out", str(tmp_path / "a.pt"))
    assert rc == 0, err
    assert any((tmp_path / "tb").iterdir())


def test_normalised_score_known_answers():
    from demokit.rl.expert import normalised_score

    assert normalised_score(50.0, 10.0, 110.0) == pytest.approx(0.4)
    assert normalised_score(-200.0, -1200.0, -150.0) == pytest.approx(1000.0 / 1050.0)
    assert normalised_score(110.0, 10.0, 110.0) == pytest.approx(1.0)
    assert normalised_score(5.0, 10.0, 10.0) is None  # expert no better than random: undefined


def test_eval_normalised_score_from_given_returns(trained, capsys):
    rc, out, err = run(capsys, "eval", "--policy", str(trained), "--episodes", "3", "--expert-return", "500",
                       "--random-return", "20", "--json")
    assert rc == 0, err
    res = last_json(out)
    assert res["expert_return"] == 500 and res["random_return"] == 20 and res["expert_return_source"] == "given"
    assert res["normalised_score"] == pytest.approx((res["mean_return"] - 20) / 480)


def test_eval_normalised_score_from_a_dataset(trained, capsys):
    from demokit.data import load_dataset
    from demokit.envs import make_env
    from demokit.evaluation import evaluate_policy
    from demokit.policies.random import RandomPolicy

    data = Path(__file__).resolve().parents[2] / "datasets" / "cartpole-v1-expert.h5"
    rc, out, err = run(capsys, "eval", "--policy", str(trained), "--episodes", "4", "--seed", "7", "--dataset",
                       str(data), "--json")
    assert rc == 0, err
    res = last_json(out)
    assert res["expert_return"] == pytest.approx(float(load_dataset(data).episode_returns.mean()))
    env = make_env("CartPole-v1")
    random_policy = RandomPolicy(env.observation_space, env.action_space, seed=7)
    env.close()
    random_return = evaluate_policy(random_policy, "CartPole-v1", episodes=4, seed=7).mean_return
    assert res["random_return"] == pytest.approx(random_return) and 8 < random_return < 60
    assert res["normalised_score"] == pytest.approx((res["mean_return"] - random_return)
                                                    / (res["expert_return"] - random_return))
    rc, out, _ = run(capsys, "eval", "--policy", str(trained), "--episodes", "2", "--dataset", str(data))
    assert rc == 0 and "normalised score" in out


def test_eval_normalised_score_of_an_expert_checkpoint_and_none_when_unknown(trained, tmp_path, capsys):
    from demokit.policies import load_checkpoint
    from tests.pipelines.collect_helpers import write_checkpoint

    res = last_json(run(capsys, "eval", "--policy", str(trained), "--episodes", "2", "--json")[1])
    assert res["expert_return"] == pytest.approx(load_checkpoint(trained).training["mean_return"])
    assert res["expert_return_source"] == "the expert checkpoint's training evaluation"
    # a BC checkpoint whose dataset is gone: no expert return, no score (its own return is not the expert's)
    bc = write_checkpoint(tmp_path / "bc.pt", "CartPole-v1", hidden_sizes=(8,),
                          training={"dataset": str(tmp_path / "gone.h5"), "mean_return": 30.0})
    res = last_json(run(capsys, "eval", "--policy", str(bc), "--episodes", "2", "--json")[1])
    assert "normalised_score" not in res and "expert_return" not in res


def test_eval_dataset_of_another_env_is_one_error_line(trained, capsys):
    data = Path(__file__).resolve().parents[2] / "datasets" / "acrobot-v1-expert.h5"
    rc, out, err = run(capsys, "eval", "--policy", str(trained), "--dataset", str(data), "--json")
    assert rc == 2 and out == ""
    assert_one_error_line(err)


def test_train_expert_set_overrides_the_tuned_row(tmp_path, capsys):
    """--set KEY=VALUE: the learner's own settings over the tuned table, kept in the checkpoint's config."""
    from demokit.policies import load_checkpoint

    out_path = tmp_path / "pend.pt"
    rc, out, err = run(capsys, "train-expert", "--env", "Pendulum-v1", "--algo", "sac", "--timesteps", "200",
                       "--device", "cpu", "--out", str(out_path), "--set", "n_steps=3", "--set", "learning_starts=50",
                       "--set", "hidden_sizes=16,16", "--set", "batch_size=32", "--json")
    assert rc == 0, err
    config = load_checkpoint(out_path).training["config"]
    assert (config["n_steps"], config["learning_starts"], config["batch_size"]) == (3, 50, 32)
    assert list(config["hidden_sizes"]) == [16, 16]
    assert config["learning_rate"] == pytest.approx(1e-3)  # the tuned Pendulum row where --set is silent
    run_config = json.loads((Path(last_json(out)["run_dir"]) / "config.json").read_text())["config"]
    assert run_config["rl"] == {"n_steps": 3, "learning_starts": 50, "hidden_sizes": "16,16", "batch_size": 32}


@pytest.mark.parametrize(("pairs", "match"), [
    (["n_step=3"], "did you mean 'n_steps'"),
    (["seed=3"], "must not set seed"),
    (["n_steps"], "expected KEY=VALUE"),
    (["n_steps=x"], "n_steps must be an integer"),
    (["precision=float16"], "precision must be one of ['float32', 'bfloat16']"),
])
def test_train_expert_bad_set_is_one_error_line_and_writes_nothing(capsys, pairs, match):
    argv = ["train-expert", "--env", "Pendulum-v1", "--algo", "sac"]
    for pair in pairs:
        argv += ["--set", pair]
    rc, out, err = run(capsys, *argv)
    assert rc == 2 and out == ""
    assert_one_error_line(err)
    assert match in err
    assert not Path("experts").exists() and not Path("runs").exists()


SMALL_SAC = ["--set", "learning_starts=50", "--set", "hidden_sizes=16,16", "--set", "batch_size=16",
             "--set", "eval_every=50", "--set", "final_eval_episodes=1", "--device", "cpu"]


def test_train_expert_state_continues_and_ctrl_c_keeps_it(tmp_path, repo_root):
    """--state: SIGTERM (as Ctrl-C) ends the iteration in progress, saves the training state, says where
    (an error line, exit 130) and writes no checkpoint; the same command with a budget goes on from it."""
    import os
    import signal
    import subprocess
    import sys
    import time

    state, out, runs = tmp_path / "pend.state.pt", tmp_path / "pend.pt", tmp_path / "runs"
    argv = [sys.executable, "-m", "demokit", "train-expert", "--env", "Pendulum-v1", "--algo", "sac", "--out",
            str(out), "--state", str(state), "--state-every", "200", *SMALL_SAC]
    env = {**os.environ, "PYTHONPATH": repo_root}
    proc = subprocess.Popen([*argv, "--timesteps", "1000000", "--run-dir", str(runs / "first")], cwd=tmp_path,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not state.exists() and time.monotonic() < deadline:  # the first periodic save: training runs
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    last = err.strip().splitlines()[-1]  # after the progress line
    assert last.startswith("error: interrupted: training stopped at") and str(state) in last, err
    assert "Traceback" not in err and not out.exists()
    stopped_at = int(last.split("stopped at ")[1].split()[0])
    assert stopped_at > 200 and stopped_at % 50 == 0  # saved at the end of the iteration in progress

    done = subprocess.run([*argv, "--timesteps", str(stopped_at + 50), "--run-dir", str(runs / "second"), "--json"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert last_json(done.stdout)["env_steps"] == stopped_at + 50 and out.is_file()
    first_row = json.loads((runs / "second" / "metrics.jsonl").read_text().splitlines()[0])
    assert first_row["env_steps"] == stopped_at + 50  # one iteration after the saved point


@pytest.mark.parametrize(("args", "match"), [
    (["--algo", "ppo", "--state", "s.pt"], "the ppo learner has none (learners with one: sac)"),
    (["--algo", "sac", "--state", "p.pt", "--out", "p.pt"], "--state p.pt is also the --out checkpoint"),
    (["--algo", "sac", "--state", "s.pt", "--state-every", "0"], "--state-every"),
])
def test_train_expert_state_refusals_write_nothing(capsys, args, match):
    rc, out, err = run(capsys, "train-expert", "--env", "Pendulum-v1", *args)
    assert rc == 2 and out == ""
    assert_one_error_line(err)
    assert match in err
    assert not Path("s.pt").exists() and not Path("p.pt").exists() and not Path("runs").exists()
