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

- ``tv``: isotropic 3D total variation of m, prox_{lam p TV}(m) with m >= 0 by FGP on the dual field, warm started
  (:class:`recon.solvers.total_variation.TVProx`; the ``tv`` method hands radar files to :func:`csalsa`);
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
from recon.methods import Result, RunContext, method
from recon.params import Param, fill_defaults
from recon.problem import RADAR_SPECS, Problem
from recon.solvers.linalg import cg_normal, operator_sqnorm

CACHE_BYTES = 1 << 30
"""Keep the operator's kernel tables when they take at most this (1 GiB: up to ~170 frequencies on the default
grid); each application of A or A^H is then ~4x faster."""

DEFAULTS = {
    "tv": {"kappa": 0.01, "lam": 0.02, "iterations": 30},
    "l1": {"kappa": 0.01, "lam": 0.02, "iterations": 30},
    "mimo-pnp": {"kappa": 0.01, "sigma": 0.2, "iterations": 40},
}
"""Defaults per method, tuned by scripts/tune_mimo.py on scenes of the seed-0 generator (training-like; the
benchmark draws its scenes from seeds >= 1) at 20 frequencies and 30 dB. First two scenes, 30 iterations: kappa in
[0.001, 1] (0.1 and more leave the noise ball far from reached in 30 iterations), lam and sigma on a small grid;
mean PSNR back-projection 20.4 dB, tv 20.1 (lam 0.02; 17.4 at 0.05), l1 23.1 (lam 0.02; 23.0 at 0.05), mimo-pnp
26.2 (sigma 0.2; 23.3 at 0.15, 25.6 at 0.25). Then three scenes (back-projection 19.8): mimo-pnp with 30, 35, 40,
45, 50 iterations 25.2, 25.5, 25.8, 25.6, 25.5 dB (at 40: sigma 0.175 25.4, 0.225 25.0; kappa 0.005 and 0.02 at 30
iterations 25.0; a sigma annealed from 0.25 to 0.15 or 0.3 to 0.1 25.0 and 24.2), l1 22.4 with 30 and with 40, tv
worse with 40 (20.4, 19.8 dB on the first two scenes with 30; 19.2, 18.9 with 40)."""

CSALSA_PARAMS = (
    Param("kappa", float, None, "C-SALSA penalty relative to ||A||^2 (larger: slower, smaller steps); default "
          + ", ".join(f"{name} {values['kappa']:g}" for name, values in DEFAULTS.items()), low=1e-8),
    Param("iterations", int, None, "C-SALSA iterations; default "
          + ", ".join(f"{name} {values['iterations']}" for name, values in DEFAULTS.items()), low=1, high=100000),
    Param("cg_iterations", int, 5, "CG steps per x-update (warm started)", low=1, high=1000),
    Param("snr_db", float, None, "signal-to-noise ratio of the measurements, for the noise ball eps; default: "
          "from the file's noise_std attribute"),
    Param("eps_scale", float, 1.0, "factor on the noise-ball radius eps", low=0.0),
)


def magnitude_prox(u: torch.Tensor, prox: Callable[[torch.Tensor, float], torch.Tensor]) -> torch.Tensor:
    """prox(|u|, peak) exp(j angle u) for u (B, 2, ...) (real, imaginary): ``prox`` maps magnitudes (B, 1, ...)
    and their peak max |u| to magnitudes; negative outputs are clipped to 0. Where |u| = 0 the phase is taken as 0.
    """
    magnitude = torch.linalg.vector_norm(u, dim=1, keepdim=True)
    new = prox(magnitude, float(magnitude.max())).clamp_min(0)
    zero = magnitude <= torch.finfo(u.dtype).tiny
    ratio = torch.where(zero, torch.zeros_like(new), new / torch.where(zero, torch.ones_like(magnitude), magnitude))
    out = u * ratio
    out[:, :1] += torch.where(zero, new, torch.zeros_like(new))
    return out


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
    elif problem.extras.get("noise_std") is not None:
        eps = math.sqrt(problem.y[:, 0].numel()) * float(problem.extras["noise_std"])
    else:
        raise UserError("the file has no noise_std attribute, and C-SALSA needs the noise level", key="--set snr_db",
                        fix="pass the measurements' SNR, e.g. --set snr_db=30")
    return eps * params["eps_scale"]


def relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.linalg.vector_norm(a - b) / torch.linalg.vector_norm(b).clamp_min(1e-30))


@torch.no_grad()
def csalsa(problem: Problem, prox: Callable[[torch.Tensor], torch.Tensor], params: dict, ctx: RunContext,
           name: str) -> Result:
    """C-SALSA (see the module) with ``prox(m, peak)`` acting on magnitudes m (1, 1, nz, ny, nx) whose maximum is
    ``peak`` (priors set their strength relative to it); ``params``
    holds kappa, iterations, cg_iterations, snr_db, eps_scale (defaults resolved)."""
    physics = problem.physics
    caching = hasattr(physics, "cache_tables") and physics.cache_tables(CACHE_BYTES)
    try:
        return _csalsa(problem, prox, params, ctx, name)
    finally:
        if caching:
            physics.cache_tables(0)


def _csalsa(problem: Problem, prox, params: dict, ctx: RunContext, name: str) -> Result:
    physics, kappa = problem.physics, params["kappa"]
    eps = noise_radius(problem, params)
    norm = math.sqrt(operator_sqnorm(problem, iterations=30, tol=1e-3))  # only the unit of kappa
    adjoint = physics.A_adjoint(problem.y)
    fitted = physics.A(adjoint)
    alpha = float((fitted * problem.y).sum() / (fitted**2).sum().clamp_min(1e-30))
    scale = float(torch.linalg.vector_norm(alpha * adjoint, dim=1).max())
    scale = scale if scale > 0 else 1.0
    y = problem.y / (scale * norm)
    eps_n = eps / (scale * norm)

    def forward(x: torch.Tensor) -> torch.Tensor:
        return physics.A(x) / norm

    x = alpha * adjoint / scale
    v1, v2 = x, forward(x)
    d1, d2 = torch.zeros_like(x), torch.zeros_like(v2)
    history = {"residual": [], "data": [], "change": []}
    with ctx.progress(name, params["iterations"]) as step:
        for _ in range(params["iterations"]):
            rhs = kappa * (v1 + d1) + physics.A_adjoint(v2 + d2) / norm
            x = cg_normal(physics, rhs, kappa, x, params["cg_iterations"], 1 / norm**2)
            ax = forward(x)
            v1_new = magnitude_prox(x - d1, prox)
            w = ax - d2 - y
            v2 = y + w * min(1.0, eps_n / max(float(torch.linalg.vector_norm(w)), 1e-30))
            d1 = d1 - (x - v1_new)
            d2 = d2 - (ax - v2)
            history["residual"].append(relative(x, v1_new))
            history["data"].append(float(torch.linalg.vector_norm(ax - y)) / max(eps_n, 1e-30))
            history["change"].append(relative(v1_new, v1))
            v1 = v1_new
            step(residual=history["residual"][-1], data=history["data"][-1])
    return Result(v1 * scale, history, extras={"params": {"kappa": kappa, "eps": eps}})


def resolve(name: str, params: dict) -> dict:
    """``params`` with the None among kappa/lam/sigma/iterations replaced by the method's defaults."""
    return fill_defaults(params, DEFAULTS[name])


@method("l1", family="radar", specs=RADAR_SPECS, params=(
    Param("lam", float, None, f"soft threshold as a fraction of the peak magnitude; default "
          f"{DEFAULTS['l1']['lam']:g}", low=0.0),
    *CSALSA_PARAMS,
))
def l1(problem: Problem, params: dict, ctx: RunContext) -> Result:
    """C-SALSA with the l1 norm of the magnitude: min sum |x| s.t. ||A x - y|| <= eps."""
    params = resolve("l1", params)
    lam = params["lam"]
    result = csalsa(problem, lambda m, peak: torch.nn.functional.relu(m - lam * peak), params, ctx, "l1")
    result.extras["params"]["lam"] = lam
    return result


@method("mimo-pnp", family="radar", specs=RADAR_SPECS, params=(
    Param("sigma", float, None, f"denoiser noise level as a fraction of the peak magnitude; default "
          f"{DEFAULTS['mimo-pnp']['sigma']:g}", low=0.0),
    *CSALSA_PARAMS,
    Param("weights", str, None, "3D magnitude denoiser W.safetensors from `recon train radar-denoiser`; default: "
          "the prior's shipped weights"),
), prior_capability="denoise", default_prior="drunet-radar", prior_dims=3)
def mimo_pnp(problem: Problem, params: dict, ctx: RunContext) -> Result:
    """Plug-and-play C-SALSA: a trained 3D denoiser of the magnitude as the prox, the phase kept."""
    from recon.priors import get_prior

    params = resolve("mimo-pnp", params)
    prior = get_prior(params["prior"], "denoise", **({"weights": params["weights"]} if params["weights"] else {}))
    from recon.priors.radar import DrunetRadar

    sigma = params["sigma"]
    rician = isinstance(prior, DrunetRadar) and prior.noise(problem.y.device) == "rician"
    result = csalsa(problem, lambda m, peak: denoise_magnitude(prior.denoise, m, sigma * peak, rician), params, ctx,
                    "mimo-pnp")
    result.extras["params"]["sigma"] = sigma
    return result
