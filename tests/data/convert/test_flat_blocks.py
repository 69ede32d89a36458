"""D4RL and DI-engine sources are cut into episodes as arrays and written as column blocks
(``DatasetWriter.add_columns``), never taken apart into Episode objects: edge cases of that path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tests.data.convert.sources import ding_transitions, write_d4rl, write_pickle

from demokit.data import DatasetWriter
from demokit.data.convert import convert, read_source
from demokit.data.convert.common import ColumnBlock
from demokit.data.dataset import load_dataset

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # notes are asserted where they matter


def flat(lengths: list[int], ends: list[str], *, seed: int = 0) -> dict[str, np.ndarray]:
    """Consecutive episodes with true next observations; ends[k] in terminal/timeout/both/none."""
    rng = np.random.default_rng(seed)
    obs, nxt = [], []
    for T in lengths:
        o = rng.normal(size=(T + 1, 2)).astype(np.float32)
        obs.append(o[:-1])
        nxt.append(o[1:])
    last = np.cumsum(lengths) - 1
    n = int(sum(lengths))
    term, tout = np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
    term[last[[e in ("terminal", "both") for e in ends]]] = True
    tout[last[[e in ("timeout", "both") for e in ends]]] = True
    return {"observations": np.concatenate(obs), "next_observations": np.concatenate(nxt),
            "actions": rng.normal(size=(n, 1)).astype(np.float32), "rewards": rng.normal(size=n),
            "terminals": term, "timeouts": tout}


@pytest.fixture
def no_episode_objects(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a flat source was written episode by episode")

    monkeypatch.setattr(DatasetWriter, "add_episode", refuse)
    monkeypatch.setattr(DatasetWriter, "add_episodes", refuse)


def test_d4rl_edge_cases_with_next_observations(tmp_path: Path, no_episode_objects: None) -> None:
    """Single-step episodes, an end with both flags, and a last episode cut without a flag."""
    lengths, ends = [1, 4, 1, 2, 3], ["terminal", "timeout", "both", "timeout", "none"]
    f = flat(lengths, ends)
    src = write_d4rl(tmp_path / "d.hdf5", f, infos={"x": np.arange(11.0)})
    res = convert(src, tmp_path / "out.h5")
    assert (res.episodes, res.steps) == (5, 11)
    ds = load_dataset(tmp_path / "out.h5")
    np.testing.assert_array_equal(ds.episode_lengths, lengths)
    np.testing.assert_array_equal(ds.episode_terminated, [True, False, True, False, False])
    np.testing.assert_array_equal(ds.episode_truncated, [False, True, True, True, True])  # the cut one too
    np.testing.assert_array_equal(ds.terminated, f["terminals"])
    np.testing.assert_array_equal(ds.truncated, f["timeouts"] | (np.arange(11) == 10))
    np.testing.assert_array_equal(ds.observations, f["observations"])
    np.testing.assert_array_equal(ds.next_observations, f["next_observations"])
    np.testing.assert_array_equal(ds.final_observations, f["next_observations"][np.cumsum(lengths) - 1])
    np.testing.assert_array_equal(ds.extras["x"], np.arange(11.0))
    np.testing.assert_array_equal(ds.episode_seeds, [-1] * 5)
    assert any("the last 3 step(s) have no terminals/timeouts flag" in n for n in ds.provenance["conversion_notes"])


def test_d4rl_edge_cases_without_next_observations(tmp_path: Path, no_episode_objects: None) -> None:
    """Terminated episodes keep every step; truncated ones give up their last; one-step truncated
    episodes (a timeout, the cut tail) are dropped, and the rows kept are re-indexed."""
    lengths, ends = [1, 1, 3, 2, 1], ["terminal", "timeout", "timeout", "both", "none"]
    f = flat(lengths, ends)
    del f["next_observations"]
    src = write_d4rl(tmp_path / "d.hdf5", f, infos={"x": np.arange(8.0)})
    with pytest.warns(UserWarning, match=r"1 terminated episode\(s\) got a copy .* 2 truncated episode\(s\) gave up "
                                         r"their last step .* 2 one-step truncated episode\(s\) were dropped"):
        res = convert(src, tmp_path / "out.h5")
    ds = load_dataset(tmp_path / "out.h5")
    rows = [0, 2, 3, 5]  # episode 0 whole; rows 2-3 of the 3-step one; row 5 of the 2-step one
    assert (res.episodes, res.steps) == (3, 4)
    np.testing.assert_array_equal(ds.episode_lengths, [1, 2, 1])
    np.testing.assert_array_equal(ds.episode_terminated, [True, False, False])  # both flags: truncated wins
    np.testing.assert_array_equal(ds.episode_truncated, [False, True, True])
    np.testing.assert_array_equal(ds.observations, f["observations"][rows])
    np.testing.assert_array_equal(ds.actions, f["actions"][rows])
    np.testing.assert_array_equal(ds.rewards, f["rewards"][rows])
    np.testing.assert_array_equal(ds.extras["x"], np.arange(8.0)[rows])
    np.testing.assert_array_equal(ds.final_observations, f["observations"][[0, 4, 6]])
    np.testing.assert_array_equal(ds.next_observations, f["observations"][[0, 3, 4, 6]])


def test_d4rl_single_transition(tmp_path: Path, no_episode_objects: None) -> None:
    f = flat([1], ["none"])
    res = convert(write_d4rl(tmp_path / "d.hdf5", f), tmp_path / "out.h5")
    ds = load_dataset(tmp_path / "out.h5")
    assert (res.episodes, res.steps) == (1, 1)
    assert ds.truncated.tolist() == [True] and ds.terminated.tolist() == [False]
    np.testing.assert_array_equal(ds.final_observations, f["next_observations"])


def test_ding_time_limit_single_steps_and_cut_tail(tmp_path: Path, no_episode_objects: None) -> None:
    trs = ding_transitions([200, 1, 3, 2], obs_dim=2)  # MountainCar-v0: limit 200
    for t in trs:
        t["action"] = t["action"] % 3
    trs[-1]["done"] = False  # the last episode was cut: truncated, even with --env
    src = write_pickle(tmp_path / "e.pkl", trs)
    with pytest.warns(UserWarning, match=r"1 episode\(s\) of exactly 200 steps"):
        res = convert(src, tmp_path / "out.h5", env_id="MountainCar-v0")
    assert (res.episodes, res.steps) == (4, 206)
    ds = load_dataset(tmp_path / "out.h5")
    np.testing.assert_array_equal(ds.episode_lengths, [200, 1, 3, 2])
    np.testing.assert_array_equal(ds.episode_terminated, [False, True, True, False])
    np.testing.assert_array_equal(ds.episode_truncated, [True, False, False, True])
    assert ds.terminated.sum() == 2 and ds.truncated.sum() == 2
    nxt = np.stack([np.asarray(t["next_obs"]) for t in trs])
    np.testing.assert_array_equal(ds.next_observations, nxt)
    np.testing.assert_array_equal(ds.extras["value"], np.stack([np.asarray(t["value"]) for t in trs]))


def test_block_view_matches_the_file(tmp_path: Path) -> None:
    """The lazy episode view of a flat source (used by the Minari writer) and its next
    observations (used by the D4RL writer) agree with what the demokit file holds."""
    f = flat([2, 1, 3], ["timeout", "terminal", "none"])
    src = write_d4rl(tmp_path / "d.hdf5", f)
    source = read_source(src)
    assert source.blocks is not None and len(source.blocks) == 1
    block = source.blocks[0]
    assert isinstance(block, ColumnBlock) and (block.num_episodes, block.num_steps) == (3, 6)
    assert (source.num_episodes, source.num_steps) == (3, 6)
    np.testing.assert_array_equal(block.next_observations(), f["next_observations"])
    convert(src, tmp_path / "out.h5")
    ds = load_dataset(tmp_path / "out.h5")
    for k, ep in enumerate(block.episodes()):
        got = ds.episode(k)
        np.testing.assert_array_equal(ep.observations, got.observations)
        np.testing.assert_array_equal(ep.next_observations, got.next_observations)
        assert (ep.is_terminated, ep.is_truncated, ep.seed) == (got.is_terminated, got.is_truncated, got.seed)


def test_flat_source_to_d4rl_and_minari_round_trip(tmp_path: Path) -> None:
    f = flat([3, 1, 2], ["terminal", "timeout", "none"])
    src = write_d4rl(tmp_path / "d.hdf5", f)
    convert(src, tmp_path / "again.hdf5", to="d4rl")
    convert(src, tmp_path / "minari" / "flat-v0", to="minari")
    direct = load_dataset(convert(src, tmp_path / "a.h5").path)
    for other in (tmp_path / "again.hdf5", tmp_path / "minari" / "flat-v0"):
        back = load_dataset(convert(other, tmp_path / f"{other.name}.h5").path)
        for field in ("observations", "actions", "rewards", "terminated", "truncated", "final_observations",
                      "episode_lengths"):
            np.testing.assert_array_equal(getattr(direct, field), getattr(back, field), err_msg=f"{other}: {field}")
