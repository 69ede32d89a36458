"""Typed configs shared by the Python entry points and the CLI.

Every entry point has one frozen dataclass config. Each field carries a short help
text (``metadata["help"]``) that the CLI reuses, so defaults and help live in one
place. :func:`from_mapping` builds a config from a plain dict (the seeds' style:
``serial_pipeline_il({"env_id": "CartPole-v1"}, ...)``) and refuses unknown keys.

Example::

    @dataclass(frozen=True)
    class BCConfig:
        epochs: int = option(50, "passes over the training split")
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import types
import typing
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from demokit.errors import ConfigError

T = TypeVar("T")


def option(default: Any, help: str, **kwargs: Any) -> Any:
    """A dataclass field with a default and a one-line help text."""
    if isinstance(default, (list, dict, set)):
        raise TypeError("use an immutable default (tuple) for config fields")
    return dataclasses.field(default=default, metadata={"help": help, **kwargs})


def required(help: str) -> Any:
    """A dataclass field without a default."""
    return dataclasses.field(metadata={"help": help})


def field_help(cls: type, name: str) -> str:
    """The help text of field ``name`` of config class ``cls`` (for CLI options)."""
    for f in dataclasses.fields(cls):
        if f.name == name:
            help_text = f.metadata.get("help", "")
            if f.default is not dataclasses.MISSING and f.default is not None:
                default = f.default
                if isinstance(default, tuple):
                    default = ",".join(str(x) for x in default)
                return f"{help_text} (default: {default})"
            return help_text
    raise KeyError(f"{cls.__name__} has no field {name!r}")


def _coerce(name: str, value: Any, annotation: Any, cls_name: str) -> Any:
    """Light type coercion: lists to tuples, ints to floats, '64,64' to (64, 64)."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        non_none = [a for a in args if a is not type(None)]
        if len(non_none) == 1:
            return _coerce(name, value, non_none[0], cls_name)
        return value
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"{cls_name}.{name} must be one of {list(args)}, got {value!r}")
        return value
    if origin is tuple:
        if isinstance(value, str):
            value = [v for v in value.replace(" ", "").split(",") if v]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{cls_name}.{name} must be a sequence, got {value!r} (a list such as [{value!r}] "
                              f"or {value!r},{value!r}: one item per entry)")
        elem = args[0] if args else Any
        return tuple(_coerce(name, v, elem, cls_name) for v in value)
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            try:
                return float(value)
            except (TypeError, ValueError):
                raise ConfigError(f"{cls_name}.{name} must be a number, got {value!r}") from None
        return float(value)
    if annotation is int:
        if isinstance(value, bool):
            raise ConfigError(f"{cls_name}.{name} must be an integer, got {value!r}")
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str) and value.lstrip("-").isdigit():
            return int(value)
        if not isinstance(value, int):
            raise ConfigError(f"{cls_name}.{name} must be an integer, got {value!r}")
        return value
    if annotation is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{cls_name}.{name} must be true or false, got {value!r}")
        return value
    if annotation is str:
        if not isinstance(value, str):
            return str(value)
        return value
    return value


def from_mapping(cls: type[T], mapping: Mapping[str, Any] | T | None = None, /, **overrides: Any) -> T:
    """Build config ``cls`` from a mapping (or an existing instance) plus overrides.

    Unknown keys raise :class:`ConfigError` naming the closest valid key; values are
    coerced to the annotated types (lists become tuples). ``None`` values in
    ``overrides`` are ignored, so CLI options left unset keep the config default.
    """
    if mapping is None:
        data: dict[str, Any] = {}
    elif isinstance(mapping, cls):
        data = dataclasses.asdict(mapping)  # type: ignore[arg-type]
    elif isinstance(mapping, Mapping):
        data = dict(mapping)
    else:
        raise ConfigError(f"{cls.__name__} config must be a mapping or {cls.__name__}, got {type(mapping).__name__}")
    data.update({k: v for k, v in overrides.items() if v is not None})
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    unknown = [k for k in data if k not in names]
    if unknown:
        k = unknown[0]
        close = difflib.get_close_matches(k, names, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(f"unknown {cls.__name__} key {k!r}{hint}; valid keys: {', '.join(names)}")
    kwargs = {k: _coerce(k, v, hints[k], cls.__name__) for k, v in data.items()}
    try:
        return cls(**kwargs)
    except TypeError as exc:  # a required field is missing
        raise ConfigError(f"{cls.__name__}: {exc}") from None


def to_dict(config: Any) -> dict[str, Any]:
    """A JSON-friendly dict of a config (tuples become lists)."""
    def conv(v: Any) -> Any:
        if isinstance(v, tuple):
            return [conv(x) for x in v]
        return v
    return {k: conv(v) for k, v in dataclasses.asdict(config).items()}


def parse_settings(pairs: Iterable[str], *, flag: str = "--set", sections: Iterable[str] = ()) -> dict[str, Any]:
    """``KEY=VALUE`` strings (a CLI's repeated ``--set``) as a settings mapping.

    VALUE is read as JSON when it is JSON (``3``, ``1e-3``, ``true``, ``null``, ``[256, 256]``), else kept as
    the string (``bfloat16``, ``256,256``: the config's field types coerce it); nothing is evaluated.
    ``sections`` (e.g. ``rl``, ``reward_model``): ``SECTION.KEY=VALUE`` goes into the nested mapping
    ``SECTION``. A pair without ``=``, an empty key, an unknown ``SECTION.`` prefix or a key given twice is a
    :class:`ConfigError` naming ``flag``.
    """
    known = tuple(sections)
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"{flag} {pair!r}: expected KEY=VALUE, e.g. {flag} n_steps=3")
        try:
            value: Any = json.loads(raw)
        except ValueError:
            value = raw
        target, name = out, key
        if "." in key:
            section, _, name = key.partition(".")
            if not name:
                raise ConfigError(f"{flag} {pair!r}: expected {section}.KEY=VALUE")
            if section not in known:
                allowed = ", ".join(f"{s}.KEY" for s in known) or "no dotted keys"
                raise ConfigError(f"{flag} {pair!r}: unknown section {section!r} (allowed: {allowed})")
            nested = out.setdefault(section, {})
            if not isinstance(nested, dict):
                raise ConfigError(f"{flag} {pair!r}: {section} is given as a value and as a section")
            target = nested
        if name in target:
            raise ConfigError(f"{flag} {key} is given twice")
        target[name] = value
    return out
