"""Proximal gradient: the one iteration behind ``ista``/``iht``, ``pnp-pgd`` and the unfolded networks.

    x_{k+1} = prox_k(x_k - a_k A^T (A x_k - y))

with the residual A x - y carried from step to step, so that each step applies A once and A^T once and the data
term of the new iterate costs nothing more. The step sizes a_k and the prox are the caller's: 1/||A||^2 and a
prior's prox for ISTA/IHT, a denoiser for PnP-PGD, learned step sizes and thresholds for the unfolded networks
(:mod:`recon.models.unfolded`, its trainable form). With it, :func:`data_terms`, the data term of every method.
Imports only torch: a low module that models and solvers share.
"""

from __future__ import annotations

from collections.abc import Callable

import torch


class ProximalGradient:
    """The iterate x (B, C, ...) and its residual A x - y, advanced by :meth:`step`."""

    def __init__(self, physics, y: torch.Tensor, x0: torch.Tensor, residual: torch.Tensor | None = None):
        """``residual``: A x0 - y when the caller has it (e.g. -y at x0 = 0), else computed here."""
        self.physics, self.y, self.x = physics, y, x0
        self.residual = physics.A(x0) - y if residual is None else residual

    def step(self, step_size: float | torch.Tensor, prox: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
        """x <- prox(x - step_size A^T (A x - y)); returns the new x."""
        self.x = prox(self.x - step_size * self.physics.A_adjoint(self.residual))
        self.residual = self.physics.A(self.x) - self.y
        return self.x



def data_terms(residual: torch.Tensor) -> torch.Tensor:
    """The data term 1/2 ||r||^2 of a residual r = A x - y per batch element (B,): the one every method records."""
    return 0.5 * (residual**2).flatten(1).sum(1)
