"""The reward-model registry: ``create_reward_model(cfg, device, tb_logger)`` picks by ``cfg["type"]``.

New models plug in with a decorator::

    @register_reward_model("my_model")
    class MyRewardModel(BaseRewardModel):
        def __init__(self, config, device, tb_logger): ...

    reward_model = create_reward_model({"type": "my_model", ...}, "cpu", None)

The built-in models register themselves when ``demokit.reward_models`` is imported (its
``__init__`` imports them); this module imports none of them (no import circle). A model
in a user's package registers when that module is imported, or, with no import, through
the entry-point group ``demokit.reward_models`` (``[project.entry-points."demokit.reward_models"]
my_model = "my_package.my_module"``): the registry imports those modules the first time
it is asked for a name, so ``demokit irl --reward-model`` lists and accepts them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from demokit.errors import ConfigError
from demokit.reward_models.base import BaseRewardModel

M = TypeVar("M", bound=type)

_REGISTRY: dict[str, type[BaseRewardModel]] = {}
#: entry-point group of reward models in other packages (their modules register on import)
ENTRY_POINT_GROUP = "demokit.reward_models"
_plugins_loaded = False


def _load_plugins() -> None:
    """Import the modules of the ``demokit.reward_models`` entry points once (each registers its model)."""
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    from importlib.metadata import entry_points

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            ep.load()
        except Exception as exc:  # a broken plugin names itself, in one line
            raise ConfigError(f"reward-model plugin {ep.name!r} ({ep.value}) failed to load: "
                              f"{type(exc).__name__}: {exc}") from None


def register_reward_model(name: str) -> Callable[[M], M]:
    """Class decorator registering a :class:`BaseRewardModel` subclass under ``name``."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"a reward model needs a non-empty string name, got {name!r}")

    def decorator(cls: M) -> M:
        if not (isinstance(cls, type) and issubclass(cls, BaseRewardModel)):
            raise TypeError(f"@register_reward_model({name!r}) decorates BaseRewardModel subclasses, not {cls!r}")
        known = _REGISTRY.get(name)
        if known is not None and known is not cls:
            raise ValueError(f"reward model type {name!r} is already registered to {known.__module__}.{known.__qualname__}")
        _REGISTRY[name] = cls
        cls.name = name  # the registered name (checkpoints say "<name>-<learner>")
        return cls

    return decorator


def registered_reward_models() -> tuple[str, ...]:
    """Names ``create_reward_model`` accepts, sorted (entry-point plugins included)."""
    _load_plugins()
    return tuple(sorted(_REGISTRY))


def reward_model_class(name: Any) -> type[BaseRewardModel]:
    """The class registered as ``name``; a ConfigError listing the known types otherwise."""
    cls = _REGISTRY.get(name) if isinstance(name, str) else None
    if cls is not None:
        return cls
    known = ", ".join(registered_reward_models())
    if name is None:
        raise ConfigError(f"reward model config has no 'type' key; set it to one of: {known}")
    cls = _REGISTRY.get(name)
    if cls is None:
        raise ConfigError(f"unknown reward model type {name!r}; known types: {known}")
    return cls


def _config_type(cfg: Any) -> Any:
    if isinstance(cfg, Mapping):
        return cfg.get("type")
    if dataclasses.is_dataclass(cfg):
        return getattr(cfg, "type", None)
    raise ConfigError(f"a reward model config must be a mapping or a config dataclass, got {type(cfg).__name__}")


def create_reward_model(cfg: Any, device: Any = "auto", tb_logger: Any = None, **kwargs: Any) -> BaseRewardModel:
    """Build the reward model named by ``cfg["type"]`` as ``cls(cfg, device, tb_logger, **kwargs)``.

    ``cfg`` is a mapping or a config dataclass with a ``type`` field; an unknown or
    missing type raises :class:`ConfigError` listing the known types.
    """
    return reward_model_class(_config_type(cfg))(cfg, device, tb_logger, **kwargs)
