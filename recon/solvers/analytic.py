"""Direct methods: the adjoint A^T y (zero-filled for MRI) and filtered back-projection for CT."""

from __future__ import annotations

from recon.errors import UserError
from recon.methods import Result, RunContext, method
from recon.params import Param
from recon.physics import FBP_FILTERS
from recon.problem import Problem

ALL_SPECS = ("ct-parallel/1", "mri-cartesian/1", "ct-dynamic/1", "mri-dynamic/1", "sparse-linear/1",
             "mimo-nearfield/1")


@method("adjoint", family="classical", specs=ALL_SPECS, slice_separable=True)
def adjoint(problem: Problem, params: dict, ctx: RunContext) -> Result:
    """The adjoint A^T y: back-projection for CT, coil-combined zero-filled image for MRI."""
    return Result(problem.physics.A_adjoint(problem.y))


@method("fbp", family="classical", specs=("ct-parallel/1", "ct-dynamic/1"),
        params=(Param("filter", str, "ramp", "filter applied along the detector", choices=FBP_FILTERS),
                Param("static", bool, False, "ct-dynamic: one FBP of the views of all frames pooled, repeated over "
                                             "the frames (a baseline that ignores the motion)")),
        slice_separable=lambda params: not params["static"])
def fbp(problem: Problem, params: dict, ctx: RunContext) -> Result:
    """Filtered back-projection (ramp, Shepp-Logan or Hann filter); frame by frame for dynamic CT."""
    if params["static"] and problem.spec != "ct-dynamic/1":
        raise UserError(f"static pools the frames of a ct-dynamic/1 file; this is {problem.spec}",
                        key="--set static", fix="leave out static=true")
    pooled = {"static": True} if params["static"] else {}
    return Result(problem.physics.fbp(problem.y, filter=params["filter"], **pooled))
