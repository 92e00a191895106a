"""Shared linear algebra for the solvers: operator norms and the problem scale."""

from __future__ import annotations

import warnings

import torch

from recon.problem import Problem


def operator_sqnorm(problem: Problem, iterations: int = 100, tol: float = 1e-5, margin: float = 1.01) -> float:
    """An upper estimate of ||A||^2 (largest eigenvalue of A^T A), cached on the problem.

    deepinv's power method on ``problem.norm_shape``, from a fixed random start so that results do not
    depend on the global RNG, times ``margin``: the power method approaches ||A||^2 from below, and step
    sizes 1/||A||^2 must not exceed the bound their convergence needs.
    """
    if "sqnorm" not in problem.extras:
        shape = problem.norm_shape or problem.x_shape
        x0 = torch.zeros(shape, device=problem.device, dtype=problem.dtype)
        with torch.no_grad(), torch.random.fork_rng(devices=[problem.device] if problem.device.type == "cuda" else []):
            torch.manual_seed(0)
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="Power iteration: convergence not reached")
                value = problem.physics.compute_sqnorm(x0, max_iter=iterations, tol=tol, verbose=False)
        problem.extras["sqnorm"] = margin * float(value)
    return problem.extras["sqnorm"]


def robust_scale(x: torch.Tensor, quantile: float = 0.99) -> float:
    """The ``quantile`` of |x| (complex images: of the magnitude), on at most ~1e6 strided values; 1 if zero.

    Methods divide the problem by this scale so that their regularisation weights do not depend on the
    units of the data (HU, attenuation per pixel, arbitrary MRI intensity).
    """
    magnitude = x.detach().abs().flatten()
    stride = max(1, magnitude.numel() // 1_000_000)
    value = float(torch.quantile(magnitude[::stride].float(), quantile))
    return value if value > 0 else 1.0


def slice_scale(x: torch.Tensor, quantile: float = 0.99) -> torch.Tensor:
    """Per-slice :func:`robust_scale`: the ``quantile`` of the magnitude over channels of each slice of
    x (S, C, ...), shape (S,); 1 for an all-zero slice. Methods that work per slice divide by it."""
    from recon.priors.wavelet import group_norm

    scale = torch.quantile(group_norm(x.detach()).flatten(1), quantile, dim=1)
    return torch.where(scale > 0, scale, torch.ones_like(scale))


def per_sample(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Values (S,) shaped (S, 1, ..., 1) to broadcast against ``like``."""
    return values.reshape(-1, *([1] * (like.dim() - 1)))


def cg_normal(physics, rhs: torch.Tensor, rho: float, init: torch.Tensor, iterations: int,
              weight: float = 1.0, tol: float = 1e-6) -> torch.Tensor:
    """Solve (weight A^T A + rho I) x = rhs by at most ``iterations`` conjugate-gradient steps from ``init``.

    deepinv's ``conjugate_gradient`` with the batch (slice) axis parallel: it stops early only once every
    slice's residual is below ``tol`` relative to its right-hand side, so slabs of a volume agree with the
    whole volume to that tolerance (> 0). Its guard against division by zero is the dtype's tiniest number:
    the default 1e-8 is added to p^T A p and stalls the iteration once that falls near 1e-8.
    The x-update of PnP-ADMM, of RED's fixed point and of LPN; memory: a few copies of x and of A x.
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
