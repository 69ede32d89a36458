"""Issue 11's bad input through the CLI: data of one env version given to another version's env, and a
learner whose action space does not fit the task (GAIL's --algo). One `error:` line, exit 2, nothing written."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

from demokit.cli.app import main
from demokit.pipelines.collect import collect_demo_data


def _collect(env_id: str, path: Path) -> Path:
    collect_demo_data({"policy": "random", "env_id": env_id, "path": str(path), "n_episodes": 2})
    return path


def _files(root: Path) -> set[str]:
    return {os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs}


def _refused(capsys: pytest.CaptureFixture[str], root: Path, argv: list[str], *needles: str) -> None:
    before = _files(root)
    rc = main(argv)
    out, err = capsys.readouterr()
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert rc == 2, err
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    for needle in needles:
        assert needle in lines[0], lines[0]
    assert _files(root) == before  # nothing written (no checkpoint, no run folder)


@pytest.fixture(scope="module")
def cartpole_v0(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """CartPole-v0 data: the same spaces as CartPole-v1, another version (time limit 200, threshold 195)."""
    return _collect("CartPole-v0", tmp_path_factory.mktemp("v0") / "cartpole-v0.h5")


@pytest.mark.parametrize("argv", [
    ["gail", "--expert", "{data}", "--env", "CartPole-v1", "--timesteps", "500"],
    ["gail", "--expert", "{data}", "--env", "CartPole-v1", "--algo", "dqn", "--timesteps", "500"],
    ["bc-train", "{data}", "--env", "CartPole-v1"],
    ["eval", "--policy", "{ckpt}", "--dataset", "{data}"],
])
def test_data_of_another_env_version_is_refused(argv: list[str], cartpole_v0: Path, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    ckpt = tmp_path / "cp.pt"
    if "{ckpt}" in argv:
        from tests.pipelines.collect_helpers import write_checkpoint

        write_checkpoint(ckpt, "CartPole-v1", hidden_sizes=(8,))
    filled = [a.format(data=cartpole_v0, ckpt=ckpt) for a in argv]
    _refused(capsys, Path.cwd(), filled, "CartPole-v0", "CartPole-v1")


def test_same_version_still_accepted(cartpole_v0: Path) -> None:
    from demokit.data import load_dataset

    load_dataset(cartpole_v0).check_env("CartPole-v0")  # no error


@pytest.mark.skipif(importlib.util.find_spec("mujoco") is None, reason="needs the mujoco extra")
def test_hopper_v4_data_in_hopper_v5_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = _collect("Hopper-v4", tmp_path / "hopper-v4.h5")
    _refused(capsys, Path.cwd(), ["gail", "--expert", str(data), "--env", "Hopper-v5", "--algo", "sac",
                                  "--timesteps", "100"], "Hopper-v4", "Hopper-v5")


def test_gail_learner_that_does_not_fit_the_action_space(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pendulum = _collect("Pendulum-v1", tmp_path / "pendulum.h5")
    cartpole = _collect("CartPole-v1", tmp_path / "cartpole.h5")
    _refused(capsys, Path.cwd(), ["gail", "--expert", str(pendulum), "--algo", "dqn"], "dqn", "Box")
    _refused(capsys, Path.cwd(), ["gail", "--expert", str(cartpole), "--algo", "sac"], "sac", "Discrete")
