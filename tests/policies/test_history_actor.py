"""HistoryActor: per-env history buffers, edge-padded at each episode's start (known answers)."""

from __future__ import annotations

import numpy as np

from demokit.policies.actors import HistoryActor


class _Recorder:
    extras_spec: dict = {}

    def __init__(self) -> None:
        self.seen: list[np.ndarray] = []
        self.started: list[tuple[int, int]] = []

    def start(self, slot: int, episode: int) -> None:
        self.started.append((slot, episode))

    def act(self, obs, slots):
        self.seen.append(np.array(obs))
        return np.zeros(len(slots), np.int64), None


def test_history_is_edge_padded_and_kept_per_env():
    inner = _Recorder()
    actor = HistoryActor(inner, 3, num_envs=2)
    actor.start(0, 0)
    actor.start(1, 1)
    actor.act(np.array([[1.0], [10.0]]), np.array([0, 1]))
    actor.act(np.array([[2.0], [11.0]]), np.array([0, 1]))
    actor.act(np.array([[12.0]]), np.array([1]))  # env 0 idle
    actor.start(0, 2)  # env 0 begins a new episode: its history restarts
    actor.act(np.array([[5.0], [13.0]]), np.array([0, 1]))
    got = [s[..., 0].tolist() for s in inner.seen]
    assert got == [[[1, 1, 1], [10, 10, 10]], [[1, 1, 2], [10, 10, 11]], [[10, 11, 12]], [[5, 5, 5], [11, 12, 13]]]
    assert inner.started == [(0, 0), (1, 1), (0, 2)]
