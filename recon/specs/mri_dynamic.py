"""mri-dynamic/1: dynamic multi-coil Cartesian MRI, one complex frame per time point (t, y, x); built by the
mri-cartesian builder (coil maps from the time-averaged k-space)."""

from __future__ import annotations

from recon.specs import MeasurementView, SpecKind

KIND = SpecKind(
    "mri-dynamic/1", "recon.data_specs:mri-dynamic.yaml", "recon.specs.mri_cartesian:build", image="complex",
    batch="time", axes=("t", "y", "x"), simulate="recon.simulate:simulate_mri_dynamic",
    views=(MeasurementView("kspace", ("t", "coil", "ky", "kx"), "logabs", colormap="magma"),
           MeasurementView("mask", ("t", "ky", "kx"), visible=False)))
