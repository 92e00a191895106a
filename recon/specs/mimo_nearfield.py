"""mimo-nearfield/1: near-field MIMO radar, one complex 3D reflectivity (z, y, x)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from recon.specs import MeasurementView, Options, Simulator, SpecKind, given

if TYPE_CHECKING:
    import torch

    from recon.io.measurement import MeasurementReader
    from recon.noise import NoiseEstimate
    from recon.problem import Problem


RADAR_MAX_METRES = 1e6
RADAR_MAX_FREQUENCY = 1e15
"""Radar geometry beyond these (positions and grid in metres, frequencies in Hz: 1e15 Hz is ultraviolet light) is
refused: float32 phases k R and spreading 1/R^2 overflow, and no near-field radar works there."""
def simulate(options: Options, volume: None, spacing: None, rng: np.random.Generator, fits) -> tuple[dict, dict]:
    """A synthetic scene seen by an array (:func:`recon.simulate.simulate_mimo_nearfield`)."""
    from recon import simulate as sim
    from recon.scenes import make_scene

    geometry = sim.radar_geometry(options.get("array") or "diagonal-12x13", options.get("array_file"),
                                  given(options, "frequencies", 20), given(options, "fmin", 4e9),
                                  given(options, "fmax", 16e9), options.get("grid") or "25,25,49")
    fits(math.prod(geometry.grid_shape) + len(geometry.frequencies) * len(geometry.tx_positions)
         * len(geometry.rx_positions))
    return sim.simulate_mimo_nearfield(make_scene(options.get("scene") or "letters", geometry.grid_shape, rng),
                                       geometry, given(options, "snr_db", 30.0), rng=rng)


SIMULATOR = Simulator(frozenset({"array", "array_file", "frequencies", "fmin", "fmax", "snr_db", "scene", "grid"}),
                      simulate, lambda options, side: 16 * 2, measures_volume=False)
KIND = SpecKind(
    "mimo-nearfield/1", "recon.data_specs:mimo-nearfield.yaml", "recon.specs.mimo_nearfield:build", image="complex",
    batch="none", axes=("z", "y", "x"), image_dims=3, reflectivity=True,
    simulate=SIMULATOR, noise="recon.specs.mimo_nearfield:noise", file_noise="recon.specs.mimo_nearfield:file_noise",
    views=(MeasurementView("measurements", ("frequency", "tx", "rx"), colormap="viridis"),),
    voxel_size="recon.specs.mimo_nearfield:grid_voxel_size")


def noise(problem: Problem, attrs: dict) -> NoiseEstimate:
    """The noise level the file states for the problem's measurements (one scene)."""
    from recon.noise import radar_noise

    return radar_noise(attrs, problem.y.detach().cpu()[0, 0].numpy())


def file_noise(measurement: MeasurementReader, slices: slice | None) -> NoiseEstimate:
    """The noise level the file states for its measurements (one scene: ``slices`` does not apply)."""
    from recon.noise import radar_noise

    return radar_noise(measurement.attrs, measurement.read("measurements"))


def grid_voxel_size(attrs: dict[str, Any], ndim: int) -> tuple[tuple[float, float, float] | None, str | None]:
    """Voxel size (dz, dy, dx) in metres of a ``mimo-nearfield/1`` grid (attributes in x, y, z order); (None, None)
    without the grid attributes."""
    try:
        lo, hi, shape = (np.asarray(attrs[k], dtype=float) for k in ("grid_min", "grid_max", "grid_shape"))
    except KeyError:
        return None, None
    step = (hi - lo)[::-1] / np.maximum(shape - 1, 1)
    return tuple(float(s) for s in step), "m"


def build(measurement: MeasurementReader, slices: slice | None, device: torch.device,
          dtype: torch.dtype) -> Problem:
    import torch

    from recon.physics.mimo import NearFieldMIMO, RadarGeometry
    from recon.problem import Problem
    from recon.problems import check_scale, read_ground_truth

    attrs = measurement.attrs
    frequencies, tx, rx = (measurement.read(key) for key in ("frequencies", "tx_positions", "rx_positions"))
    geometry_values = {"frequencies": frequencies, "tx_positions": tx, "rx_positions": rx,
                       "grid_min": np.asarray(attrs["grid_min"]), "grid_max": np.asarray(attrs["grid_max"])}
    for key, values in geometry_values.items():
        check_scale(measurement, key, values, (0.0, RADAR_MAX_FREQUENCY if key == "frequencies" else RADAR_MAX_METRES))
    geometry = RadarGeometry(frequencies, tx, rx, tuple(attrs["grid_min"]), tuple(attrs["grid_max"]),
                             tuple(attrs["grid_shape"]))
    physics = NearFieldMIMO(geometry, device=device, dtype=dtype)
    measured = measurement.read("measurements")
    check_scale(measurement, "measurements", measured)
    y = torch.view_as_real(torch.as_tensor(measured)).movedim(-1, 0)[None]
    y = y.to(device=device, dtype=dtype).contiguous()
    shape = geometry.grid_shape
    truth = read_ground_truth(measurement, None)
    return Problem(
        spec=measurement.spec.id, physics=physics, y=y, x_shape=(1, 2, *shape), output_shape=tuple(shape),
        initial=lambda: physics.A_adjoint(y), complex_image=True, ground_truth=truth,
        voxel_size=geometry.voxel_size(), unit="m", noise_std=attrs.get("noise_std"))
