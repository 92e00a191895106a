"""One registry of small operator instances, so that shared tests check every operator the same way.

Each physics module registers a factory ``make(device, dtype) -> (physics, x_shape)`` under a name;
``tests/physics/test_operators.py`` runs the adjoint test, the norm estimate, shapes, device moves and
float64 on every entry.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from deepinv.physics import LinearPhysics

OperatorFactory = Callable[[torch.device, torch.dtype], tuple[LinearPhysics, tuple[int, ...]]]

OPERATOR_EXAMPLES: dict[str, OperatorFactory] = {}


def register_example(name: str) -> Callable[[OperatorFactory], OperatorFactory]:
    """Decorator: register a small instance of an operator for the shared operator tests."""

    def decorate(factory: OperatorFactory) -> OperatorFactory:
        if name in OPERATOR_EXAMPLES:
            raise ValueError(f"operator example {name!r} is registered twice")
        OPERATOR_EXAMPLES[name] = factory
        return factory

    return decorate
