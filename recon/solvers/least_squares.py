"""CGLS: conjugate gradients on the normal equations A^T A x = A^T y, stopped early to regularise.

By default (``iterations=auto``) each slice stops at the discrepancy principle: the first iteration whose residual
||A x - y|| is at most tau times the norm of the measurements' noise (:mod:`recon.parameter_choice`, noise level
from the file or estimated by :mod:`recon.noise`), at most :data:`AUTO_MAX_ITERATIONS`. CGLS regularises by
stopping (semi-convergence): after the image's content is fitted, further iterations fit the noise.
"""

from __future__ import annotations

import torch

from recon.methods import Result, RunContext
from recon.methods.classical import CGLS_ITERATIONS
from recon.parameter_choice import known_noise, tau_for
from recon.params import AUTO
from recon.problem import Problem
from recon.solvers.driver import Algorithm, State, iterate
from recon.solvers.linalg import per_sample, per_sample_dot

AUTO_MAX_ITERATIONS = 300
"""The most iterations the discrepancy stop may run (the study's oracle used at most 86)."""


class CGLS(Algorithm):
    """CGLS from x0 with step sizes per batch element (slices independent).

    Written here rather than calling ``deepinv.optim.utils.conjugate_gradient`` because it reports each
    iteration (progress and the residual history) and updates the residual y - Ax without re-applying A:
    one A and one A^T per iteration. Records the relative residual ||y - A x|| / ||y|| (mean over the batch).

    ``targets`` (S,): residual norms at which each slice stops (the discrepancy principle); a stopped slice keeps its
    iterate while the others go on, and ``stopped_at`` (S,) holds the iteration it stopped at (0: still running).
    ``keep_at``: the iteration whose iterate is kept as ``kept`` (the fallback of slices that never stop).
    """

    def __init__(self, physics, y: torch.Tensor, x0: torch.Tensor, targets: torch.Tensor | None = None,
                 keep_at: int = 0):
        self.physics, self.y, self.x = physics, y, x0.clone()
        self.targets, self.iteration, self.keep_at, self.kept = targets, 0, keep_at, None
        self.stopped_at = torch.zeros(y.shape[0], dtype=torch.long, device=y.device)
        self.tiny = torch.finfo(y.dtype).tiny
        self.r = y - physics.A(self.x)
        self.s = physics.A_adjoint(self.r)
        self.p = self.s.clone()
        self.gamma = per_sample_dot(self.s, self.s)
        self.y_norm = torch.sqrt(per_sample_dot(y, y)).clamp_min(self.tiny)

    def update(self) -> None:
        running = self.stopped_at == 0
        q = self.physics.A(self.p)
        alpha = torch.where(running, self.gamma / per_sample_dot(q, q).clamp_min(self.tiny), 0)
        self.x = self.x + per_sample(alpha, self.x) * self.p
        self.r = self.r - per_sample(alpha, self.r) * q
        self.s = self.physics.A_adjoint(self.r)
        gamma = per_sample_dot(self.s, self.s)
        beta = torch.where(running, gamma / self.gamma.clamp_min(self.tiny), 1)
        self.p = torch.where(per_sample(running, self.s), self.s + per_sample(beta, self.s) * self.p, self.p)
        self.gamma = gamma
        self.iteration += 1
        if self.iteration == self.keep_at:
            self.kept = self.x
        if self.targets is not None:
            reached = running & (self.residual_norms() <= self.targets)
            self.stopped_at = torch.where(reached, self.iteration, self.stopped_at)

    def all_stopped(self, state: State) -> str | None:
        """Stop rule: every slice reached its target."""
        return "the discrepancy principle stopped every slice" if bool((self.stopped_at > 0).all()) else None

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
    """Method ``cgls``: from zero, stopped after ``iterations``, or by the discrepancy principle (``auto``: see the
    module; without a noise level, CGLS_ITERATIONS). Records the iterations run (the most over the slices), the
    rule, each slice's stop and the noise level."""
    if params["iterations"] != AUTO:
        x, residual = cgls(problem.physics, problem.y, problem.zeros(), params["iterations"], ctx)
        return Result(x, {"relative_residual": residual})
    noise, unknown = known_noise(problem)
    if noise is None:
        x, residual = cgls(problem.physics, problem.y, problem.zeros(), CGLS_ITERATIONS, ctx)
        rule = f"fixed default (no noise level: {unknown})"
        return Result(x, {"relative_residual": residual},
                      {"params": {"iterations": CGLS_ITERATIONS, "iterations_rule": rule}})
    tau = tau_for("cgls", problem.spec)
    targets = tau * torch.as_tensor(noise.sq_norms, dtype=problem.dtype, device=problem.device).sqrt()
    algorithm = CGLS(problem.physics, problem.y, problem.zeros(), targets, keep_at=CGLS_ITERATIONS)
    run, history = iterate(ctx, ctx.method, algorithm, AUTO_MAX_ITERATIONS, stop=[algorithm.all_stopped])
    missed = algorithm.stopped_at == 0
    x, stopped = run.estimate, [int(k) or CGLS_ITERATIONS for k in algorithm.stopped_at.tolist()]
    rule = f"discrepancy principle: ||Ax - y|| <= {tau:g} x noise norm {noise.norm:.4g} per slice"
    if bool(missed.any()):  # the residual never fell to the noise level: fitting on amplifies the noise
        x = torch.where(per_sample(missed, x), algorithm.kept, x)
        rule += (f"; {int(missed.sum())} slice(s) never reached it in {AUTO_MAX_ITERATIONS} iterations and took the "
                 f"fixed {CGLS_ITERATIONS}")
        ctx.warn(f"cgls: the residual of {int(missed.sum())} slice(s) never fell to the noise level in "
                 f"{AUTO_MAX_ITERATIONS} iterations (the model does not fit the data, or the noise is "
                 f"under-estimated); those slices took the fixed {CGLS_ITERATIONS} iterations")
    return Result(x, history, {"params": {
        "iterations": max(stopped), "iterations_rule": rule, "stopped_at": stopped, "tau": tau, **noise.record()}})
