"""Exception types.

Two families, because the CLI treats them differently:

* :class:`UserError` (and subclasses): the user gave something wrong (a path, a file,
  an option, an env that does not match). The message names the bad value and the fix.
  The CLI prints it as one ``error:`` line on stderr and exits with status 2.
* Anything else is an internal failure: exit status 1.
"""

from __future__ import annotations


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
