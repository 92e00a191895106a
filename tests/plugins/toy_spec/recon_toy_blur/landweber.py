"""A third-party method and prior through the ``recon.methods`` and ``recon.priors`` entry points: projected
Landweber iterations (``toy-landweber``) with any prox prior, by default the non-negativity projection
``toy-nonneg``. The declarations are torch-free; the implementation imports torch when it runs."""

from __future__ import annotations

from recon.methods import Method
from recon.params import Param
from recon.priors import Prior
from recon.specs import spec_ids


class NonNegative(Prior):
    """The indicator of x >= 0: prox(x, tau) = max(x, 0) whatever tau."""

    name = "toy-nonneg"
    summary = "non-negativity (projection onto x >= 0)"
    capabilities = frozenset({"prox"})
    images = "real"

    def prox(self, x, tau):
        return x.clamp_min(0)

    def value(self, x):
        import torch

        return torch.where((x >= 0).flatten(1).all(1), 0.0, torch.inf)


def landweber(problem, params, ctx):
    """x <- prox(x + step A^T (y - A x) / ||A||^2), from zero: (S, C, ny, nx) like the problem's x."""
    from recon.methods import Result
    from recon.priors import get_prior
    from recon.solvers.driver import Algorithm, iterate
    from recon.solvers.linalg import operator_sqnorm

    prior = get_prior(params["prior"], "prox")
    step = params["step"] / operator_sqnorm(problem)
    physics, y = problem.physics, problem.y

    class Iteration(Algorithm):
        def __init__(self):
            self.x = problem.zeros()

        def update(self):
            self.x = prior.prox(self.x + step * physics.A_adjoint(y - physics.A(self.x)), step)

        def record(self):
            return {"residual": float((physics.A(self.x) - y).norm())}

    run, history = iterate(ctx, ctx.method, Iteration(), params["iterations"])
    return Result(run.estimate, history)


METHOD = Method("toy-landweber", "toy", "Projected Landweber iterations with a prox prior.",
                spec_ids(lambda kind: kind.linear_slices and not kind.complex_image), (
                    Param("iterations", int, 50, "iterations", low=1, high=100000),
                    Param("step", float, 1.0, "step times ||A||^2 (< 2)", low=1e-6, high=2.0)),
                landweber, prior_capability="prox", default_prior="toy-nonneg", slice_separable=True)
