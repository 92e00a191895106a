"""Errors the CLI reports as one line: a user's (exit 2, :class:`UserError`) and a computation's that produced
unusable numbers (exit 1, :class:`ComputationFailed`). Warnings for what may make an output wrong without stopping
the run (:func:`warn`): the CLI prints each as one line too."""

from __future__ import annotations

import warnings
from pathlib import Path


def _message(what: str, path: str | Path | None, key: str | None, fix: str | None) -> str:
    parts = [str(p) for p in (path, key) if p is not None]
    message = ": ".join([*parts, what])
    return message + (f"; fix: {fix}" if fix else "")


class UserError(Exception):
    """A problem in the user's input (file, key, option), reported as one line.

    The message reads ``FILE: KEY: what is wrong; fix: what to do`` with the parts that apply.
    """

    def __init__(self, what: str, *, path: str | Path | None = None, key: str | None = None,
                 fix: str | None = None):
        self.what, self.path, self.key, self.fix = what, path, key, fix
        super().__init__(_message(what, path, key, fix))


class ComputationFailed(Exception):
    """A run that finished but produced unusable numbers (NaN/Inf): the CLI prints one line and exits 1, and
    nothing is written. The message names the method and the likely cause (a parameter, the input's scale)."""


class ReconWarning(UserWarning):
    """Something in the input that may make the output wrong but need not: the run goes on, the CLI prints one
    line ``warning: FILE: KEY: what; fix: ...`` and the output's provenance keeps it."""


def warn(what: str, *, path: str | Path | None = None, key: str | None = None, fix: str | None = None) -> None:
    """Issue a :class:`ReconWarning` worded like a :class:`UserError`."""
    warnings.warn(ReconWarning(_message(what, path, key, fix)), stacklevel=2)
