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

pnp-admm's ``sigma`` and red's ``lam`` may be ``auto`` (:func:`run_with_strength`): the discrepancy principle
(:func:`recon.solvers.strength.choose_strength`); each warm-started solve continues from the state of the nearest
value solved (the ADMM's x, z, u; RED's x) with the new strength, for all the iterations.
pnp-pgd and lpn take numbers only (docs/guides/parameters-from-data.md): pnp-pgd's residual stayed above the noise
norm at every sigma (its iterations do not fit the data within 50 steps), and lpn's residual is not monotone in
tau (a search from the noise-scaled start ended at tau 0.002 and 4 dB).
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch

from recon.methods import Result, RunContext, get_method, per_spec
from recon.params import AUTO
from recon.priors import method_prior
from recon.problem import Problem
from recon.proximal_gradient import ProximalGradient
from recon.solvers.driver import Algorithm, Driver, Guard, guarded_result, iterate
from recon.solvers.linalg import relative, solve_normal
from recon.solvers.normalised import Normalised
from recon.solvers.strength import StrengthSearch, choose_strength

MAX_EVALUATIONS = 6
"""Solves a strength search may use."""
SEARCH_BOUNDS = {"sigma": (1e-3, 1.0), "lam": (1e-6, 10.0)}
"""The range a strength search keeps to, per parameter (normalised unit)."""
SIGMA_FLOOR_AT_DEFAULT = ("mri-cartesian/1",)
"""Specs on which pnp-admm's ``sigma=auto`` never goes below the fixed default.
Undersampled k-space leaves aliasing in the operator's null space, which the residual cannot see, so at low noise
the discrepancy principle asks for too weak a denoiser: Colin27 64^2, 4x, 8 coils, 0.3 % noise chose sigma 0.0105
(26.59 dB) where the default 0.03 gives 28.45 and the oracle 0.085 gives 30.93 dB with a residual twice the noise
norm. Every oracle sigma measured on MRI (0.043 to 0.21, from 0.3 % to 10 % noise) lies above the default."""


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


def continued(algorithm: Algorithm, **changes) -> Algorithm:
    """A shallow copy of ``algorithm`` (its state: updates replace the tensors, so nothing is shared that changes)
    with the attributes ``changes`` set: the start of a warm-started solve at another strength."""
    other = copy.copy(algorithm)
    for name, value in changes.items():
        setattr(other, name, value)
    return other


Build = Callable[[float, Algorithm | None], Algorithm]
"""build(strength, warm) -> the algorithm at that strength: fresh when ``warm`` is None, else continued from it."""


def run_with_strength(problem: Problem, normalised: Normalised, params: dict, ctx: RunContext, parameter: str,
                      default: float, build: Build, floor: bool = False) -> Result:
    """The method at ``params[parameter]``, or with ``auto`` at the strength :func:`~recon.solvers.strength.
    choose_strength` chooses from ``default`` (the fixed value) within SEARCH_BOUNDS, or with ``floor`` never below
    ``default``, under the divergence guard."""
    value, iterations = params[parameter], params["iterations"]
    if value != AUTO:
        return run_guarded(problem, normalised, build(value, None), iterations, ctx)
    guards: dict[float, str] = {}

    def attempt(driver: Driver, strength: float, warm: Algorithm | None, iterations: int):
        algorithm = build(strength, warm)
        run = driver.run(algorithm, iterations)
        if run.guard:
            guards[strength] = run.guard
        x = normalised.units(run.estimate)
        return x, float(torch.linalg.vector_norm(problem.physics.A(x) - problem.y)), algorithm

    low, high = SEARCH_BOUNDS[parameter]
    declared = next(p.default for p in get_method(ctx.method).params if p.name == "iterations")
    search = StrengthSearch(parameter, default, iterations, MAX_EVALUATIONS, default if floor else low,
                            high, "the fixed default: the residual cannot see aliasing" if floor else "", declared)
    chosen = choose_strength(problem, ctx, search, attempt, Guard(magnitude=problem.complex_image))
    result = guarded_result(chosen.x, chosen.history, [guards[chosen.value]] if chosen.value in guards else [], ctx)
    result.extras["params"] = chosen.record
    return result


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
    from recon.methods.plug_and_play import CT, PNP_ADMM_SIGMA, TRIPLANAR_SIGMA

    prior, planes = method_prior(params, "denoise"), params["planes"]
    normalised = Normalised.per_slice(problem)

    def build(sigma: float, warm: ADMM | None) -> ADMM:
        prox = lambda v: in_planes(lambda u: prior.denoise(u, sigma), v, planes)  # noqa: E731
        return (ADMM(normalised, prox, params["rho"], params["cg_iterations"]) if warm is None
                else continued(warm, prox=prox))

    default = TRIPLANAR_SIGMA if planes == 3 and problem.spec == CT else per_spec(PNP_ADMM_SIGMA, problem.spec)
    floor = problem.spec in SIGMA_FLOOR_AT_DEFAULT  # pnp-admm takes no dynamic spec
    return run_with_strength(problem, normalised, params, ctx, "sigma", default, build, floor)


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

    def build(lam: float, warm: RED | None) -> RED:
        if warm is None:
            return RED(normalised, lambda x: prior.grad(x, sigma), lam, params["cg_iterations"])
        return continued(warm, lam=lam)

    from recon.methods.plug_and_play import RED_LAM

    return run_with_strength(problem, normalised, params, ctx, "lam", per_spec(RED_LAM, problem.spec), build)
