"""Diffusion priors for ``dds`` and ``diffusion-mbir`` (declared in :mod:`recon.priors`): ``diffusion`` (shipped
weights chosen by the image type), ``diffusion-ct`` and ``diffusion-mri`` (one shipped network each).

``eps(x_t, t)`` is the trained eps_theta of :mod:`recon.models.diffusion` on x_t (S, C, ny, nx) in the model unit,
run ``slice_batch`` slices at a time so that the network's activations stay bounded whatever the volume.

Complex (MRI) images and a 1-channel network: the network models the *magnitude* of the image (the shipped
``diffusion-mri`` was trained on real magnitude slices) and the solvers give it the phase of their first (quick
TV) estimate, fixed — the magnitude-prior split recon also uses for radar (``mimo-pnp``). A 2-channel network
(``recon train diffusion --channels 2``) models (real, imaginary) directly. :meth:`DiffusionPrior.split` /
:meth:`join` do the conversion, so that solvers see real images in the network's channel count either way.

Weights load offline from ``recon/weights/diffusion-ct.safetensors`` and ``diffusion-mri.safetensors`` (trained by
scripts/train_diffusion_weights.py; their cards say on what), or from ``weights=W.safetensors``.
"""

from __future__ import annotations

import functools
from pathlib import Path

import torch

from recon.errors import UserError
from recon.weights import weights_path

SHIPPED = {False: "diffusion-ct", True: "diffusion-mri"}
"""Shipped weights of ``diffusion`` for real (CT) and complex (MRI) images."""


@functools.lru_cache(maxsize=4)
def _load(path: str, device: str):
    from recon.models.diffusion import load_diffusion

    return load_diffusion(path, device)


class DiffusionPrior:
    """A trained slice diffusion model as a prior (``diffusion``, ``diffusion-ct``, ``diffusion-mri``); ``weights``
    overrides the shipped file, ``shipped`` names it (None: chosen by the image type, see :data:`SHIPPED`)."""

    def __init__(self, weights: str | Path | None = None, shipped: str | None = None):
        self.weights = Path(weights) if weights else None
        self.shipped = shipped
        self.network = None
        """The loaded :class:`recon.models.diffusion.EpsilonUNet` (set by :meth:`load`)."""

    def load(self, complex_image: bool, channels: int, device: torch.device):
        """Load (cached per file and device) and return the network for images of the problem's kind;
        UserError unless it models 1-channel images (magnitudes) or ``channels``-channel ones."""
        path = weights_path(self.weights, self.shipped or SHIPPED[complex_image], "recon train diffusion")
        network, config = _load(str(path), str(device))
        if config.channels not in (1, channels):
            raise UserError(f"these weights model {config.channels}-channel images, the problem has {channels}",
                            path=path, key="--set weights",
                            fix="use weights trained with --channels 1 (magnitudes) or the problem's channel count")
        self.network = network
        return network

    def split(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """x (S, C, ny, nx) in recon's unit -> (the image the network models, the phase kept aside or None)."""
        if x.shape[1] == self.network.config.channels:
            return x, None
        magnitude = torch.linalg.vector_norm(x, dim=1, keepdim=True)
        return magnitude, torch.atan2(x[:, 1:2], x[:, 0:1])

    @staticmethod
    def join(image: torch.Tensor, phase: torch.Tensor | None) -> torch.Tensor:
        """The inverse of :meth:`split`: a magnitude with its phase back as (real, imaginary)."""
        if phase is None:
            return image
        return torch.cat((image * torch.cos(phase), image * torch.sin(phase)), dim=1)

    @torch.no_grad()
    def eps(self, x_t: torch.Tensor, t: float, slice_batch: int = 8) -> torch.Tensor:
        """eps_theta(x_t, t) for x_t (S, C, ny, nx) in the model unit, ``slice_batch`` slices at a time."""
        step = torch.tensor(float(t), device=x_t.device)
        return torch.cat([self.network(chunk, step) for chunk in x_t.split(slice_batch)])
