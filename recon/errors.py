"""Errors a user can cause and fix: the CLI prints them as one line and exits with code 2. Warnings for what
may make an output wrong without stopping the run (:func:`warn`): the CLI prints each as one line too."""

from __future__ import annotations

import sys
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


class ReconWarning(UserWarning):
    """Something in the input that may make the output wrong but need not: the run goes on, the CLI prints one
    line ``warning: FILE: KEY: what; fix: ...`` and the output's provenance keeps it."""


def warn(what: str, *, path: str | Path | None = None, key: str | None = None, fix: str | None = None) -> None:
    """Issue a :class:`ReconWarning` worded like a :class:`UserError`."""
    warnings.warn(ReconWarning(_message(what, path, key, fix)), stacklevel=2)


def print_warnings_as_lines() -> None:
    """Show every :class:`ReconWarning` as one ``warning: ...`` line on stderr (the CLI's format), each time it is
    issued; other warnings keep Python's format."""
    default = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, ReconWarning):
            print(f"warning: {message}", file=sys.stderr if file is None else file, flush=True)
        else:
            default(message, category, filename, lineno, file, line)

    warnings.showwarning = show
    warnings.simplefilter("always", ReconWarning)
