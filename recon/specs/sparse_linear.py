"""sparse-linear/1: batches of 1D signals under a dense matrix, outputs (sample, n)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from recon.specs import MeasurementView, Options, Simulator, SpecKind, given

if TYPE_CHECKING:
    import torch

    from recon.io.measurement import MeasurementReader
    from recon.problem import Problem


def simulate(options: Options, volume: None, spacing: None, rng: np.random.Generator, fits) -> tuple[dict, dict]:
    """``samples`` sparse signals under a random matrix (:func:`recon.simulate.simulate_sparse_linear`)."""
    from recon.simulate import simulate_sparse_linear

    m, n, samples = given(options, "m", 75), given(options, "n", 150), given(options, "samples", 100)
    fits(m * n + samples * (m + n))
    return simulate_sparse_linear(m, n, given(options, "k", 12), given(options, "snr_db", 10.0), samples, rng=rng)


SIMULATOR = Simulator(frozenset({"m", "n", "k", "snr_db", "samples"}), simulate, lambda options, side: 4 * 2,
                      measures_volume=False)
KIND = SpecKind(
    "sparse-linear/1", "recon.data_specs:sparse-linear.yaml", "recon.specs.sparse_linear:build", image="real",
    batch="sample", axes=("sample", "n"), image_dims=1, simulate=SIMULATOR,
    views=(MeasurementView("y", ("sample", "m")),
           MeasurementView("A", ("m", "n"), visible=False, colormap="twilight_shifted")))


def build(measurement: MeasurementReader, slices: slice | None, device: torch.device,
          dtype: torch.dtype) -> Problem:
    import torch

    from recon.physics.sparse import MatrixOperator
    from recon.problem import Problem
    from recon.problems import check_scale, no_information, read_ground_truth

    matrix = measurement.read("A")
    if not matrix.any():
        raise no_information(measurement, "A", "the forward operator A is all zero", "store the operator's matrix")
    check_scale(measurement, "A", matrix)
    signals = measurement.read("y", slices)
    check_scale(measurement, "y", signals)
    physics = MatrixOperator(matrix, device=device, dtype=dtype)
    y = torch.as_tensor(signals, device=device, dtype=dtype)[:, None, :]
    n_samples, n = y.shape[0], matrix.shape[1]
    return Problem(
        spec=measurement.spec.id, physics=physics, y=y, x_shape=(n_samples, 1, n), output_shape=(n_samples, n),
        initial=lambda: torch.zeros((n_samples, 1, n), device=device, dtype=dtype), norm_shape=(1, 1, n),
        ground_truth=read_ground_truth(measurement, slices))
