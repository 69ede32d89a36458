"""`demokit combine` / combine_datasets: episodes in order, exact arrays, provenance, refusals."""

from __future__ import annotations

import json

import numpy as np
import pytest
from gymnasium import spaces

from demokit.cli.app import main
from demokit.data import load_dataset
from demokit.data.combine import combine_datasets, episode_blocks
from demokit.errors import UserError
from helpers import BOX, DISCRETE, assert_tree_equal, make_episodes, write

NESTED = spaces.Dict({"pos": spaces.Box(-1, 1, shape=(2,), dtype=np.float32), "mode": spaces.Discrete(3)})
IMAGE = spaces.Box(0, 255, shape=(2, 8, 8), dtype=np.uint8)


def _extras():
    return {"log_prob": lambda n, rng: rng.normal(size=n).astype(np.float32)}


def _assert_same_episode(a, b):
    assert_tree_equal(a.observations, b.observations)
    assert_tree_equal(a.final_observation, b.final_observation)
    for name in ("actions", "rewards", "terminated", "truncated"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert a.seed == b.seed and a.extras.keys() == b.extras.keys()
    for k in a.extras:
        np.testing.assert_array_equal(a.extras[k], b.extras[k])


@pytest.fixture()
def parts(tmp_path):
    a = write(tmp_path / "a.h5", make_episodes(NESTED, DISCRETE, n=3, seed=1, extras=_extras()), NESTED, DISCRETE,
              provenance={"policy": "a"})
    b = write(tmp_path / "b.h5", make_episodes(NESTED, DISCRETE, n=5, seed=7, extras=_extras()), NESTED, DISCRETE,
              provenance={"policy": "b"})
    return a, b


def test_combine_concatenates_episodes_in_the_given_order(parts, tmp_path):
    a, b = parts
    out = tmp_path / "c.h5"
    with pytest.warns(UserWarning, match="more than once"):
        res = combine_datasets([b, a, b], out)
    ds, da, db = load_dataset(out), load_dataset(a), load_dataset(b)
    assert (res.episodes, res.steps) == (ds.num_episodes, len(ds)) == (13, 2 * len(db) + len(da))
    expected = [db.episode(i) for i in range(5)] + [da.episode(i) for i in range(3)] + \
        [db.episode(i) for i in range(5)]
    for i, ep in enumerate(expected):
        _assert_same_episode(ds.episode(i), ep)
    np.testing.assert_array_equal(ds.episode_starts, np.concatenate(([0], np.cumsum(ds.episode_lengths)[:-1])))
    assert ds.env_id == "Test-v0" and ds.extras_spec == da.extras_spec
    sources = ds.provenance["combined_from"]
    assert [s["episodes"] for s in sources] == [[0, 5], [5, 8], [8, 13]]
    assert [s["provenance"]["policy"] for s in sources] == ["b", "a", "b"]
    assert sources[0]["path"] == str(b.resolve()) and ds.provenance["operation"] == "combine"


def test_combine_copies_in_blocks_of_whole_episodes(parts, tmp_path, monkeypatch):
    import demokit.data.combine as combine

    a, b = parts
    db = load_dataset(b)
    blocks = episode_blocks(db, block_bytes=1)  # one episode per block
    assert blocks == [(i, i + 1) for i in range(5)]
    monkeypatch.setattr(combine, "BLOCK_BYTES", 40)  # a few rows per block: several blocks per source
    combine_datasets([a, b], tmp_path / "c.h5")
    whole = combine_datasets([a, b], tmp_path / "d.h5", force=True)
    c, d = load_dataset(tmp_path / "c.h5"), load_dataset(tmp_path / "d.h5")
    assert whole.episodes == c.num_episodes == 8
    for name in ("actions", "rewards", "terminated", "truncated"):
        np.testing.assert_array_equal(getattr(c, name), getattr(d, name))
    assert_tree_equal(c.observations, d.observations)
    assert_tree_equal(c.final_observations, d.final_observations)


def test_combine_reward_free_and_images(tmp_path):
    from tests.helpers_reward_free import reward_free_copy

    a = write(tmp_path / "a.h5", make_episodes(n=2, seed=1))
    b = write(tmp_path / "b.h5", make_episodes(n=3, seed=5))
    fa, fb = reward_free_copy(a, tmp_path / "fa.h5"), reward_free_copy(b, tmp_path / "fb.h5")
    res = combine_datasets([fa, fb], tmp_path / "free.h5")
    ds = load_dataset(tmp_path / "free.h5")
    assert not ds.has_rewards and res.episodes == ds.num_episodes == 5
    with pytest.raises(UserError, match="reward-free"):
        combine_datasets([fa, b], tmp_path / "mixed.h5")
    assert not (tmp_path / "mixed.h5").exists()

    ia = write(tmp_path / "ia.h5", make_episodes(IMAGE, DISCRETE, n=2, seed=1), IMAGE, DISCRETE, compression="lzf")
    ib = write(tmp_path / "ib.h5", make_episodes(IMAGE, DISCRETE, n=2, seed=3), IMAGE, DISCRETE, compression="gzip")
    combine_datasets([ia, ib], tmp_path / "img.h5")
    img = load_dataset(tmp_path / "img.h5")
    assert img.observations.dtype == np.uint8 and img.compression == "lzf"  # the first source's compression
    assert_tree_equal(img.observations[: len(load_dataset(ia))], load_dataset(ia).observations)
    combine_datasets([ia, ib], tmp_path / "raw.h5", compression="none")
    assert load_dataset(tmp_path / "raw.h5").compression is None


@pytest.mark.parametrize("other, message", [
    ("env", "holds Other-v0 but"),
    ("obs", "observation space"),
    ("act", "action space"),
    ("extras", "extras"),
])
def test_combine_refuses_sources_that_differ(parts, tmp_path, other, message):
    a, _ = parts
    kw: dict = {}
    obs, act, extras = NESTED, DISCRETE, _extras()
    if other == "env":
        kw["env_id"] = "Other-v0"
    elif other == "obs":
        obs = BOX
    elif other == "act":
        act = spaces.Discrete(4)
    else:
        extras = None
    bad = write(tmp_path / "bad.h5", make_episodes(obs, act, n=2, seed=3, extras=extras), obs, act, **kw)
    with pytest.raises(UserError, match=message) as info:
        combine_datasets([a, bad], tmp_path / "c.h5")
    assert str(bad) in str(info.value) and str(a) in str(info.value)
    assert not (tmp_path / "c.h5").exists()


def test_combine_cli_errors_write_nothing(parts, tmp_path, capsys):
    a, b = parts
    bad = write(tmp_path / "bad.h5", make_episodes(n=2), env_id="Other-v0")
    out = tmp_path / "c.h5"
    assert main(["combine", str(a), str(bad), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: cannot combine") and "Other-v0" in err[0]
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["a.h5", "b.h5", "bad.h5"]
    # the output may not be one of the inputs
    before = a.read_bytes()
    assert main(["combine", str(a), str(b), "--out", str(a), "--force"]) == 2
    assert "is the input" in capsys.readouterr().err and a.read_bytes() == before
    # a missing input
    assert main(["combine", str(a), str(tmp_path / "nope.h5"), "--out", str(out)]) == 2
    assert "does not exist" in capsys.readouterr().err and not out.exists()


def test_combine_cli_force_rules(parts, tmp_path, capsys):
    a, b = parts
    out = tmp_path / "c.h5"
    assert main(["combine", str(a), str(b), "--out", str(out), "--json"]) == 0
    res = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert res["episodes"] == 8 and res["sources"] == [str(a), str(b)]
    before = out.read_bytes()
    assert main(["combine", str(b), "--out", str(out)]) == 2  # exists, no --force
    assert "already exists" in capsys.readouterr().err and out.read_bytes() == before
    assert main(["combine", str(b), "--out", str(out), "--force"]) == 0
    assert load_dataset(out).num_episodes == 5
    text = tmp_path / "notes.txt"
    text.write_text("mine")
    assert main(["combine", str(a), "--out", str(text)]) == 2  # another kind of file: left alone
    assert text.read_text() == "mine"


def test_combine_appends_to_an_existing_dataset(parts, tmp_path):
    a, b = parts
    out = tmp_path / "c.h5"
    combine_datasets([a], out)
    res = combine_datasets([b], out, mode="append")
    ds = load_dataset(out)
    assert (res.episodes, res.total_episodes, ds.num_episodes) == (5, 8, 8)
    _assert_same_episode(ds.episode(3), load_dataset(b).episode(0))
