"""imitation's trajectories (Hugging Face datasets folder) <-> demokit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from gymnasium import spaces

from demokit.cli.app import main
from demokit.data import load_dataset
from demokit.data.convert import convert, detect_source_kind
from demokit.errors import SpaceMismatchError, UserError

datasets = pytest.importorskip("datasets")


def save_like_imitation(path: Path, lengths=(5, 8, 3), *, terminal=(True, False, True), rews: bool = True,
                        infos: str = "{}", obs_dim: int = 4) -> dict:
    """The columns imitation's ``huggingface_utils.trajectories_to_dict`` builds, saved with ``save_to_disk``
    as ``imitation.data.serialize.save`` does (obs T+1 rows, acts/infos/rews T rows, one terminal flag)."""
    rng = np.random.default_rng(3)
    cols = {"obs": [], "acts": [], "infos": [], "terminal": list(terminal)}
    if rews:
        cols["rews"] = []
    for t in lengths:
        cols["obs"].append(rng.uniform(-0.2, 0.2, size=(t + 1, obs_dim)).astype(np.float32))
        cols["acts"].append(rng.integers(0, 2, size=t))
        cols["infos"].append([infos] * t)
        if rews:
            cols["rews"].append(np.ones(t, dtype=np.float32) * 0.5 + np.arange(t, dtype=np.float32))
    datasets.Dataset.from_dict(cols).save_to_disk(str(path))
    return cols


def test_trajectories_convert_array_for_array(tmp_path):
    src = tmp_path / "traj"
    cols = save_like_imitation(src)
    assert detect_source_kind(src) == "imitation"
    res = convert(src, tmp_path / "cp.h5", env_id="CartPole-v1")
    ds = load_dataset(res.path)
    assert ds.env_id == "CartPole-v1" and ds.action_space == spaces.Discrete(2) and not res.spaces_inferred
    for k in range(3):
        ep = ds.episode(k)
        np.testing.assert_array_equal(ep.observations, cols["obs"][k][:-1])
        np.testing.assert_array_equal(ep.final_observation[0], cols["obs"][k][-1])
        np.testing.assert_array_equal(ep.actions, cols["acts"][k])
        np.testing.assert_array_equal(ep.rewards, cols["rews"][k].astype(np.float64))
        assert ep.is_terminated == cols["terminal"][k] and ep.is_truncated == (not cols["terminal"][k])
    assert ds.provenance["converted_from"]["kind"] == "imitation"


def test_without_env_spaces_are_inferred_and_infos_are_never_decoded(tmp_path):
    src = tmp_path / "traj"
    save_like_imitation(src, infos='{"py/object": "os.system"}')
    with pytest.warns(UserWarning) as caught:
        res = convert(src, tmp_path / "x.h5")
    text = " ".join(str(w.message) for w in caught)
    assert "name no env" in text and "jsonpickle" in text
    ds = load_dataset(res.path)
    assert res.spaces_inferred and ds.env_id is None and ds.action_space == spaces.Discrete(2)


def test_demokit_imitation_demokit_is_exact(tmp_path, demokit_cartpole):
    mid, back = tmp_path / "traj", tmp_path / "back.h5"
    res = convert(demokit_cartpole, mid, to="imitation")
    assert res.target_kind == "imitation" and res.episodes == 3
    table = datasets.load_from_disk(str(mid)).with_format("numpy")
    assert table.column_names == ["obs", "acts", "infos", "terminal", "rews"]
    src = load_dataset(demokit_cartpole)
    assert len(table[0]["obs"]) == src.episode_lengths[0] + 1
    convert(mid, back)
    new = load_dataset(back)
    assert new.observation_space == src.observation_space and new.action_space == src.action_space
    assert new.env_id == src.env_id
    for name in ("observations", "actions", "rewards", "terminated", "truncated", "final_observations",
                 "episode_lengths", "episode_seeds"):
        a, b = getattr(src, name), getattr(new, name)
        np.testing.assert_array_equal(a, b)
        assert a.dtype == b.dtype, name
    # replacing it needs --force, and never replaces a folder of another kind
    with pytest.raises(UserError, match="already exists"):
        convert(demokit_cartpole, mid, to="imitation")
    convert(demokit_cartpole, mid, to="imitation", force=True)
    other = tmp_path / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("keep")
    with pytest.raises(UserError, match="left alone"):
        convert(demokit_cartpole, other, to="imitation", force=True)
    assert (other / "notes.txt").read_text() == "keep"


@pytest.mark.parametrize("case,needle", [("wrong_env", "does not fit")])  # no rews: tests/data/convert/test_reward_free_sources.py
def test_bad_input_is_one_error_line_and_writes_nothing(tmp_path, capsys, case, needle):
    src = tmp_path / "traj"
    save_like_imitation(src, rews=case != "no_rews", obs_dim=4 if case != "wrong_env" else 3)
    capsys.readouterr()  # the fixture's own progress output
    assert main(["convert", str(src), str(tmp_path / "o.h5"), "--env", "CartPole-v1"]) == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(err) == 1 and err[0].startswith("error:") and needle in err[0], err
    assert not (tmp_path / "o.h5").exists()


def test_wrong_env_is_a_space_mismatch(tmp_path):
    src = tmp_path / "traj"
    save_like_imitation(src)
    with pytest.raises(SpaceMismatchError):
        convert(src, tmp_path / "o.h5", env_id="Acrobot-v1")
