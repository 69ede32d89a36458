"""Against the real robomimic: its SequenceDataset (the loader its training uses) reads demokit's output,
filter keys included. robomimic needs its own virtual env (robosuite-era pins); set
``DEMOKIT_ROBOMIMIC_PYTHON`` to a python with robomimic installed to run this, else it is skipped."""

from __future__ import annotations

import json
import os
import subprocess
import textwrap

import numpy as np
import pytest

from demokit.data import load_dataset
from demokit.data.convert import convert

PYTHON = os.environ.get("DEMOKIT_ROBOMIMIC_PYTHON")
pytestmark = pytest.mark.skipif(not PYTHON, reason="DEMOKIT_ROBOMIMIC_PYTHON (a python with robomimic) not set")

READ = textwrap.dedent("""
    import json, sys
    import numpy as np
    import robomimic.utils.obs_utils as ObsUtils
    import h5py
    from robomimic.utils.dataset import SequenceDataset
    ObsUtils.initialize_obs_utils_with_obs_specs({"obs": {"low_dim": ["obs"]}})
    with h5py.File(sys.argv[1], "r") as f:  # what FileUtils.get_env_metadata_from_dataset reads
        out = {"env": json.loads(f["data"].attrs["env_args"])}
    for key in (None, "train"):
        ds = SequenceDataset(hdf5_path=sys.argv[1], obs_keys=("obs",), dataset_keys=("actions", "rewards", "dones"),
                             load_next_obs=True, frame_stack=1, seq_length=1, pad_frame_stack=True,
                             pad_seq_length=True, get_pad_mask=False, goal_mode=None, hdf5_cache_mode="all",
                             hdf5_use_swmr=True, hdf5_normalize_obs=False, filter_by_attribute=key)
        items = [ds[i] for i in range(len(ds))]
        out[str(key)] = {"obs": [it["obs"]["obs"][0].tolist() for it in items],
                         "next_obs": [it["next_obs"]["obs"][0].tolist() for it in items],
                         "actions": [it["actions"][0].tolist() for it in items],
                         "rewards": [float(it["rewards"][0]) for it in items],
                         "dones": [float(it["dones"][0]) for it in items]}
    print(json.dumps(out))
""")


def test_robomimic_sequence_dataset_reads_demokit_output(tmp_path, demokit_cartpole):
    mid = tmp_path / "cp.h5"
    ds = load_dataset(demokit_cartpole)
    # filter keys travel through the provenance: give the dataset one by converting a masked robomimic file
    rm = tmp_path / "cp.hdf5"
    convert(demokit_cartpole, rm, to="robomimic")
    import h5py

    with h5py.File(rm, "r+") as f:
        f.create_dataset("mask/train", data=np.array(["demo_0", "demo_2"], dtype="S"))
    convert(rm, mid)
    out = tmp_path / "out.hdf5"
    convert(mid, out, to="robomimic")
    done = subprocess.run([PYTHON, "-c", READ, str(out)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert got["env"]["env_name"] == "CartPole-v1"
    allrows = got["None"]
    np.testing.assert_allclose(allrows["obs"], ds.observations, rtol=0, atol=0)
    np.testing.assert_allclose(allrows["next_obs"], ds.next_observations, rtol=0, atol=0)
    np.testing.assert_array_equal(np.asarray(allrows["actions"]).reshape(-1), ds.actions)
    np.testing.assert_allclose(allrows["rewards"], ds.rewards.astype(np.float32), rtol=1e-7)
    np.testing.assert_array_equal(allrows["dones"], ds.terminated.astype(float))
    train_rows = np.concatenate([np.arange(s, s + n) for s, n in zip(ds.episode_starts[[0, 2]],
                                                                     ds.episode_lengths[[0, 2]])])
    np.testing.assert_allclose(got["train"]["obs"], ds.observations[train_rows], rtol=0, atol=0)
