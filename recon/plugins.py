"""What the method and prior registries share: references to objects as "module:name", imported on first use, and
the objects third-party packages register through an entry-point group. Torch-free."""

from __future__ import annotations

import importlib
from collections.abc import Container, Iterator
from importlib.metadata import entry_points
from typing import Any

from recon.errors import UserError


class Registry(dict):
    """Name -> declaration, refusing a name registered twice."""

    def __init__(self, kind: str):
        super().__init__()
        self.kind = kind

    def add(self, name: str, value: Any) -> Any:
        if name in self:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self[name] = value
        return value

    def require(self, name: str, key: str, fix: str) -> Any:
        """The declaration registered as ``name``; UserError (about ``key``, with ``fix``) when there is none."""
        if name not in self:
            raise UserError(f"unknown {self.kind} {name!r}", key=key, fix=fix)
        return self[name]


def load_reference(reference: str | Any) -> Any:
    """The object a "module:name" reference names (imported now); any other value as it is."""
    if not isinstance(reference, str):
        return reference
    module, _, name = reference.partition(":")
    return getattr(importlib.import_module(module), name)


def entry_point_objects(group: str, known: Container[str]) -> Iterator[Any]:
    """The objects of entry-point ``group`` whose names are not already ``known`` (loading each imports its
    package)."""
    for entry in entry_points(group=group):
        if entry.name not in known:
            yield entry.load()
