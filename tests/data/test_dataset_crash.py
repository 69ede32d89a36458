"""kill -9 of a writer in the middle of appending never damages the dataset."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from demokit.data import load_dataset
from demokit.data.locking import lock_path_for
from demokit.data.storage.journal import journal_path_for
from tests.data.helpers import make_episodes, write

PER_ROUND = 3

APPENDER = textwrap.dedent(f"""
    import sys
    import time
    from tests.data.helpers import BOX, DISCRETE, make_episodes
    from demokit.data import DatasetWriter
    path, pause = sys.argv[1], sys.argv[2] == "pause"
    for r in range(10_000):
        with DatasetWriter(path, observation_space=BOX, action_space=DISCRETE, env_id="Test-v0",
                           mode="append", block_steps=1) as w:
            for i, ep in enumerate(make_episodes(n={PER_ROUND}, seed=r)):
                w.add_episode(ep)  # every episode flushed to the temp file on its own
                if r == 1 and i == 0:
                    print("flushed", flush=True)
                    if pause:
                        time.sleep(30)  # killed here: half-way through an append
        print("committed", flush=True)
""")


def test_kill_9_mid_append_leaves_dataset_readable(tmp_path: Path) -> None:
    path = write(tmp_path / "demos.h5", make_episodes(n=4))
    script = tmp_path / "appender.py"
    script.write_text(APPENDER)
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": f"{root}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    for delay in (None, 0.0, 0.05, 0.13):
        args = [sys.executable, str(script), str(path), "pause" if delay is None else "run"]
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True, env=env)
        try:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "committed"  # it has appended once
            assert proc.stdout.readline().strip() == "flushed"  # and is half-way through the next append
            time.sleep(delay or 0.0)
        finally:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
        if delay is None:  # killed mid-append for sure: its journal and lock file are left behind
            journal = journal_path_for(path)
            assert journal.exists() and lock_path_for(path).exists()
            base = int.from_bytes(journal.read_bytes()[8:16], "little")  # the committed length
            committed = path.read_bytes()[:base]
        ds = load_dataset(path)  # readable, all earlier episodes intact
        if delay is None:  # the reader rolled the dead writer's transaction back: the committed bytes exactly
            assert path.read_bytes() == committed
            assert not journal.exists() and not lock_path_for(path).exists()
        ds.load()
        assert ds.num_episodes >= 4 + PER_ROUND and (ds.num_episodes - 4) % PER_ROUND == 0
        assert len(ds) == int(ds.episode_lengths.sum())
    # the lock died with the process: the next writer gets in
    n = load_dataset(path).num_episodes
    write(path, make_episodes(n=1), mode="append")
    assert load_dataset(path).num_episodes == n + 1
    assert not lock_path_for(path).exists()
    assert [p.name for p in tmp_path.iterdir() if ".tmp-" in p.name] == []


COLLECTOR = textwrap.dedent("""
    import signal, sys
    from tests.data.helpers import BOX, DISCRETE, make_episodes
    from demokit.data import DatasetWriter
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(143))  # as a CLI would
    with DatasetWriter(sys.argv[1], observation_space=BOX, action_space=DISCRETE, block_steps=7) as w:
        for r in range(1_000_000):
            w.add_episodes(make_episodes(n=2, seed=r))
            if r == 5:
                print("running", flush=True)
""")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_collection_commits_completed_episodes(tmp_path: Path, sig: int) -> None:
    path = tmp_path / "new.h5"
    script = tmp_path / "collector.py"
    script.write_text(COLLECTOR)
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": f"{root}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    proc = subprocess.Popen([sys.executable, str(script), str(path)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "running"
    time.sleep(0.1)
    for _ in range(20):
        # an exception raised by a signal handler can land in a weakref callback, where Python
        # only prints it ("Exception ignored in ..."): then the signal is simply sent again
        proc.send_signal(sig)
        try:
            proc.communicate(timeout=3)
            break
        except subprocess.TimeoutExpired:
            continue
    if proc.poll() is None:  # never leave a writer running behind a failed test
        proc.kill()
        proc.wait(timeout=30)
    assert proc.returncode not in (None, 0)
    ds = load_dataset(path)
    ds.load()
    assert ds.num_episodes >= 12  # everything added before the signal (an episode is added whole or not at all)
    for i in range(ds.num_episodes):
        expected = make_episodes(n=2, seed=i // 2)[i % 2]
        np.testing.assert_array_equal(ds.episode(i).observations, expected.observations)
        np.testing.assert_array_equal(ds.episode(i).rewards, expected.rewards)
    assert [p.name for p in tmp_path.iterdir() if ".tmp-" in p.name or p.name.endswith(".lock")] == []
