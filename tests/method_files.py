"""Tiny measurement files of every spec, written with recon.simulate, for the tests that run every method on every
spec it claims (tests/test_method_contract.py on the CPU, tests/test_cuda_methods.py on CUDA)."""

from pathlib import Path

import numpy as np

from recon.dynamic_phantoms import make_dynamic_phantom
from recon.io.measurement import write_measurement
from recon.phantoms import shepp_logan_3d
from recon.scenes import make_scene
from recon.simulate import (
    radar_geometry,
    simulate_ct_dynamic,
    simulate_ct_parallel,
    simulate_mimo_nearfield,
    simulate_mri_cartesian,
    simulate_mri_dynamic,
    simulate_sparse_linear,
)

SLICES = {"ct-parallel/1": 3, "mri-cartesian/1": 3, "sparse-linear/1": 3}
"""The specs whose files split into slabs (``--slices``) and the number of slices (samples) in these files; dynamic
files (6 frames) are reconstructed whole."""


def simulated(spec: str, rng: np.random.Generator) -> tuple[dict, dict]:
    """(datasets, attrs) of a tiny file: 32^2 images, a few views, coils or frames, 1% noise."""
    volume = shepp_logan_3d(32, 8)[3:6]
    if spec == "ct-parallel/1":
        return simulate_ct_parallel(volume, 12, noise_std=0.01, rng=rng)
    if spec == "mri-cartesian/1":
        return simulate_mri_cartesian(volume, 2, 4, "uniform1d", noise_std=0.01, with_coil_maps=True, rng=rng)
    if spec == "ct-dynamic/1":
        return simulate_ct_dynamic(make_dynamic_phantom("walnut", 6, 32), views_per_frame=2, noise_std=0.005, rng=rng)
    if spec == "mri-dynamic/1":
        return simulate_mri_dynamic(make_dynamic_phantom("cardiac", 6, 32), 2, 4, noise_std=0.01, rng=rng)
    if spec == "sparse-linear/1":
        return simulate_sparse_linear(20, 40, 3, 20.0, 3, rng=rng)
    geometry = radar_geometry("diagonal-12x13", None, 4, 4e9, 16e9, "7,7,9")
    return simulate_mimo_nearfield(make_scene("shapes", (9, 7, 7), rng), geometry, snr_db=30, rng=rng)


def write_files(folder: Path, specs) -> dict[str, Path]:
    """One tiny file per spec in ``folder`` (seed 0): spec -> path."""
    return {spec: write_measurement(folder / f"{spec.split('/')[0]}.h5", spec,
                                    *simulated(spec, np.random.default_rng(0))) for spec in sorted(specs)}
