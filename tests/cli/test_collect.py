"""`demokit collect`: output, refusals, locks, signals and kill -9 (subprocesses)."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from demokit.cli.app import main
from demokit.data import DatasetWriter, load_dataset
from demokit.envs import make_env
from demokit.policies import make_policy, save_checkpoint

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
RANDOM = ["collect", "--policy", "random", "--env", "CartPole-v1"]


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def error_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert lines and lines[-1].startswith("error:") and "Traceback" not in err, err
    return lines[-1]


def assert_valid_complete(path: Path) -> None:
    ds = load_dataset(path)
    ds.load()
    ends = ds.episode_starts + ds.episode_lengths - 1
    assert np.all(ds.terminated[ends] | ds.truncated[ends])
    assert (ds.terminated | ds.truncated).sum() == ds.num_episodes


@pytest.fixture
def ckpt(tmp_path: Path) -> Path:
    env = make_env("CartPole-v1")
    policy = make_policy(env.observation_space, env.action_space, hidden_sizes=(8,))
    path = tmp_path / "cp.pt"
    save_checkpoint(path, policy, algo="bc", env_id="CartPole-v1", training={"mean_return": 9.5})
    return path


# ---- in-process ----------------------------------------------------------------------------

def test_json_last_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "r.h5"
    assert main([*RANDOM, "--episodes", "7", "--out", str(out), "--seed", "3", "--num-envs", "2", "--json"]) == 0
    captured = capsys.readouterr()
    result = json.loads(captured.out.strip().splitlines()[-1])
    assert {"path", "episodes", "steps", "mean_return", "std_return", "steps_per_s"} <= set(result)
    ds = load_dataset(out)
    assert result["episodes"] == ds.num_episodes == 7 and result["steps"] == len(ds)
    assert result["mean_return"] == pytest.approx(float(ds.episode_returns.mean()))
    assert "collecting 7 episodes of CartPole-v1" in captured.err
    assert ds.provenance["command"][-1] != "" and ds.provenance["seed"] == 3


def test_plain_output_and_default_path(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*RANDOM, "--steps", "100", "--compression", "gzip"]) == 0  # cwd is a fresh temp dir
    out = capsys.readouterr()
    path = Path("datasets/cartpole-v1-random.h5")
    assert path.exists() and f"to {path}" in out.out and "truncated" in out.err
    assert len(load_dataset(path)) == 100


def test_existing_file_refused_then_force_then_append(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "r.h5"
    assert main([*RANDOM, "--episodes", "3", "--out", str(out)]) == 0
    before = sha(out)
    capsys.readouterr()
    assert main([*RANDOM, "--episodes", "2", "--out", str(out)]) == 2
    assert "--append" in error_line(capsys.readouterr().err) and sha(out) == before
    assert main([*RANDOM, "--episodes", "2", "--out", str(out), "--append", "--force"]) == 2
    assert "exclude" in error_line(capsys.readouterr().err) and sha(out) == before
    assert main([*RANDOM, "--episodes", "2", "--out", str(out), "--force"]) == 0
    assert load_dataset(out).num_episodes == 2
    assert main([*RANDOM, "--episodes", "4", "--out", str(out), "--append", "--seed", "2"]) == 0
    assert load_dataset(out).num_episodes == 6
    before = sha(out)
    capsys.readouterr()
    # another env's episodes (their seeds 0..1 repeat the file's): the error line alone, before collecting
    assert main(["collect", "--policy", "random", "--env", "Acrobot-v1", "--episodes", "2", "--out", str(out),
                 "--append"]) == 2
    err = capsys.readouterr().err
    assert "observation space" in error_line(err) and len(err.strip().splitlines()) == 1 and sha(out) == before


def test_lock_conflict(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "r.h5"
    assert main([*RANDOM, "--episodes", "3", "--out", str(out)]) == 0
    before = sha(out)
    env = make_env("CartPole-v1")
    with DatasetWriter(out, observation_space=env.observation_space, action_space=env.action_space,
                       env_id="CartPole-v1", mode="append"):
        assert main([*RANDOM, "--episodes", "2", "--out", str(out), "--append"]) == 2
    assert "being written by another process" in error_line(capsys.readouterr().err)
    assert sha(out) == before


def test_checkpoint_env_from_checkpoint_and_mismatch(tmp_path: Path, ckpt: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "c.h5"
    assert main(["collect", "--policy", str(ckpt), "--episodes", "2", "--out", str(out), "--json"]) == 0
    assert load_dataset(out).env_id == "CartPole-v1"
    bad = tmp_path / "bad.h5"
    assert main(["collect", "--policy", str(ckpt), "--env", "Acrobot-v1", "--episodes", "2", "--out", str(bad)]) == 2
    line = error_line(capsys.readouterr().err)
    assert "observation space" in line and "Acrobot-v1" in line and not bad.exists()


@pytest.mark.parametrize("args, match", [
    (["--env", "NoSuchEnv-v0", "--episodes", "2"], "unknown env id"),
    (["--env", "CartPole-v1"], "exactly one budget"),
    (["--env", "CartPole-v1", "--episodes", "2", "--compression", "zip"], "compression"),
    (["--env", "CartPole-v1", "--steps", "-3"], "n_steps must be >= 1"),
    (["--env", "CartPole-v1", "--episodes", "2", "--render-crop", "0,90,0,90"], "add --render-obs"),
    (["--env", "CartPole-v1", "--episodes", "2", "--render-obs", "--render-crop", "1,2,3"], "four integers"),
    (["--env", "CartPole-v1", "--episodes", "2", "--label-noise", "1"], "label_noise must be a probability"),
    (["--env", "CartPole-v1", "--episodes", "2", "--record-state"], "add --render-obs"),
])
def test_bad_options_exit_2_without_file(tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str],
                                         match: str) -> None:
    out = tmp_path / "x.h5"
    assert main(["collect", "--policy", "random", *args, "--out", str(out)]) == 2
    assert match in error_line(capsys.readouterr().err)
    assert list(tmp_path.iterdir()) == []


# ---- subprocesses: signals and kill -9 -----------------------------------------------------

_PROCS: list[subprocess.Popen] = []


@pytest.fixture(autouse=True)
def _kill_leftover_subprocesses():
    """A failing assertion must not leave a collector running for ever."""
    yield
    while _PROCS:
        proc = _PROCS.pop()
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)


def start(tmp_path: Path, args: list[str]) -> tuple[subprocess.Popen, Path]:
    """Start `python -m demokit.cli.app ARGS`; returns once it printed that it is collecting."""
    err = tmp_path / f"stderr-{time.monotonic_ns()}.txt"
    with open(err, "w") as f:
        proc = subprocess.Popen([sys.executable, "-m", "demokit.cli.app", *args], cwd=tmp_path, env=ENV,
                                stdout=subprocess.PIPE, stderr=f, text=True)
    _PROCS.append(proc)
    wait_for(lambda: "collecting" in err.read_text() or proc.poll() is not None)
    assert proc.poll() is None, err.read_text()
    return proc, err


def wait_for(cond, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_exits_130_keeping_complete_episodes(tmp_path: Path, sig: int) -> None:
    out = tmp_path / "big.h5"
    proc, err = start(tmp_path, [*RANDOM, "--episodes", "100000000", "--out", str(out), "--json"])
    time.sleep(1.0)
    os.kill(proc.pid, sig)
    stdout, _ = proc.communicate(timeout=60)
    text = err.read_text()
    assert proc.returncode == 130, text
    line = [ln for ln in text.splitlines() if ln.startswith("interrupted:")]
    assert line and "kept" in line[0] and str(out) in line[0], text
    kept = json.loads(stdout.strip().splitlines()[-1])
    assert kept["interrupted"] is True and kept["episodes"] > 0
    assert f"kept {kept['episodes']} complete episodes" in line[0]
    assert_valid_complete(out)
    ds = load_dataset(out)
    assert ds.num_episodes == kept["episodes"] and len(ds) == kept["steps"]
    assert [p.name for p in tmp_path.iterdir() if ".tmp-" in p.name or p.suffix == ".lock"] == []


def test_kill_9_during_append_keeps_the_original(tmp_path: Path) -> None:
    out = tmp_path / "a.h5"
    assert main([*RANDOM, "--episodes", "5", "--out", str(out)]) == 0
    before = sha(out)
    proc, _ = start(tmp_path, [*RANDOM, "--episodes", "100000000", "--out", str(out), "--append", "--seed", "5"])
    time.sleep(0.5)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert sha(out) == before and load_dataset(out).num_episodes == 5
    assert main([*RANDOM, "--episodes", "2", "--out", str(out), "--append", "--seed", "5"]) == 0  # lock is free
    assert load_dataset(out).num_episodes == 7


APPENDER = textwrap.dedent("""
    import sys
    from demokit.pipelines import collect_demo_data
    collect_demo_data("random", "CartPole-v1", sys.argv[1], n_episodes=10**8, seed=100, mode="append",
                      write_block_steps=64)
""")


def test_kill_9_while_blocks_are_being_written(tmp_path: Path) -> None:
    """Appends write in place behind a rollback journal (docs/dataset-format.md): kill -9 while
    blocks are going into the file leaves a journal and a tail that the next reader rolls back."""
    out = tmp_path / "a.h5"
    assert main([*RANDOM, "--episodes", "5", "--out", str(out)]) == 0
    before, size = sha(out), out.stat().st_size
    script = tmp_path / "appender.py"
    script.write_text(APPENDER)
    proc = subprocess.Popen([sys.executable, str(script), str(out)], cwd=tmp_path, env=ENV)
    _PROCS.append(proc)
    journal = tmp_path / ".a.h5.journal"
    wait_for(lambda: journal.exists() and out.stat().st_size > size + 20_000 or proc.poll() is not None)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    ds = load_dataset(out)  # the reader recovers: the file is its last committed state again
    ds.load()
    assert ds.num_episodes == 5
    assert sha(out) == before and not journal.exists()
    assert main([*RANDOM, "--episodes", "2", "--out", str(out), "--append", "--seed", "5"]) == 0
    assert load_dataset(out).num_episodes == 7


def test_kill_9_of_a_new_dataset_leaves_nothing_or_a_valid_file(tmp_path: Path) -> None:
    out = tmp_path / "n.h5"
    proc, _ = start(tmp_path, [*RANDOM, "--episodes", "100000000", "--out", str(out)])
    time.sleep(0.3)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert not out.exists()
    assert main([*RANDOM, "--episodes", "2", "--out", str(out)]) == 0
    assert_valid_complete(out)


@pytest.mark.slow
def test_ppo_expert_is_trained_when_missing(capsys: pytest.CaptureFixture[str]) -> None:
    """The real thing: no experts/ in the (temporary) working directory, so PPO trains first (~15-30 s)."""
    assert main(["collect", "--policy", "ppo", "--env", "CartPole-v1", "--episodes", "5", "--json"]) == 0
    captured = capsys.readouterr()
    assert "training it first" in captured.err
    result = json.loads(captured.out.strip().splitlines()[-1])
    assert Path("experts/CartPole-v1-ppo.pt").exists() and result["path"] == "datasets/cartpole-v1-ppo.h5"
    assert result["mean_return"] >= 400  # five greedy episodes of an expert that evaluated >= 475
    prov = load_dataset(result["path"]).provenance
    assert prov["policy_kind"] == "expert" and prov["policy_return"] >= 475 and len(prov["checkpoint_sha256"]) == 64
