"""A reconstruction problem: an operator, its measurements and what the output should look like.

Layout inside: slices of a volume (or samples of a sparse-linear file) run along the batch axis, so
``x`` is (S, C, ny, nx) — C = 1 for real images, 2 for complex MRI images (real, imaginary) — or
(S, 1, n) for sparse-linear signals. Volumes on disk are (z, y, x); 2D files have S = 1.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from deepinv.physics import LinearPhysics

from recon.noise import NoiseEstimate
from recon.physics.masks import centre_slice
from recon.specs import SpecKind, get_kind


@dataclass
class Problem:
    """Everything a method needs; built from a measurement file by :mod:`recon.problems`."""

    spec: str
    physics: LinearPhysics
    y: torch.Tensor
    x_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    initial: Callable[[], torch.Tensor]
    """A cheap first estimate in the x layout (FBP for CT, the adjoint for MRI, zeros for sparse)."""
    norm_shape: tuple[int, ...] | None = None
    """x shape on which to estimate ||A|| (one slice when all slices share the operator); None: x_shape."""
    ground_truth: np.ndarray | None = None
    complex_image: bool = False
    voxel_size: tuple[float, ...] | None = None
    """Size of an output voxel along each output axis, in ``unit``; None: 1 pixel."""
    unit: str | None = None
    crop: tuple[int, int] | None = None
    """Centred (rows, columns) window of each output image that is written and scored (an MRI reconstruction field
    of view smaller than the k-space grid); None: the whole ``output_shape``."""
    noise_std: float | None = None
    """Standard deviation of the measurements' noise per real component, in y's unit, when the file states it."""
    sqnorm: float | None = None
    """||A||^2 estimated once and shared by the steps of a run (:func:`recon.solvers.linalg.operator_sqnorm`)."""
    coil_maps: dict | None = None
    """How the MRI coil maps were obtained (estimator and its parameters), recorded in the output; None otherwise."""
    noise: Callable[[], NoiseEstimate] | None = None
    """The measurements' noise level in y's unit (:func:`recon.noise.problem_noise`: the file's, else estimated),
    computed on the first call; raises UserError where it cannot be known. None: not built from a file."""

    @property
    def kind(self) -> SpecKind:
        """What recon knows about the problem's spec (:mod:`recon.specs`)."""
        return get_kind(self.spec)

    @property
    def axes(self) -> tuple[str, ...]:
        """Names of the output's axes: ("z", "y", "x"), ("t", "y", "x") for dynamic specs, ("sample", "n")."""
        return self.kind.output_axes(len(self.output_shape))

    @property
    def device(self) -> torch.device:
        return self.y.device

    @property
    def dtype(self) -> torch.dtype:
        return self.y.dtype

    def zeros(self) -> torch.Tensor:
        return torch.zeros(self.x_shape, device=self.device, dtype=self.dtype)

    def to_output(self, x: torch.Tensor) -> dict[str, np.ndarray]:
        """The arrays to write: ``reconstruction`` (complex64 for radar, the magnitude for MRI) and, for MRI,
        ``complex``; cropped to ``crop``."""
        x = x.detach().cpu()
        if self.complex_image:
            values = torch.complex(x[:, 0], x[:, 1]).numpy().astype(np.complex64, copy=False)
            values = self.crop_output(values.reshape(self.output_shape))
            if self.kind.reflectivity:
                return {"reconstruction": values}
            return {"reconstruction": np.abs(values), "complex": values}  # |complex64| is float32
        return {"reconstruction": self.crop_output(x.numpy().astype(np.float32, copy=False).reshape(self.output_shape))}

    def crop_output(self, array: np.ndarray) -> np.ndarray:
        """The centred ``crop`` window of the last two axes of an output-shaped ``array`` (unchanged without crop)."""
        if self.crop is None:
            return array
        return array[..., centre_slice(array.shape[-2], self.crop[0]), centre_slice(array.shape[-1], self.crop[1])]


def scored_pair(spec: str, image: np.ndarray, ground_truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """What quality metrics compare: the arrays themselves, or for radar the magnitudes each divided by its
    maximum (the scale and phase of a radar image carry no meaning)."""
    if not get_kind(spec).reflectivity:
        return image, ground_truth
    return tuple(np.abs(a) / max(float(np.abs(a).max()), 1e-30) for a in (image, ground_truth))
