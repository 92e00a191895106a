"""Isotropic total variation by PDHG (Chambolle-Pock), in 2D per slice or 3D across slices.

Solves  min_u  1/(2 L^2) ||A u - y/c||^2 + lam * TV(u)  with L = ||A|| and c a robust scale of the first
estimate (see :func:`recon.solvers.linalg.robust_scale`), then returns c * u. Dividing by L and c makes
``lam`` independent of the operator's size and the data's units, so one default serves CT and MRI.

TV is isotropic: the gradient magnitude sums the squared differences over the spatial axes and over the
channels (real and imaginary parts of MRI images), i.e. vectorial TV for complex images. In 3D the slice
axis is the batch axis of the problem layout (S, C, ny, nx).
"""

from __future__ import annotations

import math

import torch

from recon.methods import Result, RunContext, method
from recon.params import Param
from recon.problem import Problem
from recon.solvers.linalg import operator_sqnorm, robust_scale

_AXES = (3, 2, 0)  # difference axes of (S, C, ny, nx): x, y, then z = the slice axis


def gradient(u: torch.Tensor, dims: int) -> torch.Tensor:
    """Forward differences (Neumann boundary) of u (S, C, ny, nx): (D, S, C, ny, nx), D = dims (2 or 3).

    Written here rather than with deepinv's ``TVDenoiser.nabla``/``nabla_adjoint``: those take z from a 5D
    layout (the slice axis here is the batch axis), put the difference axis last, and measured 2-4x slower
    for the gradient and 4-8x slower for the divergence on (64, 1, 64, 64), (16, 1, 128, 128) and
    (4, 2, 128, 128), one CPU thread. The differences are written into one preallocated tensor (``out=``,
    2-4x faster than stacking per-axis copies), so this is not differentiable; PDHG does not need that.
    """
    g = u.new_zeros((dims, *u.shape))
    for component, axis in zip(g, _AXES[:dims], strict=True):
        n = u.shape[axis]
        if n > 1:
            torch.sub(u.narrow(axis, 1, n - 1), u.narrow(axis, 0, n - 1), out=component.narrow(axis, 0, n - 1))
    return g


def divergence(q: torch.Tensor) -> torch.Tensor:
    """Negative adjoint of :func:`gradient`: div q with <grad u, q> = -<u, div q>."""
    out = torch.zeros_like(q[0])
    for component, axis in zip(q, _AXES[: q.shape[0]], strict=True):
        n = component.shape[axis]
        if n == 1:
            continue
        out.narrow(axis, 0, n - 1).add_(component.narrow(axis, 0, n - 1))
        out.narrow(axis, 1, n - 1).sub_(component.narrow(axis, 0, n - 1))
    return out


def tv_norm(u: torch.Tensor, dims: int) -> torch.Tensor:
    """Isotropic TV of u, summed over everything (a scalar)."""
    return _tv_of_gradient(gradient(u, dims))


def _tv_of_gradient(g: torch.Tensor) -> torch.Tensor:
    """sum of |g| with |.| over the difference axes and channels, g of shape (D, S, C, ny, nx)."""
    return torch.sqrt((g**2).sum(dim=(0, 2))).sum()


def _project_dual_ball(q: torch.Tensor, radius: float) -> torch.Tensor:
    """Pointwise projection of q (D, S, C, ny, nx) onto {|q| <= radius}, |.| over D and C."""
    magnitude = torch.sqrt((q**2).sum(dim=(0, 2), keepdim=True))
    return q / torch.clamp(magnitude / radius, min=1.0)


# Tuned on the phantoms of the test suite at 1% noise: the CT normal operator damps high frequencies
# (A^T A ~ 1/|w|), so CT needs a smaller weight than MRI, whose A^H A is a projection.
DEFAULT_LAM = {"ct-parallel/1": 2e-4, "mri-cartesian/1": 2e-3}


@method("tv", family="classical", specs=("ct-parallel/1", "mri-cartesian/1"), params=(
    Param("lam", float, None, "TV weight in the normalised problem (larger: smoother); default by spec: "
          + ", ".join(f"{spec} {value:g}" for spec, value in DEFAULT_LAM.items()), low=0.0),
    Param("iterations", int, 300, "PDHG iterations", low=1, high=100000),
    Param("dims", int, 3, "3: TV across slices as well (volumes); 2: each slice on its own", choices=(2, 3)),
    Param("nonneg", bool, True, "constrain the image to be non-negative (real images only)"),
    Param("step_ratio", float, 50.0, "PDHG primal step / dual step (convergence speed, not the solution)",
          low=1e-6),
))
def tv(problem: Problem, params: dict, ctx: RunContext) -> Result:
    """Isotropic total variation, PDHG (Chambolle-Pock), 2D per slice or 3D across slices."""
    dims = params["dims"]
    lam = DEFAULT_LAM[problem.spec] if params["lam"] is None else params["lam"]
    physics = problem.physics
    norm = math.sqrt(operator_sqnorm(problem))
    x_init = problem.initial()
    scale = robust_scale(x_init)
    y = problem.y / (scale * norm)
    # ||K||^2 <= ||A/L||^2 + ||grad||^2 = 1 + 4 dims, and tau sigma ||K||^2 < 1. The duals (a noise-level residual
    # and a TV dual of size lam) are far smaller than the image, so a primal step step_ratio times the dual
    # step converges much faster than equal steps (300 iterations: 36 dB instead of 23 dB on the 64^3 phantom).
    norm_k = math.sqrt(1 + 4 * dims)
    tau, sigma = 0.99 * params["step_ratio"] / norm_k, 0.99 / (params["step_ratio"] * norm_k)
    nonneg = params["nonneg"] and not problem.complex_image

    u = x_init.detach() / scale  # gradient() is not differentiable
    au = physics.A(u) / norm
    grad_u = gradient(u, dims)
    # A and grad are linear, so A u_bar and grad u_bar follow from the last two iterates: one A, one A^T and
    # one gradient per iteration.
    au_bar, grad_bar = au, grad_u
    p = torch.zeros_like(y)
    q = torch.zeros_like(grad_u)
    history = {"objective": [], "relative_change": []}
    with torch.no_grad(), ctx.progress("tv", params["iterations"]) as step:
        for _ in range(params["iterations"]):
            p = (p + sigma * (au_bar - y)) / (1 + sigma)
            q = _project_dual_ball(q + sigma * grad_bar, lam)
            u_new = u - tau * (physics.A_adjoint(p) / norm - divergence(q))
            if nonneg:
                u_new = u_new.clamp_min(0)
            au_new, grad_new = physics.A(u_new) / norm, gradient(u_new, dims)
            au_bar, grad_bar = 2 * au_new - au, 2 * grad_new - grad_u
            objective = float(0.5 * ((au_new - y) ** 2).sum() + lam * _tv_of_gradient(grad_new))
            change = float(torch.linalg.vector_norm(u_new - u) / torch.linalg.vector_norm(u_new).clamp_min(1e-30))
            u, au, grad_u = u_new, au_new, grad_new
            history["objective"].append(objective)
            history["relative_change"].append(change)
            step(objective=objective, change=change)
    return Result(scale * u, history, extras={"params": {"lam": lam}})
