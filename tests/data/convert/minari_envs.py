"""Small gymnasium envs with the spaces Minari users record: nested Dict/Tuple spaces with nested
infos, image observations and actions, and MultiDiscrete / MultiBinary spaces with array / tuple infos.
Registered as ``demokit-test/Nested-v0``, ``demokit-test/Image-v0``, ``demokit-test/Multi-v0`` and
``demokit-test/ConstImage-v0`` so Minari can store their env spec and ``recover_environment()`` can rebuild them."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces


class NestedEnv(gym.Env):
    """Dict observation (a Box, a Discrete and a Tuple inside), Tuple action, nested infos."""

    observation_space = spaces.Dict({
        "pos": spaces.Box(-5.0, 5.0, shape=(2,), dtype=np.float32),
        "mode": spaces.Discrete(3),
        "pair": spaces.Tuple((spaces.Discrete(2), spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32))),
    })
    action_space = spaces.Tuple((spaces.Discrete(2), spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)))

    def __init__(self, empty_infos: bool = False) -> None:
        self.empty_infos = empty_infos
        self._t = 0
        self._pos = np.zeros(2, np.float32)

    def _obs(self) -> dict[str, Any]:
        return {"pos": self._pos.copy(), "mode": int(self._t % 3),
                "pair": (int(self._t % 2), np.clip(self._pos[:1], -1, 1).astype(np.float32))}

    def _info(self) -> dict[str, Any]:
        if self.empty_infos:
            return {}
        return {"stats": {"dist": float(np.abs(self._pos).sum()), "t": self._t}, "flag": bool(self._t % 2)}

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self._t = 0
        self._pos = self.np_random.uniform(-1, 1, size=2).astype(np.float32)
        return self._obs(), {"stats": {"dist": 0.0, "t": 0}, "flag": False} if not self.empty_infos else {}

    def step(self, action):
        self._t += 1
        self._pos = np.clip(self._pos + float(action[1][0]) * (1 if action[0] else -1)
                            + self.np_random.normal(0, 0.1, size=2), -5, 5).astype(np.float32)
        terminated = bool(np.abs(self._pos).max() > 2.0)
        return self._obs(), float(-np.abs(self._pos).sum()), terminated, False, self._info()


class ImageEnv(gym.Env):
    """uint8 image observations (Minari JPEG-encodes them by default), Discrete actions."""

    observation_space = spaces.Box(0, 255, shape=(32, 32, 3), dtype=np.uint8)
    action_space = spaces.Discrete(3)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self._t = 0
        return self._frame(), {}

    def _frame(self) -> np.ndarray:
        img = np.zeros((32, 32, 3), np.uint8)
        img[:, :, 0] = (self._t * 20) % 256
        img[8:24, 8:24, 1] = self.np_random.integers(0, 256)
        return img

    def step(self, action):
        self._t += 1
        return self._frame(), float(action), self._t >= 3 + int(action), False, {}


class MultiEnv(gym.Env):
    """MultiDiscrete / MultiBinary spaces (a 2-D MultiBinary, a 2-D Box, a Discrete with a start) and the
    infos Minari stores as arrays (arrow: field metadata "shape"), nested dicts, tuples and bools."""

    observation_space = spaces.Tuple((spaces.MultiDiscrete([3, 4, 5]),
                                      spaces.Box(-1.0, 1.0, shape=(2, 3), dtype=np.float64)))
    action_space = spaces.Dict({"press": spaces.MultiBinary([2, 3]), "pick": spaces.Discrete(4, start=1)})

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self._t = 0
        self._state = self.np_random.integers(0, [3, 4, 5])
        return self._obs(), self._info()

    def _obs(self) -> tuple[np.ndarray, np.ndarray]:
        return self._state.copy(), np.tanh(self.np_random.normal(size=(2, 3)))

    def _info(self) -> dict[str, Any]:
        return {"arr": np.arange(6, dtype=np.float32).reshape(2, 3) * self._t,
                "nested": {"count": self._t, "inner": {"x": float(self._state.sum()) / 3}},
                "pair": (self._t % 2, self._t / 2), "ok": bool(self._t % 2)}

    def step(self, action):
        self._t += 1
        self._state = (self._state + np.r_[np.asarray(action["press"]).sum(axis=1), int(action["pick"])]) % [3, 4, 5]
        terminated = bool(self._state[0] == 0 and self._t > 2)
        return self._obs(), float(action["pick"]) - float(self._state[1]), terminated, False, self._info()


class ConstImageEnv(gym.Env):
    """Image leaves inside Dict / Tuple observations (RGB ``frame``, grayscale ``view[0]``) and, unless
    ``image_action=False``, a grayscale image action (``action[1]``). Each image is the same throughout an
    episode (its colours are drawn at reset), so all its JPEGs have the same length and Minari's hdf5
    storage holds them as a 2-D uint8 array (frames x bytes) rather than as variable-length bytes."""

    def __init__(self, image_action: bool = True) -> None:
        self.observation_space = spaces.Dict({
            "frame": spaces.Box(0, 255, shape=(32, 32, 3), dtype=np.uint8),
            "view": spaces.Tuple((spaces.Box(0, 255, shape=(48, 40), dtype=np.uint8), spaces.Discrete(4))),
        })
        self.action_space = spaces.Tuple((spaces.Discrete(3), *(
            (spaces.Box(0, 255, shape=(32, 32), dtype=np.uint8),) if image_action else ())))
        self._t = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self._t = 0
        self._frame = np.zeros((32, 32, 3), np.uint8) + self.np_random.integers(0, 256, size=3, dtype=np.uint8)
        self._frame[8:24, 8:24] = 255 - self._frame[8:24, 8:24]
        self._view = (np.add.outer(np.arange(48), np.arange(40)) * 2 + self.np_random.integers(0, 64)).astype(np.uint8)
        return self._obs(), {}

    def _obs(self) -> dict[str, Any]:
        return {"frame": self._frame.copy(), "view": (self._view.copy(), self._t % 4)}

    def step(self, action):
        self._t += 1
        return self._obs(), float(action[0]) - 1.0, self._t >= 3 + int(action[0]), False, {}


#: the image action :class:`ConstImageEnv` is driven with (constant, so its JPEGs have one length too)
CONST_ACTION_IMAGE = (np.add.outer(np.arange(32), np.arange(32)) * 4 % 256).astype(np.uint8)


def register() -> None:
    for name, cls, steps in (("Nested", NestedEnv, 12), ("Image", ImageEnv, 8), ("Multi", MultiEnv, 10),
                             ("ConstImage", ConstImageEnv, 5)):
        env_id = f"demokit-test/{name}-v0"
        if env_id not in gym.registry:
            gym.register(env_id, entry_point=f"tests.data.convert.minari_envs:{cls.__name__}", max_episode_steps=steps)
