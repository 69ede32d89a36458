"""Pixel observations: an env whose observation is its own rendered frame (resized, grayscale or RGB, stacked).

``pixel_env_id("CartPole-v1", size=84, grayscale=True, frame_stack=4)`` is the env id
``pixels84-gray-stack4/CartPole-v1`` (a namespaced base id ``ns/Name-v0`` gives
``pixels84-gray-stack4-in-ns/Name-v0``). Such ids are registered with gymnasium on first use
(:func:`ensure_registered`, called by :func:`demokit.envs.make_env`), so a dataset recorded
from rendered frames names an env that evaluation, BC and collection can make again.

The env (:class:`PixelObservation`) makes the base env with ``render_mode="rgb_array"`` and
returns, after every reset and step, the last ``frame_stack`` frames (oldest first; after a
reset every slot holds the reset frame), each the rendered RGB frame resized to
``size x size`` (block averaging, :func:`process_frame`) and, with ``grayscale``, converted to
luma (0.299 R + 0.587 G + 0.114 B), rounded to uint8. The
observation space is a uint8 Box of shape ``(frame_stack, size, size)`` (grayscale) or
``(frame_stack, size, size, 3)`` (RGB). The base env's own observation is kept as
``state_obs`` (``env.get_wrapper_attr("state_obs")``): a privileged expert acts on it while the
frames are recorded (``collect --render-obs``).
"""

from __future__ import annotations

import os
import re
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from demokit.errors import UserError

#: pixels<size>-<gray|rgb>-stack<k>/<base env id>
PIXEL_ID = re.compile(r"^pixels(?P<size>\d+)-(?P<color>gray|rgb)-stack(?P<stack>\d+)(?:-in-(?P<ns>[\w-]+))?"
                      r"/(?P<base>[^/:]+)$")
LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def pixel_env_id(base: str, *, size: int = 84, grayscale: bool = False, frame_stack: int = 1) -> str:
    """The env id of ``base`` observed through rendered frames (see the module docstring)."""
    if size < 8:
        raise UserError(f"render size must be >= 8 pixels, got {size}")
    if frame_stack < 1:
        raise UserError(f"frame_stack must be >= 1, got {frame_stack}")
    prefix = f"pixels{int(size)}-{'gray' if grayscale else 'rgb'}-stack{int(frame_stack)}"
    ns, _, name = base.rpartition("/")  # gymnasium ids hold one '/': a base namespace joins the prefix
    if ":" in base or "/" in ns:
        raise UserError(f"env id {base!r} cannot be observed through rendered frames (an id with ':' or two '/')")
    return f"{prefix}-in-{ns}/{name}" if ns else f"{prefix}/{name}"


def parse_pixel_env_id(env_id: str) -> dict[str, Any] | None:
    """``{base, size, grayscale, frame_stack}`` of a pixel env id, None for other ids."""
    m = PIXEL_ID.match(env_id) if isinstance(env_id, str) else None
    if m is None:
        return None
    return {"base": f"{m['ns']}/{m['base']}" if m["ns"] else m["base"], "size": int(m["size"]), "grayscale": m["color"] == "gray",
            "frame_stack": int(m["stack"])}


def ensure_registered(env_id: str) -> bool:
    """Register a pixel env id with gymnasium (once); False when ``env_id`` is not one."""
    parsed = parse_pixel_env_id(env_id)
    if parsed is None or parsed["base"] not in gym.registry:
        return False
    if env_id not in gym.registry:
        base = gym.spec(parsed["base"])
        gym.register(id=env_id, entry_point="demokit.envs.pixels:make_pixel_env", kwargs=parsed,
                     reward_threshold=base.reward_threshold, max_episode_steps=None,
                     disable_env_checker=True)
    return True


def make_pixel_env(base: str, size: int, grayscale: bool, frame_stack: int, **kwargs: Any) -> gym.Env:
    """The gymnasium entry point of pixel env ids."""
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # pygame renders off-screen: no display, no warning
    os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
    try:
        env = gym.make(base, render_mode="rgb_array", **kwargs)
    except gym.error.DependencyNotInstalled as exc:
        raise UserError(f"rendering {base} needs an optional dependency ({exc}); for the classic-control envs: "
                        f"pip install demokit[render]") from None
    except (TypeError, ValueError, gym.error.Error) as exc:
        raise UserError(f"env {base!r} cannot render frames (render_mode='rgb_array'): {exc}") from None
    if "rgb_array" not in (env.metadata.get("render_modes") or []):
        env.close()
        raise UserError(f"env {base!r} cannot render frames: its render modes are "
                        f"{env.metadata.get('render_modes') or 'none'}")
    return PixelObservation(env, size=size, grayscale=grayscale, frame_stack=frame_stack)


def process_frame(frame: np.ndarray, size: int, grayscale: bool) -> np.ndarray:
    """An RGB frame (H, W, 3) uint8 -> (size, size) luma or (size, size, 3) RGB, uint8.

    Area resize: output pixel (i, j) is the mean of the input block rows ``[i*H//size, (i+1)*H//size)``,
    columns ``[j*W//size, (j+1)*W//size)`` (``np.add.reduceat``); luma is taken before resizing."""
    h, w = frame.shape[:2]
    if h < size or w < size:
        raise UserError(f"the rendered frame ({h}x{w}) is smaller than the render size {size}")
    x = np.asarray(frame[..., :3], dtype=np.float32)
    if grayscale:
        x = x @ LUMA
    rows, cols = (np.arange(size) * h) // size, (np.arange(size) * w) // size
    x = np.add.reduceat(np.add.reduceat(x, rows, axis=0), cols, axis=1)
    count = np.diff(np.append(rows, h))[:, None] * np.diff(np.append(cols, w))[None, :]
    x /= count if grayscale else count[..., None]
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


class PixelObservation(gym.Wrapper):
    """Observations are the last ``frame_stack`` processed frames; ``state_obs`` is the base observation."""

    def __init__(self, env: gym.Env, *, size: int, grayscale: bool, frame_stack: int) -> None:
        super().__init__(env)
        self.size, self.grayscale, self.k = int(size), bool(grayscale), int(frame_stack)
        frame = (self.size, self.size) if grayscale else (self.size, self.size, 3)
        self.observation_space = spaces.Box(0, 255, (self.k, *frame), np.uint8)
        self.frames = np.zeros((self.k, *frame), np.uint8)
        self.state_obs: Any = None

    def _frame(self) -> np.ndarray:
        rendered = self.env.render()
        if rendered is None:
            raise UserError(f"env {self.env.spec.id if self.env.spec else self.env!r} rendered no frame")
        return process_frame(np.asarray(rendered), self.size, self.grayscale)

    def reset(self, **kwargs: Any) -> tuple[np.ndarray, dict[str, Any]]:
        self.state_obs, info = self.env.reset(**kwargs)
        self.frames[:] = self._frame()[None]
        return self.frames.copy(), info

    def step(self, action: Any) -> tuple[np.ndarray, Any, bool, bool, dict[str, Any]]:
        self.state_obs, reward, terminated, truncated, info = self.env.step(action)
        self.frames[:-1] = self.frames[1:]
        self.frames[-1] = self._frame()
        return self.frames.copy(), reward, terminated, truncated, info


class StateObsActor:
    """An actor of a privileged policy acting on the base env's state observations of a vector
    env of :class:`PixelObservation` envs (``collect --render-obs``): the stepper's observation
    batch (the frames, which are recorded) is replaced by the running envs' ``state_obs``."""

    def __init__(self, inner: Any, venv: Any) -> None:
        self.inner, self.venv = inner, venv
        self.extras_spec = inner.extras_spec

    def start(self, slot: int, episode: int) -> None:
        self.inner.start(slot, episode)

    def act(self, obs: Any, slots: np.ndarray) -> tuple[Any, Any]:
        states = self.venv.get_attr("state_obs")
        return self.inner.act(np.stack([np.asarray(states[int(i)]) for i in slots]), slots)
