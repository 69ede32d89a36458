"""Small sources in every supported format, written by hand (no converter code)."""

from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import Any

import gymnasium as gym
import h5py
import numpy as np
import torch

from demokit.data.episode import Episode
from demokit.data.writer import DatasetWriter

CARTPOLE_BOX_JSON = json.dumps({
    "type": "Box", "dtype": "float32", "shape": [4],
    "low": [-4.800000190734863, float("-inf"), -0.41887903213500977, float("-inf")],
    "high": [4.800000190734863, float("inf"), 0.41887903213500977, float("inf")],
})
DISCRETE2_JSON = json.dumps({"type": "Discrete", "dtype": "int64", "start": 0, "n": 2})


def cartpole_episodes(lengths: list[int], *, seed: int = 0, extras: bool = True) -> list[Episode]:
    rng = np.random.default_rng(seed)
    eps = []
    for k, T in enumerate(lengths):
        term = np.zeros(T, dtype=bool)
        trunc = np.zeros(T, dtype=bool)
        (trunc if k % 2 else term)[-1] = True
        eps.append(Episode(
            observations=rng.normal(size=(T, 4)).astype(np.float32),
            actions=rng.integers(0, 2, size=T),
            rewards=rng.normal(size=T),
            terminated=term, truncated=trunc,
            final_observation=rng.normal(size=(1, 4)).astype(np.float32),
            extras={"value": rng.normal(size=T).astype(np.float32), "logit": rng.normal(size=(T, 2)).astype(np.float32)}
            if extras else {},
            seed=100 + k,
        ))
    return eps


def write_demokit_cartpole(path: Path, lengths: tuple[int, ...] = (5, 7, 3)) -> Path:
    """A demokit CartPole-v1 dataset (terminated, truncated, terminated, ...) with extras."""
    env = gym.make("CartPole-v1")
    with DatasetWriter(path, observation_space=env.observation_space, action_space=env.action_space,
                       env_id="CartPole-v1", env_spec=env.spec, provenance={"policy": "test"}) as w:
        w.add_episodes(cartpole_episodes(list(lengths)))
    return path


def write_minari_by_hand(root: Path, episodes: list[dict[str, Any]], metadata: dict[str, Any]) -> Path:
    """A Minari 0.5 dataset directory written with h5py + json only.

    Each episode dict: observations (T+1 rows; dict/tuple for nested spaces),
    actions, rewards, terminations, truncations, optional infos, seed.
    """
    data = root / "data"
    data.mkdir(parents=True)

    def put(group: h5py.Group, name: str, value: Any) -> None:
        if isinstance(value, dict):
            sub = group.create_group(name)
            for k, v in value.items():
                put(sub, k, v)
        elif isinstance(value, tuple):
            sub = group.create_group(name)
            for i, v in enumerate(value):
                put(sub, f"_index_{i}", v)
        else:
            group.create_dataset(name, data=np.asarray(value), chunks=True, maxshape=(None, *np.shape(value)[1:]))

    with h5py.File(data / "main_data.hdf5", "w", track_order=True) as h5:
        for i, ep in enumerate(episodes):
            g = h5.create_group(f"episode_{i}")
            g.attrs["id"] = i
            g.attrs["total_steps"] = len(ep["rewards"])
            if ep.get("seed") is not None:
                g.attrs["seed"] = ep["seed"]
            for key in ("observations", "actions", "rewards", "terminations", "truncations", "infos"):
                if key in ep:
                    put(g, key, ep[key])
    (data / "metadata.json").write_text(json.dumps(metadata))
    return root


def cartpole_minari_episodes(lengths: list[int], seed: int = 0) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    eps = []
    for k, T in enumerate(lengths):
        term = np.zeros(T, dtype=bool)
        trunc = np.zeros(T, dtype=bool)
        (trunc if k == 1 else term)[-1] = True
        eps.append({
            "observations": rng.normal(size=(T + 1, 4)).astype(np.float32),
            "actions": rng.integers(0, 2, size=T).astype(np.int64),
            "rewards": np.ones(T),
            "terminations": term, "truncations": trunc,
            "infos": {"speed": rng.normal(size=T + 1), "nested": {"count": np.arange(T + 1)}},
            "seed": 7 + k if k != 2 else None,
        })
    return eps


def cartpole_minari_metadata(episodes: list[dict[str, Any]], **overrides: Any) -> dict[str, Any]:
    meta = {
        "dataset_id": "cartpole/hand-v0",
        "total_episodes": len(episodes),
        "total_steps": int(sum(len(e["rewards"]) for e in episodes)),
        "data_format": "hdf5",
        "observation_space": CARTPOLE_BOX_JSON,
        "action_space": DISCRETE2_JSON,
        "env_spec": gym.spec("CartPole-v1").to_json(),
        "algorithm_name": "random",
        "author": ["someone"],
        "minari_version": "0.5.1",
    }
    meta.update(overrides)
    return meta


def write_d4rl(path: Path, fields: dict[str, Any], infos: dict[str, Any] | None = None,
               metadata: dict[str, Any] | None = None) -> Path:
    with h5py.File(path, "w") as h5:
        for k, v in fields.items():
            h5.create_dataset(k, data=v)
        for k, v in (infos or {}).items():
            h5.create_dataset(f"infos/{k}", data=v)
        for k, v in (metadata or {}).items():
            h5.create_dataset(f"metadata/{k}", data=v)
    return path


def ding_transitions(lengths: list[int], *, seed: int = 0, obs_dim: int = 4) -> list[dict[str, Any]]:
    """DI-engine style transitions (torch tensors), episodes ending with done."""
    rng = np.random.default_rng(seed)
    out = []
    for T in lengths:
        obs = torch.as_tensor(rng.normal(size=(T + 1, obs_dim)).astype(np.float32))
        for t in range(T):
            out.append({
                "obs": obs[t].clone(), "next_obs": obs[t + 1].clone(),
                "action": torch.tensor([int(rng.integers(0, 2))]),
                "reward": torch.tensor([float(rng.normal())]),
                "done": t == T - 1,
                "logit": torch.as_tensor(rng.normal(size=2).astype(np.float32)),
                "value": torch.tensor(float(rng.normal())),
                "collect_iter": 3,
            })
    return out


def write_pickle(path: Path, obj: Any, protocol: int = pickle.DEFAULT_PROTOCOL) -> Path:
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=protocol)
    return path
