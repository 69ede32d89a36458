"""Against the real imitation library (it pins gymnasium 0.29, so it lives in its own virtual env).

Runs with ``DEMOKIT_IMITATION_PYTHON`` (a python with imitation 1.0.1 and datasets), else with
``.venv-imitation/bin/python`` when ``scripts/setup_peers.sh imitation`` made it; otherwise it is skipped. imitation's own ``serialize.save`` writes the input and its ``serialize.load``
reads demokit's output back.
"""

from __future__ import annotations

import os
import subprocess
import textwrap
from pathlib import Path

import numpy as np
import pytest

from demokit.data import load_dataset
from demokit.data.convert import convert

_PEER = Path(__file__).resolve().parents[3] / ".venv-imitation" / "bin" / "python"
PYTHON = os.environ.get("DEMOKIT_IMITATION_PYTHON") or (str(_PEER) if _PEER.exists() else None)
pytestmark = pytest.mark.skipif(not PYTHON, reason="no python with imitation (DEMOKIT_IMITATION_PYTHON or "
                                                   ".venv-imitation from scripts/setup_peers.sh)")
pytest.importorskip("datasets")

SAVE = textwrap.dedent("""
    import sys, numpy as np
    from imitation.data import serialize, types
    rng = np.random.default_rng(5)
    trajs, arrays = [], {}
    for i, (t, terminal) in enumerate([(6, True), (9, False), (4, True)]):
        obs = rng.uniform(-0.2, 0.2, size=(t + 1, 4)).astype(np.float32)
        acts = rng.integers(0, 2, size=t)
        rews = rng.normal(size=t).astype(np.float32)
        infos = np.array([{"step": k} for k in range(t)])
        trajs.append(types.TrajectoryWithRew(obs=obs, acts=acts, infos=infos, terminal=terminal, rews=rews))
        arrays.update({f"obs{i}": obs, "acts%d" % i: acts, "rews%d" % i: rews, "term%d" % i: np.array(terminal)})
    serialize.save(sys.argv[1], trajs)
    np.savez(sys.argv[2], **arrays)
""")

LOAD = textwrap.dedent("""
    import sys, numpy as np
    from imitation.data import serialize
    trajs = serialize.load(sys.argv[1])
    out = {}
    for i, tr in enumerate(trajs):
        out.update({f"obs{i}": np.asarray(tr.obs), f"acts{i}": np.asarray(tr.acts), f"rews{i}": np.asarray(tr.rews),
                    f"term{i}": np.array(tr.terminal), f"infos{i}": np.array(len(tr.infos))})
    np.savez(sys.argv[2], **out)
""")


def _run(script: str, *args: Path) -> None:
    done = subprocess.run([PYTHON, "-c", script, *map(str, args)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]


def test_imitation_saves_demokit_reads_and_back(tmp_path):
    src, ref = tmp_path / "imitation-traj", tmp_path / "ref.npz"
    _run(SAVE, src, ref)
    expected = np.load(ref)
    with pytest.warns(UserWarning, match="jsonpickle"):  # imitation's infos are jsonpickled dicts: skipped
        res = convert(src, tmp_path / "cp.h5", env_id="CartPole-v1")
    ds = load_dataset(res.path)
    assert ds.num_episodes == 3
    for i in range(3):
        ep = ds.episode(i)
        np.testing.assert_array_equal(ep.observations, expected[f"obs{i}"][:-1])
        np.testing.assert_array_equal(ep.final_observation[0], expected[f"obs{i}"][-1])
        np.testing.assert_array_equal(ep.actions, expected[f"acts{i}"])
        np.testing.assert_array_equal(ep.rewards, expected[f"rews{i}"].astype(np.float64))
        assert ep.is_terminated == bool(expected[f"term{i}"]) and ep.is_truncated != bool(expected[f"term{i}"])
    # demokit -> imitation: imitation's own loader reads it, arrays equal
    out, back = tmp_path / "out-traj", tmp_path / "back.npz"
    convert(res.path, out, to="imitation")
    _run(LOAD, out, back)
    got = np.load(back)
    for i in range(3):
        ep = ds.episode(i)
        np.testing.assert_array_equal(got[f"obs{i}"], np.concatenate([ep.observations, ep.final_observation]))
        np.testing.assert_array_equal(got[f"acts{i}"], ep.actions)
        np.testing.assert_array_equal(got[f"rews{i}"], ep.rewards)
        assert bool(got[f"term{i}"]) == ep.is_terminated and int(got[f"infos{i}"]) == len(ep)
