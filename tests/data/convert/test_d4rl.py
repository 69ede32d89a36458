"""D4RL-style flat HDF5 -> demokit (and back)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from gymnasium import spaces
from tests.data.convert.sources import write_d4rl

from demokit.data.convert import convert, from_d4rl, to_d4rl
from demokit.data.dataset import load_dataset
from demokit.errors import SpaceMismatchError, UserError
from demokit.spaces import same_space

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # notes are asserted where they matter


def _flat(lengths: list[int], ends: list[str], *, seed: int = 0, obs_dim: int = 3) -> dict[str, np.ndarray]:
    """Consecutive episodes with true next observations; ends[k] in terminal/timeout/none."""
    rng = np.random.default_rng(seed)
    obs, nxt, term, tout = [], [], [], []
    for T, end in zip(lengths, ends):
        o = rng.normal(size=(T + 1, obs_dim)).astype(np.float32)
        obs.append(o[:-1])
        nxt.append(o[1:])
        t = np.zeros(T, dtype=bool)
        u = np.zeros(T, dtype=bool)
        if end == "terminal":
            t[-1] = True
        elif end == "timeout":
            u[-1] = True
        term.append(t)
        tout.append(u)
    n = sum(lengths)
    return {"observations": np.concatenate(obs), "next_observations": np.concatenate(nxt),
            "actions": rng.uniform(-1, 1, size=(n, 2)).astype(np.float32), "rewards": rng.normal(size=n),
            "terminals": np.concatenate(term), "timeouts": np.concatenate(tout)}


def test_split_at_terminals_and_timeouts_with_next_observations(tmp_path: Path) -> None:
    f = _flat([4, 3, 5], ["terminal", "timeout", "terminal"])
    src = write_d4rl(tmp_path / "d4rl.hdf5", f, infos={"qpos": np.arange(12.0)}, metadata={"algorithm": "SAC"})
    res = from_d4rl(src, tmp_path / "out.h5")
    assert (res.source_kind, res.episodes, res.steps, res.spaces_inferred) == ("d4rl", 3, 12, True)
    ds = load_dataset(tmp_path / "out.h5")
    np.testing.assert_array_equal(ds.observations, f["observations"])
    np.testing.assert_array_equal(ds.next_observations, f["next_observations"])
    np.testing.assert_array_equal(ds.actions, f["actions"])
    np.testing.assert_array_equal(ds.rewards, f["rewards"])
    np.testing.assert_array_equal(ds.terminated, f["terminals"])
    np.testing.assert_array_equal(ds.truncated, f["timeouts"])
    np.testing.assert_array_equal(ds.episode_lengths, [4, 3, 5])
    np.testing.assert_array_equal(ds.extras["qpos"], np.arange(12.0))
    assert isinstance(ds.observation_space, spaces.Box) and ds.observation_space.shape == (3,)
    assert isinstance(ds.action_space, spaces.Box) and np.isinf(ds.action_space.high).all()
    prov = ds.provenance
    assert prov["spaces_inferred"] is True and prov["converted_from"]["metadata"]["algorithm"] == "SAC"
    assert any("inferred" in note for note in prov["conversion_notes"])


def test_trailing_segment_and_jumps_become_truncated(tmp_path: Path) -> None:
    f = _flat([4, 3, 2], ["terminal", "none", "none"])  # 3-step piece then a jump, then a trailing piece
    src = write_d4rl(tmp_path / "d4rl.hdf5", f)
    with pytest.warns(UserWarning) as record:
        res = convert(src, tmp_path / "out.h5")
    messages = " ".join(str(w.message) for w in record)
    assert "next_observations[i] != observations[i+1]" in messages and "truncated episode" in messages
    assert res.episodes == 3
    ds = load_dataset(tmp_path / "out.h5")
    np.testing.assert_array_equal(ds.episode_lengths, [4, 3, 2])
    np.testing.assert_array_equal(ds.episode_terminated, [True, False, False])
    np.testing.assert_array_equal(ds.episode_truncated, [False, True, True])
    np.testing.assert_array_equal(ds.next_observations, f["next_observations"])


def test_without_next_observations(tmp_path: Path) -> None:
    """Terminated: keep all steps, final obs = copy of the last obs; truncated: last step
    gives up its transition and supplies the final obs; a 1-step truncated episode is dropped."""
    f = _flat([4, 3, 1, 2], ["terminal", "timeout", "timeout", "terminal"])
    del f["next_observations"]
    src = write_d4rl(tmp_path / "d4rl.hdf5", f)
    with pytest.warns(UserWarning, match="no next_observations"):
        res = convert(src, tmp_path / "out.h5")
    assert (res.episodes, res.steps) == (3, 8)
    ds = load_dataset(tmp_path / "out.h5")
    np.testing.assert_array_equal(ds.episode_lengths, [4, 2, 2])
    np.testing.assert_array_equal(ds.episode_truncated, [False, True, False])
    obs = f["observations"]
    np.testing.assert_array_equal(ds.final_observations, obs[[3, 6, 9]])
    np.testing.assert_array_equal(ds.observations, obs[[0, 1, 2, 3, 4, 5, 8, 9]])
    # within the truncated episode every transition has its true next observation
    np.testing.assert_array_equal(ds.episode(1).next_observations, obs[5:7])
    assert "no next_observations" in " ".join(ds.provenance["conversion_notes"])


def test_env_fits_and_mismatches(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    n = 6
    fields = {"observations": rng.normal(size=(n, 4)).astype(np.float32),
              "actions": rng.integers(0, 2, size=(n, 1)), "rewards": np.ones((n, 1)),
              "terminals": np.r_[0, 0, 1, 0, 0, 1].astype(np.float32), "timeouts": np.zeros(n)}
    src = write_d4rl(tmp_path / "cp.hdf5", fields)
    res = convert(src, tmp_path / "cp.h5", env_id="CartPole-v1")
    assert not res.spaces_inferred
    ds = load_dataset(tmp_path / "cp.h5")
    assert ds.env_id == "CartPole-v1" and same_space(ds.action_space, spaces.Discrete(2))
    np.testing.assert_array_equal(ds.actions, fields["actions"][:, 0])
    with pytest.raises(SpaceMismatchError, match=r"observations has per-step shape \(4,\).*Acrobot"):
        convert(src, tmp_path / "bad.h5", env_id="Acrobot-v1")
    assert not (tmp_path / "bad.h5").exists()
    # without --env, integer (n, 1) actions are inferred as Discrete(max + 1)
    convert(src, tmp_path / "inferred.h5")
    assert same_space(load_dataset(tmp_path / "inferred.h5").action_space, spaces.Discrete(2))


@pytest.mark.parametrize("field, rows", [("actions", 11), ("terminals", 13), ("next_observations", 5),
                                         ("timeouts", 0)])
def test_inconsistent_lengths_are_refused(tmp_path: Path, field: str, rows: int) -> None:
    f = _flat([4, 8], ["terminal", "timeout"])
    f[field] = f[field][:rows] if rows <= 12 else np.concatenate([f[field], f[field][:1]])
    src = write_d4rl(tmp_path / "bad.hdf5", f)
    with pytest.raises(UserError, match=rf"bad.hdf5: field '{field}' has {rows} rows but 'rewards' has 12"):
        convert(src, tmp_path / "out.h5")
    assert not (tmp_path / "out.h5").exists()


def test_missing_field_and_unknown_hdf5(tmp_path: Path) -> None:
    f = _flat([3], ["terminal"])
    del f["rewards"]
    src = write_d4rl(tmp_path / "bad.hdf5", f)
    with pytest.raises(UserError, match="neither a demokit dataset nor a D4RL-style file"):
        convert(src, tmp_path / "out.h5")
    with pytest.raises(UserError, match="no dataset 'rewards'"):
        from_d4rl(src, tmp_path / "out.h5")
    assert not (tmp_path / "out.h5").exists()


def test_demokit_to_d4rl_and_back(tmp_path: Path, demokit_cartpole: Path) -> None:
    res = to_d4rl(demokit_cartpole, tmp_path / "flat.hdf5")
    assert (res.target_kind, res.steps) == ("d4rl", 15)
    convert(tmp_path / "flat.hdf5", tmp_path / "back.h5")
    a, b = load_dataset(demokit_cartpole), load_dataset(tmp_path / "back.h5")
    assert b.env_id == "CartPole-v1"  # metadata/env_id names the env
    for field in ("observations", "actions", "rewards", "terminated", "truncated", "final_observations",
                  "episode_lengths"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field), err_msg=field)
    np.testing.assert_array_equal(a.extras["logit"], b.extras["logit"])
