"""MuJoCo's warnings, each distinct one shown once per process.

MuJoCo prints its model compiler's warnings on every model load (mujoco 4.0 deprecates the ``settotalmass``
attribute of gymnasium's HalfCheetah XML): once per env of a vector env and per evaluation, dozens of
identical lines. :func:`install_once_handler` shows each distinct one once on stderr instead; a handler the
user installed (``mujoco.set_mju_user_warning``) is left alone. :func:`is_mujoco_env` says which envs need it
(and the ``mujoco`` extra).
"""

from __future__ import annotations

import sys
from typing import Any

import gymnasium as gym


def is_mujoco_env(env_id: str) -> bool:
    """Whether ``env_id`` is a registered env of gymnasium's MuJoCo family (its entry point)."""
    spec = gym.registry.get(env_id)
    return spec is not None and "mujoco" in str(spec.entry_point)


#: the MuJoCo warnings shown so far in this process
_SHOWN: set[str] = set()


def show_once(message: Any) -> None:
    """MuJoCo's warning handler: print ``message`` on stderr unless it was printed before."""
    text = str(message).strip()
    if text not in _SHOWN:
        _SHOWN.add(text)
        print(f"MuJoCo warning: {text} (each distinct MuJoCo warning is shown once)", file=sys.stderr, flush=True)


def install_once_handler() -> None:
    """Make :func:`show_once` MuJoCo's warning handler, unless mujoco is missing or the user set one."""
    try:
        import mujoco
    except ImportError:  # making the env names the extra to install
        return
    if mujoco.get_mju_user_warning() is None:
        mujoco.set_mju_user_warning(show_once)
