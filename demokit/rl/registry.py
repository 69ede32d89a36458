"""The learner registry: ONE place where a learner's name meets its config, trainer and abilities.

Every list of learners in demokit reads from here: the tuned table
(:mod:`demokit.rl.hyperparams`), ``train_expert`` / ``demokit train-expert --algo``,
``collect --policy NAME``, the inverse-RL pipelines and every CLI choice list. Adding a
learner is one module, one call and its tuned rows::

    from demokit.rl.registry import register_learner
    register_learner("toy", config=ToyConfig, trainer=ToyTrainer, off_policy=False,
                     action_spaces=(spaces.Discrete,), summary="a toy learner")

The built-in learners (ppo, dqn) are registered by ``demokit/rl/__init__.py``, so
this module imports none of them (no import circle).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from gymnasium import spaces

from demokit.config import from_mapping
from demokit.errors import ConfigError, UserError


@dataclass(frozen=True)
class LearnerSpec:
    """What demokit knows about a learner.

    name:             registry name (``--algo NAME``, ``experts/<env>-<name>.pt``).
    config:           its frozen config dataclass (a ``LoopConfig`` subclass: env_id, total_timesteps,
                      num_envs, gamma, eval_every, seed, device, ...).
    trainer:          its trainer class, ``trainer(config, *, progress=None, tb_writer=None,
                      reward_model=None)``, a ``BaseTrainer`` subclass.
    off_policy:       True: learns from replay minibatches (the off-policy IRL pipeline relabels each);
                      False: learns from each fresh rollout (the on-policy pipeline).
    action_spaces:    the gymnasium action-space classes it can act in.
    provides:         what it gives a reward model beyond the required fields: "log_probs" when its
                      transition batches carry the acting policy's log-probabilities; "policy_log_probs"
                      when its trainer's ``policy_log_probs(obs, env_actions)`` gives log pi(a|s) of the
                      policy it acts with now (for data without them: replay minibatches, expert data).
    budget_fractions: config fields that are fractions of ``total_timesteps`` (e.g. DQN's
                      exploration_fraction): the IRL pipelines rescale them when they change the budget,
                      so the schedule spans the same number of env steps.
    space_check:      optional ``check(env_id, action_space)`` raising a UserError for spaces of a supported
                      class that the learner still cannot use (e.g. SAC: unbounded Box actions).
    summary:          one line for help texts.
    """

    name: str
    config: type
    trainer: type
    off_policy: bool
    action_spaces: tuple[type[spaces.Space], ...]
    provides: frozenset[str] = frozenset()
    budget_fractions: tuple[str, ...] = ()
    space_check: Callable[[str, spaces.Space], None] | None = None
    summary: str = ""

    def supports(self, action_space: spaces.Space) -> bool:
        """Whether the learner can act in ``action_space``."""
        if not isinstance(action_space, self.action_spaces):
            return False
        if self.space_check is not None:
            try:
                self.space_check("", action_space)
            except UserError:
                return False
        return True

    @property
    def kind(self) -> str:
        return "off-policy" if self.off_policy else "on-policy"

    def describe(self) -> str:
        """``"ppo (on-policy; Discrete, Box actions)"``."""
        acts = ", ".join(cls.__name__ for cls in self.action_spaces)
        return f"{self.name} ({self.kind}; {acts} actions)"


_LEARNERS: dict[str, LearnerSpec] = {}

#: what a learner's transition batches may carry beyond the required fields
PROVIDABLE = frozenset({"log_probs", "policy_log_probs"})


def register_learner(name: str, *, config: type, trainer: type, off_policy: bool,
                     action_spaces: tuple[type[spaces.Space], ...], provides: frozenset[str] | tuple[str, ...] = (),
                     budget_fractions: tuple[str, ...] = (),
                     space_check: Callable[[str, spaces.Space], None] | None = None, summary: str = "") -> LearnerSpec:
    """Register a learner under ``name`` (one call per learner); returns its :class:`LearnerSpec`.

    Registering the same name again with the same classes is a no-op (module reloads);
    with other classes it is a ValueError.
    """
    if not isinstance(name, str) or not name or not name.replace("_", "").replace("-", "").isalnum():
        raise ValueError(f"a learner needs a name of letters, digits, '-' or '_', got {name!r}")
    if not isinstance(config, type) or not isinstance(trainer, type):
        raise TypeError(f"register_learner({name!r}): config and trainer must be classes")
    if not action_spaces or not all(isinstance(c, type) and issubclass(c, spaces.Space) for c in action_spaces):
        raise TypeError(f"register_learner({name!r}): action_spaces must be gymnasium Space classes, "
                        f"got {action_spaces!r}")
    extra = set(provides) - PROVIDABLE
    if extra:
        raise ValueError(f"register_learner({name!r}): provides may hold {sorted(PROVIDABLE)}, not {sorted(extra)}")
    spec = LearnerSpec(name=name, config=config, trainer=trainer, off_policy=bool(off_policy),
                       action_spaces=tuple(action_spaces), provides=frozenset(provides),
                       budget_fractions=tuple(budget_fractions), space_check=space_check, summary=summary)
    known = _LEARNERS.get(name)
    if known is not None and (known.config is not config or known.trainer is not trainer):
        raise ValueError(f"learner {name!r} is already registered to {known.trainer.__module__}."
                         f"{known.trainer.__qualname__}")
    _LEARNERS[name] = spec
    return spec


def learner_names(*, off_policy: bool | None = None) -> tuple[str, ...]:
    """Registered learner names in registration order (``off_policy`` filters by kind)."""
    return tuple(n for n, s in _LEARNERS.items() if off_policy is None or s.off_policy == off_policy)


def get_learner(name: str) -> LearnerSpec:
    """The spec of ``name``; a UserError (ConfigError) listing the registered learners otherwise."""
    spec = _LEARNERS.get(name)
    if spec is None:
        raise ConfigError(f"unknown learner {name!r}; registered learners: {', '.join(learner_names())}")
    return spec


def learner_of_config(config: Any) -> LearnerSpec | None:
    """The spec whose config class ``config`` is an instance of (None when none is)."""
    for spec in _LEARNERS.values():
        if type(config) is spec.config:
            return spec
    return None


def check_action_space(name: str, action_space: spaces.Space, env_id: str = "") -> LearnerSpec:
    """The spec of ``name`` when it supports ``action_space``; else one UserError naming the learners that fit."""
    spec = get_learner(name)
    if isinstance(action_space, spec.action_spaces) and spec.space_check is not None:
        spec.space_check(env_id, action_space)  # its own message says why (e.g. unbounded actions)
    if spec.supports(action_space):
        return spec
    from demokit.spaces import describe

    fit = [s.name for s in _LEARNERS.values() if s.supports(action_space)]
    where = f"{env_id} has" if env_id else "the action space is"
    hint = f"learners that fit: {', '.join(fit)}" if fit else "no registered learner supports it"
    raise UserError(f"learner {name} supports {', '.join(c.__name__ for c in spec.action_spaces)} actions; "
                    f"{where} {describe(action_space)}: {hint}")


def check_learner_resumable(spec: LearnerSpec) -> None:
    """ConfigError naming the learners that can when ``spec``'s trainer cannot save its training state and
    continue from it (``learn(state_path=...)``, the CLI's ``--state``)."""
    if spec.name not in resumable_learners():
        raise ConfigError(f"a training state to continue from: the {spec.name} learner has none (learners with one: "
                          f"{', '.join(resumable_learners()) or 'none'})")


def resumable_learners() -> tuple[str, ...]:
    """Learners whose trainer can save its training state and continue from it (``save_training_state``)."""
    return tuple(s.name for s in _LEARNERS.values() if hasattr(s.trainer, "save_training_state"))


def learner_help(what: str = "learner") -> str:
    """``"learner: ppo (on-policy; Discrete, Box actions), dqn (...)"`` for CLI help texts."""
    return f"{what}: " + ", ".join(s.describe() for s in _LEARNERS.values())



def check_learner_settings(owner: str, settings: Any, *, owned: Iterable[str], use: str,
                           spec: LearnerSpec | None = None, env_id: str = "unchecked") -> None:
    """``settings`` (a learner's config keys over the tuned table, e.g. ``ExpertConfig.rl``, ``IRLConfig.rl``) must be
    a mapping without the keys ``owned`` (those its owner sets itself; ``use`` says how) and, given the learner's
    ``spec``, valid keys and values of its config class: else one ConfigError naming ``owner``."""
    if not isinstance(settings, Mapping):
        raise ConfigError(f"{owner} must be a mapping of settings, got {type(settings).__name__}")
    taken = sorted(set(settings) & set(owned))
    if taken:
        raise ConfigError(f"{owner} must not set {', '.join(taken)}: {use}")
    if spec is not None and settings:
        from_mapping(spec.config, {"env_id": env_id, **settings})  # unknown keys / bad values fail here
