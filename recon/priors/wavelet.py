"""The ``wavelet-l1`` prior (declared in :mod:`recon.priors`): R(x) = sum |W x|_detail over orthonormal Haar
coefficients (:mod:`recon.shrinkage`)."""

from __future__ import annotations

import torch

from recon.shrinkage import DEFAULT_LEVELS, HaarBasis, group_norm, penalised_sum, soft_threshold

__all__ = ["HaarBasis", "WaveletL1"]


class WaveletL1:
    """R(x) = ||W x||_1 over the Haar detail bands (4 levels where the size allows); prox in closed form."""

    def __init__(self, levels: int = DEFAULT_LEVELS):
        self.levels = levels

    def prox(self, x: torch.Tensor, tau: float) -> torch.Tensor:
        basis = HaarBasis(x.shape[-2:], self.levels)
        detail = basis.detail.to(x.device)
        return basis.synthesis(soft_threshold(basis.analysis(x), tau, detail))

    def value(self, x: torch.Tensor) -> torch.Tensor:
        basis = HaarBasis(x.shape[-2:], self.levels)
        return penalised_sum(group_norm(basis.analysis(x)), basis.detail.to(x.device))
