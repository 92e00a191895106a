"""toy-blur/1: 2D images blurred by a Gaussian, a recon spec from a plugin package.

Everything recon needs is here: the spec's format (``toy-blur.yaml``), its kind (:data:`KIND`, named by the
``recon.specs`` entry point) and its problem builder, whose operator is deepinv's :class:`~deepinv.physics.Blur`.
The module imports neither torch nor deepinv until a file is reconstructed, as recon's registry requires.
"""

from __future__ import annotations

from recon.specs import MeasurementView, SpecKind

KIND = SpecKind(
    "toy-blur/1", "recon_toy_blur:toy-blur.yaml", "recon_toy_blur:build", image="real", batch="z",
    axes=("z", "y", "x"), linear_slices=True, defaults_like="ct-parallel/1",
    views=(MeasurementView("blurred", ("z", "y", "x")),))


def build(measurement, slices, device, dtype):
    """The problem of the slices ``slices`` of an open, validated toy-blur file: x (S, 1, ny, nx), y alike."""
    import torch
    from deepinv.physics import Blur
    from deepinv.physics.functional.blur import gaussian_blur

    from recon.problem import Problem
    from recon.problems import check_scale, read_ground_truth

    blurred = measurement.read("blurred", slices)
    check_scale(measurement, "blurred", blurred)
    sigma = measurement.attrs["blur_sigma"]
    physics = Blur(filter=gaussian_blur(sigma=(sigma, sigma)), padding="circular", device=device)
    ny, nx = blurred.shape[-2:]
    y = torch.as_tensor(blurred.reshape(-1, 1, ny, nx), device=device, dtype=dtype)
    return Problem(spec=measurement.spec.id, physics=physics, y=y, x_shape=tuple(y.shape), output_shape=blurred.shape,
                   initial=lambda: physics.A_adjoint(y), norm_shape=(1, 1, ny, nx),
                   ground_truth=read_ground_truth(measurement, slices), noise_std=measurement.attrs.get("noise_std"))
