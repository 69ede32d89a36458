"""Collection across processes: shards by --first-episode, real 2-process torchrun launches, failures."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from collect_helpers import write_checkpoint

from demokit.cli.app import main
from demokit.data import load_dataset
from demokit.data.combine import combine_datasets
from demokit.pipelines import collect_demo_data
from demokit.pipelines.sharded import remove_stale_shards

REPO = Path(__file__).resolve().parents[2]


def assert_same_arrays(a: Path, b: Path) -> None:
    """The two datasets hold bitwise-equal arrays (extras and episode index included)."""
    x, y = load_dataset(a), load_dataset(b)
    assert (x.env_id, x.num_episodes, len(x)) == (y.env_id, y.num_episodes, len(y))
    for name in ("observations", "actions", "rewards", "terminated", "truncated", "final_observations",
                 "episode_starts", "episode_lengths", "episode_seeds", "episode_returns"):
        np.testing.assert_array_equal(np.asarray(getattr(x, name)), np.asarray(getattr(y, name)), err_msg=name)
    assert x.extras.keys() == y.extras.keys()
    for k in x.extras:
        np.testing.assert_array_equal(x.extras[k], y.extras[k], err_msg=k)


def test_shards_by_first_episode_combine_into_the_single_collection(tmp_path):
    ckpt = write_checkpoint(tmp_path / "p.pt", "CartPole-v1", seed=1)
    kw = dict(seed=5, deterministic=False, num_envs=3, eval_episodes=0)
    collect_demo_data(ckpt, "CartPole-v1", tmp_path / "one.h5", n_episodes=7, **kw)
    collect_demo_data(ckpt, "CartPole-v1", tmp_path / "s0.h5", n_episodes=3, **kw)
    collect_demo_data(ckpt, "CartPole-v1", tmp_path / "s1.h5", n_episodes=4, first_episode=3,
                      **{**kw, "num_envs": 2})  # another batch layout: the arrays do not depend on it
    assert load_dataset(tmp_path / "s1.h5").episode_seeds.tolist() == [8, 9, 10, 11]
    assert load_dataset(tmp_path / "s1.h5").provenance["first_episode"] == 3
    combine_datasets([tmp_path / "s0.h5", tmp_path / "s1.h5"], tmp_path / "two.h5")
    assert_same_arrays(tmp_path / "one.h5", tmp_path / "two.h5")
    assert "log_prob" in load_dataset(tmp_path / "two.h5").extras


@pytest.mark.parametrize("args, message", [
    (["--steps", "100"], "episode budget"),
    (["--episodes", "1"], "cannot be split across 2 processes"),
    (["--episodes", "4", "--nproc", "0"], "--nproc must be >= 1"),
])
def test_nproc_refusals_start_nothing(tmp_path, capsys, args, message):
    out = tmp_path / "d.h5"
    argv = ["collect", "--policy", "random", "--env", "CartPole-v1", "--out", str(out), *args]
    if "--nproc" not in args:
        argv += ["--nproc", "2"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and message in err[0]
    assert list(tmp_path.iterdir()) == []


def test_nproc_needs_out_and_refuses_an_existing_one(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["collect", "--policy", "random", "--env", "CartPole-v1", "--episodes", "4", "--nproc", "2"]) == 2
    assert "needs --out" in capsys.readouterr().err
    out = tmp_path / "d.h5"
    collect_demo_data("random", "CartPole-v1", out, n_episodes=2)
    before = out.read_bytes()
    assert main(["collect", "--policy", "random", "--env", "CartPole-v1", "--episodes", "4", "--nproc", "2",
                 "--out", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err and out.read_bytes() == before


def test_stale_shard_folders_of_dead_processes_are_removed(tmp_path):
    out = tmp_path / "d.h5"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".d.h5.shards-{dead.pid}"
    live = tmp_path / f".d.h5.shards-{os.getpid()}"
    for d in (stale, live):
        d.mkdir()
        (d / "rank-00000.h5").write_bytes(b"x")
    assert remove_stale_shards(out) == [stale]
    assert not stale.exists() and live.exists()


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    env["OMP_NUM_THREADS"] = "1"
    return env


def test_torchrun_two_ranks_write_the_single_process_dataset(tmp_path):
    """A real 2-process torchrun launch (gloo on this machine) of `demokit collect`, sampled actions with
    log-probs: the combined dataset equals the one-process collection; no shard is left."""
    ckpt = write_checkpoint(tmp_path / "p.pt", "CartPole-v1", seed=2)
    one = tmp_path / "one.h5"
    collect_demo_data(ckpt, "CartPole-v1", one, n_episodes=5, seed=11, deterministic=False, eval_episodes=0)
    two = tmp_path / "two.h5"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m", "demokit",
           "collect", "--policy", str(ckpt), "--env", "CartPole-v1", "--episodes", "5", "--seed", "11",
           "--stochastic", "--num-envs", "2", "--out", str(two), "--json"]
    proc = subprocess.run(cmd, cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert_same_arrays(one, two)
    prov = load_dataset(two).provenance
    assert prov["sharded"]["world_size"] == 2 and prov["n_episodes"] == 5
    assert [s["episodes"] for s in prov["combined_from"]] == [[0, 2], [2, 5]]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one.h5", "p.pt", "two.h5"]
    assert '"episodes": 5' in proc.stdout.strip().splitlines()[-1]


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(c) for c in text.split()]


def _rank_of(pid: int) -> int | None:
    try:
        env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return None
    for item in env:
        if item.startswith(b"RANK="):
            return int(item[5:])
    return None


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs /proc to find the ranks")
def test_nproc_rank_killed_leaves_nothing(tmp_path):
    """`collect --nproc 2`: kill -9 rank 1 while it collects: one error line, exit 1, no output, no shards."""
    out = tmp_path / "d.h5"
    cmd = [sys.executable, "-m", "demokit", "collect", "--policy", "random", "--env", "CartPole-v1",
           "--episodes", "200000", "--nproc", "2", "--out", str(out)]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        victim = None
        deadline = time.monotonic() + 240
        while victim is None and time.monotonic() < deadline and proc.poll() is None:
            shards = list(tmp_path.glob(".d.h5.shards-*"))
            ranks = {_rank_of(c): c for c in _children(proc.pid)}
            if shards and 1 in ranks and any(shards[0].iterdir()):  # the shards exist: the ranks collect
                victim = ranks[1]
            time.sleep(0.2)
        assert victim is not None, "rank 1 never started collecting"
        os.kill(victim, signal.SIGKILL)
        _, err = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1, err[-3000:]
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "rank 1 of 2 was killed by signal 9" in lines[0]
    assert "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_nproc_refuses_an_append_target_of_another_env_before_collecting(tmp_path):
    """Every rank refuses the --append target (another env) before it collects: one error line, exit 2,
    the target byte for byte as it was, no shards left."""
    out = tmp_path / "d.h5"
    collect_demo_data("random", "Acrobot-v1", out, n_episodes=1, eval_episodes=0)
    before = out.read_bytes()
    cmd = [sys.executable, "-m", "demokit", "collect", "--policy", "random", "--env", "CartPole-v1",
           "--episodes", "4", "--nproc", "2", "--append", "--out", str(out)]
    proc = subprocess.run(cmd, cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr[-3000:]
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "observation space" in lines[0] and "Traceback" not in proc.stderr
    assert "collecting" not in proc.stderr  # refused before any rank started collecting
    assert out.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.h5"]
