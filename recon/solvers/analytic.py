"""Direct methods: the adjoint A^T y (zero-filled for MRI) and filtered back-projection for CT."""

from __future__ import annotations

from recon.errors import UserError
from recon.methods import Result, RunContext
from recon.problem import Problem


def adjoint(problem: Problem, params: dict, ctx: RunContext) -> Result:
    """The adjoint A^T y: back-projection for CT, coil-combined zero-filled image for MRI."""
    return Result(problem.physics.A_adjoint(problem.y))


def fbp(problem: Problem, params: dict, ctx: RunContext) -> Result:
    """Filtered back-projection (ramp, Shepp-Logan or Hann filter); frame by frame for dynamic CT."""
    if params["static"] and problem.spec != "ct-dynamic/1":
        raise UserError(f"static pools the frames of a ct-dynamic/1 file; this is {problem.spec}",
                        key="--set static", fix="leave out static=true")
    pooled = {"static": True} if params["static"] else {}
    return Result(problem.physics.fbp(problem.y, filter=params["filter"], **pooled))
