"""napari sample data: the demo Shepp-Logan volume and its CT and MRI measurements, as real recon files.

The measurements are written once to ``$XDG_CACHE_HOME/recon/samples`` (``~/.cache`` by default) and opened
through the reader, so their layers carry a file path and the Reconstruct widget can run on them.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from recon.io.measurement import write_measurement
from recon.phantoms import shepp_logan_3d
from recon.simulate import simulate_ct_parallel, simulate_mri_cartesian
from recon_napari.layers import DEFAULT_AXES, LayerData, read_layers

SIZE, SLICES = 128, 16
"""The sample volume: 16 slices of 128 x 128 (small enough to reconstruct in seconds on a laptop)."""


def sample_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "recon" / "samples"


def _sample_file(name: str) -> Path:
    """The sample measurement ``name`` (ct or mri), simulated on first use with a fixed seed."""
    path = sample_dir() / f"shepp_logan_{name}.h5"
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    volume = shepp_logan_3d(SIZE, SLICES)
    rng = np.random.default_rng(0)
    if name == "ct":
        datasets, attrs = simulate_ct_parallel(volume, views=30, noise_std=0.01, rng=rng)
        spec = "ct-parallel/1"
    else:
        datasets, attrs = simulate_mri_cartesian(volume, coils=4, acceleration=4, noise_std=0.01, rng=rng)
        spec = "mri-cartesian/1"
    write_measurement(path, spec, datasets, {**attrs, "command": "napari sample data (recon)"}, overwrite=True)
    return path


def phantom_volume() -> list[LayerData]:
    """The 3D Shepp-Logan phantom, 16 x 128 x 128, values in [0, 1]."""
    kwargs = {"name": "Shepp-Logan phantom", "axis_labels": DEFAULT_AXES, "contrast_limits": [0, 1]}
    return [(shepp_logan_3d(SIZE, SLICES), kwargs, "image")]


def ct_measurement() -> list[LayerData]:
    """Sparse-view CT of the phantom: 30 parallel-beam views, 1% noise (a ct-parallel/1 file)."""
    return read_layers(_sample_file("ct"))


def mri_measurement() -> list[LayerData]:
    """4x undersampled 4-coil k-space of the phantom, 1% noise (an mri-cartesian/1 file)."""
    return read_layers(_sample_file("mri"))
