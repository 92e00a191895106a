"""Learned denoiser priors for PnP and RED (declared in :mod:`recon.priors`): ``drunet`` (shipped weights chosen by
the image type), ``drunet-ct`` and ``drunet-mri`` (one shipped network each).

``denoise(x, sigma)`` is the trained DRUNet D(x, sigma) (:mod:`recon.models.denoisers`); ``grad(x, sigma)`` is
RED's gradient x - D(x, sigma). Both take x as (S, C, ny, nx) in the normalised unit the weights were trained
in (0.99 quantile of the image about 1) and work slice by slice, ``CHUNK`` slices at a time, so that the
network's activations stay bounded (about 60 floats per pixel of a chunk at the default width).

Weights load offline from ``recon/weights/drunet-ct.safetensors`` and ``drunet-mri.safetensors`` (trained by
scripts/train_denoiser_weights.py; their cards say on what), or from ``weights=W.safetensors`` written by
``recon train denoiser``. A 1-channel network denoises the real and imaginary parts of a complex (MRI) image
as two images; the shipped ones were trained on negated patches too (``--signed``) for that.
"""

from __future__ import annotations

import functools
from pathlib import Path

import torch

from recon.errors import UserError
from recon.weights import weights_path

SHIPPED = {1: "drunet-ct", 2: "drunet-mri"}
"""Shipped weights of ``drunet`` per image channel count: real images (CT) and complex ones (MRI, denoised as
real and imaginary parts by the 1-channel network)."""
CHUNK = 8


@functools.lru_cache(maxsize=8)
def _load(path: str, device: str):
    from recon.models.denoisers import load_denoiser

    return load_denoiser(path, device)


class DenoiserPrior:
    """A trained DRUNet as a prior (``drunet``, ``drunet-ct``, ``drunet-mri``); ``weights`` overrides the shipped file,
    ``shipped`` names the shipped file (None: chosen by the image's channels, see :data:`SHIPPED`)."""

    def __init__(self, weights: str | Path | None = None, shipped: str | None = None):
        self.weights = Path(weights) if weights else None
        self.shipped = shipped

    def model(self, channels: int, device: torch.device):
        """(network, config) for images with ``channels`` channels, cached per file and device."""
        path = weights_path(self.weights, self.shipped or SHIPPED.get(channels, SHIPPED[1]), "recon train denoiser")
        network, config = _load(str(path), str(device))
        if config.channels not in (1, channels) or config.dim != 2:
            raise UserError(f"these are {config.dim}D weights for {config.channels}-channel images, not 2D for "
                            f"{channels}-channel ones", path=path, key="--set weights",
                            fix=f"use 2D weights trained with --channels {channels}")
        return network, config

    @torch.no_grad()
    def denoise(self, x: torch.Tensor, sigma: float) -> torch.Tensor:
        """D(x, sigma) for x (S, C, ny, nx), ``CHUNK`` slices at a time."""
        from recon.models.denoisers import apply_denoiser

        network, config = self.model(x.shape[1], x.device)
        images = x.reshape(-1, config.channels, *x.shape[2:])  # channel-wise for a 1-channel network
        return torch.cat([apply_denoiser(network, chunk, sigma) for chunk in images.split(CHUNK)]).reshape(x.shape)

    def grad(self, x: torch.Tensor, sigma: float) -> torch.Tensor:
        """RED's gradient x - D(x, sigma)."""
        return x - self.denoise(x, sigma)
