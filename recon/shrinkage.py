"""Group shrinkage and the orthonormal 2D Haar transform: maths shared by priors, models, solvers and training.

Written here rather than with deepinv's ``WaveletPrior``/``WaveletDenoiser`` (ptwt): those threshold each
channel on its own, which for complex MRI images (real, imag) changes the phase; here a coefficient's size is
its complex magnitude (group thresholding), and ``tau`` may be a per-sample tensor that gradients flow into
(the learned thresholds of the unfolded networks). It also spares the ptwt and PyWavelets dependencies. Cost,
measured: 15 ms against deepinv's 9.4 ms for one 4-level prox of (16, 2, 128, 128), one CPU thread. The Haar
transform is exact and orthonormal (W^T W = W W^T = I), so the prox of lam ||W x||_1 is W^T soft(W x, lam).

Coefficients sit in the usual pyramid layout, same shape as the image. The coarsest approximation band is
not penalised. Channels (dim 1) are grouped: for complex MRI images (real, imag) a coefficient's size is
its complex magnitude, so thresholding keeps the phase. Imports only torch (a low module: see
docs/architecture.md, layering).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

DEFAULT_LEVELS = 4
_EPS = 1e-12  # floor of |c|: keeps 1/|c| and the gradient of |c| finite at c = 0 (EPS^2 is a normal float32)


def _usable_levels(shape: tuple[int, ...], levels: int) -> int:
    """Levels the Haar pyramid can take on ``shape`` (H, W): each level halves both sides, which must be even."""
    usable = 0
    h, w = shape
    while usable < levels and h % 2 == 0 and w % 2 == 0 and min(h, w) >= 4:
        usable, h, w = usable + 1, h // 2, w // 2
    return usable


class HaarBasis:
    """Orthonormal multi-level 2D Haar transform on the last two dims of (B, C, H, W) tensors.

    ``levels`` is capped by what the image size allows (see :func:`_usable_levels`); with 0 levels (or
    signals that are not 2D images) the transform is the identity. ``detail`` is a bool mask (H, W), True
    on the coefficients that are penalised (all but the coarsest approximation band).
    """

    def __init__(self, shape: tuple[int, ...], levels: int = DEFAULT_LEVELS):
        self.levels = _usable_levels(tuple(shape), levels) if len(shape) == 2 else 0
        self.detail = torch.ones(tuple(shape), dtype=torch.bool)
        if self.levels:
            h, w = (n >> self.levels for n in shape)
            self.detail[:h, :w] = False

    def analysis(self, x: torch.Tensor) -> torch.Tensor:
        """Image (..., H, W) -> coefficients (..., H, W)."""
        return _analysis(x, self.levels)

    def synthesis(self, c: torch.Tensor) -> torch.Tensor:
        """Coefficients (..., H, W) -> image (..., H, W); the inverse (and adjoint) of :meth:`analysis`."""
        return _synthesis(c, self.levels)


def _analysis(x: torch.Tensor, levels: int) -> torch.Tensor:
    """One Haar level on the whole of x (pixel quads -> (LL, LH; HL, HH) / 2), then recurse into LL."""
    if levels == 0:
        return x
    quad = x.reshape(*x.shape[:-2], x.shape[-2] // 2, 2, x.shape[-1] // 2, 2)
    a, b, d, e = quad[..., 0, :, 0], quad[..., 0, :, 1], quad[..., 1, :, 0], quad[..., 1, :, 1]
    low = _analysis((a + b + d + e) / 2, levels - 1)
    top = torch.cat([low, (a - b + d - e) / 2], dim=-1)
    bottom = torch.cat([(a + b - d - e) / 2, (a - b - d + e) / 2], dim=-1)
    return torch.cat([top, bottom], dim=-2)


def _synthesis(c: torch.Tensor, levels: int) -> torch.Tensor:
    """Inverse of :func:`_analysis` (the 4 x 4 quad transform is symmetric and orthogonal)."""
    if levels == 0:
        return c
    h, w = c.shape[-2] // 2, c.shape[-1] // 2
    ll, lh = _synthesis(c[..., :h, :w], levels - 1), c[..., :h, w:]
    hl, hh = c[..., h:, :w], c[..., h:, w:]
    a, b = (ll + lh + hl + hh) / 2, (ll - lh + hl - hh) / 2
    d, e = (ll + lh - hl - hh) / 2, (ll - lh - hl + hh) / 2
    rows = torch.stack([torch.stack([a, b], dim=-1), torch.stack([d, e], dim=-1)], dim=-3)
    return rows.reshape(*c.shape)


def group_norm(c: torch.Tensor) -> torch.Tensor:
    """|c| over the channels (dim 1), at least 1e-12: (B, C, ...) -> (B, 1, ...); the complex magnitude for C = 2.

    (A sum and a square root: ``torch.linalg.vector_norm`` over dim 1 measured 50x slower on CPU.)
    """
    return torch.sqrt((c * c).sum(dim=1, keepdim=True).clamp_min(_EPS**2))


def soft_threshold(c: torch.Tensor, tau: torch.Tensor | float, where: torch.Tensor | None = None) -> torch.Tensor:
    """Group soft thresholding c * max(0, 1 - tau / |c|) (the prox of tau |c|), only ``where`` (None: everywhere).

    ``tau`` is a float or broadcasts against (B, 1, ...); differentiable in c and tau (no NaN at c = 0).
    """
    norm = group_norm(c)
    shrunk = c * (torch.relu(norm - tau) / norm)
    return shrunk if where is None else torch.where(where, shrunk, c)


def penalised_sum(values: torch.Tensor, where: torch.Tensor) -> torch.Tensor:
    """Sum per batch element of ``values`` (B, 1, ...) over the positions ``where``: shape (B,)."""
    return (values * where).flatten(1).sum(dim=1)


def magnitude_prox(u: torch.Tensor, prox: Callable[[torch.Tensor, float], torch.Tensor]) -> torch.Tensor:
    """prox(|u|, peak) exp(j angle u) for u (B, 2, ...) (real, imaginary): ``prox`` maps magnitudes (B, 1, ...)
    and their peak max |u| to magnitudes; negative outputs are clipped to 0. Where |u| = 0 the phase is taken as 0.
    (Radar's priors act on the magnitude this way; lpn's box bounds complex magnitudes with it.)
    """
    magnitude = torch.linalg.vector_norm(u, dim=1, keepdim=True)
    new = prox(magnitude, float(magnitude.max())).clamp_min(0)
    zero = magnitude <= torch.finfo(u.dtype).tiny
    ratio = torch.where(zero, torch.zeros_like(new), new / torch.where(zero, torch.ones_like(magnitude), magnitude))
    out = u * ratio
    out[:, :1] += torch.where(zero, new, torch.zeros_like(new))
    return out
