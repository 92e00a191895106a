"""toy-blur/1: 2D images blurred by a Gaussian, a recon spec from a plugin package.

Everything recon needs is here: the spec's format (``toy-blur.yaml``), its kind (:data:`KIND`, named by the
``recon.specs`` entry point), its problem builder, whose operator is deepinv's :class:`~deepinv.physics.Blur`, and
its simulator (``recon simulate toy-blur --volume V.npy --noise-std 0.01 --out F.h5``).
The module imports neither torch nor deepinv until a file is reconstructed, as recon's registry requires.
"""

from __future__ import annotations

from recon.specs import MeasurementView, Simulator, SpecKind, given

BLUR_SIGMA = 1.5
"""The blur of simulated files, in pixels."""


def blur(sigma: float, device="cpu"):
    """The toy spec's operator: deepinv's Gaussian blur of ``sigma`` pixels (circular boundaries), on batches
    (B, 1, ny, nx)."""
    from deepinv.physics import Blur
    from deepinv.physics.functional.blur import gaussian_blur

    return Blur(filter=gaussian_blur(sigma=(sigma, sigma)), padding="circular", device=device)


def simulate(options, volume, spacing, rng, fits):
    """``volume`` (z, y, x) or (y, x) blurred by BLUR_SIGMA px, plus Gaussian noise of ``--noise-std`` times the
    blurred images' RMS."""
    import numpy as np
    import torch

    truth = np.asarray(volume, dtype=np.float32)
    images = torch.from_numpy(truth.reshape(-1, 1, *truth.shape[-2:]))
    blurred = blur(BLUR_SIGMA)(images).numpy().reshape(truth.shape)
    noise_std = given(options, "noise_std", 0.0) * float(np.sqrt(np.mean(blurred**2)))
    blurred = blurred + noise_std * rng.standard_normal(truth.shape).astype(np.float32)
    return {"blurred": blurred, "ground_truth": truth}, {"blur_sigma": BLUR_SIGMA, "noise_std": noise_std}


def noise(problem, attrs):
    """The noise level the file states (``noise_std``), for the methods' ``auto`` parameters."""
    import numpy as np

    from recon.errors import UserError
    from recon.noise import NoiseEstimate

    std = attrs.get("noise_std")
    if std is None:
        raise UserError("the file states no noise_std", key="noise_std", fix="add the attribute noise_std")
    counts = np.full(problem.y.shape[0], problem.y[0].numel(), dtype=np.float64)
    return NoiseEstimate(std, std**2 * counts, "file", "the file's noise_std")


KIND = SpecKind(
    "toy-blur/1", "recon_toy_blur:toy-blur.yaml", "recon_toy_blur:build", image="real", batch="z",
    axes=("z", "y", "x"), linear_slices=True, defaults_like="ct-parallel/1", noise="recon_toy_blur:noise",
    simulate=Simulator(frozenset({"volume", "key", "phantom", "size", "noise_std"}), simulate,
                       lambda options, side: 4 * 3),
    views=(MeasurementView("blurred", ("z", "y", "x")),))


def build(measurement, slices, device, dtype):
    """The problem of the slices ``slices`` of an open, validated toy-blur file: x (S, 1, ny, nx), y alike."""
    import torch

    from recon.problem import Problem
    from recon.problems import check_scale, read_ground_truth

    blurred = measurement.read("blurred", slices)
    check_scale(measurement, "blurred", blurred)
    physics = blur(measurement.attrs["blur_sigma"], device)
    ny, nx = blurred.shape[-2:]
    y = torch.as_tensor(blurred.reshape(-1, 1, ny, nx), device=device, dtype=dtype)
    return Problem(spec=measurement.spec.id, physics=physics, y=y, x_shape=tuple(y.shape), output_shape=blurred.shape,
                   initial=lambda: physics.A_adjoint(y), norm_shape=(1, 1, ny, nx),
                   ground_truth=read_ground_truth(measurement, slices), noise_std=measurement.attrs.get("noise_std"))
