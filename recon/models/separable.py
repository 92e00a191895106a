"""The partially separable model of a dynamic image, F = Lambda Psi (``psm``, ``red-psm`` and their start).

A sequence f of P frames (P, C, ny, nx) is modelled by K+1 spatial basis images Lambda (K+1, C, ny, nx) weighted by
temporal functions Psi (K+1, P) = Z B, where B (d, P) is the cubic-spline interpolation from d knots evenly spread
over the scan to the P frame times and Z (K+1, d) a small latent.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


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
