"""CGLS: conjugate gradients on the normal equations A^T A x = A^T y, stopped early to regularise."""

from __future__ import annotations

import torch

from recon.methods import Result, RunContext
from recon.problem import Problem
from recon.solvers.driver import Algorithm, iterate
from recon.solvers.linalg import per_sample, per_sample_dot


class CGLS(Algorithm):
    """CGLS from x0 with step sizes per batch element (slices independent).

    Written here rather than calling ``deepinv.optim.utils.conjugate_gradient`` because it reports each
    iteration (progress and the residual history) and updates the residual y - Ax without re-applying A:
    one A and one A^T per iteration. Records the relative residual ||y - A x|| / ||y|| (mean over the batch).
    """

    def __init__(self, physics, y: torch.Tensor, x0: torch.Tensor):
        self.physics, self.y, self.x = physics, y, x0.clone()
        self.tiny = torch.finfo(y.dtype).tiny
        self.r = y - physics.A(self.x)
        self.s = physics.A_adjoint(self.r)
        self.p = self.s.clone()
        self.gamma = per_sample_dot(self.s, self.s)
        self.y_norm = torch.sqrt(per_sample_dot(y, y)).clamp_min(self.tiny)

    def update(self) -> None:
        q = self.physics.A(self.p)
        alpha = self.gamma / per_sample_dot(q, q).clamp_min(self.tiny)
        self.x = self.x + per_sample(alpha, self.x) * self.p
        self.r = self.r - per_sample(alpha, self.r) * q
        self.s = self.physics.A_adjoint(self.r)
        gamma = per_sample_dot(self.s, self.s)
        self.p = self.s + per_sample(gamma / self.gamma.clamp_min(self.tiny), self.s) * self.p
        self.gamma = gamma

    def record(self) -> dict[str, float]:
        return {"relative_residual": float((self.residual_norms() / self.y_norm).mean())}

    def residual_norms(self) -> torch.Tensor:
        return torch.sqrt(per_sample_dot(self.r, self.r))


def cgls(physics, y: torch.Tensor, x0: torch.Tensor, iterations: int, ctx: RunContext | None = None
         ) -> tuple[torch.Tensor, list[float]]:
    """``iterations`` CGLS steps from x0: x and the relative residual per iteration."""
    run, history = iterate(ctx or RunContext(), "cgls", CGLS(physics, y, x0), iterations)
    return run.estimate, history["relative_residual"]


def cgls_method(problem: Problem, params: dict, ctx: RunContext) -> Result:
    """Method ``cgls``: from zero, stopped after ``iterations``."""
    x, residual = cgls(problem.physics, problem.y, problem.zeros(), params["iterations"], ctx)
    return Result(x, {"relative_residual": residual})
