"""mri-dynamic/1: dynamic multi-coil Cartesian MRI, one complex frame per time point (t, y, x); built by the
mri-cartesian builder (coil maps from the time-averaged k-space)."""

from __future__ import annotations

import functools

from recon.specs import MeasurementView, Simulator, SpecKind
from recon.specs.mri_cartesian import SIMULATOR as STATIC

SIMULATOR = Simulator(STATIC.options | {"frames"}, functools.partial(STATIC.run, dynamic=True),
                      STATIC.bytes_per_element)
KIND = SpecKind(
    "mri-dynamic/1", "recon.data_specs:mri-dynamic.yaml", "recon.specs.mri_cartesian:build", image="complex",
    batch="time", axes=("t", "y", "x"), simulate=SIMULATOR,
    views=(MeasurementView("kspace", ("t", "coil", "ky", "kx"), "logabs", colormap="magma"),
           MeasurementView("mask", ("t", "ky", "kx"), visible=False)))
