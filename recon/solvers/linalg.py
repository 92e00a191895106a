"""Shared linear algebra for the solvers: the operator norm, per-slice reductions and the regularised normal solve."""

from __future__ import annotations

import warnings

import torch

from recon.problem import Problem


def operator_sqnorm(problem: Problem, iterations: int = 100, tol: float = 1e-5, margin: float = 1.01) -> float:
    """An upper estimate of ||A||^2 (largest eigenvalue of A^T A), cached on the problem (``problem.sqnorm``).

    deepinv's power method on ``problem.norm_shape``, from a fixed random start so that results do not
    depend on the global RNG, times ``margin``: the power method approaches ||A||^2 from below, and step
    sizes 1/||A||^2 must not exceed the bound their convergence needs. The first call on a problem fixes the
    precision: later calls return the cached value whatever ``iterations`` and ``tol`` they ask for (C-SALSA's
    coarse estimate is therefore the one its :class:`~recon.solvers.normalised.Normalised` gets too).
    """
    if problem.sqnorm is None:
        shape = problem.norm_shape or problem.x_shape
        x0 = torch.zeros(shape, device=problem.device, dtype=problem.dtype)
        with torch.no_grad(), torch.random.fork_rng(devices=[problem.device] if problem.device.type == "cuda" else []):
            torch.manual_seed(0)
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="Power iteration: convergence not reached")
                value = problem.physics.compute_sqnorm(x0, max_iter=iterations, tol=tol, verbose=False)
        problem.sqnorm = margin * float(value)
    return problem.sqnorm


def per_sample(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Values (S,) shaped (S, 1, ..., 1) to broadcast against ``like``."""
    return values.reshape(-1, *([1] * (like.dim() - 1)))


def per_sample_dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """<a, b> for each batch element: shape (B,)."""
    return (a * b).flatten(1).sum(dim=1)


def relative(a: torch.Tensor, b: torch.Tensor) -> float:
    """||a - b|| / ||b|| over the whole batch (0-safe): the relative change or residual the histories record."""
    return float(torch.linalg.vector_norm(a - b) / torch.linalg.vector_norm(b).clamp_min(1e-30))


def solve_normal(physics, rhs: torch.Tensor, rho: float, init: torch.Tensor, iterations: int, weight: float = 1.0,
                 tol: float = 1e-6) -> torch.Tensor:
    """(weight A^T A + rho I) x = rhs, the regularised normal equations of the ADMM-type x-updates (pnp-admm, red,
    lpn, dds without TV_z, C-SALSA).

    The operator's hook: a physics object that has a faster or exact solver defines ``solve_normal(rhs, rho=,
    init=, iterations=, weight=, tol=)`` with this meaning (for instance a closed form where A^T A is diagonal in
    a known basis); otherwise :func:`cg_normal` runs ``iterations`` conjugate-gradient steps from ``init``.
    """
    hook = getattr(physics, "solve_normal", None)
    if hook is not None:
        return hook(rhs, rho=rho, init=init, iterations=iterations, weight=weight, tol=tol)
    return cg_normal(physics, rhs, rho, init, iterations, weight, tol)


def cg_normal(physics, rhs: torch.Tensor, rho: float, init: torch.Tensor, iterations: int,
              weight: float = 1.0, tol: float = 1e-6) -> torch.Tensor:
    """Solve (weight A^T A + rho I) x = rhs by at most ``iterations`` conjugate-gradient steps from ``init``.

    deepinv's ``conjugate_gradient`` with the batch (slice) axis parallel: it stops early only once every
    slice's residual is below ``tol`` relative to its right-hand side, so slabs of a volume agree with the
    whole volume to that tolerance (> 0). Its guard against division by zero is the dtype's tiniest number:
    the default 1e-8 is added to p^T A p and stalls the iteration once that falls near 1e-8.
    Memory: a few copies of x and of A x.
    """
    from deepinv.optim.linear import conjugate_gradient

    def normal(x: torch.Tensor) -> torch.Tensor:
        return weight * physics.A_adjoint(physics.A(x)) + rho * x

    return conjugate_gradient(normal, rhs, max_iter=iterations, tol=tol, eps=torch.finfo(rhs.dtype).tiny, init=init)


def cg_coupled(normal, rhs: torch.Tensor, iterations: int, init: torch.Tensor | None = None,
               tol: float = 1e-6) -> torch.Tensor:
    """At most ``iterations`` conjugate-gradient steps on normal(x) = rhs (from ``init``, else zero) with inner
    products over the whole tensor: for systems that couple the slices or frames (TV along z, a temporal model),
    where :func:`cg_normal`'s per-slice steps would be wrong. deepinv's ``conjugate_gradient`` with no parallel
    axis, and the dtype's tiniest number as its division guard (see :func:`cg_normal`)."""
    from deepinv.optim.linear import conjugate_gradient

    return conjugate_gradient(normal, rhs, max_iter=iterations, tol=tol, eps=torch.finfo(rhs.dtype).tiny,
                              parallel_dim=None, init=init)
