"""C-SALSA for near-field MIMO radar (``mimo-nearfield/1``): min R(|x|) s.t. ||A x - y|| <= eps, a prior on the
magnitude of the complex reflectivity only (its phase is random), in one loop for every prior.

Constrained SALSA (Afonso, Bioucas-Dias, Figueiredo 2011) as Oral and Oktem (2024) use it for MIMO imaging:

    x  <- CG[(kappa I + A^H A) x = kappa (v1 + d1) + A^H (v2 + d2)]     (``cg_iterations`` steps, warm started)
    v1 <- P(x - d1),  P(u) = prox_R(|u|) exp(j angle u)                  (the magnitude denoised, the phase kept)
    v2 <- y + proj_{||.|| <= eps}(A x - d2 - y)
    d1 <- d1 - (x - v1),  d2 <- d2 - (A x - v2)

It runs in normalised units: A / ||A||, and x / s with s the peak magnitude of the adjoint image scaled to fit the
data in least squares, so that kappa does not depend on the operator's size or the data's unit. The priors' strengths
``lam`` and ``sigma`` are fractions of the peak magnitude of their input (max |x - d1|, which converges to the
peak of the result): the truth's peak is not known in advance (the adjoint image's underestimates it 5-13x), and so
the whole iteration scales with the data (the denoiser is homogeneous, D(a m, a sigma) = a D(m, sigma)).
eps = sqrt(M) sigma_n for M complex measurements with noise std sigma_n (the file's ``noise_std``), or
||y|| / sqrt(1 + 10^(snr/10)) from ``--set snr_db``; ``eps_scale`` multiplies it. The result is v1 (the prior's
magnitude with x's phase); at convergence x = v1 and A x = v2 lies in the noise ball.

Priors on the magnitude m = |u|, with p = max m:

- ``tv-radar``: isotropic 3D total variation of m, prox_{lam p TV}(m) with m >= 0 by FGP on the dual field, warm
  started (:class:`recon.solvers.total_variation.TVProx`; ``tv`` on radar files runs ``tv-radar``);
- ``l1``: sum of m, prox = soft thresholding of the magnitude by lam p;
- ``mimo-pnp``: a trained 3D magnitude denoiser (``drunet-radar``, :mod:`recon.priors.radar`) at sigma p: weights
  trained on Rician noise get the magnitude as it is; for weights trained on Gaussian noise the Rician bias of
  the magnitude is taken off first (:func:`denoise_magnitude`).

Memory: ~12 copies of x and of y, the operator's chunks (plus its kernel tables, 8 F (T + R) V bytes, kept when
they fit in ``CACHE_BYTES``: :meth:`~recon.physics.mimo.NearFieldMIMO.cache_tables`) and, for ``mimo-pnp``, the
denoiser's activations on one z-slab (:mod:`recon.priors.radar`). History per iteration: ``residual``
||x - v1|| / ||v1||, ``data`` ||A x - y|| / eps, ``change`` ||v1_k - v1_{k-1}|| / ||v1_k||.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from recon.errors import UserError
from recon.methods import Result, RunContext
from recon.priors import method_prior
from recon.problem import Problem
from recon.shrinkage import magnitude_prox
from recon.solvers.driver import Algorithm, iterate
from recon.solvers.linalg import operator_sqnorm, relative, solve_normal
from recon.solvers.normalised import Normalised
from recon.solvers.total_variation import TVProx

CACHE_BYTES = 1 << 30
"""Keep the operator's kernel tables when they take at most this (1 GiB: up to ~170 frequencies on the default
grid); each application of A or A^H is then ~4x faster."""


def denoise_magnitude(denoise: Callable[[torch.Tensor, float], torch.Tensor], m: torch.Tensor,
                      sigma: float, rician: bool = False) -> torch.Tensor:
    """D(sqrt(max(m^2 - sigma^2, 0)), sigma): a denoiser trained on magnitudes with Gaussian noise, applied to the
    magnitude of a complex image with complex noise of variance sigma^2, whose square is biased by sigma^2 (Rician:
    a raised floor the network would take for faint plates; 28.5 instead of 18.1 dB on a training-like scene).
    ``rician``: the denoiser was trained on such magnitudes itself: D(m, sigma)."""
    if rician:
        return denoise(m, sigma)
    return denoise(torch.sqrt(torch.relu(m * m - sigma * sigma)), sigma)


def noise_radius(problem: Problem, params: dict) -> float:
    """eps, the radius of the noise ball ||A x - y|| <= eps (see the module), in the file's units."""
    y_norm = float(torch.linalg.vector_norm(problem.y))
    if params.get("snr_db") is not None:
        eps = y_norm / math.sqrt(1 + 10 ** (params["snr_db"] / 10))
    elif problem.noise_std is not None:
        eps = math.sqrt(problem.y[:, 0].numel()) * float(problem.noise_std)
    else:
        raise UserError("the file has no noise_std attribute, and C-SALSA needs the noise level", key="--set snr_db",
                        fix="pass the measurements' SNR, e.g. --set snr_db=30")
    return eps * params["eps_scale"]


class CSALSA(Algorithm):
    """The iteration of the module docstring on the normalised problem (A / ||A||, x / s); records ``residual``
    ||x - v1|| / ||v1||, ``data`` ||A x - y|| / eps and ``change`` ||v1_k - v1_{k-1}|| / ||v1_k||."""

    def __init__(self, problem: Problem, prox, params: dict):
        physics = self.physics = problem.physics
        self.prox, self.kappa, self.cg_iterations = prox, params["kappa"], params["cg_iterations"]
        self.eps = noise_radius(problem, params)
        sqnorm = operator_sqnorm(problem, iterations=30, tol=1e-3)  # only the unit of kappa
        self.norm = math.sqrt(sqnorm)
        adjoint = physics.A_adjoint(problem.y)
        fitted = physics.A(adjoint)
        alpha = float((fitted * problem.y).sum() / (fitted**2).sum().clamp_min(1e-30))
        scale = float(torch.linalg.vector_norm(alpha * adjoint, dim=1).max())
        self.normalised = Normalised.by(problem, scale if scale > 0 else 1.0, alpha * adjoint)
        self.y = self.normalised.y / self.norm
        self.eps_n = self.eps / (self.normalised.scale * self.norm)
        self.x = self.normalised.x0
        self.v1, self.v2 = self.x, self.forward(self.x)
        self.d1, self.d2 = torch.zeros_like(self.x), torch.zeros_like(self.v2)
        self.previous = self.v1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.physics.A(x) / self.norm

    def update(self) -> None:
        rhs = self.kappa * (self.v1 + self.d1) + self.physics.A_adjoint(self.v2 + self.d2) / self.norm
        self.x = solve_normal(self.physics, rhs, self.kappa, self.x, self.cg_iterations, 1 / self.norm**2)
        self.ax = self.forward(self.x)
        v1 = magnitude_prox(self.x - self.d1, self.prox)
        w = self.ax - self.d2 - self.y
        self.v2 = self.y + w * min(1.0, self.eps_n / max(float(torch.linalg.vector_norm(w)), 1e-30))
        self.d1 = self.d1 - (self.x - v1)
        self.d2 = self.d2 - (self.ax - self.v2)
        self.previous, self.v1 = self.v1, v1

    def record(self) -> dict[str, float]:
        return {"residual": relative(self.x, self.v1),
                "data": float(torch.linalg.vector_norm(self.ax - self.y)) / max(self.eps_n, 1e-30),
                "change": relative(self.v1, self.previous)}

    @property
    def estimate(self) -> torch.Tensor:
        return self.v1


@torch.no_grad()
def csalsa(problem: Problem, prox: Callable[[torch.Tensor, float], torch.Tensor], params: dict, ctx: RunContext
           ) -> Result:
    """C-SALSA (see the module) with ``prox(m, peak)`` acting on magnitudes m (1, 1, nz, ny, nx) whose maximum is
    ``peak`` (priors set their strength relative to it); ``params`` holds kappa, iterations, cg_iterations,
    snr_db, eps_scale."""
    physics = problem.physics
    caching = hasattr(physics, "cache_tables") and physics.cache_tables(CACHE_BYTES)
    try:
        algorithm = CSALSA(problem, prox, params)
        run, history = iterate(ctx, ctx.method, algorithm, params["iterations"])
    finally:
        if caching:
            physics.cache_tables(0)
    return Result(algorithm.normalised.units(run.estimate), history, extras={"params": {"eps": algorithm.eps}})


def tv_radar(problem: Problem, params: dict, ctx: RunContext) -> Result:
    """Method ``tv-radar``: C-SALSA with the isotropic 3D TV of the magnitude."""
    return csalsa(problem, TVProx(params["lam"], params["tv_iterations"]), params, ctx)


def l1(problem: Problem, params: dict, ctx: RunContext) -> Result:
    """Method ``l1``: C-SALSA with the l1 norm of the magnitude, min sum |x| s.t. ||A x - y|| <= eps."""
    lam = params["lam"]
    return csalsa(problem, lambda m, peak: torch.nn.functional.relu(m - lam * peak), params, ctx)


def mimo_pnp(problem: Problem, params: dict, ctx: RunContext) -> Result:
    """Method ``mimo-pnp``: plug-and-play C-SALSA, a trained 3D denoiser of the magnitude as the prox, the phase
    kept."""
    from recon.priors.radar import DrunetRadar

    prior = method_prior(params, "denoise")
    sigma = params["sigma"]
    rician = isinstance(prior, DrunetRadar) and prior.noise(problem.y.device) == "rician"
    return csalsa(problem, lambda m, peak: denoise_magnitude(prior.denoise, m, sigma * peak, rician), params, ctx)
