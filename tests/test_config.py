from dataclasses import dataclass
from typing import Literal

import pytest

from demokit.config import field_help, from_mapping, option, to_dict
from demokit.errors import ConfigError


@dataclass(frozen=True)
class Cfg:
    env_id: str | None = option(None, "env id")
    epochs: int = option(10, "passes")
    lr: float = option(1e-3, "learning rate")
    hidden_sizes: tuple[int, ...] = option((64, 64), "hidden widths")
    loss: Literal["nll", "mse"] = option("nll", "continuous loss")
    verbose: bool = option(False, "chatty")


def test_from_mapping_coerces_and_keeps_defaults():
    cfg = from_mapping(Cfg, {"env_id": "CartPole-v1", "lr": 1, "hidden_sizes": [32, 16]})
    assert cfg == Cfg(env_id="CartPole-v1", epochs=10, lr=1.0, hidden_sizes=(32, 16))
    assert isinstance(cfg.lr, float)
    assert from_mapping(Cfg, hidden_sizes="8,4").hidden_sizes == (8, 4)


def test_none_overrides_are_ignored_and_instance_accepted():
    base = Cfg(epochs=3)
    assert from_mapping(Cfg, base, epochs=None, lr=0.5) == Cfg(epochs=3, lr=0.5)


def test_unknown_key_is_an_error_with_suggestion():
    with pytest.raises(ConfigError, match=r"unknown Cfg key 'epoch'.*did you mean 'epochs'"):
        from_mapping(Cfg, {"epoch": 3})


@pytest.mark.parametrize("bad", [{"epochs": "many"}, {"epochs": True}, {"loss": "l1"}, {"verbose": "yes"}, {"lr": "fast"}])
def test_bad_values_are_errors(bad):
    with pytest.raises(ConfigError):
        from_mapping(Cfg, bad)


def test_not_a_mapping():
    with pytest.raises(ConfigError):
        from_mapping(Cfg, [("epochs", 3)])


def test_field_help_and_to_dict():
    assert field_help(Cfg, "hidden_sizes") == "hidden widths (default: 64,64)"
    assert to_dict(Cfg())["hidden_sizes"] == [64, 64]
    with pytest.raises(TypeError):
        option([1], "mutable defaults are refused")
