"""Proximal gradient for sparse signals: ISTA (l1, soft threshold) and IHT (l0, hard threshold).

Both minimise 1/2 ||y - A x||^2 + lam R(x) with the step 1/||A||^2:
x <- prox_{lam/L^2 R}(x + A^T (y - A x) / L^2) (:class:`recon.proximal_gradient.ProximalGradient`). The prior
comes from the registry (``--prior``), so any prior with a prox can stand in for l1 or l0.
"""

from __future__ import annotations

import torch

from recon.methods import Result, RunContext
from recon.priors import get_prior
from recon.problem import Problem
from recon.proximal_gradient import ProximalGradient, data_terms
from recon.solvers.driver import Algorithm, iterate
from recon.solvers.linalg import operator_sqnorm


class ProximalGradientPrior(Algorithm):
    """Proximal gradient with a prior's prox from zero; records the objective 1/2||y - Ax||^2 + lam R(x)."""

    def __init__(self, problem: Problem, prior, lam: float):
        self.prior, self.lam, self.step_size = prior, lam, 1.0 / operator_sqnorm(problem)
        self.iteration = ProximalGradient(problem.physics, problem.y, problem.zeros(), residual=-problem.y)

    def update(self) -> None:
        self.iteration.step(self.step_size, lambda v: self.prior.prox(v, self.lam * self.step_size))

    def record(self) -> dict[str, float]:
        penalty = self.lam * self.prior.value(self.estimate)
        return {"objective": float((data_terms(self.iteration.residual) + penalty).mean())}

    @property
    def estimate(self) -> torch.Tensor:
        return self.iteration.x

    def residual_norms(self) -> torch.Tensor:
        return torch.linalg.vector_norm(self.iteration.residual.flatten(1), dim=1)


def proximal_gradient(problem: Problem, prior_name: str, params: dict, ctx: RunContext, label: str) -> Result:
    """``params["iterations"]`` steps with the prox of ``prior_name`` at weight ``params["lam"]``."""
    algorithm = ProximalGradientPrior(problem, get_prior(prior_name, "prox"), params["lam"])
    run, history = iterate(ctx, label, algorithm, params["iterations"])
    return Result(run.estimate, history)


def ista(problem: Problem, params: dict, ctx: RunContext) -> Result:
    """Methods ``ista`` and ``iht`` (which differ by their default prior)."""
    return proximal_gradient(problem, params["prior"], params, ctx, ctx.method)
