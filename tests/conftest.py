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


@pytest.hookimpl(trylast=True)  # after -m / -k deselection: the chunk size counts the items that run
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The long learning tests (marker ``slow``) spread over the workers, each at the head of a worker's first
    batch, so they run side by side from the start instead of one after the other on one worker.

    The suite runs on several workers (pytest-xdist, ``-n auto`` in pyproject.toml). xdist's load scheduler
    hands worker w the items ``[w * c, (w + 1) * c)`` first, ``c = max(n // workers // 4, 2)``, and then
    feeds whichever worker runs low: with the slow tests all first (as before), every one of them landed on
    the first worker (a 10-minute suite on 2 cores with ~7 minutes of work per core). Here the slow tests go
    round robin to the workers' first batches, in their collected order, the rest after them in theirs. The
    order depends only on the items and the worker count, so it is the same in every worker, as xdist
    requires; without xdist the slow tests simply come first."""
    slow = [item for item in items if item.get_closest_marker("slow") is not None]
    rest = [item for item in items if item.get_closest_marker("slow") is None]
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1)
    if workers <= 1:
        items[:] = slow + rest
        return
    chunk = max(len(items) // workers // 4, 2)
    heads = [slow[w::workers] for w in range(workers)]
    order: list[pytest.Item] = []
    taken = 0
    for head in heads:
        fill = max(chunk - len(head), 0)
        order += head + rest[taken:taken + fill]
        taken += fill
    items[:] = order + rest[taken:]


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
