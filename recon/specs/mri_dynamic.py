"""mri-dynamic/1: dynamic multi-coil Cartesian MRI, one complex frame per time point (t, y, x); built by the
mri-cartesian builder (coil maps from the time-averaged k-space)."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from recon.specs import MeasurementView, Simulator, SpecKind
from recon.specs.mri_cartesian import SIMULATOR as STATIC
from recon.specs.mri_cartesian import problem_kspace

if TYPE_CHECKING:
    from recon.io.measurement import MeasurementReader
    from recon.noise import NoiseEstimate
    from recon.problem import Problem

SIMULATOR = Simulator(STATIC.options | {"frames"}, functools.partial(STATIC.run, dynamic=True),
                      STATIC.bytes_per_element)
KIND = SpecKind(
    "mri-dynamic/1", "recon.data_specs:mri-dynamic.yaml", "recon.specs.mri_cartesian:build", image="complex",
    batch="time", axes=("t", "y", "x"), simulate=SIMULATOR, noise="recon.specs.mri_dynamic:noise",
    file_noise="recon.specs.mri_dynamic:file_noise",
    views=(MeasurementView("kspace", ("t", "coil", "ky", "kx"), "logabs", colormap="magma"),
           MeasurementView("mask", ("t", "ky", "kx"), visible=False)))


def noise(problem: Problem, attrs: dict) -> NoiseEstimate:
    """The noise level of the problem's k-space (P, C, ny, nx), all frames estimated jointly."""
    from recon.noise import kspace_noise

    return kspace_noise(attrs, *problem_kspace(problem))


def file_noise(measurement: MeasurementReader, slices: slice | None) -> NoiseEstimate:
    """The noise level of all the file's frames (estimated jointly, whatever ``slices``)."""
    from recon.noise import kspace_noise

    return kspace_noise(measurement.attrs, measurement.read("kspace"), measurement.read("mask"))
