"""Direct radar imaging for ``mimo-nearfield/1``: back-projection (the matched filter) and Kirchhoff migration.

Both are one pass of :meth:`recon.physics.mimo.NearFieldMIMO.migrate`, chunked over voxels like the operator.
"""

from __future__ import annotations

from recon.methods import Result, RunContext
from recon.problem import Problem


def _migrate(problem: Problem, ctx: RunContext, migration: str) -> Result:
    with ctx.progress(migration, 1) as step:
        x = problem.physics.migrate(problem.y, migration)
        step()
    return Result(x)


def backprojection(problem: Problem, params: dict, ctx: RunContext) -> Result:
    """Back-projection: the matched filter sum_{f,t,r} y exp(+j k_f (R_t + R_r)) at every voxel."""
    return _migrate(problem, ctx, "matched")


def kirchhoff(problem: Problem, params: dict, ctx: RunContext) -> Result:
    """Kirchhoff migration: the matched filter with spreading undone, obliquity cos theta and the ramp k_f."""
    return _migrate(problem, ctx, "kirchhoff")
