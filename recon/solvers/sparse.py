"""Proximal gradient for sparse signals: ISTA (l1, soft threshold) and IHT (l0, hard threshold).

Both minimise 1/2 ||y - A x||^2 + lam R(x) with the step 1/||A||^2:
x <- prox_{lam/L^2 R}(x + A^T (y - A x) / L^2). The prior comes from the registry (``--prior``), so any
prior with a prox can stand in for l1 or l0.
"""

from __future__ import annotations

from recon.methods import Result, RunContext, method
from recon.params import Param
from recon.priors import get_prior
from recon.problem import Problem
from recon.solvers.linalg import operator_sqnorm

SPARSE_PARAMS = (
    Param("lam", float, 0.05, "weight of the sparsity term lam R(x), in the units of 1/2||y - Ax||^2", low=0.0),
    Param("iterations", int, 500, "iterations", low=1, high=1_000_000),
)


def proximal_gradient(problem: Problem, prior_name: str, params: dict, ctx: RunContext, label: str) -> Result:
    """Runs x <- prox(x + A^T(y - Ax)/L^2) from zero and records the objective per iteration."""
    prior = get_prior(prior_name, "prox")
    physics, y, lam = problem.physics, problem.y, params["lam"]
    step_size = 1.0 / operator_sqnorm(problem)
    x = problem.zeros()
    residual = -y  # A x - y at x = 0
    objective = []
    with ctx.progress(label, params["iterations"]) as step:
        for _ in range(params["iterations"]):
            x = prior.prox(x - step_size * physics.A_adjoint(residual), lam * step_size)
            residual = physics.A(x) - y
            value = float((0.5 * (residual**2).flatten(1).sum(1) + lam * prior.value(x)).mean())
            objective.append(value)
            step(objective=value)
    return Result(x, {"objective": objective})


@method("ista", family="classical", specs=("sparse-linear/1",), params=SPARSE_PARAMS,
        prior_capability="prox", default_prior="l1", slice_separable=True)
def ista(problem: Problem, params: dict, ctx: RunContext) -> Result:
    """ISTA: proximal gradient with soft thresholding (l1), or the prox of any --prior."""
    return proximal_gradient(problem, params["prior"], params, ctx, "ista")


@method("iht", family="classical", specs=("sparse-linear/1",), params=SPARSE_PARAMS,
        prior_capability="prox", default_prior="l0", slice_separable=True)
def iht(problem: Problem, params: dict, ctx: RunContext) -> Result:
    """Iterative hard thresholding (l0), or the prox of any --prior."""
    return proximal_gradient(problem, params["prior"], params, ctx, "iht")
