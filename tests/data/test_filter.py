"""`demokit filter` / `demokit split`: whole episodes, exact arrays, provenance, refusals."""

from __future__ import annotations

import json

import numpy as np
import pytest
from gymnasium import spaces

from demokit.cli.app import main
from demokit.data import load_dataset
from demokit.data.filter import filter_dataset, parse_episode_ids, split_dataset
from demokit.errors import ConfigError, UserError
from helpers import BOX, DISCRETE, assert_tree_equal, make_episodes, write

NESTED = spaces.Dict({"pos": spaces.Box(-1, 1, shape=(2,), dtype=np.float32), "mode": spaces.Discrete(3)})


def _extras():
    return {"log_prob": lambda n, rng: rng.normal(size=n).astype(np.float32)}


@pytest.fixture()
def source(tmp_path):
    return write(tmp_path / "src.h5", make_episodes(NESTED, DISCRETE, n=8, seed=1, extras=_extras()),
                 NESTED, DISCRETE, provenance={"policy": "test"})


def _assert_same_episode(a, b):
    assert_tree_equal(a.observations, b.observations)
    assert_tree_equal(a.final_observation, b.final_observation)
    for name in ("actions", "rewards", "terminated", "truncated"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert a.seed == b.seed and a.extras.keys() == b.extras.keys()
    for k in a.extras:
        np.testing.assert_array_equal(a.extras[k], b.extras[k])


def test_filter_keeps_whole_episodes_exactly(source, tmp_path):
    src = load_dataset(source)
    out = tmp_path / "top.h5"
    res = filter_dataset(source, out, top_k=3, max_length=5)
    eligible = np.flatnonzero(src.episode_lengths <= 5)
    best = eligible[np.argsort(-src.episode_returns[eligible], kind="stable")[:3]]
    assert res.source_episodes == tuple(sorted(best.tolist()))
    new = load_dataset(out)
    assert new.num_episodes == 3 and new.observation_space == src.observation_space
    for k, e in enumerate(res.source_episodes):
        _assert_same_episode(new.episode(k), src.episode(e))
    np.testing.assert_allclose(new.episode_returns, src.episode_returns[list(res.source_episodes)])
    derived = new.provenance["derived_from"]
    assert derived["operation"] == "filter" and derived["criteria"] == {"top_k": 3, "max_length": 5}
    assert new.provenance["policy"] == "test" and derived["source_episodes"] == 8


def test_episode_ids_and_min_return(source, tmp_path):
    assert parse_episode_ids("5-7, 0,3,3") == (0, 3, 5, 6, 7)
    with pytest.raises(ConfigError):
        parse_episode_ids("2-x")
    src = load_dataset(source)
    threshold = float(np.median(src.episode_returns))
    res = filter_dataset(source, tmp_path / "a.h5", episodes=(0, 1, 2, 3, 4), min_return=threshold)
    expected = [e for e in range(5) if src.episode_returns[e] >= threshold]
    assert list(res.source_episodes) == expected
    assert load_dataset(tmp_path / "a.h5").provenance["derived_from"]["kept"] == [
        [a, b] for a, b in _runs(expected)]
    with pytest.raises(UserError, match="does not exist"):
        filter_dataset(source, tmp_path / "b.h5", episodes=(99,))


def _runs(ids):
    out = []
    for e in ids:
        if out and out[-1][1] == e:
            out[-1][1] = e + 1
        else:
            out.append([e, e + 1])
    return out


def test_filter_keeping_nothing_is_one_error_line_and_writes_nothing(source, tmp_path, capsys):
    out = tmp_path / "none.h5"
    assert main(["filter", str(source), "--out", str(out), "--min-return", "1e9"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: the filter keeps no episode")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src.h5"]


@pytest.mark.parametrize("args,needle", [
    ([], "at least one of"),
    (["--top-k", "0"], "top-k"),
    (["--episodes", "1-"], "--episodes"),
])
def test_bad_filter_options(source, tmp_path, capsys, args, needle):
    assert main(["filter", str(source), "--out", str(tmp_path / "x.h5"), *args]) == 2
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err
    assert not (tmp_path / "x.h5").exists()


def test_existing_out_and_source_as_out_are_refused(source, tmp_path):
    with pytest.raises(UserError, match="is the source"):
        filter_dataset(source, source, top_k=1)
    (tmp_path / "taken.h5").write_bytes(b"mine")
    with pytest.raises(UserError, match="already exists"):
        filter_dataset(source, tmp_path / "taken.h5", top_k=1)
    assert (tmp_path / "taken.h5").read_bytes() == b"mine"


def test_split_is_a_seeded_partition_of_whole_episodes(source, tmp_path, capsys):
    src = load_dataset(source)
    assert main(["split", str(source), "--val-fraction", "0.25", "--seed", "4", "--out", str(tmp_path / "s"),
                 "--json"]) == 0
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert res["train"]["episodes"] == 6 and res["val"]["episodes"] == 2
    train, val = load_dataset(tmp_path / "s" / "train.h5"), load_dataset(tmp_path / "s" / "val.h5")
    kept = {}
    for part in (train, val):
        d = part.provenance["derived_from"]
        assert d["operation"] == "split" and d["seed"] == 4 and d["val_fraction"] == 0.25
        kept[d["part"]] = [e for a, b in d["kept"] for e in range(a, b)]
    assert sorted(kept["train"] + kept["val"]) == list(range(8))
    for part, name in ((train, "train"), (val, "val")):
        for k, e in enumerate(kept[name]):
            _assert_same_episode(part.episode(k), src.episode(e))
    again = split_dataset(source, tmp_path / "s2", val_fraction=0.25, seed=4)
    assert list(again.val.source_episodes) == kept["val"]
    other = split_dataset(source, tmp_path / "s3", val_fraction=0.25, seed=5)
    assert list(other.val.source_episodes) != kept["val"] or list(other.train.source_episodes) != kept["train"]


def test_split_refusals_write_nothing(tmp_path, capsys):
    one = write(tmp_path / "one.h5", make_episodes(BOX, DISCRETE, n=1))
    assert main(["split", str(one), "--val-fraction", "0.5", "--out", str(tmp_path / "o")]) == 2
    assert "at least 2 episodes" in capsys.readouterr().err
    two = write(tmp_path / "two.h5", make_episodes(BOX, DISCRETE, n=2))
    assert main(["split", str(two), "--val-fraction", "1.5", "--out", str(tmp_path / "o")]) == 2
    assert not (tmp_path / "o").exists()
