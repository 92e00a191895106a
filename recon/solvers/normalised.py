"""The problem in normalised units, as the regularised methods solve it.

Methods whose weights should not depend on the operator's size or the data's unit (tv, the learned priors, C-SALSA,
the unfolded networks, psm) divide the image by a scale s (per slice, or one for the whole problem) and solve

    min_u  w/2 ||A u - y/s||^2 + R(u),   w = 1/||A||^2,

then return s u. The data term's gradient is then 1-Lipschitz and images are about [0, 1], the unit the learned
priors were trained in, so one set of defaults serves CT and MRI. :class:`Normalised` holds s, y/s, w and the
first estimate / s; :func:`robust_scale` and :func:`slice_scale` are the usual scales.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from recon.problem import Problem
from recon.proximal_gradient import data_terms
from recon.shrinkage import group_norm
from recon.solvers.linalg import operator_sqnorm, per_sample


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
    scale = torch.quantile(group_norm(x.detach()).flatten(1), quantile, dim=1)
    return torch.where(scale > 0, scale, torch.ones_like(scale))


@dataclass
class Normalised:
    """The problem divided by ``scale`` s: a float, or a tensor (S,) of one scale per slice (see the module)."""

    problem: Problem
    scale: float | torch.Tensor
    y: torch.Tensor
    """y / s."""
    sqnorm: float
    """||A||^2 (:func:`recon.solvers.linalg.operator_sqnorm`)."""
    x0: torch.Tensor | None = None
    """The first estimate / s, when one was given."""

    @classmethod
    def by(cls, problem: Problem, scale: float | torch.Tensor, estimate: torch.Tensor | None = None) -> Normalised:
        """The problem divided by ``scale``, with ``estimate`` (problem units) as the first estimate."""
        normalised = cls(problem, scale, problem.y, operator_sqnorm(problem))
        normalised.y = normalised.divide(problem.y)
        normalised.x0 = None if estimate is None else normalised.divide(estimate)
        return normalised

    @classmethod
    def per_slice(cls, problem: Problem, estimate: torch.Tensor | None = None) -> Normalised:
        """Per-slice scales from ``estimate`` (default: the problem's first estimate), which becomes ``x0``."""
        estimate = problem.initial() if estimate is None else estimate
        return cls.by(problem, slice_scale(estimate), estimate)

    @property
    def weight(self) -> float:
        """w = 1/||A||^2, the data term's weight."""
        return 1.0 / self.sqnorm

    @property
    def physics(self):
        return self.problem.physics

    def divide(self, values: torch.Tensor) -> torch.Tensor:
        """Values in the problem's units (x or y layout) divided by s."""
        return values / (per_sample(self.scale, values) if torch.is_tensor(self.scale) else self.scale)

    def units(self, u: torch.Tensor) -> torch.Tensor:
        """s u: a normalised image back in the problem's units."""
        return u * (per_sample(self.scale, u) if torch.is_tensor(self.scale) else self.scale)

    def data_terms(self, residual: torch.Tensor) -> torch.Tensor:
        """w/2 ||A u - y/s||^2 per slice (S,), given the residual A u - y/s (differentiable)."""
        return self.weight * data_terms(residual)

    def data_term(self, u: torch.Tensor) -> float:
        """w/2 ||A u - y/s||^2, mean over slices (one application of A)."""
        return float(self.data_terms(self.physics.A(u) - self.y).mean())
