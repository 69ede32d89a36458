"""`demokit convert` and kind detection."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
from tests.data.convert.sources import ding_transitions, write_pickle

from demokit.cli.app import main
from demokit.data.convert import ConvertResult, convert, detect_source_kind, detect_target_kind
from demokit.data.dataset import load_dataset
from demokit.errors import UserError


def _error_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ") and "Traceback" not in err
    return lines[0]


def test_cli_round_trip_through_minari_with_json(tmp_path: Path, demokit_cartpole: Path, capsys) -> None:
    mdir = tmp_path / "minari" / "cartpole-expert-v0"
    assert main(["convert", str(demokit_cartpole), f"{mdir}/", "--json"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["target_kind"] == "minari" and out["episodes"] == 3 and out["steps"] == 15
    assert out["source_kind"] == "demokit" and out["path"] == str(mdir)
    assert main(["convert", str(mdir), str(tmp_path / "back.h5"), "--compression", "gzip"]) == 0
    captured = capsys.readouterr()
    assert "converted minari" in captured.out and "3 episodes, 15 steps" in captured.out
    np.testing.assert_array_equal(load_dataset(tmp_path / "back.h5").observations,
                                  load_dataset(demokit_cartpole).observations)


def test_cli_ding_with_env_prints_warnings_on_stderr(tmp_path: Path, capsys) -> None:
    src = write_pickle(tmp_path / "expert.pkl", ding_transitions([3, 2]))
    assert main(["convert", str(src), str(tmp_path / "out.h5"), "--json"]) == 0
    captured = capsys.readouterr()
    assert "warning:" in captured.err and "inferred" in captured.err
    result = json.loads(captured.out.strip().splitlines()[-1])
    assert result["spaces_inferred"] is True and result["notes"]
    assert main(["convert", str(src), str(tmp_path / "env.h5"), "--env", "CartPole-v1"]) == 0
    assert load_dataset(tmp_path / "env.h5").env_id == "CartPole-v1"


@pytest.mark.parametrize("case", ["exists", "missing", "mismatch", "unsafe", "bad_env", "bad_to", "bad_compression"])
def test_cli_errors_are_one_line_exit_2_and_write_nothing(tmp_path: Path, demokit_cartpole: Path, capsys,
                                                          case: str) -> None:
    dst = tmp_path / "out.h5"
    src = str(demokit_cartpole)
    extra: list[str] = []
    if case == "exists":
        dst.write_bytes(b"old")
    elif case == "missing":
        src = str(tmp_path / "nope.pkl")
    elif case == "mismatch":
        extra = ["--env", "Pendulum-v1"]
    elif case == "unsafe":
        class Evil:
            def __reduce__(self):
                return (os.system, (f"touch {tmp_path / 'pwned'}",))
        src = str(write_pickle(tmp_path / "evil.pkl", [Evil()]))
    elif case == "bad_env":
        extra = ["--env", "NoSuchEnv-v9"]
    elif case == "bad_to":
        extra = ["--to", "parquet"]
    elif case == "bad_compression":
        extra = ["--compression", "zstd"]
    rc = main(["convert", src, str(dst), *extra])
    line = _error_line(capsys.readouterr().err)
    assert rc == 2
    expected = {"exists": "already exists; pass --force", "missing": "no such file", "mismatch": "Pendulum-v1",
                "unsafe": "refers to", "bad_env": "unknown env id", "bad_to": "unknown output kind",
                "bad_compression": "unknown compression"}[case]
    assert expected in line
    if case == "exists":
        assert dst.read_bytes() == b"old"
        assert main(["convert", src, str(dst), "--force"]) == 0
        assert load_dataset(dst).num_episodes == 3
    else:
        assert not dst.exists()
    assert not (tmp_path / "pwned").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left


def test_detection(tmp_path: Path, demokit_cartpole: Path) -> None:
    assert detect_source_kind(demokit_cartpole) == "demokit"
    assert detect_target_kind(tmp_path / "a.h5") == "demokit"
    assert detect_target_kind(tmp_path / "a.hdf5") == "demokit"
    assert detect_target_kind(f"{tmp_path}/cartpole-expert-v0") == "minari"
    assert detect_target_kind(f"{tmp_path}/x.v1/") == "minari"
    assert detect_target_kind(tmp_path) == "minari"
    assert detect_target_kind(tmp_path / "a.h5", "d4rl") == "d4rl"
    with pytest.raises(UserError, match="cannot tell the output kind"):
        detect_target_kind(tmp_path / "a.csv")
    (tmp_path / "plain.txt").write_text("hello")
    with pytest.raises(UserError, match="unknown data kind"):
        detect_source_kind(tmp_path / "plain.txt")
    (tmp_path / "emptydir").mkdir()
    with pytest.raises(UserError, match="not a Minari dataset"):
        detect_source_kind(tmp_path / "emptydir")


def test_python_api_result_and_same_path(tmp_path: Path, demokit_cartpole: Path) -> None:
    res = convert(demokit_cartpole, tmp_path / "copy.h5", compression="lzf")
    assert isinstance(res, ConvertResult) and (res.episodes, res.steps, res.source_kind) == (3, 15, "demokit")
    with pytest.raises(AttributeError):
        res.steps = 1  # type: ignore[misc]
    with pytest.raises(UserError, match="SRC and DST are the same"):
        convert(demokit_cartpole, demokit_cartpole, force=True)
    with pytest.raises(UserError, match="unknown ConvertConfig key"):
        convert(demokit_cartpole, tmp_path / "x.h5", {"envid": "CartPole-v1"})
    assert pickle.loads(pickle.dumps(res.to_dict()))["path"] == str(tmp_path / "copy.h5")
