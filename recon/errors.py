"""Errors a user can cause and fix: the CLI prints them as one line and exits with code 2."""

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
