"""demokit.paths: the one output-path check and the atomic writer, called from Python."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from demokit.errors import UserError
from demokit.paths import check_output_path, make_parents, remove_dirs, resolve_output


def test_the_python_api_refuses_to_write_over_its_input(tmp_path: Path) -> None:
    import il_data
    from demokit.il.bc import train_bc

    ds = il_data.write_cartpole(tmp_path / "cp.h5", 2, seed=1)
    digest = hashlib.sha256(ds.read_bytes()).hexdigest()
    with pytest.raises(UserError, match="is the input"):
        train_bc(ds, {"out": str(ds), "epochs": 1})
    assert hashlib.sha256(ds.read_bytes()).hexdigest() == digest


def test_kinds_force_and_empty_files(tmp_path: Path) -> None:
    notes = tmp_path / "notes.pt"
    notes.write_text("keep me")
    with pytest.raises(UserError, match="did not write"):
        check_output_path(notes, kind="checkpoint")
    assert check_output_path(notes, kind="checkpoint", force=True) == notes
    empty = tmp_path / "empty.pt"
    empty.touch()
    assert check_output_path(empty, kind="checkpoint") == empty  # nothing to lose
    assert check_output_path(notes) == notes  # no kind given: no kind check


def test_symlink_chains_resolve_to_the_final_target(tmp_path: Path) -> None:
    (tmp_path / "b").symlink_to(tmp_path / "target.h5")
    (tmp_path / "a").symlink_to("b")  # relative
    assert resolve_output(tmp_path / "a") == tmp_path / "target.h5"
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    with pytest.raises(UserError, match="symbolic links"):
        resolve_output(loop)


def test_made_parents_are_removed_only_while_empty(tmp_path: Path) -> None:
    made = make_parents(tmp_path / "x" / "y" / "z" / "f.h5")
    assert made == [tmp_path / "x", tmp_path / "x" / "y", tmp_path / "x" / "y" / "z"]
    (tmp_path / "x" / "keep").write_text("")
    remove_dirs(made)
    assert sorted(os.listdir(tmp_path / "x")) == ["keep"]


def test_empty_trees_are_removed_but_files_keep_their_folders(tmp_path: Path) -> None:
    from demokit.paths import remove_empty_tree

    (tmp_path / "run" / "a" / "b").mkdir(parents=True)
    (tmp_path / "run" / "c").mkdir()
    (tmp_path / "run" / "c" / "log.txt").write_text("keep")
    remove_empty_tree(tmp_path / "run")
    assert not (tmp_path / "run" / "a").exists() and (tmp_path / "run" / "c" / "log.txt").exists()
    (tmp_path / "run" / "c" / "log.txt").unlink()
    remove_empty_tree(tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_check_distinct_outputs_refuses_one_file_under_two_names(tmp_path):
    """Two outputs of one command (a training state and the checkpoint) must differ, written or not yet:
    the same path, the same path spelled otherwise, a link to the other."""
    from demokit.paths import check_distinct_outputs

    a = tmp_path / "run.pt"
    for other in (a, tmp_path / "sub" / ".." / "run.pt"):
        with pytest.raises(UserError, match="is also the checkpoint"):
            check_distinct_outputs(a, other, what="state_path", other_what="checkpoint")
    a.write_bytes(b"x")
    (tmp_path / "link.pt").symlink_to(a)
    with pytest.raises(UserError, match="is also the checkpoint"):
        check_distinct_outputs(tmp_path / "link.pt", a, what="state_path", other_what="checkpoint")
    check_distinct_outputs(tmp_path / "state.pt", a, what="state_path", other_what="checkpoint")  # distinct: fine
    check_distinct_outputs(None, a, what="state_path", other_what="checkpoint")
