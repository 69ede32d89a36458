"""Shared tiny fixtures. Tests never write into the working directory (use tmp_path)."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

from tests.helpers import cartpole_controller  # noqa: F401  (re-exported for fixtures)

torch.set_num_threads(1)

# A test run started in the background (`nohup ... &`) inherits SIGINT ignored, and so would
# the subprocesses the Ctrl-C tests start: give them the SIGINT of a terminal session.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

# Tests run with --import-mode=importlib (so test files in different folders may share a
# name); helper modules that live beside a folder's tests stay importable by plain name.
for _sub in sorted(Path(__file__).parent.iterdir()):
    if _sub.is_dir() and not _sub.name.startswith((".", "_")) and str(_sub) not in sys.path:
        sys.path.insert(0, str(_sub))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The long learning tests (marker ``slow``) first, in their collected order: the suite runs on
    several workers (pytest-xdist, ``-n auto`` in pyproject.toml), which get the first tests one
    each in turn, so the long ones start at once on different workers instead of ending the run
    on one. A stable sort: the order is the same in every worker, as xdist requires."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.fixture(scope="session", autouse=True)
def _isolate_session_cwd(tmp_path_factory: pytest.TempPathFactory) -> object:
    """Module- and session-scoped fixtures run before the per-test chdir below: give them a temp
    dir as the working directory too (a module fixture's run record once landed in ./runs)."""
    before = os.getcwd()
    os.chdir(tmp_path_factory.mktemp("session-cwd"))
    yield
    os.chdir(before)


@pytest.fixture(autouse=True)
def _isolate_cwd(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run every test inside a fresh temp dir so default output paths never land in the repo."""
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))


@pytest.fixture
def cartpole_spaces() -> tuple[gym.Space, gym.Space]:
    env = gym.make("CartPole-v1")
    return env.observation_space, env.action_space


@pytest.fixture
def repo_root() -> str:
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
