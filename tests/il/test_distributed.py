"""torchrun / DistributedDataParallel: sharding helpers and a 2-process gloo run equal to one process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from demokit.data import load_dataset
from demokit.il import train_bc
from demokit.il.bc import _read_xy
from demokit.il.distributed import shard_bounds
from demokit.policies import load_checkpoint

REPO = Path(__file__).resolve().parents[2]


def test_shard_bounds_cover_everything_once():
    for n in (0, 1, 7, 100):
        for world in (1, 2, 3, 8):
            bounds = [shard_bounds(n, r, world) for r in range(world)]
            assert bounds[0][0] == 0 and bounds[-1][1] == n
            assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
            sizes = [hi - lo for lo, hi in bounds]
            assert max(sizes) - min(sizes) <= 1


def test_a_shard_read_matches_the_full_arrays(cartpole3):
    ds = load_dataset(cartpole3)
    rows = np.concatenate([np.arange(3, 40), np.arange(600, 620), [len(ds) - 1]])
    x, a = _read_xy(ds, rows)
    np.testing.assert_array_equal(x, ds.flat_observations()[rows])
    np.testing.assert_array_equal(a, ds.actions[rows])
    x, a = _read_xy(ds, np.arange(0))
    assert x.shape == (0, 4) and a.shape == (0,)


def test_world_size_in_the_environment_does_not_make_train_bc_distributed(cartpole3, monkeypatch):
    """train_bc joins a process group only when told to (the CLI tells it under torchrun)."""
    for key, value in {"WORLD_SIZE": "2", "RANK": "0", "LOCAL_RANK": "0", "MASTER_ADDR": "127.0.0.1",
                       "MASTER_PORT": "1"}.items():
        monkeypatch.setenv(key, value)
    res = train_bc(cartpole3, epochs=1, eval_episodes=0, device="cpu", seed=3)
    assert not torch.distributed.is_initialized() and res.epochs == 1


def _run_torchrun(cmd: list[str], *, env: dict[str, str], cwd: Path, timeout: float = 300) -> tuple[str, str, int]:
    """Run torchrun; on a timeout stop it with SIGTERM (it then stops its workers), SIGKILL as a last resort."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=cwd)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.terminate()
        try:
            stdout, stderr = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            stdout, stderr = proc.communicate(timeout=30)
        pytest.fail(f"torchrun did not finish in {timeout} s:\n{stderr[-3000:]}")
    finally:
        if proc.poll() is None:  # never leave it running behind a failed test
            proc.kill()
            proc.wait(timeout=30)
    return stdout, stderr, proc.returncode


def test_two_gloo_processes_match_one_process_with_the_global_batch(cartpole10, tmp_path):
    """torchrun -m demokit bc-train with 2 CPU ranks x batch 64 == one process with batch 128."""
    out = tmp_path / "ddp.pt"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           "-m", "demokit", "bc-train", str(cartpole10), "--epochs", "3", "--batch-size", "64",
           "--eval-episodes", "0", "--device", "cpu", "--seed", "11", "--out", str(out), "--json"]
    stdout, stderr, rc = _run_torchrun(cmd, env=env, cwd=tmp_path)
    assert rc == 0, stderr[-3000:]
    summary = json.loads(stdout.strip().splitlines()[-1])  # only rank 0 prints
    assert summary["checkpoint"] == str(out) and summary["epochs"] == 3
    assert sum(line.startswith("{") for line in stdout.splitlines()) == 1
    ck = load_checkpoint(out)
    assert ck.training["world_size"] == 2

    single = train_bc(cartpole10, epochs=3, batch_size=128, eval_episodes=0, device="cpu", seed=11)
    a, b = single.policy.state_dict(), ck.policy.state_dict()
    for k in a:
        torch.testing.assert_close(b[k], a[k], rtol=1e-4, atol=1e-5, msg=k)
    np.testing.assert_allclose([h["loss"] for h in ck.training["history"]], [h["loss"] for h in single.history],
                               rtol=1e-5)
    # and it is not trivially equal to a one-process run with the per-rank batch
    other = train_bc(cartpole10, epochs=3, batch_size=64, eval_episodes=0, device="cpu", seed=11).policy.state_dict()
    assert max(float((other[k] - b[k]).abs().max()) for k in a if k.startswith(("encoder.", "head."))) > 1e-3


def test_two_gloo_processes_stream_with_merged_statistics(cartpole10, tmp_path):
    """torchrun bc-train --stream: each rank streams its shard; the normalisation statistics merged
    from the ranks' shifted sums equal those of the whole training split; both ranks take the same steps."""
    out = tmp_path / "ddp-stream.pt"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           "-m", "demokit", "bc-train", str(cartpole10), "--stream", "--epochs", "2", "--batch-size", "64",
           "--eval-episodes", "0", "--device", "cpu", "--seed", "11", "--out", str(out), "--json"]
    stdout, stderr, rc = _run_torchrun(cmd, env=env, cwd=tmp_path)
    assert rc == 0, stderr[-3000:]
    ck = load_checkpoint(out)
    assert ck.training["world_size"] == 2 and ck.training["data"]["stream"]
    single = train_bc(cartpole10, epochs=1, batch_size=64, eval_episodes=0, device="cpu", seed=11)
    torch.testing.assert_close(ck.policy.obs_norm.mean, single.policy.obs_norm.mean, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(ck.policy.obs_norm.var, single.policy.obs_norm.var, rtol=1e-9, atol=1e-9)
    assert all(h["loss"] < 0.7 for h in ck.training["history"])


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_training_matches_cpu_closely(cartpole3):
    cpu = train_bc(cartpole3, epochs=2, eval_episodes=0, device="cpu").policy.state_dict()
    gpu = train_bc(cartpole3, epochs=2, eval_episodes=0, device="cuda").policy.state_dict()
    for k in cpu:
        torch.testing.assert_close(gpu[k], cpu[k], rtol=1e-3, atol=1e-4)
