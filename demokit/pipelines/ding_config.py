"""DI-engine's ``(main_config, create_config)`` pair as the keys of demokit's ``IRLConfig``.

DI-engine configs are nested: ``env``, ``policy`` and ``reward_model`` sections in
``main_config``, the component types in ``create_config``. The keys that mean the same
thing in demokit are mapped (:data:`MAPPED`); DI-engine's bookkeeping keys that have no
demokit meaning are dropped with one warning that names them (:data:`IGNORED`); any
other key is a ConfigError naming the closest known key. The ``reward_model`` section
goes to the reward model as it is (its config class accepts DI-engine's key names:
``input_size``, ``hidden_size``, ``data_path``, ``collect_count``).

    serial_pipeline_reward_model_offpolicy((main_config, create_config), seed=0)
"""

from __future__ import annotations

import difflib
import warnings
from collections.abc import Mapping
from typing import Any

from demokit.errors import ConfigError

#: DI-engine path -> (IRLConfig key, or "rl.<learner key>")
MAPPED: dict[str, str] = {
    "main.env.env_id": "env_id",
    "main.env.stop_value": "stop_value",
    "main.env.collector_env_num": "rl.num_envs",
    "main.env.n_evaluator_episode": "rl.eval_episodes",
    "main.policy.cuda": "device",
    "main.policy.discount_factor": "rl.gamma",
    "main.policy.learn.learning_rate": "rl.learning_rate",
    "main.policy.learn.batch_size": "rl.batch_size",
    "main.policy.model.encoder_hidden_size_list": "rl.hidden_sizes",
    "create.policy.type": "algo",
    "create.reward_model.type": "reward_model.type",
}

#: DI-engine keys without a demokit meaning (components, paths, logging): dropped with a warning
IGNORED = frozenset({
    "main.exp_name", "main.seed", "main.env.evaluator_env_num", "main.env.manager", "main.env.type",
    "main.env.import_names", "main.policy.load_path", "main.policy.model.obs_shape", "main.policy.model.action_shape",
    "main.policy.eval.evaluator.eval_freq", "main.reward_model.expert_model_path",
    "main.reward_model.reward_model_path",
    "create.env.type", "create.env.import_names", "create.env_manager.type", "create.env_manager.shared_memory",
    "create.policy.import_names", "create.reward_model.import_names",
})


def _flatten(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, Mapping) and value:
        for k, v in value.items():
            _flatten(f"{prefix}.{k}", v, out)
    else:
        out[prefix] = value


def irl_keys_from_ding(main_config: Mapping[str, Any],
                       create_config: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The IRLConfig keys of DI-engine's config pair (see the module docstring)."""
    if not isinstance(main_config, Mapping) or not (create_config is None or isinstance(create_config, Mapping)):
        raise ConfigError("a DI-engine config is a (main_config, create_config) pair of mappings")
    main = dict(main_config)
    reward_model = dict(main.pop("reward_model", None) or {})
    flat: dict[str, Any] = {}
    for section, config in (("main", main), ("create", dict(create_config or {}))):
        for key, value in config.items():
            _flatten(f"{section}.{key}", value, flat)
    known = sorted(set(MAPPED) | IGNORED)
    unknown = [k for k in flat if k not in MAPPED and k not in IGNORED]
    if unknown:
        close = difflib.get_close_matches(unknown[0], known, n=1)
        hint = f" (did you mean {close[0].split('.', 1)[1]!r}?)" if close else ""
        raise ConfigError(f"DI-engine config key {unknown[0].split('.', 1)[1]!r} ({unknown[0].split('.')[0]}_config) "
                          f"has no demokit meaning{hint}; demokit maps: "
                          f"{', '.join(k.split('.', 1)[1] for k in MAPPED)}")
    dropped = sorted(k for k in flat if k in IGNORED)
    for key in ("expert_model_path", "reward_model_path"):
        if key in reward_model:
            reward_model.pop(key)
            dropped.append(f"main.reward_model.{key}")
    if dropped:
        warnings.warn(f"DI-engine config keys without a demokit meaning were ignored: "
                      f"{', '.join(k.split('.', 1)[1] for k in dropped)}", stacklevel=3)
    top: dict[str, Any] = {}
    rl: dict[str, Any] = {}
    for path, value in flat.items():
        target = MAPPED.get(path)
        if target is None:
            continue
        if target == "device":
            value = "cuda" if value else "cpu"
        if target.startswith("rl."):
            rl[target[3:]] = value
        elif target == "reward_model.type":
            if reward_model.get("type", value) != value:
                raise ConfigError(f"main_config reward_model.type {reward_model['type']!r} and create_config's "
                                  f"{value!r} differ")
            reward_model["type"] = value
        else:
            top[target] = value
    return {**top, "reward_model": reward_model or None, "rl": rl or None}
