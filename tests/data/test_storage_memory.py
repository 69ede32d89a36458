"""A storage backend plugged in from outside the package with one registration: an in-memory store.

It runs through the writer, ``load_dataset``, row reads, batches and ``train_bc``, and gives
the same arrays and the same BC weights as the HDF5 backend.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch

from demokit.data import DatasetWriter, Episode, load_dataset
from demokit.data.storage import FieldSpec, Storage, register_storage
from demokit.data.storage.base import index_array, rows_range
from demokit.errors import DatasetError, DatasetLockedError
from demokit.il import train_bc

_COMMITTED: dict[str, dict[str, Any]] = {}  # location -> {"attrs", "specs", "arrays", "groups"}
_LOCKED: set[str] = set()


class MemoryStorage(Storage):
    """Datasets held in this process's memory under ``mem://<name>``."""

    def __init__(self, location: str, mode: str, state: dict[str, Any]) -> None:
        self.location, self.mode, self._state = location, mode, state

    @classmethod
    def exists(cls, location: Any) -> bool:
        return location in _COMMITTED

    @classmethod
    def open(cls, location: Any, mode: str = "r") -> MemoryStorage:
        if mode == "r":
            if location not in _COMMITTED:
                raise DatasetError(f"dataset {location} does not exist")
            return cls(location, mode, _COMMITTED[location])
        if location in _LOCKED:
            raise DatasetLockedError(f"dataset {location} is being written by another writer")
        if mode == "create" and location in _COMMITTED:
            raise DatasetError(f"dataset {location} already exists")
        st = cls(location, mode, cls._fresh())
        st.existed = location in _COMMITTED
        if mode == "append" and st.existed:
            st._state = copy.deepcopy(_COMMITTED[location])
        _LOCKED.add(location)
        return st

    @staticmethod
    def _fresh() -> dict[str, Any]:
        return {"attrs": {}, "specs": {}, "arrays": {}, "groups": set()}

    def attrs(self) -> dict[str, Any]:
        return {k: (v.item() if isinstance(v, np.generic) else v) for k, v in self._state["attrs"].items()}

    def fields(self) -> dict[str, FieldSpec]:
        return dict(self._state["specs"])

    def groups(self) -> set[str]:
        return set(self._state["groups"]) | super().groups()

    def num_rows(self, name: str) -> int:
        return len(self._state["arrays"][name])

    def read(self, name: str, rows: Any = None) -> np.ndarray:
        arr = self._state["arrays"][name]
        rng = rows_range(rows, len(arr))
        return arr[rng[0]:rng[1]].copy() if rng is not None else arr[index_array(rows, len(arr))]

    def create_group(self, name: str) -> None:
        self._state["groups"].add(name)

    def create_field(self, spec: FieldSpec) -> None:
        self._state["specs"][spec.name] = spec
        self._state["arrays"][spec.name] = np.empty((0, *spec.shape), dtype=spec.dtype)

    def append(self, name: str, data: np.ndarray) -> None:
        arrays = self._state["arrays"]
        arrays[name] = np.concatenate([arrays[name], np.asarray(data, dtype=arrays[name].dtype)])

    def truncate(self, name: str, rows: int) -> None:
        self._state["arrays"][name] = self._state["arrays"][name][:rows]

    def set_attrs(self, values: Mapping[str, Any]) -> None:
        self._state["attrs"].update(values)

    def commit(self) -> None:
        _COMMITTED[self.location] = copy.deepcopy(self._state)
        self.existed = True

    def abort(self) -> None:
        self._state = copy.deepcopy(_COMMITTED[self.location]) if self.existed else self._fresh()

    def close(self) -> None:
        if self.mode != "r":
            _LOCKED.discard(self.location)


register_storage("memory", MemoryStorage, schemes=("mem",))


def _cartpole_episodes(n: int) -> list[Episode]:
    """n CartPole-v1 episodes of a pole-angle controller (seeds 0..n-1)."""
    env = gym.make("CartPole-v1")
    out = []
    for seed in range(n):
        obs, _ = env.reset(seed=seed)
        rows, acts, rews = [], [], []
        term = trunc = False
        while not (term or trunc) and len(rows) < 120:
            a = int(obs[2] + 0.3 * obs[3] > 0)
            rows.append(obs)
            acts.append(a)
            obs, r, term, trunc, _ = env.step(a)
            rews.append(r)
        flags = np.zeros(len(rows), bool)
        out.append(Episode(observations=np.array(rows), actions=np.array(acts), rewards=np.array(rews),
                           terminated=np.r_[flags[:-1], term], truncated=np.r_[flags[:-1], not term],
                           final_observation=obs[None], seed=seed))
    env.close()
    return out


def _write(location: Any, episodes: list[Episode], mode: str = "create") -> None:
    env = gym.make("CartPole-v1")
    with DatasetWriter(location, observation_space=env.observation_space, action_space=env.action_space,
                       env_id="CartPole-v1", mode=mode) as w:
        w.add_episodes(episodes)


def test_memory_backend_runs_through_the_writer_the_reader_and_bc(tmp_path: Path) -> None:
    eps = _cartpole_episodes(6)
    _write("mem://cartpole", eps[:4])
    _write("mem://cartpole", eps[4:], mode="append")
    _write(tmp_path / "cartpole.h5", eps)
    mem, h5 = load_dataset("mem://cartpole"), load_dataset(tmp_path / "cartpole.h5")
    assert mem.path == "mem://cartpole" and mem.num_episodes == 6 and len(mem) == len(h5)
    for name in ("observations", "actions", "rewards", "terminated", "truncated", "next_observations"):
        np.testing.assert_array_equal(getattr(mem, name), getattr(h5, name), err_msg=name)
    rows = np.array([5, 0, len(h5) - 1, 17])
    for a, b in zip(mem.read(["observations", "next_observations"], rows).values(),
                    h5.read(["observations", "next_observations"], rows).values()):
        np.testing.assert_array_equal(a, b)
    batches = list(mem.iter_batches(64, fields=["observations", "actions"], shuffle=True, seed=1))
    assert sum(len(b["actions"]) for b in batches) == len(mem)
    assert mem.metadata["appends"][0]["episodes"] == [4, 6]
    with pytest.raises(DatasetError, match="already exists"):
        _write("mem://cartpole", eps[:1])

    a = train_bc("mem://cartpole", epochs=3, eval_episodes=0, device="cpu", seed=2)
    b = train_bc(tmp_path / "cartpole.h5", epochs=3, eval_episodes=0, device="cpu", seed=2)
    for key, value in a.policy.state_dict().items():
        torch.testing.assert_close(value, b.policy.state_dict()[key], rtol=0, atol=0, msg=key)
    assert a.history[-1]["loss"] < a.history[0]["loss"]  # it learns


def test_an_unknown_scheme_is_a_user_error() -> None:
    from demokit.errors import UserError

    with pytest.raises(UserError, match="unknown dataset location scheme 'nosuch'"):
        load_dataset("nosuch://x")
