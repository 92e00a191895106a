"""Hand-made sparsity priors: the l1 norm (soft thresholding) and the l0 count (hard thresholding)."""

from __future__ import annotations

import math

import torch

from recon.priors import Prior, register_prior


def _sum_per_sample(x: torch.Tensor) -> torch.Tensor:
    return x.flatten(1).sum(dim=1)


@register_prior
class L1(Prior):
    """R(x) = ||x||_1; its prox is soft thresholding at tau."""

    name = "l1"
    summary = "l1 norm, prox = soft thresholding"
    capabilities = frozenset({"prox"})

    def prox(self, x: torch.Tensor, tau: float) -> torch.Tensor:
        return torch.sign(x) * torch.clamp(x.abs() - tau, min=0)

    def value(self, x: torch.Tensor) -> torch.Tensor:
        return _sum_per_sample(x.abs())


@register_prior
class L0(Prior):
    """R(x) = ||x||_0 (count of nonzeros); its prox is hard thresholding at sqrt(2 tau)."""

    name = "l0"
    summary = "l0 count, prox = hard thresholding"
    capabilities = frozenset({"prox"})

    def prox(self, x: torch.Tensor, tau: float) -> torch.Tensor:
        return torch.where(x.abs() > math.sqrt(2 * tau), x, torch.zeros_like(x))

    def value(self, x: torch.Tensor) -> torch.Tensor:
        return _sum_per_sample((x != 0).to(x.dtype))
