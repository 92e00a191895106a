"""Direct methods: the adjoint A^T y (zero-filled for MRI) and filtered back-projection for CT."""

from __future__ import annotations

from recon.methods import Result, RunContext, method
from recon.params import Param
from recon.physics import FBP_FILTERS
from recon.problem import Problem

ALL_SPECS = ("ct-parallel/1", "mri-cartesian/1", "sparse-linear/1", "mimo-nearfield/1")


@method("adjoint", family="classical", specs=ALL_SPECS, slice_separable=True)
def adjoint(problem: Problem, params: dict, ctx: RunContext) -> Result:
    """The adjoint A^T y: back-projection for CT, coil-combined zero-filled image for MRI."""
    return Result(problem.physics.A_adjoint(problem.y))


@method("fbp", family="classical", specs=("ct-parallel/1",),
        params=(Param("filter", str, "ramp", "filter applied along the detector", choices=FBP_FILTERS),),
        slice_separable=True)
def fbp(problem: Problem, params: dict, ctx: RunContext) -> Result:
    """Filtered back-projection (ramp, Shepp-Logan or Hann filter)."""
    return Result(problem.physics.fbp(problem.y, filter=params["filter"]))
