"""Plug-and-play and RED with any denoiser: ``pnp-admm``, ``pnp-pgd``, ``red``; the ADMM loop ``lpn`` reuses.

All three work per slice on the normalised problem (:mod:`recon.solvers.normalised`: images about [0, 1], the unit
the denoisers are trained in, so one set of defaults serves CT and MRI), R implicit:

- pnp-admm: x <- solve[(w A^T A + rho I) x = w A^T y + rho (z - u)]; z <- prox(x + u) = D(x + u, sigma);
  u <- u + x - z (scaled ADMM; :class:`ADMM` takes any prox, the ``lpn`` method passes the LPN). On a CT
  volume its default prox is tri-planar (``planes=3``, :func:`in_planes`): the mean of the 2D denoiser over the
  axial, coronal and sagittal slices, so that the prior ties neighbouring slices (three times the network cost);
- pnp-pgd: x <- D(x - step w A^T (A x - y), sigma) (proximal gradient, one A and one A^T per iteration); a simple
  baseline: on CT, steps of 1/||A||^2 hardly move its ill-conditioned data term and it falls below FBP;
- red: fixed-point RED (Romano, Elad, Milanfar 2017), grad R = lam (x - D(x, sigma)):
  x <- solve[(w A^T A + lam I) x = w A^T y + lam D(x, sigma)].

The solves are the operator's (:func:`recon.solvers.linalg.solve_normal`). Memory: a few copies of the problem's x
and y plus the network's activations for a few slices. The histories' data term and the iterates' range feed the
divergence guard (:class:`recon.solvers.driver.Guard`).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from recon.methods import Result, RunContext
from recon.priors import method_prior
from recon.problem import Problem
from recon.proximal_gradient import ProximalGradient
from recon.solvers.driver import Algorithm, Guard, guarded_result, iterate
from recon.solvers.linalg import relative, solve_normal
from recon.solvers.normalised import Normalised


class ADMM(Algorithm):
    """Scaled ADMM with any ``prox(v) -> z`` on the normalised problem; starts from z = x = the first estimate, u = 0.
    Records ``residual`` ||x - z|| / ||z||, ``change`` ||z_k - z_{k-1}|| / ||z_k|| and ``data`` (the data term)."""

    def __init__(self, normalised: Normalised, prox: Callable[[torch.Tensor], torch.Tensor], rho: float,
                 cg_iterations: int):
        self.normalised, self.prox, self.rho, self.cg_iterations = normalised, prox, rho, cg_iterations
        self.rhs = normalised.weight * normalised.physics.A_adjoint(normalised.y)
        self.x = self.z = self.previous = normalised.x0
        self.u = torch.zeros_like(self.z)

    def update(self) -> None:
        n = self.normalised
        self.x = solve_normal(n.physics, self.rhs + self.rho * (self.z - self.u), self.rho, self.x, self.cg_iterations,
                              n.weight)
        z = self.prox(self.x + self.u)
        self.u = self.u + self.x - z
        self.previous, self.z = self.z, z

    def record(self) -> dict[str, float]:
        return {"residual": relative(self.x, self.z), "change": relative(self.z, self.previous),
                "data": self.normalised.data_term(self.z)}

    @property
    def estimate(self) -> torch.Tensor:
        return self.z


class PnPGD(Algorithm):
    """Proximal gradient with the denoiser as prox; records ``change`` and ``data`` (free: the residual is carried)."""

    def __init__(self, normalised: Normalised, denoise: Callable[[torch.Tensor], torch.Tensor], step: float):
        self.normalised, self.denoise, self.step_size = normalised, denoise, step * normalised.weight
        self.iteration = ProximalGradient(normalised.physics, normalised.y, normalised.x0)
        self.previous = normalised.x0

    def update(self) -> None:
        self.previous = self.iteration.x
        self.iteration.step(self.step_size, self.denoise)

    def record(self) -> dict[str, float]:
        return {"change": relative(self.iteration.x, self.previous),
                "data": float(self.normalised.data_terms(self.iteration.residual).mean())}

    @property
    def estimate(self) -> torch.Tensor:
        return self.iteration.x


class RED(Algorithm):
    """Fixed-point RED; records ``change`` and ``data``."""

    def __init__(self, normalised: Normalised, grad: Callable[[torch.Tensor], torch.Tensor], lam: float,
                 cg_iterations: int):
        self.normalised, self.grad, self.lam, self.cg_iterations = normalised, grad, lam, cg_iterations
        self.rhs = normalised.weight * normalised.physics.A_adjoint(normalised.y)
        self.x = self.previous = normalised.x0

    def update(self) -> None:
        # grad R(x) = lam (x - D(x)), so x - grad R(x) / lam = D(x) = x - prior.grad(x)
        target = self.x - self.grad(self.x)
        n = self.normalised
        x = solve_normal(n.physics, self.rhs + self.lam * target, self.lam, self.x, self.cg_iterations, n.weight)
        self.previous, self.x = self.x, x

    def record(self) -> dict[str, float]:
        return {"change": relative(self.x, self.previous), "data": self.normalised.data_term(self.x)}


def run_guarded(problem: Problem, normalised: Normalised, algorithm: Algorithm, iterations: int, ctx: RunContext
                ) -> Result:
    """``iterations`` of ``algorithm`` under the divergence guard; the estimate back in the problem's units."""
    run, history = iterate(ctx, ctx.method, algorithm, iterations, guard=Guard(magnitude=problem.complex_image))
    return guarded_result(normalised.units(run.estimate), history, [run.guard] if run.guard else [], ctx)


def in_planes(denoise: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, planes: int) -> torch.Tensor:
    """``denoise`` (a 2D denoiser of slices (S, C, ny, nx)) applied to the volume x (nz, C, ny, nx): on its axial
    slices (planes 1) or the mean over its axial, coronal and sagittal slices (planes 3)."""
    if planes == 1:
        return denoise(x)
    coronal = denoise(x.transpose(0, 2)).transpose(0, 2)  # (ny, C, nz, nx) slices
    sagittal = denoise(x.transpose(0, 3)).transpose(0, 3)  # (nx, C, ny, nz) slices
    return (denoise(x) + coronal + sagittal) / 3


@torch.no_grad()
def pnp_admm(problem: Problem, params: dict, ctx: RunContext) -> Result:
    """Method ``pnp-admm``."""
    prior, sigma, planes = method_prior(params, "denoise"), params["sigma"], params["planes"]
    normalised = Normalised.per_slice(problem)
    admm = ADMM(normalised, lambda v: in_planes(lambda u: prior.denoise(u, sigma), v, planes), params["rho"],
                params["cg_iterations"])
    return run_guarded(problem, normalised, admm, params["iterations"], ctx)


@torch.no_grad()
def pnp_pgd(problem: Problem, params: dict, ctx: RunContext) -> Result:
    """Method ``pnp-pgd``."""
    prior, sigma = method_prior(params, "denoise"), params["sigma"]
    normalised = Normalised.per_slice(problem)
    algorithm = PnPGD(normalised, lambda v: prior.denoise(v, sigma), params["step"])
    return run_guarded(problem, normalised, algorithm, params["iterations"], ctx)


@torch.no_grad()
def red(problem: Problem, params: dict, ctx: RunContext) -> Result:
    """Method ``red``."""
    prior, sigma = method_prior(params, "grad"), params["sigma"]
    normalised = Normalised.per_slice(problem)
    algorithm = RED(normalised, lambda x: prior.grad(x, sigma), params["lam"], params["cg_iterations"])
    return run_guarded(problem, normalised, algorithm, params["iterations"], ctx)
