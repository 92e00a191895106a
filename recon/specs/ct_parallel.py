"""ct-parallel/1: parallel-beam CT, slice sinograms reconstructed into images (z, y, x)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from recon.errors import UserError, warn
from recon.specs import MeasurementView, Options, Simulator, SpecKind, given

if TYPE_CHECKING:
    import torch

    from recon.io.measurement import MeasurementReader
    from recon.noise import NoiseEstimate
    from recon.problem import Problem


def simulate(options: Options, volume: np.ndarray, spacing, rng: np.random.Generator, fits) -> tuple[dict, dict]:
    """Sinograms of ``volume`` (z, y, x) or (y, x) (:func:`recon.simulate.simulate_ct_parallel`)."""
    from recon.simulate import simulate_ct_parallel

    return simulate_ct_parallel(volume, given(options, "views", 60), given(options, "angle_range", math.pi),
                                given(options, "noise_std", 0.0), n_det=options.get("n_det"), rng=rng,
                                photons=options.get("photons"), voxel_size=spacing)


SIMULATOR = Simulator(
    frozenset({"volume", "key", "phantom", "size", "views", "angle_range", "noise_std", "photons", "n_det"}), simulate,
    lambda options, side: 4 * (2 + 1.5 * given(options, "views", 60) / side))
KIND = SpecKind(
    "ct-parallel/1", "recon.data_specs:ct-parallel.yaml", "recon.specs.ct_parallel:build", image="real", batch="z",
    axes=("z", "y", "x"), linear_slices=True, simulate=SIMULATOR,
    noise="recon.specs.ct_parallel:noise", file_noise="recon.specs.ct_parallel:file_noise",
    views=(MeasurementView("sinogram", ("z", "angle", "detector"), square=True),),
    voxel_size="recon.io.ct_geometry:voxel_size")


def noise(problem: Problem, attrs: dict) -> NoiseEstimate:
    """The noise level of the problem's sinograms (S, 1, n_views, n_det) in recon's line-integral unit: the stated
    ``noise_std`` and the Poisson variance scaled by :func:`~recon.io.ct_geometry.line_integral_scale` as the
    builder scaled the sinograms; each slice estimated on its own, so that a slice's estimate (and a method's choice
    from it) does not depend on the slices read with it."""
    from recon.io.ct_geometry import line_integral_scale
    from recon.noise import per_slice, sinogram_noise

    sinograms = problem.y.detach().cpu()[:, 0].numpy()
    scale = line_integral_scale(attrs)
    return per_slice([sinogram_noise(attrs, sinograms[s:s + 1], scale=scale) for s in range(len(sinograms))])


def file_noise(measurement: MeasurementReader, slices: slice | None) -> NoiseEstimate:
    """The noise level of the file's sinograms ``slices`` (estimated jointly), in the file's unit."""
    from recon.noise import sinogram_noise

    return sinogram_noise(measurement.attrs, measurement.read("sinogram", slices))


def build(measurement: MeasurementReader, slices: slice | None, device: torch.device,
          dtype: torch.dtype) -> Problem:
    """Sinograms in recon's units (:func:`~recon.io.ct_geometry.line_integral_scale`), the detector offset in the
    projector, the voxel size from the file; refuses what would give a wrong image silently (angles in degrees,
    units without a pixel size) and warns about what may (see :func:`warn_about_geometry`)."""
    import torch

    from recon.io.ct_geometry import ct_problems, line_integral_scale, voxel_size
    from recon.physics.ct import ParallelBeamCT
    from recon.problem import Problem
    from recon.problems import check_detector, check_scale, read_ground_truth

    attrs = measurement.attrs
    angles = measurement.read("angles")
    for problem in ct_problems(attrs, angles)[:1]:
        raise UserError(problem.what, path=measurement.path, key=problem.key, fix=problem.fix)
    sinogram = measurement.read("sinogram", slices)
    scale = line_integral_scale(attrs)
    if scale != 1:
        sinogram = sinogram / np.float32(scale)
    ny, nx = attrs["image_shape"][-2:]  # ints, and det_spacing a float: the spec types them
    check_scale(measurement, "sinogram", sinogram)
    check_detector(measurement, sinogram, (ny, nx))
    physics = ParallelBeamCT((ny, nx), angles, n_det=sinogram.shape[-1], det_spacing=attrs["det_spacing"],
                             det_offset=attrs["det_offset"], device=device, dtype=dtype)
    y = torch.as_tensor(sinogram.reshape(-1, 1, *sinogram.shape[-2:]), device=device, dtype=dtype)
    n_slices = y.shape[0]
    output_shape = (n_slices, ny, nx) if sinogram.ndim == 3 else (ny, nx)
    truth = read_ground_truth(measurement, slices)
    warn_about_geometry(measurement, physics, y[0, 0], None if truth is None else truth.reshape(-1, ny, nx)[0])
    voxel, unit = voxel_size(attrs, len(output_shape))
    return Problem(
        spec=measurement.spec.id, physics=physics, y=y, x_shape=(n_slices, 1, ny, nx), output_shape=output_shape,
        initial=lambda: physics.fbp(y), norm_shape=(1, 1, ny, nx), ground_truth=truth, voxel_size=voxel, unit=unit)


def warn_about_geometry(measurement: MeasurementReader, physics, sinogram: torch.Tensor,
                        truth: np.ndarray | None) -> None:
    """Warn (one line each) when the first slice's sinogram (n_views, n_det) reaches beyond the image, or
    disagrees in scale or shape with the projections of its ground truth (n_views, n_det)."""
    import torch

    from recon.io.ct_geometry import reach_warning, scale_warning

    values = sinogram.cpu().numpy()
    reach = reach_warning(values, physics.image_shape, physics.det_spacing, physics.det_offset)
    if reach:
        warn(reach, path=measurement.path, key="sinogram", fix="set image_shape, det_spacing and det_offset as "
             "docs/guides/ct-data.md describes")
    if truth is not None:
        projected = physics.A(torch.as_tensor(truth, device=sinogram.device, dtype=sinogram.dtype)[None, None])
        mismatch = scale_warning(values, projected[0, 0].cpu().numpy())
        if mismatch:
            warn(mismatch, path=measurement.path, key="sinogram",
                 fix="declare the units (pixel_size, unit, path_length_unit) and geometry as data_specs/"
                     "ct-parallel.yaml says, or read the original file (recon reads LoDoPaB, DXchange, NXtomo)")
