"""Pixel observations: an env whose observation is its own rendered frame (resized, grayscale or RGB, stacked).

``pixel_env_id("CartPole-v1", size=84, grayscale=True, frame_stack=4)`` is the env id
``pixels84-gray-stack4/CartPole-v1`` (a namespaced base id ``ns/Name-v0`` gives
``pixels84-gray-stack4-in-ns/Name-v0``; a crop of the rendered frame adds
``-crop<top>-<bottom>-<left>-<right>``: ``pixels84-gray-stack4-crop150-330-60-540/CartPole-v1``). Such ids are registered with gymnasium on first use
(:func:`ensure_registered`, called by :func:`demokit.envs.make_env`), so a dataset recorded
from rendered frames names an env that evaluation, BC and collection can make again.

The env (:class:`PixelObservation`) makes the base env with ``render_mode="rgb_array"`` and
returns, after every reset and step, the last ``frame_stack`` frames (oldest first; after a
reset every slot holds the reset frame), each the rendered RGB frame (with ``crop``, first cut to
rows ``[top, bottom)`` and columns ``[left, right)`` of the rendered frame: the region where the
task happens, so it spans more of the output pixels) resized to
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
import sys
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from demokit.envs.mujoco_warnings import install_once_handler, is_mujoco_env
from demokit.errors import UserError

#: pixels<size>-<gray|rgb>-stack<k>/<base env id>
PIXEL_ID = re.compile(r"^pixels(?P<size>\d+)-(?P<color>gray|rgb)-stack(?P<stack>\d+)"
                      r"(?:-crop(?P<crop>\d+-\d+-\d+-\d+))?(?:-in-(?P<ns>[\w-]+))?/(?P<base>[^/:]+)$")
LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def check_crop(crop: Any, size: int) -> tuple[int, int, int, int] | None:
    """``crop`` as ``(top, bottom, left, right)`` ints (None: no crop), or a UserError: four integers
    with ``0 <= top < bottom`` and ``0 <= left < right``, a region at least ``size`` pixels each way."""
    if crop is None:
        return None
    try:
        values = tuple(int(v) for v in crop)
        exact = len(values) == 4 and all(float(v) == int(v) for v in crop)
    except (TypeError, ValueError):
        exact, values = False, ()
    if not exact:
        raise UserError(f"render crop must be four integers TOP,BOTTOM,LEFT,RIGHT (rows [TOP, BOTTOM), columns "
                        f"[LEFT, RIGHT) of the rendered frame), got {crop!r}")
    top, bottom, left, right = values
    if top < 0 or left < 0 or bottom <= top or right <= left:
        raise UserError(f"render crop {top},{bottom},{left},{right} is empty or negative: give 0 <= TOP < BOTTOM and "
                        f"0 <= LEFT < RIGHT")
    if bottom - top < size or right - left < size:
        raise UserError(f"render crop {top},{bottom},{left},{right} is {bottom - top}x{right - left} pixels, smaller "
                        f"than the render size {size}: frames are only ever scaled down")
    return values  # type: ignore[return-value]


def pixel_env_id(base: str, *, size: int = 84, grayscale: bool = False, frame_stack: int = 1,
                 crop: tuple[int, int, int, int] | None = None) -> str:
    """The env id of ``base`` observed through rendered frames (see the module docstring)."""
    if size < 8:
        raise UserError(f"render size must be >= 8 pixels, got {size}")
    if frame_stack < 1:
        raise UserError(f"frame_stack must be >= 1, got {frame_stack}")
    crop = check_crop(crop, size)
    prefix = f"pixels{int(size)}-{'gray' if grayscale else 'rgb'}-stack{int(frame_stack)}"
    if crop is not None:
        prefix += "-crop" + "-".join(str(v) for v in crop)
    ns, _, name = base.rpartition("/")  # gymnasium ids hold one '/': a base namespace joins the prefix
    if ":" in base or "/" in ns:
        raise UserError(f"env id {base!r} cannot be observed through rendered frames (an id with ':' or two '/')")
    return f"{prefix}-in-{ns}/{name}" if ns else f"{prefix}/{name}"


def parse_pixel_env_id(env_id: str) -> dict[str, Any] | None:
    """``{base, size, grayscale, frame_stack, crop}`` of a pixel env id (crop: ``(top, bottom, left,
    right)`` or None), None for other ids."""
    m = PIXEL_ID.match(env_id) if isinstance(env_id, str) else None
    if m is None:
        return None
    return {"base": f"{m['ns']}/{m['base']}" if m["ns"] else m["base"], "size": int(m["size"]),
            "grayscale": m["color"] == "gray", "frame_stack": int(m["stack"]),
            "crop": tuple(int(v) for v in m["crop"].split("-")) if m["crop"] else None}


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


def make_pixel_env(base: str, size: int, grayscale: bool, frame_stack: int,
                   crop: tuple[int, int, int, int] | None = None, **kwargs: Any) -> gym.Env:
    """The gymnasium entry point of pixel env ids."""
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # pygame renders off-screen: no display, no warning
    os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
    render_errors = _mujoco_render_errors(base)
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
    return PixelObservation(env, size=size, grayscale=grayscale, frame_stack=frame_stack, crop=crop,
                            render_errors=render_errors)


def _mujoco_render_errors(base: str) -> tuple[type[BaseException], ...]:
    """For a MuJoCo base env: on a Linux machine without a display, MuJoCo's off-screen EGL backend
    (``MUJOCO_GL=egl``, unless the user chose one; its default, GLFW, needs a display); and the error type its
    renderer raises when no OpenGL backend works, which the frames turn into a UserError. Other envs: none."""
    if not is_mujoco_env(base):
        return ()
    try:
        import mujoco
    except ImportError:  # gym.make names the missing extra
        return ()
    install_once_handler()
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        os.environ.setdefault("MUJOCO_GL", "egl")
    return (mujoco.FatalError,)


def process_frame(frame: np.ndarray, size: int, grayscale: bool,
                  crop: tuple[int, int, int, int] | None = None) -> np.ndarray:
    """An RGB frame (H, W, 3) uint8 -> (size, size) luma or (size, size, 3) RGB, uint8.

    ``crop`` ``(top, bottom, left, right)`` first keeps rows ``[top, bottom)`` and columns
    ``[left, right)`` (a region outside the frame is a UserError). Area resize (anti-aliased: a
    sub-pixel motion changes intensities): output pixel (i, j) is the mean of the input block rows
    ``[i*H//size, (i+1)*H//size)``, columns ``[j*W//size, (j+1)*W//size)`` (``np.add.reduceat``);
    luma is taken before resizing."""
    if crop is not None:
        top, bottom, left, right = crop
        if bottom > frame.shape[0] or right > frame.shape[1]:
            raise UserError(f"render crop {top},{bottom},{left},{right} reaches outside the rendered frame "
                            f"({frame.shape[0]}x{frame.shape[1]} pixels)")
        frame = frame[top:bottom, left:right]
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

    def __init__(self, env: gym.Env, *, size: int, grayscale: bool, frame_stack: int,
                 crop: tuple[int, int, int, int] | None = None,
                 render_errors: tuple[type[BaseException], ...] = ()) -> None:
        super().__init__(env)
        self.render_errors = render_errors  # the renderer's "no OpenGL backend" errors (MuJoCo's FatalError)
        self.size, self.grayscale, self.k = int(size), bool(grayscale), int(frame_stack)
        self.crop = check_crop(crop, self.size)
        frame = (self.size, self.size) if grayscale else (self.size, self.size, 3)
        self.observation_space = spaces.Box(0, 255, (self.k, *frame), np.uint8)
        self.frames = np.zeros((self.k, *frame), np.uint8)
        self.state_obs: Any = None

    def _frame(self) -> np.ndarray:
        try:
            rendered = self.env.render()
        except self.render_errors as exc:
            raise UserError(f"env {self.env.spec.id if self.env.spec else self.env!r} cannot render frames here "
                            f"({exc}); MuJoCo renders off-screen with MUJOCO_GL=egl (or osmesa): set it to a "
                            f"backend this machine has") from None
        if rendered is None:
            raise UserError(f"env {self.env.spec.id if self.env.spec else self.env!r} rendered no frame")
        return process_frame(np.asarray(rendered), self.size, self.grayscale, self.crop)

    def reset(self, **kwargs: Any) -> tuple[np.ndarray, dict[str, Any]]:
        self.state_obs, info = self.env.reset(**kwargs)
        self.frames[:] = self._frame()[None]
        return self.frames.copy(), info

    def step(self, action: Any) -> tuple[np.ndarray, Any, bool, bool, dict[str, Any]]:
        self.state_obs, reward, terminated, truncated, info = self.env.step(action)
        self.frames[:-1] = self.frames[1:]
        self.frames[-1] = self._frame()
        return self.frames.copy(), reward, terminated, truncated, info


#: the per-step extra holding the state observation a privileged policy acted on (``collect --record-state``)
STATE_OBSERVATION = "state_observation"


class StateObsActor:
    """An actor of a privileged policy acting on the base env's state observations of a vector
    env of :class:`PixelObservation` envs (``collect --render-obs``): the stepper's observation
    batch (the frames, which are recorded) is replaced by the running envs' ``state_obs``.

    ``record``: the base env's observation space (a Box) to also store each step's state observation
    as the extra :data:`STATE_OBSERVATION` (its shape and dtype), or None."""

    def __init__(self, inner: Any, venv: Any, record: spaces.Space | None = None) -> None:
        self.inner, self.venv = inner, venv
        self.extras_spec = dict(inner.extras_spec)
        self.record = record is not None
        if record is not None:
            if not isinstance(record, spaces.Box):
                raise UserError(f"--record-state stores a Box state observation, not {type(record).__name__}")
            self.extras_spec[STATE_OBSERVATION] = (tuple(record.shape), np.dtype(record.dtype))
            self.dtype = np.dtype(record.dtype)

    def start(self, slot: int, episode: int) -> None:
        self.inner.start(slot, episode)

    def act(self, obs: Any, slots: np.ndarray) -> tuple[Any, Any]:
        states = state_batch(self.venv, slots)
        actions, extras = self.inner.act(states, slots)
        if self.record:
            extras = {**(extras or {}), STATE_OBSERVATION: states.astype(self.dtype, copy=False)}
        return actions, extras


def state_batch(venv: Any, slots: np.ndarray) -> np.ndarray:
    """The base env's state observations of the sub-envs ``slots`` of a vector env of
    :class:`PixelObservation` envs, stacked (a privileged expert's input)."""
    states = venv.get_attr("state_obs")
    return np.stack([np.asarray(states[int(i)]) for i in slots])
