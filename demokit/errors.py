"""Exception types.

Two families, because the CLI treats them differently:

* :class:`UserError` (and subclasses): the user gave something wrong (a path, a file,
  an option, an env that does not match). The message names the bad value and the fix.
  The CLI prints it as one ``error:`` line on stderr and exits with status 2.
* Anything else is an internal failure: exit status 1.
"""

from __future__ import annotations

import re


class DemokitError(Exception):
    """Base class of every error demokit raises on purpose."""


class UserError(DemokitError, ValueError):
    """A user mistake: bad path, bad file, bad option, mismatched env."""


class ConfigError(UserError):
    """An unknown config key or a value of the wrong type/range."""


class DatasetError(UserError):
    """A file that is missing, not HDF5, not a demokit dataset, or inconsistent."""


class CheckpointError(UserError):
    """A checkpoint that is missing, truncated, foreign or unsafe."""


class SpaceMismatchError(UserError):
    """Observation/action spaces of two things (dataset, env, policy) differ."""


class DatasetLockedError(UserError):
    """Another process is writing the same dataset."""


def whole_sentences(text: str, limit: int = 300) -> str:
    """``text`` on one line, cut to at most ``limit`` characters at a sentence end (never
    mid-sentence; a first sentence longer than the limit ends in "...")."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = max(text.rfind(". ", 0, limit), text.rfind("; ", 0, limit))
    if cut > 0:
        return text[:cut + 1]
    space = text.rfind(" ", 0, limit - 3)
    return text[:space if space > 0 else limit - 3] + "..."


def torch_load_refusal(exc: BaseException) -> str:
    """Why ``torch.load(weights_only=True)`` refused a file, short and whole: the global it
    names ("it refers to posix.system"), else torch's first sentences."""
    text = " ".join(str(exc).split())
    named = re.search(r"GLOBAL ([\w.]+)", text)
    if named:
        return f"it refers to {named.group(1)}, which a weights-only load does not run"
    body = text.split(" Check the documentation")[0]
    body = body.split(" WeightsUnpickler error: ", 1)[-1]
    return whole_sentences(body) if body else type(exc).__name__
