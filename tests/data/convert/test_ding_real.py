"""DI-engine expert data against the real DI-engine (0.5.3).

The files under fixtures/ding-0.5.3/ were written by DI-engine's own ``collect_demo_data`` (ding_peer.py
``collect``: random-weight DQN on CartPole-v0 with 2 envs, SAC on Pendulum-v1, in both of its layouts);
test_ding_write.py reads them everywhere. With ``.venv-ding`` (scripts/setup_peers.sh ding) or
``DEMOKIT_DING_PYTHON``, the test here also has DI-engine read what demokit writes: ``NaiveRLDataset``,
``HDF5Dataset`` (``create_dataset`` with ``data_type='hdf5'``), ``GailRewardModel.load_expert_data``,
``PwilRewardModel.load_expert_data``, and ``serial_pipeline_bc`` trains on each pickle (Discrete and Box
actions).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from tests.data.convert.sources import write_demokit_cartpole

from demokit.data.convert import convert, to_ding
from demokit.data.dataset import load_dataset

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

FIXTURES = Path(__file__).parent / "fixtures" / "ding-0.5.3"
DRIVER = Path(__file__).parent / "ding_peer.py"
_PEER = Path(__file__).resolve().parents[3] / ".venv-ding" / "bin" / "python"
PEER = os.environ.get("DEMOKIT_DING_PYTHON") or (str(_PEER) if _PEER.exists() else None)
needs_peer = pytest.mark.skipif(not PEER, reason="no python with DI-engine (DEMOKIT_DING_PYTHON or .venv-ding from "
                                                 "scripts/setup_peers.sh ding)")


@needs_peer
def test_di_engine_reads_what_demokit_writes(tmp_path: Path) -> None:
    # CartPole: a demokit dataset (terminated and truncated episodes, extras value/logit); Pendulum: DI-engine's
    # own file brought into demokit first (Box actions, a 200-step time limit)
    sources = {"cartpole": write_demokit_cartpole(tmp_path / "cartpole-src.h5"),
               "pendulum": convert(FIXTURES / "pendulum.pkl", tmp_path / "pendulum-src.h5", env_id="Pendulum-v1").path}
    out = tmp_path / "ding"
    for name, src in sources.items():
        to_ding(src, out / f"{name}.pkl")
        to_ding(src, out / f"{name}.hdf5")
    done = subprocess.run([PEER, str(DRIVER), "check", str(out), str(tmp_path / "read.npz")], capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    got = np.load(tmp_path / "read.npz")
    for name, src in sources.items():
        ds = load_dataset(src)
        actions = ds.actions.reshape(len(ds), -1)
        ends = np.cumsum(ds.episode_lengths) - 1
        for layout in ("naive", "hdf5"):
            np.testing.assert_array_equal(got[f"{name}/{layout}/obs"], ds.observations)
            np.testing.assert_array_equal(got[f"{name}/{layout}/next_obs"], ds.next_observations)
            np.testing.assert_array_equal(got[f"{name}/{layout}/action"], actions)
            np.testing.assert_array_equal(got[f"{name}/{layout}/reward"][:, 0], ds.rewards.astype(np.float32))
            assert set(np.flatnonzero(got[f"{name}/{layout}/done"])) <= set(ends.tolist())
        np.testing.assert_allclose(got[f"{name}/hdf5/mean"], ds.observations.mean(0), rtol=1e-5)
        gail = np.concatenate([ds.observations, actions.astype(np.float32)], axis=1)
        np.testing.assert_array_equal(got[f"{name}/gail"], gail)  # GAIL's state-action pairs
        assert int(got[f"{name}/pwil_count"]) == len(ds)
        assert bool(got[f"{name}/bc_trained"])
