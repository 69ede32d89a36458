"""The Python entry points of BC and DAgger check their outputs by the CLI's rules (demokit.paths):
never an input, a file of another kind only with force (BCConfig.force / DAggerConfig.overwrite)."""

from __future__ import annotations

import shutil

import pytest

from demokit.errors import UserError
from demokit.il import train_bc, train_dagger


def _bytes(path):
    return path.read_bytes()


def test_bc_refuses_its_dataset_and_files_of_another_kind(tmp_path, cartpole1, expert_checkpoint):
    data = tmp_path / "data.h5"
    shutil.copy(cartpole1, data)
    before = _bytes(data)
    with pytest.raises(UserError, match="is the input"):
        train_bc(data, out=str(data), epochs=1, eval_episodes=0)
    other = tmp_path / "other.h5"
    shutil.copy(cartpole1, other)
    with pytest.raises(UserError, match="is an HDF5 dataset, not a checkpoint"):
        train_bc(data, out=str(other), epochs=1, eval_episodes=0)
    notes = tmp_path / "notes.txt"
    notes.write_text("mine")
    with pytest.raises(UserError, match="not a checkpoint.*force"):
        train_bc(data, out=str(notes), epochs=1, eval_episodes=0)
    assert _bytes(data) == before and _bytes(other) == _bytes(cartpole1) and notes.read_text() == "mine"
    # with force another kind is replaced (as bc-train --force); the input never is
    res = train_bc(data, out=str(notes), epochs=1, eval_episodes=0, force=True)
    assert res.checkpoint is not None and notes.read_bytes()[:2] == b"PK"  # a torch.save zip now
    with pytest.raises(UserError, match="is the input"):
        train_bc(data, out=str(data), epochs=1, eval_episodes=0, force=True)
    assert _bytes(data) == before


def test_dagger_refuses_its_expert_and_files_of_another_kind(tmp_path, cartpole1, expert_checkpoint):
    expert = tmp_path / "expert.pt"
    shutil.copy(expert_checkpoint, expert)
    base = {"expert": str(expert), "env_id": "CartPole-v1", "rounds": 1, "episodes_per_round": 1, "epochs": 1,
            "eval_episodes": 0}
    with pytest.raises(UserError, match="is the input"):
        train_dagger(base, out=str(expert))
    data = tmp_path / "data.h5"
    shutil.copy(cartpole1, data)
    with pytest.raises(UserError, match="is an HDF5 dataset, not a checkpoint"):
        train_dagger(base, out=str(data), overwrite=False)
    with pytest.raises(UserError, match="is the input"):
        train_dagger(base, dataset_out=str(expert), overwrite=True)  # the expert is never the aggregated data
    with pytest.raises(UserError, match="the same file"):
        train_dagger(base, out=str(tmp_path / "same.h5"), dataset_out=str(tmp_path / "same.h5"))
    assert not (tmp_path / "same.h5").exists()
    assert _bytes(expert) == _bytes(expert_checkpoint) and _bytes(data) == _bytes(cartpole1)
    ckpt = tmp_path / "a-checkpoint.pt"
    shutil.copy(expert_checkpoint, ckpt)
    with pytest.raises(UserError, match="--dataset-out .* already exists"):
        train_dagger(base, dataset_out=str(ckpt))
    assert _bytes(ckpt) == _bytes(expert_checkpoint)
    res = train_dagger(base, out=str(data), dataset_out=str(tmp_path / "agg.h5"), overwrite=True)
    assert res.rounds and data.read_bytes()[:2] == b"PK"  # --force: the dataset at out was replaced
