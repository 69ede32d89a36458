"""The dataset doctor: find what would silently spoil training on a demokit dataset.

``diagnose(path) -> DoctorReport`` runs every check; each :class:`Finding` names the
check, says what is wrong, lists the episodes it concerns and suggests a fix.
``diagnose(path, cheap=True)`` runs only the checks that read the episode index, the
flags and the float arrays once (no env is made, no episode is hashed): what
``collect`` / ``convert`` can afford on what they write.

Checks (``Finding.check``):

* ``unreadable``: the file fails the loader's validation (e.g. the episode index does
  not add up: a length < 1, starts not contiguous, lengths not summing to N).
* ``episode_index``: the index disagrees with the per-step data: ``episodes/return``
  != the sum of the episode's rewards, ``episodes/terminated`` / ``truncated`` != the
  flags of its last step, a flag set before an episode's last step.
* ``empty``: the dataset holds no episode.
* ``non_finite``: NaN or inf in observations, final observations, actions, rewards or extras.
* ``out_of_space``: observations (or final observations) / actions outside their space
  (Box bounds, Discrete / MultiDiscrete ranges, MultiBinary 0/1).
* ``time_limit_terminated``: an episode of exactly the env's ``max_episode_steps`` that
  is marked terminated and not truncated (a time-limit end recorded as a termination:
  learners would not bootstrap it).
* ``unmarked_end``: an episode whose last step has neither flag (cut without being marked).
* ``duplicate_episodes``: episodes with identical observations, actions and rewards.
* ``env``: the dataset names no env, the env is not installed, its installed spec differs
  from the recorded one (entry point, time limit, threshold, kwargs), or its spaces differ.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from gymnasium import spaces

from demokit.data.dataset import DemoDataset, load_dataset
from demokit.errors import DatasetError, UserError

#: episodes listed in a finding's message (all of them are in ``Finding.episodes``)
SHOWN_EPISODES = 10


@dataclass(frozen=True)
class Finding:
    """One problem: ``check`` (see the module docstring), ``severity`` (``error``: training on the data is
    wrong; ``warning``: suspicious), ``message``, ``episodes`` (indices concerned, sorted; empty when the
    whole file is concerned) and ``fix`` (what to do)."""

    check: str
    severity: str
    message: str
    fix: str
    episodes: tuple[int, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"check": self.check, "severity": self.severity, "message": self.message,
                "episodes": list(self.episodes), "fix": self.fix}


@dataclass(frozen=True)
class DoctorReport:
    """The findings of :func:`diagnose` on ``path`` (``ok``: none)."""

    path: str
    episodes: int
    steps: int
    env_id: str | None
    findings: tuple[Finding, ...] = field(default_factory=tuple)
    checks: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.findings

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "ok": self.ok, "episodes": self.episodes, "steps": self.steps,
                "env_id": self.env_id, "checks": list(self.checks),
                "findings": [f.to_dict() for f in self.findings]}


def episode_list(episodes: Any) -> str:
    """``3, 7, 12`` or ``3, 7, ... (+40 more)``."""
    eps = list(episodes)
    shown = ", ".join(str(e) for e in eps[:SHOWN_EPISODES])
    return shown + (f", ... (+{len(eps) - SHOWN_EPISODES} more)" if len(eps) > SHOWN_EPISODES else "")


def diagnose(path: str | os.PathLike[str], *, cheap: bool = False) -> DoctorReport:
    """Run the checks on a demokit dataset (a missing path or a file that is not a demokit
    dataset at all is a :class:`UserError`; an inconsistent one is a finding)."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"{p}: no such dataset file" if not p.exists() else f"{p} is a directory, not a .h5 dataset")
    try:
        ds = load_dataset(p)
    except DatasetError as exc:
        text = str(exc)
        if "not a demokit dataset" in text or "not an HDF5 file" in text or "upgrade demokit" in text:
            raise
        finding = Finding("unreadable", "error", text, "the file is damaged: restore it from a copy, or re-collect / "
                          "re-convert it (demokit collect / demokit convert)")
        return DoctorReport(str(p), 0, 0, None, (finding,), ("unreadable",))
    checks = [_index, _empty, _non_finite, _out_of_space, _time_limit, _unmarked]
    if not cheap:
        checks += [_duplicates, _env]
    findings: list[Finding] = []
    for check in checks:
        findings.extend(check(ds))
    return DoctorReport(str(p), ds.num_episodes, len(ds), ds.env_id, tuple(findings),
                        tuple(c.__name__.lstrip("_") for c in checks))


def cheap_warnings(path: str | os.PathLike[str]) -> list[str]:
    """One line per finding of the cheap checks on a file a command just wrote (``collect``,
    ``convert``): what the CLI prints as ``warning:`` lines."""
    report = diagnose(path, cheap=True)
    return [f"doctor: {f.severity} [{f.check}] {f.message}; fix: {f.fix}" for f in report.findings]


# ---------------------------------------------------------------------------------------
# helpers


def _episode_of_rows(ds: DemoDataset) -> np.ndarray:
    return np.repeat(np.arange(ds.num_episodes, dtype=np.int64), ds.episode_lengths)


def _leaves(space: spaces.Space, batch: Any, name: str) -> Iterator[tuple[str, spaces.Space, np.ndarray]]:
    """(name, leaf space, leaf array) of a possibly nested batch."""
    if isinstance(space, spaces.Dict):
        for key, sub in space.spaces.items():
            yield from _leaves(sub, batch[key], f"{name}.{key}")
    elif isinstance(space, spaces.Tuple):
        for i, sub in enumerate(space.spaces):
            yield from _leaves(sub, batch[i], f"{name}.{i}")
    else:
        yield name, space, np.asarray(batch)


def _bad_rows(arr: np.ndarray, bad: np.ndarray) -> np.ndarray:
    """Rows of ``arr`` where the elementwise mask ``bad`` is set anywhere."""
    return bad.reshape(len(arr), -1).any(axis=1) if arr.ndim > 1 else bad


def _per_step_fields(ds: DemoDataset) -> Iterator[tuple[str, spaces.Space | None, np.ndarray, bool]]:
    """(name, space or None, array, per-episode rows?) of every stored field."""
    for name, space, arr in _leaves(ds.observation_space, ds.observations, "observations"):
        yield name, space, arr, False
    for name, space, arr in _leaves(ds.observation_space, ds.final_observations, "final_observations"):
        yield name, space, arr, True
    for name, space, arr in _leaves(ds.action_space, ds.actions, "actions"):
        yield name, space, arr, False
    if ds.has_rewards:
        yield "rewards", None, ds.rewards, False
    for key, arr in ds.extras.items():
        yield f"extras/{key}", None, arr, False


# ---------------------------------------------------------------------------------------
# checks


def _index(ds: DemoDataset) -> list[Finding]:
    out: list[Finding] = []
    if not ds.num_episodes:
        return out
    starts, ends = ds.episode_starts, ds.episode_ends
    if ds.has_rewards:
        sums = np.add.reduceat(ds.rewards, starts) if len(ds) else np.zeros(0)
        wrong = np.flatnonzero(~np.isclose(sums, ds.episode_returns, rtol=1e-9, atol=1e-6)
                               & ~(np.isnan(sums) & np.isnan(ds.episode_returns)))
    else:  # a reward-free dataset has no returns to check
        wrong = np.zeros(0, dtype=np.int64)
    if len(wrong):
        out.append(Finding("episode_index", "error",
                           f"episodes/return differs from the sum of the rewards in {len(wrong)} episode(s): "
                           f"{episode_list(wrong)}", "the index is stale: rewrite the file (demokit filter DATASET "
                           "--out NEW.h5 recomputes the index from the per-step data)", tuple(wrong.tolist())))
    for flag, per_ep in (("terminated", ds.episode_terminated), ("truncated", ds.episode_truncated)):
        steps = getattr(ds, flag)
        wrong = np.flatnonzero(steps[ends] != per_ep)
        if len(wrong):
            out.append(Finding("episode_index", "error",
                               f"episodes/{flag} differs from the {flag} flag of the last step in {len(wrong)} "
                               f"episode(s): {episode_list(wrong)}", "rewrite the file (demokit filter DATASET --out "
                               "NEW.h5 rebuilds the index from the per-step flags)", tuple(wrong.tolist())))
        inner = steps.copy()
        inner[ends] = False
        if inner.any():
            eps = np.unique(_episode_of_rows(ds)[inner])
            out.append(Finding("episode_index", "error",
                               f"{flag} is set before the last step of {len(eps)} episode(s): {episode_list(eps)}",
                               "the episode boundaries are wrong: re-convert the source so that episodes end where "
                               "the flags are", tuple(eps.tolist())))
    return out


def _empty(ds: DemoDataset) -> list[Finding]:
    if ds.num_episodes:
        return []
    return [Finding("empty", "error", "the dataset holds no episode", "collect episodes into it (demokit collect "
                    "--append) or use another dataset")]


def _non_finite(ds: DemoDataset) -> list[Finding]:
    out: list[Finding] = []
    row_episode = _episode_of_rows(ds)
    for name, _, arr, per_episode in _per_step_fields(ds):
        if arr.dtype.kind != "f" or not arr.size:
            continue
        rows = _bad_rows(arr, ~np.isfinite(arr))
        if not rows.any():
            continue
        eps = np.flatnonzero(rows) if per_episode else np.unique(row_episode[rows])
        kinds = " and ".join(k for k, m in (("NaN", np.isnan(arr).any()), ("inf", np.isinf(arr).any())) if m)
        out.append(Finding("non_finite", "error",
                           f"{name} holds {kinds} in {int(rows.sum())} row(s) of {len(eps)} episode(s): "
                           f"{episode_list(eps)}", "drop those episodes (demokit filter DATASET --out NEW.h5 "
                           f"--episodes <the others>) or fix the source that produced them", tuple(eps.tolist())))
    return out


def _outside(space: spaces.Space, arr: np.ndarray) -> np.ndarray | None:
    """Per-row mask of rows outside ``space`` (None: not checkable)."""
    if not len(arr):
        return None
    if isinstance(space, spaces.Box):
        with np.errstate(invalid="ignore"):
            bad = (arr < space.low) | (arr > space.high)
        return _bad_rows(arr, bad)
    if isinstance(space, spaces.Discrete):
        return (arr < space.start) | (arr >= space.start + space.n)
    if isinstance(space, spaces.MultiDiscrete):
        return _bad_rows(arr, (arr < space.start) | (arr >= space.start + space.nvec))
    if isinstance(space, spaces.MultiBinary):
        return _bad_rows(arr, (arr != 0) & (arr != 1))
    return None


def _out_of_space(ds: DemoDataset) -> list[Finding]:
    out: list[Finding] = []
    row_episode = _episode_of_rows(ds)
    for name, space, arr, per_episode in _per_step_fields(ds):
        if space is None:
            continue
        rows = _outside(space, arr)
        if rows is None or not rows.any():
            continue
        eps = np.flatnonzero(rows) if per_episode else np.unique(row_episode[rows])
        finite = arr[rows][np.isfinite(arr[rows])] if arr.dtype.kind == "f" else arr[rows]
        span = f" (values from {finite.min():g} to {finite.max():g})" if finite.size else ""
        role = "actions" if name.startswith("actions") else "observations"
        fix = ("clip the actions to the space before training, or check the policy that produced them (an env "
               "clips them silently, a learner does not)" if role == "actions" else
               "the data does not come from this env as declared: check the env id and version (demokit convert "
               "--env) or drop those episodes (demokit filter --episodes)")
        out.append(Finding("out_of_space", "warning" if role == "actions" else "error",
                           f"{name}: {int(rows.sum())} row(s) of {len(eps)} episode(s) lie outside "
                           f"{_describe(space)}{span}: episodes {episode_list(eps)}", fix, tuple(eps.tolist())))
    return out


def _describe(space: spaces.Space) -> str:
    from demokit.spaces import describe

    return describe(space)


def _max_episode_steps(ds: DemoDataset) -> int | None:
    spec = ds.env_spec or {}
    limit = spec.get("max_episode_steps") if isinstance(spec, dict) else None
    if limit is None and ds.env_id:
        import gymnasium as gym

        if ds.env_id in gym.registry:
            limit = gym.spec(ds.env_id).max_episode_steps
    return int(limit) if isinstance(limit, (int, float)) and limit > 0 else None


def _time_limit(ds: DemoDataset) -> list[Finding]:
    limit = _max_episode_steps(ds)
    if limit is None or not ds.num_episodes:
        return []
    eps = np.flatnonzero((ds.episode_lengths == limit) & ds.episode_terminated & ~ds.episode_truncated)
    if not len(eps):
        return []
    return [Finding("time_limit_terminated", "error",
                    f"{len(eps)} episode(s) of exactly {limit} steps (the time limit of {ds.env_id or 'the env'}) "
                    f"are marked terminated, not truncated: {episode_list(eps)}; learners will not bootstrap "
                    f"their last step",
                    "mark time-limit ends truncated: re-collect with demokit collect, or re-convert the source with "
                    "--env (DI-engine data); otherwise drop them with demokit filter --episodes", tuple(eps.tolist()))]


def _unmarked(ds: DemoDataset) -> list[Finding]:
    eps = np.flatnonzero(~ds.episode_terminated & ~ds.episode_truncated)
    if not len(eps):
        return []
    return [Finding("unmarked_end", "warning",
                    f"{len(eps)} episode(s) end with neither terminated nor truncated set: {episode_list(eps)}",
                    "if they were cut by a budget or a time limit they should be truncated; re-collect them, or "
                    "drop them with demokit filter --episodes", tuple(eps.tolist()))]


def _episode_digest(ds: DemoDataset, start: int, stop: int) -> bytes:
    h = hashlib.blake2b(digest_size=16)
    for _, _, arr in _leaves(ds.observation_space, ds.observations, "o"):
        h.update(np.ascontiguousarray(arr[start:stop]).tobytes())
    for _, _, arr in _leaves(ds.action_space, ds.actions, "a"):
        h.update(np.ascontiguousarray(arr[start:stop]).tobytes())
    if ds.has_rewards:
        h.update(np.ascontiguousarray(ds.rewards[start:stop]).tobytes())
    return h.digest()


def _duplicates(ds: DemoDataset) -> list[Finding]:
    """Episodes with equal length and return are candidates; only those are hashed in full."""
    if ds.num_episodes < 2:
        return []
    returns = ds.episode_returns if ds.has_rewards else np.zeros(ds.num_episodes)
    key = np.stack([ds.episode_lengths.astype(np.float64), returns]).T
    _, inverse, counts = np.unique(key, axis=0, return_inverse=True, return_counts=True)
    inverse = inverse.reshape(-1)
    candidates = np.flatnonzero(counts[inverse] > 1)
    groups: dict[bytes, list[int]] = {}
    starts, lengths = ds.episode_starts, ds.episode_lengths
    for e in candidates.tolist():
        digest = _episode_digest(ds, int(starts[e]), int(starts[e] + lengths[e]))
        groups.setdefault(digest, []).append(e)
    dup_groups = [g for g in groups.values() if len(g) > 1]
    if not dup_groups:
        return []
    extra = sorted(e for g in dup_groups for e in g[1:])
    shown = "; ".join(" = ".join(str(e) for e in g) for g in dup_groups[:SHOWN_EPISODES])
    return [Finding("duplicate_episodes", "warning",
                    f"{len(extra)} episode(s) repeat an earlier one exactly (observations, actions, rewards): {shown}"
                    f"{' ...' if len(dup_groups) > SHOWN_EPISODES else ''}",
                    "drop the repeats (demokit filter DATASET --out NEW.h5 --episodes <the others>); repeated "
                    "episodes usually come from appending the same collection twice or from reused reset seeds",
                    tuple(extra))]


#: spec fields compared between the recorded and the installed env spec
SPEC_FIELDS = ("entry_point", "max_episode_steps", "reward_threshold", "kwargs", "nondeterministic",
               "order_enforce", "disable_env_checker")


def _env(ds: DemoDataset) -> list[Finding]:
    import gymnasium as gym

    if not ds.env_id:
        return [Finding("env", "warning", "the dataset names no env, so its spaces and time limit cannot be checked "
                        "against one", "convert it again naming the env: demokit convert DATASET NEW.h5 --env ENV")]
    if ds.env_id not in gym.registry:
        return [Finding("env", "warning", f"env {ds.env_id!r} is not installed here, so the dataset cannot be checked "
                        f"against it (commands that need a live env will refuse it)",
                        "install the package that registers it (e.g. pip install 'gymnasium[box2d]') or ignore this "
                        "for offline use")]
    out: list[Finding] = []
    recorded = ds.env_spec if isinstance(ds.env_spec, dict) else None
    if recorded:
        installed = json.loads(gym.spec(ds.env_id).to_json())
        diffs = [f"{k}: recorded {recorded.get(k)!r}, installed {installed.get(k)!r}" for k in SPEC_FIELDS
                 if k in recorded and k in installed and recorded.get(k) != installed.get(k)]
        if diffs:
            out.append(Finding("env", "warning",
                               f"the installed {ds.env_id} differs from the one the data was recorded with: "
                               f"{'; '.join(diffs)}", "evaluate with the recorded settings (gym.make(EnvSpec.from_json"
                               "(...)) from the dataset's env_spec attribute) or install the recorded version"))
    try:
        ds.check_env(ds.env_id)
    except UserError as exc:
        out.append(Finding("env", "error", str(exc), "the data does not fit the installed env: convert it with the "
                           "right --env or install the env version it was recorded with"))
    return out
