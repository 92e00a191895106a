"""Partially separable models of dynamic images: ``psm`` and ``red-psm`` (Iskender, Klasky, Bresler 2023).

A sequence f of P frames (P, C, ny, nx) is modelled as F = Lambda Psi: K+1 spatial basis images Lambda
(K+1, C, ny, nx) weighted by temporal functions Psi (K+1, P) = Z B, where B (d, P) is the cubic-spline
interpolation from d knots evenly spread over the scan to the P frame times and Z (K+1, d) a small latent.

- ``psm`` fits (Lambda, Z) to the data with Adam: min w/2 sum_t ||A_t F_t - g_t||^2 + xi ||Z||^2 + chi ||Lambda||^2.
- ``red-psm`` adds a full-rank sequence f tied to the model by ADMM and regularised by RED with a frame-wise
  denoiser D: per round, (1) ``inner_steps`` Adam steps on (Lambda, Z) for the data term plus
  beta/2 ||Lambda Psi - f + gamma||^2, (2) f <- (lam D(f) + beta (Lambda Psi + gamma)) / (lam + beta),
  (3) gamma <- gamma + Lambda Psi - f. It stops when the relative change of f between rounds and the primal
  residual ||Lambda Psi - f|| / ||f|| both fall below ``tol`` (no ground truth is used), or after ``rounds``.

Both start from :mod:`recon.solvers.psm_init` (the temporal basis from the measurements, then Lambda by least
squares) and work in normalised units like :mod:`recon.solvers.pnp`: y divided by the 0.99 quantile s of
the initial sequence, data term weighted by w = 1/||A||^2 (the largest frame's), so that the image is about
[0, 1] (the denoiser's unit) and one set of weights serves any P. The output is s Lambda Psi.

Defaults: tuned by hand on the walnut phantom of seed 1 at P = 64 and 128 (one view per frame, 0.5 % noise);
the benchmark (scripts/bench_red_psm.py) uses seed 0. A small K suits few frames: at P = 128, K = 3 reached
20.2 dB in 10 rounds where K = 6 needed 40 for 20.4. More ``psm`` steps fit the noise (P = 64, K = 6: 14.3 dB at the
start, 13.3 after 2500 steps), hence 250.

Memory: matrix-free throughout; a few copies of the sequence (P C ny nx floats) and of the measurements,
the spatial basis (K+1 images) and the denoiser's activations for a few frames at a time: linear in frames x
pixels (P=256 at 128^2: about 17 MB per copy of the sequence).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from recon.methods import Result, RunContext, method
from recon.params import Param
from recon.problem import DYNAMIC_SPECS, Problem
from recon.solvers.linalg import operator_sqnorm, robust_scale
from recon.solvers.pnp import DENOISER_PARAMS, denoiser, relative


def spline_matrix(knots: int, frames: int) -> np.ndarray:
    """B (knots, frames): row j is the not-a-knot cubic spline through the j-th unit vector on ``knots`` evenly
    spaced times in [0, 1], sampled at ``frames`` evenly spaced times; values v (knots,) interpolate as v @ B.
    Fewer than 4 knots fall back to the polynomial through them."""
    from scipy.interpolate import CubicSpline, lagrange

    knot_times, frame_times = np.linspace(0, 1, knots), np.linspace(0, 1, frames)
    if knots >= 4:
        return CubicSpline(knot_times, np.eye(knots), axis=0)(frame_times).T
    if knots == 1:
        return np.ones((1, frames))
    return np.stack([lagrange(knot_times, row)(frame_times) for row in np.eye(knots)])


@dataclass
class SeparableModel:
    """F = Lambda Psi with Psi = Z B; ``spatial`` (K+1, C, ny, nx), ``latent`` (K+1, d), ``spline`` (d, P)."""

    spatial: torch.Tensor
    latent: torch.Tensor
    spline: torch.Tensor

    def temporal(self) -> torch.Tensor:
        """Psi (K+1, P)."""
        return self.latent @ self.spline

    def frames(self) -> torch.Tensor:
        """F (P, C, ny, nx)."""
        return combine(self.temporal(), self.spatial)

    def penalty(self, xi: float, chi: float) -> torch.Tensor:
        return xi * self.latent.square().sum() + chi * self.spatial.square().sum()


def combine(psi: torch.Tensor, spatial: torch.Tensor) -> torch.Tensor:
    """Lambda Psi: frames (P, C, ny, nx) from temporal functions ``psi`` (K+1, P) and images ``spatial``
    (K+1, C, ny, nx)."""
    return torch.einsum("kp,kchw->pchw", psi, spatial)


def combine_adjoint(psi: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
    """The adjoint of :func:`combine` in the images: (K+1, C, ny, nx) from frames (P, C, ny, nx)."""
    return torch.einsum("kp,pchw->kchw", psi, frames)


@dataclass
class Normalised:
    """The problem in normalised units: scale s, y / s, data weight w = 1/||A||^2."""

    scale: float
    y: torch.Tensor
    weight: float

    def data_term(self, physics, frames: torch.Tensor) -> torch.Tensor:
        """w/2 sum_t ||A_t F_t - y_t||^2 (differentiable)."""
        return 0.5 * self.weight * (physics.A(frames) - self.y).square().sum()


@dataclass
class Objective:
    """What the Adam steps minimise over (Lambda, Z): the data term, xi ||Z||^2 + chi ||Lambda||^2 and, for
    red-psm, beta/2 ||Lambda Psi - target||^2 with target = f - gamma."""

    normalised: Normalised
    physics: object
    model: SeparableModel
    xi: float
    chi: float
    beta: float = 0.0
    target: torch.Tensor | None = None

    def __call__(self, frames: torch.Tensor) -> torch.Tensor:
        value = self.normalised.data_term(self.physics, frames) + self.model.penalty(self.xi, self.chi)
        if self.target is not None:
            value = value + 0.5 * self.beta * (frames - self.target).square().sum()
        return value


def _fit(model: SeparableModel, objective: Objective, steps: int, optimizer: torch.optim.Optimizer) -> float:
    """``steps`` Adam steps on the model's (spatial, latent); the last objective value."""
    loss = torch.zeros(())
    with torch.enable_grad():  # the pipeline runs methods under no_grad
        for _ in range(steps):
            optimizer.zero_grad(set_to_none=True)
            loss = objective(model.frames())
            loss.backward()
            optimizer.step()
    return float(loss.detach())


MODEL_PARAMS = (
    Param("order", int, 3, "PSM order K: the model has K+1 spatial and temporal basis functions", low=0, high=100),
    Param("knots", int, 6, "d: spline knots of each temporal function (the latent Z is (K+1, d))", low=1,
          high=10000),
    Param("xi", float, 1e-6, "weight of ||Z||^2", low=0.0),
    Param("chi", float, 1e-6, "weight of ||Lambda||^2", low=0.0),
    Param("lr", float, 5e-3, "Adam learning rate on (Lambda, Z)", low=1e-8),
    Param("init_iterations", int, 50, "CG steps of the least-squares fit of Lambda at the start", low=0,
          high=100000),
)


def _start(problem: Problem, params: dict) -> tuple[SeparableModel, Normalised]:
    """The initial model (see :mod:`recon.solvers.psm_init`) and the normalised problem."""
    from recon.solvers.psm_init import initial_model

    weight = 1.0 / operator_sqnorm(problem)
    model = initial_model(problem, params["order"], params["knots"], weight, params["chi"],
                          params["init_iterations"])
    scale = robust_scale(model.frames())
    model.spatial /= scale
    normalised = Normalised(scale, problem.y / scale, weight)
    model.spatial.requires_grad_(True)
    model.latent.requires_grad_(True)
    return model, normalised


def _adam(model: SeparableModel, lr: float) -> torch.optim.Adam:
    return torch.optim.Adam([model.spatial, model.latent], lr=lr)


@method("psm", family="RED-PSM", specs=DYNAMIC_SPECS, params=(
    *MODEL_PARAMS,
    Param("steps", int, 250, "Adam steps", low=0, high=10**7),
    Param("tol", float, 1e-5, "stop when the objective changes by less than this (relative) over 25 steps",
          low=0.0)))
def psm(problem: Problem, params: dict, ctx: RunContext) -> Result:
    """Partially separable model F = Lambda Psi (spline temporal basis) fitted to the data, no prior."""
    model, s = _start(problem, params)
    optimizer = _adam(model, params["lr"])
    objective, block = Objective(s, problem.physics, model, params["xi"], params["chi"]), 25
    history: dict[str, list[float]] = {"objective": []}
    rounds = -(-params["steps"] // block)
    with ctx.progress("psm", rounds) as step:
        for done in range(rounds):
            steps = min(block, params["steps"] - done * block)
            value = _fit(model, objective, steps, optimizer)
            history["objective"].append(value)
            step(objective=value)
            if len(history["objective"]) > 1 and abs(history["objective"][-2] - value) <= params["tol"] * value:
                break
    with torch.no_grad():
        return Result(model.frames() * s.scale, history)


@method("red-psm", family="RED-PSM", specs=DYNAMIC_SPECS, params=(
    *MODEL_PARAMS,
    Param("lam", float, 0.01, "RED weight lambda, relative to the normalised data term", low=0.0),
    Param("beta", float, 0.01, "ADMM penalty beta on Lambda Psi = f", low=1e-12),
    Param("sigma", float, 0.1, "denoiser noise level in the normalised unit (frames ~ [0, 1])", low=0.0),
    Param("rounds", int, 50, "at most this many ADMM rounds", low=1, high=100000),
    Param("inner_steps", int, 25, "Adam steps on (Lambda, Z) per round", low=1, high=100000),
    Param("tol", float, 1e-3, "stop when the change of f and the primal residual are both below this", low=0.0),
    *DENOISER_PARAMS), prior_capability="denoise", default_prior="drunet")
def red_psm(problem: Problem, params: dict, ctx: RunContext) -> Result:
    """RED-PSM: ADMM between a partially separable model and a full-rank sequence regularised by RED."""
    prior = denoiser(params)
    model, s = _start(problem, params)
    optimizer = _adam(model, params["lr"])
    physics, lam, beta, sigma = problem.physics, params["lam"], params["beta"], params["sigma"]
    with torch.no_grad():
        f = model.frames().detach().clone()
    gamma = torch.zeros_like(f)
    history: dict[str, list[float]] = {"data": [], "red": [], "primal_residual": [], "change": []}
    with ctx.progress("red-psm", params["rounds"]) as step:
        for _ in range(params["rounds"]):
            _fit(model, Objective(s, physics, model, params["xi"], params["chi"], beta, f - gamma),
                 params["inner_steps"], optimizer)
            with torch.no_grad():
                frames = model.frames()
                denoised = prior.denoise(f, sigma)
                f_new = (lam * denoised + beta * (frames + gamma)) / (lam + beta)
                gamma = gamma + frames - f_new
                history["data"].append(float(s.data_term(physics, frames)))
                history["red"].append(float(0.5 * lam * (f * (f - denoised)).sum()))
                history["primal_residual"].append(relative(frames, f_new))
                history["change"].append(relative(f_new, f))
                f = f_new
            step(data=history["data"][-1], residual=history["primal_residual"][-1], change=history["change"][-1])
            if max(history["primal_residual"][-1], history["change"][-1]) < params["tol"]:
                break
    with torch.no_grad():
        return Result(model.frames() * s.scale, history)
