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


def test_a_number_for_a_sequence_is_refused_with_the_spelling():
    # 256 could mean one layer or 256x256: refused (not guessed), naming the forms that work
    with pytest.raises(ConfigError, match=r"hidden_sizes must be a sequence, got 256 \(a list such as \[256\] or 256,256"):
        from_mapping(Cfg, {"hidden_sizes": 256})


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


def test_parse_settings_reads_json_else_text_and_nests_sections():
    from demokit.config import parse_settings

    got = parse_settings(["n_steps=3", "lr=1e-3", "hidden_sizes=256,256", "precision=bfloat16", "widths=[8, 8]",
                          "flag=true", "none=null", "text=a=b", "rl.batch_size=64", "reward_model.grad_penalty=1"],
                         sections=("rl", "reward_model"))
    assert got == {"n_steps": 3, "lr": 0.001, "hidden_sizes": "256,256", "precision": "bfloat16", "widths": [8, 8],
                   "flag": True, "none": None, "text": "a=b", "rl": {"batch_size": 64},
                   "reward_model": {"grad_penalty": 1}}
    assert isinstance(got["n_steps"], int) and isinstance(got["lr"], float)
    # the text form goes through the config's coercion like any other value
    assert from_mapping(Cfg, {"hidden_sizes": got["hidden_sizes"]}).hidden_sizes == (256, 256)


@pytest.mark.parametrize(("pairs", "match"), [
    (["n_steps"], "expected KEY=VALUE"),
    (["=3"], "expected KEY=VALUE"),
    (["a.b=1"], "unknown section 'a'"),
    (["rl.=1"], "expected rl.KEY=VALUE"),
    (["lr=1", "lr=2"], "lr is given twice"),
    (["rl=1", "rl.lr=2"], "as a value and as a section"),
])
def test_parse_settings_refuses_malformed_pairs(pairs, match):
    from demokit.config import parse_settings

    with pytest.raises(ConfigError, match=match):
        parse_settings(pairs, sections=("rl",))
