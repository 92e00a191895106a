"""Learned proximal networks as priors (declared in :mod:`recon.priors`): ``lpn-ct`` (real images), ``lpn-mri``
(complex images, 2 channels) and ``lpn`` (whichever of the two fits the image's channels). Weights ship in
``recon/weights`` and load offline; ``weights=W.safetensors`` (from ``recon train lpn``) replaces them.

The network f is exactly the prox of its learned regulariser R at unit weight (see :mod:`recon.models.lpn`).
For a weight tau < 1, ``prox`` returns f_tau = (1 - tau) x + tau f(x): the gradient of the convex
(1 - tau) ||x||^2 / 2 + tau psi, hence the exact prox of a regulariser R_tau, equal to tau R to first order.
Weights above 1 have no such form and are refused. As a denoiser (for PnP methods), the LPN trained at noise
level sigma_t is the prox of about sigma_t^2 (-log p), so denoising at sigma is the prox at weight
tau = (sigma / sigma_t)^2, capped at 1. Images are in the solvers' normalised unit.

Memory: the prox runs over chunks of at most ``CHUNK_PIXELS`` pixels (whole slices; at least one slice), about
3 KB per pixel for 64 hidden channels and 4 layers (forward and backward pass), i.e. under 1 GB per chunk.
"""

from __future__ import annotations

from pathlib import Path

import torch

from recon.errors import UserError
from recon.models.lpn import LPN, Inversion, load_lpn, regulariser_map
from recon.weights import shipped as shipped_path

SHIPPED = {1: "lpn-ct", 2: "lpn-mri"}
"""Shipped weights by image channels: real (CT-like) and complex (MRI-like) images."""
CHUNK_PIXELS = 2**18


class LPNPrior:
    """A learned proximal network (``lpn``, ``lpn-ct``, ``lpn-mri``); ``weights``: a user file (None: the shipped
    weights), ``shipped``: the name of the shipped weights (None: chosen by the image's channels, see SHIPPED)."""

    def __init__(self, weights: str | Path | None = None, shipped: str | None = None):
        self.weights = Path(weights) if weights else None
        self.shipped = shipped
        if self.weights is not None and not self.weights.is_file():
            raise UserError("weights file not found", path=self.weights, key="--set weights",
                            fix="give weights written by `recon train lpn`")
        self._models: dict[tuple, LPN] = {}

    def weights_path(self, channels: int) -> Path:
        """The weights file used for images with ``channels`` channels."""
        if self.weights is not None:
            return self.weights
        name = self.shipped or SHIPPED.get(channels)
        if name is None:
            raise UserError(f"no shipped LPN weights for {channels}-channel images", key="--prior",
                            fix="train some with `recon train lpn` and pass --set weights=W.safetensors")
        return shipped_path(name)

    def model(self, x: torch.Tensor) -> LPN:
        """The network for images like x (B, C, H, W), on x's device and dtype (loaded once per device/dtype)."""
        key = (x.shape[1], x.device, x.dtype)
        if key not in self._models:
            path = self.weights_path(x.shape[1])
            model = load_lpn(path, x.device).to(x.dtype)
            if model.config.channels != x.shape[1]:
                kinds = {1: "real", 2: "complex (2-channel)"}
                raise UserError(f"these LPN weights take {model.config.channels}-channel images, not the "
                                f"{kinds.get(x.shape[1], x.shape[1])} images of this problem", path=path,
                                key="--prior", fix="use lpn-ct for CT, lpn-mri for MRI, or matching --set weights")
            self._models[key] = model
        return self._models[key]

    def prox(self, x: torch.Tensor, tau: float = 1.0) -> torch.Tensor:
        """f(x) for tau = 1, (1 - tau) x + tau f(x) for 0 <= tau < 1 (see the module); x (B, C, H, W)."""
        if not 0.0 <= tau <= 1.0 + 1e-6:
            raise UserError(f"an LPN is a prox at weights up to 1, not {tau:.4g}", key="--prior",
                            fix="lower the prior's weight in the method's parameters, or use a denoiser prior")
        model = self.model(x)
        chunk = max(1, CHUNK_PIXELS // (x.shape[-2] * x.shape[-1]))
        out = torch.cat([model(part, create_graph=False) for part in x.detach().split(chunk)])
        return out if tau >= 1.0 else torch.lerp(x, out, tau)

    def denoise(self, x: torch.Tensor, sigma: float) -> torch.Tensor:
        """The prox at weight min(1, (sigma / sigma_t)^2), sigma_t the training noise level (see the module)."""
        return self.prox(x, min(1.0, (sigma / self.model(x).config.sigma) ** 2))

    def value_map(self, x: torch.Tensor, preimage: torch.Tensor | None = None, tau: float = 1.0) -> torch.Tensor:
        """Per-pixel terms of R_tau(x), (B, 1, H, W) (see :func:`recon.models.lpn.regulariser_map`), chunked like
        ``prox``. ``preimage``: a known y with f_tau(y) = x (e.g. the input of the prox that gave x); else x is
        inverted by L-BFGS."""
        model = self.model(x)
        chunk = max(1, CHUNK_PIXELS // (x.shape[-2] * x.shape[-1]))
        parts = x.detach().split(chunk)
        known = [None] * len(parts) if preimage is None else preimage.detach().split(chunk)
        return torch.cat([regulariser_map(model, part, None if y is None else Inversion(y, y.new_zeros(len(y))), tau)
                          for part, y in zip(parts, known, strict=True)])

    def value(self, x: torch.Tensor) -> torch.Tensor:
        """R(x) per image, (B,)."""
        return self.value_map(x).flatten(1).sum(dim=1)
