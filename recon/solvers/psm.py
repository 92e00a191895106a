"""Partially separable models of dynamic images: ``psm`` and ``red-psm`` (Iskender, Klasky, Bresler 2023).

A sequence f of P frames (P, C, ny, nx) is modelled as F = Lambda Psi (:mod:`recon.models.separable`): K+1 spatial
basis images Lambda (K+1, C, ny, nx) weighted by temporal functions Psi (K+1, P) = Z B, spline-interpolated from a
small latent Z (K+1, d).

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

Memory: matrix-free throughout; a few copies of the sequence (P C ny nx floats) and of the measurements,
the spatial basis (K+1 images) and the denoiser's activations for a few frames at a time: linear in frames x
pixels (P=256 at 128^2: about 17 MB per copy of the sequence).
"""

from __future__ import annotations

import torch

from recon.methods import Result, RunContext
from recon.priors import method_prior
from recon.problem import Problem
from recon.solvers.driver import Algorithm, Tolerance, iterate
from recon.solvers.linalg import operator_sqnorm, relative
from recon.solvers.normalised import Normalised, robust_scale
from recon.solvers.psm_init import initial_model


class ModelFit(Algorithm):
    """The started model (:func:`recon.solvers.psm_init.initial_model`, scaled to the normalised unit) and its
    Adam optimiser: what both methods' iterations share."""

    def __init__(self, problem: Problem, params: dict):
        weight = 1.0 / operator_sqnorm(problem)
        self.model = initial_model(problem, params["order"], params["knots"], weight, params["chi"],
                                   params["init_iterations"])
        scale = robust_scale(self.model.frames())
        self.model.spatial /= scale
        self.normalised = Normalised.by(problem, scale)
        self.model.spatial.requires_grad_(True)
        self.model.latent.requires_grad_(True)
        self.optimizer = torch.optim.Adam([self.model.spatial, self.model.latent], lr=params["lr"])
        self.params = params

    @property
    def estimate(self) -> torch.Tensor:
        with torch.no_grad():
            return self.model.frames()

    def fit(self, steps: int, target: torch.Tensor | None = None) -> float:
        """``steps`` Adam steps on (Lambda, Z) for the data term and xi ||Z||^2 + chi ||Lambda||^2 (with a
        ``target``, red-psm's f - gamma: plus beta/2 ||Lambda Psi - target||^2); the last objective value."""
        p, n, loss = self.params, self.normalised, torch.zeros(())
        with torch.enable_grad():  # the pipeline runs methods under no_grad
            for _ in range(steps):
                self.optimizer.zero_grad(set_to_none=True)
                frames = self.model.frames()
                loss = n.data_terms(n.physics.A(frames) - n.y).sum() + self.model.penalty(p["xi"], p["chi"])
                if target is not None:
                    loss = loss + 0.5 * p["beta"] * (frames - target).square().sum()
                loss.backward()
                self.optimizer.step()
        return float(loss.detach())


class PSM(ModelFit):
    """psm's update: a block of ``BLOCK`` Adam steps (fewer for the last) on the data term and the penalties; records
    the objective."""

    BLOCK = 25

    def __init__(self, problem: Problem, params: dict):
        super().__init__(problem, params)
        self.steps_left, self.value = params["steps"], 0.0

    def update(self) -> None:
        steps = min(self.BLOCK, self.steps_left)
        self.steps_left -= steps
        self.value = self.fit(steps)

    def record(self) -> dict[str, float]:
        return {"objective": self.value}


class REDPSM(ModelFit):
    """red-psm's ADMM rounds: ``inner_steps`` Adam steps towards f - gamma, then the RED update of f and the dual
    update. Records ``data``, ``red``, ``primal_residual`` ||Lambda Psi - f|| / ||f|| and ``change`` of f."""

    def __init__(self, problem: Problem, params: dict, denoise):
        super().__init__(problem, params)
        self.denoise = denoise
        with torch.no_grad():
            self.f = self.model.frames().detach().clone()
        self.gamma = torch.zeros_like(self.f)

    def update(self) -> None:
        p = self.params
        self.fit(p["inner_steps"], self.f - self.gamma)
        with torch.no_grad():
            self.frames = self.model.frames()
            self.denoised = self.denoise(self.f)
            f = (p["lam"] * self.denoised + p["beta"] * (self.frames + self.gamma)) / (p["lam"] + p["beta"])
            self.gamma = self.gamma + self.frames - f
            self.previous, self.f = self.f, f

    def record(self) -> dict[str, float]:
        n, previous = self.normalised, self.previous
        with torch.no_grad():
            data = float(n.data_terms(n.physics.A(self.frames) - n.y).sum())
            red = float(0.5 * self.params["lam"] * (previous * (previous - self.denoised)).sum())
        return {"data": data, "red": red, "primal_residual": relative(self.frames, self.f),
                "change": relative(self.f, previous)}


def psm(problem: Problem, params: dict, ctx: RunContext) -> Result:
    """Method ``psm``: the model fitted to the data, no prior; stops once the objective settles (``tol``)."""
    fit = PSM(problem, params)
    blocks = -(-params["steps"] // PSM.BLOCK)
    run, history = iterate(ctx, ctx.method, fit, blocks, stop=[Tolerance(params["tol"], ("objective",), True)])
    return Result(fit.normalised.units(run.estimate), history)


def red_psm(problem: Problem, params: dict, ctx: RunContext) -> Result:
    """Method ``red-psm``: stops once the primal residual and the change of f are both within ``tol``."""
    prior, sigma = method_prior(params, "denoise"), params["sigma"]
    rounds = REDPSM(problem, params, lambda f: prior.denoise(f, sigma))
    run, history = iterate(ctx, ctx.method, rounds, params["rounds"],
                           stop=[Tolerance(params["tol"], ("primal_residual", "change"))])
    return Result(rounds.normalised.units(run.estimate), history)
