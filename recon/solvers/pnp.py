"""Plug-and-play and RED with any denoiser: ``pnp-admm``, ``pnp-pgd``, ``red``; the ADMM loop ``lpn`` reuses.

All three solve, per slice and in normalised units,

    min_u  w/2 ||A u - y/s||^2 + R(u),   w = 1/||A||^2,  s = 0.99 quantile of |first estimate| of the slice,

then return s u: the data term has gradient Lipschitz constant 1 and images are about [0, 1], the unit the
denoisers are trained in, so one set of defaults (rho, sigma, iterations) serves CT and MRI. R is implicit:

- pnp-admm: x <- CG[(w A^T A + rho I) x = w A^T y + rho (z - u)]; z <- prox(x + u) = D(x + u, sigma);
  u <- u + x - z (scaled ADMM; :func:`pnp_admm` takes any prox, the ``lpn`` method passes the LPN). On a CT
  volume of at least ``VOLUME_SLICES`` slices its default prox is tri-planar (``planes=3``, :func:`in_planes`):
  the mean of the 2D denoiser over the axial, coronal and sagittal slices, so that the prior ties neighbouring
  slices (three times the network cost);
- pnp-pgd: x <- D(x - step w A^T (A x - y), sigma) (proximal gradient with the denoiser as prox); a simple
  baseline: on CT, steps of 1/||A||^2 hardly move its ill-conditioned data term and it falls below FBP;
- red: fixed-point RED (Romano, Elad, Milanfar 2017), grad R = lam (x - D(x, sigma)):
  x <- CG[(w A^T A + lam I) x = w A^T y + lam D(x, sigma)].

Slices are independent (a volume is a batch of slices; ``planes=3`` couples them), the CG runs a fixed number of
steps and the denoiser runs a few slices at a time (:mod:`recon.priors.denoiser`), so memory is a few copies of the
problem's x and y plus the network's activations for ``CHUNK`` slices. History per iteration: the relative
fixed-point residual ||x - z|| / ||z|| (ADMM) or change ||x_k - x_{k-1}|| / ||x_k||, and the data term.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from recon.methods import Result, RunContext, method
from recon.params import Param, describe_spec_defaults, fill_defaults
from recon.priors import get_prior
from recon.priors.denoiser import describe_shipped
from recon.problem import Problem
from recon.solvers.linalg import cg_normal, operator_sqnorm, per_sample, slice_scale

SPECS = ("ct-parallel/1", "mri-cartesian/1")
DEFAULTS = {
    ("pnp-admm", "ct-parallel/1"): {"sigma": 0.15, "rho": 5e-3},
    ("pnp-admm", "mri-cartesian/1"): {"sigma": 0.03, "rho": 0.03},
    ("red", "ct-parallel/1"): {"sigma": 0.05, "lam": 0.03},
    ("red", "mri-cartesian/1"): {"sigma": 0.02, "lam": 0.1},
    ("pnp-pgd", "ct-parallel/1"): {"sigma": 0.05},
    ("pnp-pgd", "mri-cartesian/1"): {"sigma": 0.02},
}
"""Defaults per (method, spec) for the shipped denoisers, tuned by scripts/tune_pnp.py (on a GPU, one grid per
method) on three 256^2 training images (two MNI152 slices and CT_small), never on test or benchmark images.
Mean gain over ``tv`` there: CT 30 and 60 views, pnp-admm +4.4 dB, red +1.8, pnp-pgd -5.7; MRI 4x, pnp-admm
+7.0, red +2.0, pnp-pgd -0.4. CT needs a smaller rho than MRI: its normalised A^T A / ||A||^2 has mostly small
eigenvalues (~1/|frequency|), while MRI's is close to a projection. 30 ADMM iterations with 10 CG steps each:
on the tuning images more of either changes the PSNR by under 0.25 dB; 10 CG steps rather than 5 bring
pnp-admm level with deepinv's ADMM (whose prox_l2 runs CG to convergence) on the benchmark's MRI case
(40.16 vs 40.18 dB; 5 steps: 39.43)."""
TRIPLANAR = {("pnp-admm", "ct-parallel/1"): {"sigma": 0.08}}
"""(method, spec) pairs whose default on volumes is ``planes=3``, with the defaults that change with it. Tuned by
hand on a training volume (32 MNI152 slices 128^2, 60 views, 1% noise; rho kept): 3D tv 34.48 dB, pnp-admm
slice-wise at sigma 0.15 / 0.08 33.74 / 35.42, tri-planar at sigma 0.05 / 0.065 / 0.08 / 0.1 / 0.12 35.35 /
36.01 / 36.04 / 35.71 / 35.29. A volume-wide image scale instead of the per-slice one changed it by 0.01 dB."""
VOLUME_SLICES = 8
"""Stacks with fewer slices are taken as separate images (planes 1 by default)."""

ADMM_PARAMS = (
    Param("rho", float, None, "ADMM penalty relative to ||A||^2 (larger: trust the prior more); default by spec",
          low=1e-8),
    Param("iterations", int, 30, "ADMM iterations", low=1, high=100000),
    Param("cg_iterations", int, 10, "CG steps per x-update (warm started)", low=1, high=1000),
)
DENOISER_PARAMS = (
    Param("weights", str, None, "W.safetensors from `recon train denoiser`; default: the prior's shipped weights "
          f"({describe_shipped()})"),
)


@dataclass
class Scaled:
    """The problem in normalised units: per-slice scale (S, 1, 1, 1), y / s, w = 1/||A||^2, first estimate / s."""

    scale: torch.Tensor
    y: torch.Tensor
    weight: float
    x0: torch.Tensor

    def data_term(self, physics, x: torch.Tensor) -> float:
        """w/2 ||A x - y||^2, mean over slices."""
        return float(0.5 * self.weight * ((physics.A(x) - self.y) ** 2).flatten(1).sum(1).mean())


def scaled(problem: Problem) -> Scaled:
    x0 = problem.initial()
    scale = slice_scale(x0)
    return Scaled(per_sample(scale, x0), problem.y / per_sample(scale, problem.y), 1.0 / operator_sqnorm(problem),
                  x0 / per_sample(scale, x0))


def relative(a: torch.Tensor, b: torch.Tensor) -> float:
    """||a - b|| / ||b|| over the whole batch."""
    return float(torch.linalg.vector_norm(a - b) / torch.linalg.vector_norm(b).clamp_min(1e-30))


@torch.no_grad()
def pnp_admm(problem: Problem, prox: Callable[[torch.Tensor], torch.Tensor], params: dict, ctx: RunContext,
             name: str = "pnp-admm") -> Result:
    """Scaled ADMM with any ``prox(v) -> z`` acting on normalised images (S, C, ny, nx); ``params`` holds
    ``rho``, ``iterations``, ``cg_iterations`` (see :data:`ADMM_PARAMS`; defaults already resolved). Starts from
    z = first estimate, u = 0. History: ``residual`` ||x - z|| / ||z||, ``change`` ||z_k - z_{k-1}|| / ||z_k||,
    ``data`` (the data term)."""
    s = scaled(problem)
    physics, rho = problem.physics, params["rho"]
    rhs = s.weight * physics.A_adjoint(s.y)
    x, z = s.x0, s.x0
    u = torch.zeros_like(z)
    history = {"residual": [], "change": [], "data": []}
    with ctx.progress(name, params["iterations"]) as step:
        for _ in range(params["iterations"]):
            x = cg_normal(physics, rhs + rho * (z - u), rho, x, params["cg_iterations"], s.weight)
            z_new = prox(x + u)
            u = u + x - z_new
            history["residual"].append(relative(x, z_new))
            history["change"].append(relative(z_new, z))
            history["data"].append(s.data_term(physics, z_new))
            z = z_new
            step(residual=history["residual"][-1], data=history["data"][-1])
    return Result(z * s.scale, history, extras={"params": {"rho": rho}})


def denoiser(params: dict, capability: str = "denoise"):
    """The prior named by ``params["prior"]`` (its dims checked by ``Method.parse_params``), built with
    ``weights`` when given."""
    options = {"weights": params["weights"]} if params["weights"] else {}
    return get_prior(params["prior"], capability, **options)


def resolve(name: str, spec: str, params: dict, slices: int = 1) -> dict:
    """``params`` with the None among sigma/rho/lam (and planes, where the method has it) replaced by the
    defaults for (method, spec) and a stack of ``slices`` slices."""
    defaults = DEFAULTS.get((name, spec), {})
    if "planes" in params:
        triplanar = TRIPLANAR.get((name, spec), {})
        planes = params["planes"] or (3 if triplanar and slices >= VOLUME_SLICES else 1)
        defaults = {**defaults, **(triplanar if planes == 3 else {}), "planes": planes}
    return fill_defaults(params, defaults)


def in_planes(denoise: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, planes: int) -> torch.Tensor:
    """``denoise`` (a 2D denoiser of slices (S, C, ny, nx)) applied to the volume x (nz, C, ny, nx): on its axial
    slices (planes 1) or the mean over its axial, coronal and sagittal slices (planes 3)."""
    if planes == 1:
        return denoise(x)
    coronal = denoise(x.transpose(0, 2)).transpose(0, 2)  # (ny, C, nz, nx) slices
    sagittal = denoise(x.transpose(0, 3)).transpose(0, 3)  # (nx, C, ny, nz) slices
    return (denoise(x) + coronal + sagittal) / 3


def sigma_param(name: str) -> Param:
    triplanar = describe_spec_defaults(TRIPLANAR, name, "sigma")
    default = describe_spec_defaults(DEFAULTS, name, "sigma") + (f"; with planes 3: {triplanar}" if triplanar else "")
    return Param("sigma", float, None, f"denoiser noise level in the normalised unit (image ~ [0, 1]); default "
                 f"{default}", low=0.0)


PLANES = Param("planes", int, None, "1: denoise axial slices (slice-separable); 3: the mean of the denoiser over "
               "axial, coronal and sagittal slices (3x the network cost); default 3 for CT volumes of "
               f">= {VOLUME_SLICES} slices, else 1", choices=(1, 3))


@method("pnp-admm", family="learned proximal networks", specs=SPECS,
        params=(sigma_param("pnp-admm"), PLANES, *ADMM_PARAMS, *DENOISER_PARAMS), prior_capability="denoise",
        default_prior="drunet", slice_separable=lambda params: params["planes"] == 1)
def pnp_admm_method(problem: Problem, params: dict, ctx: RunContext) -> Result:
    """Plug-and-play ADMM: CG data step, then a trained denoiser as the prox."""
    params = resolve("pnp-admm", problem.spec, params, problem.x_shape[0])
    prior, sigma, planes = denoiser(params), params["sigma"], params["planes"]
    result = pnp_admm(problem, lambda v: in_planes(lambda u: prior.denoise(u, sigma), v, planes), params, ctx)
    result.extras["params"].update(sigma=sigma, planes=planes)
    return result


@method("pnp-pgd", family="learned proximal networks", specs=SPECS, params=(
    sigma_param("pnp-pgd"),
    Param("step", float, 1.0, "gradient step times ||A||^2 (< 2)", low=1e-6, high=2.0),
    Param("iterations", int, 50, "iterations", low=1, high=100000),
    *DENOISER_PARAMS), prior_capability="denoise", default_prior="drunet", slice_separable=True)
@torch.no_grad()
def pnp_pgd(problem: Problem, params: dict, ctx: RunContext) -> Result:
    """Plug-and-play proximal gradient: a gradient step on the data term, then the denoiser."""
    params = resolve("pnp-pgd", problem.spec, params)
    prior, sigma = denoiser(params), params["sigma"]
    s = scaled(problem)
    physics, step_size = problem.physics, params["step"] * s.weight
    x = s.x0
    history = {"change": [], "data": []}
    with ctx.progress("pnp-pgd", params["iterations"]) as step:
        for _ in range(params["iterations"]):
            x_new = prior.denoise(x - step_size * physics.A_adjoint(physics.A(x) - s.y), sigma)
            history["change"].append(relative(x_new, x))
            history["data"].append(s.data_term(physics, x_new))
            x = x_new
            step(change=history["change"][-1], data=history["data"][-1])
    return Result(x * s.scale, history, extras={"params": {"sigma": sigma}})


@method("red", family="learned proximal networks", specs=SPECS, params=(
    sigma_param("red"),
    Param("lam", float, None, "RED weight relative to ||A||^2 (larger: smoother); default "
          + describe_spec_defaults(DEFAULTS, "red", "lam"), low=1e-8),
    Param("iterations", int, 30, "fixed-point iterations", low=1, high=100000),
    Param("cg_iterations", int, 5, "CG steps per iteration (warm started)", low=1, high=1000),
    *DENOISER_PARAMS), prior_capability="grad", default_prior="drunet", slice_separable=True)
@torch.no_grad()
def red(problem: Problem, params: dict, ctx: RunContext) -> Result:
    """Regularisation by denoising, fixed-point iterations with a CG data step."""
    params = resolve("red", problem.spec, params)
    prior, sigma = denoiser(params, "grad"), params["sigma"]
    s = scaled(problem)
    physics, lam = problem.physics, params["lam"]
    rhs = s.weight * physics.A_adjoint(s.y)
    x = s.x0
    history = {"change": [], "data": []}
    with ctx.progress("red", params["iterations"]) as step:
        for _ in range(params["iterations"]):
            # grad R(x) = lam (x - D(x)), so x - grad R(x) / lam = D(x) = x - prior.grad(x)
            target = x - prior.grad(x, sigma)
            x_new = cg_normal(physics, rhs + lam * target, lam, x, params["cg_iterations"], s.weight)
            history["change"].append(relative(x_new, x))
            history["data"].append(s.data_term(physics, x_new))
            x = x_new
            step(change=history["change"][-1], data=history["data"][-1])
    return Result(x * s.scale, history, extras={"params": {"sigma": sigma, "lam": lam}})
