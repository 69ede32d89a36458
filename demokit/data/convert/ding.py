"""DI-engine expert data -> demokit.

DI-engine's ``collect_demo_data`` / ``save_file`` store expert data as a pickled
``list`` of transition dicts ``{"obs", "next_obs", "action", "reward", "done", ...}``
whose values are torch tensors (or numpy arrays / Python scalars); policy outputs
such as ``logit``, ``value`` and counters such as ``collect_iter`` ride along. The
file is read with :func:`demokit.data.convert.safe_pickle.safe_load` (nothing in it
is executed); a ``torch.save`` file holding the same list is accepted too.

Episodes end where ``done`` is true. DI-engine does not separate termination from
truncation, so ``done`` counts as *terminated* except:

* when a transition carries ``truncated`` or ``timeout`` (newer DI-engine), that
  flag marks the end as truncated;
* with ``--env``, an episode whose length equals the env's ``max_episode_steps``
  ended by the time limit and is marked *truncated* (an episode that truly
  terminated on exactly its last allowed step is indistinguishable and is marked
  truncated too).

Without ``--env`` every done is a termination and a note says so. As in the D4RL
reader, a jump ``next_obs[i] != obs[i+1]`` without done splits the data (truncated)
and a trailing piece without done is kept as a truncated episode. Every other numeric
per-step key becomes an extra array.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from demokit.data.convert.common import (
    Segments,
    Source,
    block_from_segments,
    env_info,
    fit_to_space,
    flat_spaces,
    numeric_extras,
    split_segments,
)
from demokit.data.convert.safe_pickle import safe_load
from demokit.errors import UserError

CORE_KEYS = ("obs", "next_obs", "action", "reward", "done")
TRUNCATION_KEYS = ("truncated", "timeout")


def _to_numpy(value: Any) -> Any:
    if hasattr(value, "detach") and hasattr(value, "numpy"):  # a torch tensor
        return value.detach().cpu().numpy()
    if isinstance(value, (Mapping, str, bytes)) or value is None:
        return value
    return np.asarray(value)


def _stack(path: Path, rows: list[Any], key: str) -> np.ndarray:
    first = rows[0]
    if isinstance(first, Mapping):
        raise UserError(f"{path}: {key!r} values are dicts (Dict observations); demokit reads DI-engine data with "
                        f"array observations only")
    shape = np.shape(first)
    for i, row in enumerate(rows):
        if not isinstance(row, np.ndarray) or row.shape != shape:
            got = f"shape {row.shape}" if isinstance(row, np.ndarray) else f"a {type(row).__name__}"
            raise UserError(f"{path}: transition {i} has {key!r} of {got} but transition 0 has shape {shape}; "
                            f"every transition must hold arrays of the same shape")
    return np.stack(rows)


def load_transitions(path: str | os.PathLike[str]) -> list[Mapping[str, Any]]:
    """The list of transition dicts of a DI-engine data file (safely unpickled)."""
    path = Path(path)
    data = safe_load(path)
    if isinstance(data, Mapping) and isinstance(data.get("data"), (list, tuple)):
        data = data["data"]
    if not isinstance(data, (list, tuple)):
        raise UserError(f"{path}: holds a {type(data).__name__}; DI-engine expert data is a list of transition dicts "
                        f"with keys {', '.join(CORE_KEYS)}")
    if not data:
        raise UserError(f"{path}: the list of transitions is empty; there is nothing to convert")
    for i, tr in enumerate(data):
        if not isinstance(tr, Mapping):
            raise UserError(f"{path}: transition {i} is a {type(tr).__name__}, not a dict")
        missing = [k for k in CORE_KEYS if k not in tr]
        if missing:
            raise UserError(f"{path}: transition {i} lacks {', '.join(map(repr, missing))}; DI-engine transitions "
                            f"hold {', '.join(CORE_KEYS)}")
    return list(data)


def read_ding(path: str | os.PathLike[str], *, env_id: str | None = None) -> Source:
    """Validate a DI-engine data file and return it as a :class:`Source`."""
    path = Path(path)
    transitions = load_transitions(path)
    n = len(transitions)
    columns: dict[str, list[Any]] = {}
    for tr in transitions:
        for key, value in tr.items():
            columns.setdefault(str(key), []).append(_to_numpy(value))
    partial = sorted(k for k, v in columns.items() if len(v) != n)
    core = {k: _stack(path, columns.pop(k), k) for k in CORE_KEYS}
    rewards = core["reward"].astype(np.float64)
    if rewards.size != n:
        raise UserError(f"{path}: 'reward' has per-step shape {rewards.shape[1:]}; expected one reward per transition")
    done = core["done"]
    if done.size != n:
        raise UserError(f"{path}: 'done' has per-step shape {done.shape[1:]}; expected one flag per transition")
    done = done.reshape(n).astype(bool)
    truncation = np.zeros(n, dtype=bool)
    for key in TRUNCATION_KEYS:
        if key in columns and key not in partial:
            flags = _stack(path, columns.pop(key), key)
            if flags.size == n:
                truncation |= flags.reshape(n).astype(bool)

    env = env_info(env_id) if env_id is not None else None
    obs_space, act_space, obs, actions = flat_spaces(core["obs"], core["action"], env, path=path)
    if core["next_obs"].shape[1:] != core["obs"].shape[1:]:
        raise UserError(f"{path}: 'next_obs' has per-step shape {core['next_obs'].shape[1:]} but 'obs' has "
                        f"{core['obs'].shape[1:]}")
    if env is not None:
        next_obs = fit_to_space(core["next_obs"], obs_space, what=f"{path}: next_obs", against=f"env {env.env_id}")
    else:
        next_obs = core["next_obs"].reshape(obs.shape).astype(obs.dtype, copy=False)

    source = Source(kind="ding", path=path, observation_space=obs_space, action_space=act_space, episodes=(),
                    num_episodes=0, num_steps=0, env_id=env.env_id if env else None,
                    env_spec=env.spec_json if env else None, spaces_inferred=env is None,
                    info={"transitions": n, "keys": sorted(transitions[0].keys(), key=str)})
    if env is None:
        source.note(f"the file names no env, so the spaces were inferred from the data (observations {obs_space}, "
                    f"actions {act_space}) and every done counts as a termination; pass --env to use the env's "
                    f"spaces and mark episodes that reach its time limit as truncated")
    for key in partial:
        source.note(f"key {key!r} is present in only {len(columns.pop(key, []))} of {n} transitions; skipped")
    extras = numeric_extras(source, {k: _stack_or_keep(v) for k, v in columns.items()}, n, what="key")

    segments = split_segments(source, terminals=done & ~truncation, timeouts=truncation, observations=obs,
                              next_observations=next_obs, end_field="done")
    limit = env.max_episode_steps if env is not None else None
    if limit:
        at_limit = segments.terminated & (segments.lengths == limit)
        if at_limit.any():
            segments = Segments(start=segments.start, stop=segments.stop, terminated=segments.terminated & ~at_limit,
                                truncated=segments.truncated | at_limit)
            source.note(f"{int(at_limit.sum())} episode(s) of exactly {limit} steps (the time limit of {env.env_id}) "
                        f"are marked truncated, not terminated")
    source.set_blocks([block_from_segments(segments, observations=obs, actions=actions, rewards=rewards.reshape(n),
                                           finals=next_obs[segments.stop - 1], extras=extras)])
    return source


def _stack_or_keep(values: list[Any]) -> Any:
    """Stack per-step values of an optional key when they are same-shaped arrays."""
    if all(isinstance(v, np.ndarray) for v in values) and len({v.shape for v in values}) == 1:
        return np.stack(values)
    out = np.empty(len(values), dtype=object)
    for i, v in enumerate(values):
        out[i] = v
    return out
