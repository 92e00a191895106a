"""Errors the CLI reports as one line: a user's (exit 2, :class:`UserError`) and a computation's that produced
unusable numbers (exit 1, :class:`ComputationFailed`)."""

from __future__ import annotations

from pathlib import Path


class UserError(Exception):
    """A problem in the user's input (file, key, option), reported as one line.

    The message reads ``FILE: KEY: what is wrong; fix: what to do`` with the parts that apply.
    """

    def __init__(self, what: str, *, path: str | Path | None = None, key: str | None = None,
                 fix: str | None = None):
        self.what, self.path, self.key, self.fix = what, path, key, fix
        parts = [str(p) for p in (path, key) if p is not None]
        message = ": ".join([*parts, what])
        if fix:
            message += f"; fix: {fix}"
        super().__init__(message)


class ComputationFailed(Exception):
    """A run that finished but produced unusable numbers (NaN/Inf): the CLI prints one line and exits 1, and
    nothing is written. The message names the method and the likely cause (a parameter, the input's scale)."""
