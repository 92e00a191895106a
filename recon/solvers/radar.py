"""Direct radar imaging for ``mimo-nearfield/1``: back-projection (the matched filter) and Kirchhoff migration.

Both are one pass of :meth:`recon.physics.mimo.NearFieldMIMO.migrate`, chunked over voxels like the operator.
"""

from __future__ import annotations

from recon.methods import Result, RunContext, method
from recon.problem import Problem

RADAR = ("mimo-nearfield/1",)


@method("backprojection", family="radar", specs=RADAR)
def backprojection(problem: Problem, params: dict, ctx: RunContext) -> Result:
    """Back-projection: the matched filter sum_{f,t,r} y exp(+j k_f (R_t + R_r)) at every voxel."""
    with ctx.progress("backprojection", 1) as step:
        x = problem.physics.migrate(problem.y, "matched")
        step()
    return Result(x)


@method("kirchhoff", family="radar", specs=RADAR)
def kirchhoff(problem: Problem, params: dict, ctx: RunContext) -> Result:
    """Kirchhoff migration: the matched filter with spreading undone, obliquity cos theta and the ramp k_f."""
    with ctx.progress("kirchhoff", 1) as step:
        x = problem.physics.migrate(problem.y, "kirchhoff")
        step()
    return Result(x)
