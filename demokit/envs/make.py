"""Creating environments.

``make_vec_env`` returns a gymnasium ``SyncVectorEnv`` in autoreset mode NEXT_STEP
(gymnasium 1.x's default): after a sub-env's episode ends, the *next* ``step``
call returns that sub-env's reset observation with reward 0 and both flags False,
and the action passed for it is ignored. Learners must skip that step (see
``demokit.rl``).
"""

from __future__ import annotations

import difflib
import json
import warnings
from collections.abc import Mapping
from typing import Any

import gymnasium as gym
from gymnasium.vector import AutoresetMode, SyncVectorEnv

from demokit.envs.mujoco_warnings import install_once_handler, is_mujoco_env
from demokit.envs.vector import InfoFreeSyncVectorEnv
from demokit.errors import UserError
from demokit.results import json_default


def _check_id(env_id: str) -> None:
    if not isinstance(env_id, str) or not env_id:
        raise UserError(f"env id must be a non-empty string, got {env_id!r}")
    if env_id not in gym.registry and not _register_pixels(env_id):
        close = difflib.get_close_matches(env_id, list(gym.registry), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        extra = "; Box2D envs need `pip install demokit[box2d]`" if _extra_of(env_id) == "box2d" else ""
        raise UserError(f"unknown env id {env_id!r}{hint}{extra}")


def _register_pixels(env_id: str) -> bool:
    """Register a rendered-frames env id (``pixels84-gray-stack4/CartPole-v1``, :mod:`demokit.envs.pixels`)."""
    from demokit.envs.pixels import ensure_registered

    return ensure_registered(env_id)


def _extra_of(env_id: str) -> str | None:
    """The demokit extra that installs what ``env_id`` needs (box2d, mujoco), or None."""
    spec = gym.registry.get(env_id)
    entry = str(spec.entry_point) if spec is not None else ""
    if "box2d" in entry or any(n in env_id for n in ("LunarLander", "BipedalWalker", "CarRacing")):
        return "box2d"
    if is_mujoco_env(env_id):
        return "mujoco"
    return None


def _show_mujoco_warnings_once(env_id: str) -> None:
    """For a MuJoCo env: each distinct MuJoCo warning once per process (:mod:`demokit.envs.mujoco_warnings`)."""
    if is_mujoco_env(env_id):
        install_once_handler()


def make_env(env_id: str, *, seed: int | None = None, **kwargs: Any) -> gym.Env:
    """Make one env; an unknown id raises :class:`UserError`. Resets with ``seed`` if given."""
    _check_id(env_id)
    _show_mujoco_warnings_once(env_id)
    try:
        env = gym.make(env_id, **kwargs)
    except gym.error.DependencyNotInstalled as exc:
        extra = _extra_of(env_id)
        if extra is not None:
            raise UserError(f"env {env_id!r} needs the {extra} extra: run `pip install demokit[{extra}]`") from None
        raise UserError(f"env {env_id!r} needs an optional dependency: {exc}") from None
    if seed is not None:
        env.reset(seed=seed)
        env.action_space.seed(seed)
    return env


def make_vec_env(env_id: str, num_envs: int, *, seed: int | None = None, infos: bool = True,
                 **kwargs: Any) -> SyncVectorEnv:
    """A ``SyncVectorEnv`` of ``num_envs`` copies (autoreset NEXT_STEP).

    It is not reset here; call ``venv.reset(seed=seed)`` (sub-env i gets seed+i).
    ``infos=False``: its ``step`` returns no infos (an :class:`InfoFreeSyncVectorEnv`, the
    same steps without merging the sub-envs' info dicts; demokit's loops read none).
    """
    if num_envs < 1:
        raise UserError(f"num_envs must be >= 1, got {num_envs}")
    _check_id(env_id)
    make_env(env_id, **kwargs).close()  # surface dependency errors as UserError
    kind = SyncVectorEnv if infos else InfoFreeSyncVectorEnv
    venv = kind([lambda: gym.make(env_id, **kwargs) for _ in range(num_envs)], autoreset_mode=AutoresetMode.NEXT_STEP)
    if seed is not None:
        venv.action_space.seed(seed)
    return venv


def env_spec_json(spec: Any) -> str | None:
    """THE env spec as JSON text (enough to re-make the env), from an env id, a gymnasium
    ``EnvSpec``, a dict or JSON text (returned as is once checked); None gives None.

    A spec whose kwargs hold callables cannot be serialised: its id, entry point,
    ``max_episode_steps`` and the ``repr`` of its kwargs are stored instead, with a warning.
    """
    if spec is None:
        return None
    if isinstance(spec, str):
        if spec.lstrip().startswith("{"):  # JSON text (an env id never starts with "{")
            try:
                json.loads(spec)
            except ValueError:
                raise UserError(f"env_spec must be JSON text, got {spec[:80]!r}") from None
            return spec
        _check_id(spec)
        spec = gym.spec(spec)
    if isinstance(spec, Mapping):
        return json.dumps(dict(spec), default=json_default)
    to_json = getattr(spec, "to_json", None)
    if to_json is None:
        raise UserError(f"env_spec must be an env id, a gymnasium EnvSpec, a dict or JSON text, "
                        f"got {type(spec).__name__}")
    try:
        return to_json()
    except Exception as exc:  # kwargs that are not JSON-serialisable (callables, ...)
        warnings.warn(f"env spec {getattr(spec, 'id', spec)!r} is not JSON-serialisable ({exc}); "
                      f"storing its id, entry point and kwargs as text", stacklevel=2)
        return json.dumps({"id": getattr(spec, "id", None),
                           "entry_point": str(getattr(spec, "entry_point", "")),
                           "kwargs": {k: repr(v) for k, v in (getattr(spec, "kwargs", {}) or {}).items()},
                           "max_episode_steps": getattr(spec, "max_episode_steps", None)})



def make_env_from_spec_json(text: str) -> gym.Env:
    """Re-make an env from :func:`env_spec_json` output."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"env spec is not valid JSON: {exc}") from None
    env_id = data.get("id")
    _check_id(env_id)
    _show_mujoco_warnings_once(env_id)
    kwargs = data.get("kwargs") or {}
    return gym.make(env_id, **kwargs)


def reward_threshold(env_id: str) -> float | None:
    """The env's registered ``reward_threshold`` (None when it has none)."""
    _check_id(env_id)
    thr = gym.spec(env_id).reward_threshold
    return None if thr is None else float(thr)


def max_episode_steps(env_id: str) -> int | None:
    _check_id(env_id)
    return gym.spec(env_id).max_episode_steps
