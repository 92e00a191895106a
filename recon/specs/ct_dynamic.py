"""ct-dynamic/1: dynamic parallel-beam CT, a few views per time frame, frames (t, y, x)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from recon.specs import MeasurementView, Options, Simulator, SpecKind, given

if TYPE_CHECKING:
    import torch

    from recon.io.measurement import MeasurementReader
    from recon.noise import NoiseEstimate
    from recon.problem import Problem


def simulate(options: Options, frames: np.ndarray, spacing, rng: np.random.Generator, fits) -> tuple[dict, dict]:
    """Views of the sequence ``frames`` (t, y, x), a few per frame (:func:`recon.simulate.simulate_ct_dynamic`)."""
    from recon.simulate import simulate_ct_dynamic

    return simulate_ct_dynamic(frames, given(options, "views_per_frame", 1), options.get("order") or "bit-reversal",
                               given(options, "noise_std", 0.0), given(options, "angle_range", math.pi),
                               bool(options.get("pi_symmetry")), n_det=options.get("n_det"), rng=rng)


SIMULATOR = Simulator(
    frozenset({"volume", "key", "phantom", "size", "frames", "views_per_frame", "order", "angle_range", "pi_symmetry",
               "noise_std", "n_det"}), simulate,
    lambda options, side: 4 * (2 + 1.5 * given(options, "views_per_frame", 1) / side))
KIND = SpecKind(
    "ct-dynamic/1", "recon.data_specs:ct-dynamic.yaml", "recon.specs.ct_dynamic:build", image="real", batch="time",
    axes=("t", "y", "x"), simulate=SIMULATOR, noise="recon.specs.ct_dynamic:noise",
    file_noise="recon.specs.ct_dynamic:file_noise",
    views=(MeasurementView("sinogram", ("frame view", "detector"), "frames_as_rows", square=True),))


def noise(problem: Problem, attrs: dict) -> NoiseEstimate:
    """The noise level of the problem's sinograms (P, 1, views per frame, n_det), all frames estimated jointly (one
    frame holds only views_per_frame x n_det bins)."""
    from recon.noise import sinogram_noise

    return sinogram_noise(attrs, problem.y.detach().cpu()[:, 0].numpy())


def file_noise(measurement: MeasurementReader, slices: slice | None) -> NoiseEstimate:
    """The noise level of all the file's frames (estimated jointly, whatever ``slices``), in the file's unit."""
    from recon.noise import sinogram_noise

    return sinogram_noise(measurement.attrs, measurement.read("sinogram"))


def build(measurement: MeasurementReader, slices: slice | None, device: torch.device,
          dtype: torch.dtype) -> Problem:
    import torch

    from recon.physics.dynamic import DynamicParallelCT
    from recon.problem import Problem
    from recon.problems import check_detector, check_scale, read_ground_truth

    sinogram = measurement.read("sinogram")
    ny, nx = measurement.attrs["image_shape"]
    check_scale(measurement, "sinogram", sinogram)
    check_detector(measurement, sinogram, (ny, nx))
    physics = DynamicParallelCT((ny, nx), measurement.read("angles"), n_det=sinogram.shape[-1],
                                det_spacing=measurement.attrs["det_spacing"], device=device, dtype=dtype)
    y = torch.as_tensor(sinogram[:, None], device=device, dtype=dtype)  # (P, 1, V, n_det)
    n_frames = y.shape[0]
    return Problem(
        spec=measurement.spec.id, physics=physics, y=y, x_shape=(n_frames, 1, ny, nx), output_shape=(n_frames, ny, nx),
        initial=lambda: physics.fbp(y), ground_truth=read_ground_truth(measurement, None))
