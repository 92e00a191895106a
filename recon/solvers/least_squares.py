"""CGLS: conjugate gradients on the normal equations A^T A x = A^T y, stopped early to regularise."""

from __future__ import annotations

import torch

from recon.methods import Result, RunContext, method
from recon.params import Param
from recon.problem import Problem, per_sample_dot


def cgls(physics, y: torch.Tensor, x0: torch.Tensor, iterations: int, step=None) -> tuple[torch.Tensor, list]:
    """CGLS from x0 for ``iterations`` steps, with step sizes per batch element (slices independent).

    Written here rather than calling ``deepinv.optim.utils.conjugate_gradient`` because it reports each
    iteration (progress and the residual history) and updates the residual y - Ax without re-applying A.
    Returns x and the relative residual ||y - A x|| / ||y|| per iteration (mean over the batch).
    """
    tiny = torch.finfo(y.dtype).tiny
    x = x0.clone()
    r = y - physics.A(x)
    s = physics.A_adjoint(r)
    p = s.clone()
    gamma = per_sample_dot(s, s)
    y_norm = torch.sqrt(per_sample_dot(y, y)).clamp_min(tiny)
    history = []
    for _ in range(iterations):
        q = physics.A(p)
        alpha = gamma / per_sample_dot(q, q).clamp_min(tiny)
        x = x + _expand(alpha, x) * p
        r = r - _expand(alpha, r) * q
        s = physics.A_adjoint(r)
        gamma_new = per_sample_dot(s, s)
        p = s + _expand(gamma_new / gamma.clamp_min(tiny), s) * p
        gamma = gamma_new
        relative = float((torch.sqrt(per_sample_dot(r, r)) / y_norm).mean())
        history.append(relative)
        if step is not None:
            step(residual=relative)
    return x, history


def _expand(scalars: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Per-sample scalars (B,) reshaped to (B, 1, ..., 1) to broadcast against ``like``."""
    return scalars.reshape(-1, *([1] * (like.dim() - 1)))


@method("cgls", family="classical", specs=("ct-parallel/1", "mri-cartesian/1", "ct-dynamic/1", "mri-dynamic/1",
                                           "sparse-linear/1"),
        params=(Param("iterations", int, 20, "CG iterations (fewer regularise more)", low=1, high=10000),),
        slice_separable=True)
def cgls_method(problem: Problem, params: dict, ctx: RunContext) -> Result:
    """Least squares by conjugate gradients on the normal equations, from zero, stopped early."""
    with ctx.progress("cgls", params["iterations"]) as step:
        x, history = cgls(problem.physics, problem.y, problem.zeros(), params["iterations"], step)
    return Result(x, {"relative_residual": history})
