"""The radar magnitude denoiser ``drunet-radar``: a 3D DRUNet D(m, sigma) of reflectivity magnitudes m, for
``mimo-pnp`` (:mod:`recon.solvers.csalsa`).

The shipped weights (``recon/weights/drunet-radar.safetensors``, see its card) were trained on the magnitudes of
random scenes of :mod:`recon.scenes` (magnitudes in [0, 1]: the unit of ``sigma``) by ``recon train denoiser
--dim 3``; ``recon train radar-denoiser`` draws such scenes itself. ``weights=W.safetensors`` takes other 3D,
1-channel weights. Weights trained on Rician noise (``--noise rician``: magnitudes of complex scenes with complex
noise) say so in their config, and mimo-pnp then gives them the magnitude as it is.

Volumes (B, 1, nz, ny, nx) are denoised in slabs of ``SLAB`` slices along z, each read with ``HALO`` more slices on
either side that are cut off again, so that memory is bounded by one slab: about 100 floats per voxel of
(SLAB + 2 HALO) x ny x nx (rounded up to multiples of 8) at width 16, ~80 MB on a 64 x 64 plane.
"""

from __future__ import annotations

import functools
from pathlib import Path

import torch

from recon.errors import UserError
from recon.weights import weights_path

SLAB = 48
HALO = 8


@functools.lru_cache(maxsize=4)
def _load(path: str, device: str):
    from recon.models.denoisers import load_denoiser

    return load_denoiser(path, device)


class DrunetRadar:
    """A trained 3D magnitude denoiser (declared in :mod:`recon.priors`, dims 3: volumes (B, 1, nz, ny, nx));
    ``weights`` overrides the shipped file."""

    def __init__(self, weights: str | Path | None = None):
        self.weights = Path(weights) if weights else None

    def model(self, device: torch.device):
        """(network, config), cached per file and device; UserError unless 3D 1-channel weights."""
        path = weights_path(self.weights, "drunet-radar", "recon train radar-denoiser")
        network, config = _load(str(path), str(device))
        if config.dim != 3 or config.channels != 1:
            raise UserError(f"these are {config.dim}D weights for {config.channels}-channel images, not 3D for "
                            "magnitudes", path=path, key="--set weights",
                            fix="use weights from `recon train radar-denoiser` (or `recon train denoiser --dim 3`)")
        return network, config

    def noise(self, device: torch.device) -> str:
        """The noise the weights were trained on: "gaussian" (added to magnitudes) or "rician" (magnitudes of
        complex images with complex noise), from their config."""
        return self.model(device)[1].noise

    @torch.no_grad()
    def denoise(self, x: torch.Tensor, sigma: float) -> torch.Tensor:
        """D(x, sigma) for magnitudes x (B, 1, nz, ny, nx), slab by slab along z (see the module)."""
        from recon.models.denoisers import apply_denoiser

        network, _ = self.model(x.device)
        nz = x.shape[2]
        out = torch.empty_like(x)
        for start in range(0, nz, SLAB):
            stop = min(start + SLAB, nz)
            low, high = max(0, start - HALO), min(nz, stop + HALO)
            denoised = apply_denoiser(network, x[:, :, low:high], sigma)
            out[:, :, start:stop] = denoised[:, :, start - low:stop - low]
        return out
