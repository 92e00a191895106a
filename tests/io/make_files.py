"""Minimal valid HDF5 files for every spec in data_specs, for tests.

``write_valid_file("ct-parallel/1", tmp_path / "m.h5")`` writes a tiny file that validates clean.
Overrides replace or remove single items: ``sinogram=array`` replaces a dataset, ``det_spacing=2.0`` an
attribute, ``ground_truth=None`` removes an item, ``recon_spec="x/1"`` the spec attribute. Keys that the
spec does not name are written as datasets when given numpy arrays, as attributes otherwise.

Values are random (seeded) but of the right kind: angles in [0, pi), masks with a fully sampled centre,
positions in metres, frequencies in Hz. They are not consistent with any forward model.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from recon.io.specs import load_spec

NY = NX = 16


def _ct_parallel(rng, n_slices):
    lead = () if n_slices is None else (n_slices,)
    return ({"sinogram": rng.random(lead + (12, 24), dtype=np.float32),
             "angles": np.linspace(0, np.pi, 12, endpoint=False),
             "ground_truth": rng.random(lead + (NY, NX), dtype=np.float32)},
            {"image_shape": list(lead + (NY, NX)), "det_spacing": 1.0, "noise_std": 0.01})


def _mask(rng, lead):
    mask = rng.random(lead + (NY, NX)) < 0.3
    mask[..., NY // 2 - 2:NY // 2 + 2, :] = True
    return mask.astype(np.uint8)


def _complex(rng, shape):
    return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(np.complex64)


def _mri_cartesian(rng, n_slices):
    nz = n_slices or 1
    return ({"kspace": _complex(rng, (nz, 2, NY, NX)), "mask": _mask(rng, ()),
             "ground_truth": rng.random((nz, NY, NX), dtype=np.float32)},
            {"fft_norm": "ortho", "fft_centered": True})


def _ct_dynamic(rng, n_slices):
    return ({"sinogram": rng.random((4, 1, 24), dtype=np.float32),
             "angles": np.linspace(0, np.pi, 4, endpoint=False).reshape(4, 1),
             "ground_truth": rng.random((4, NY, NX), dtype=np.float32)},
            {"image_shape": [NY, NX]})


def _mri_dynamic(rng, n_slices):
    return ({"kspace": _complex(rng, (4, 2, NY, NX)), "mask": _mask(rng, (4,)),
             "ground_truth": rng.random((4, NY, NX), dtype=np.float32)},
            {"fft_norm": "ortho", "fft_centered": True})


def _mimo_nearfield(rng, n_slices):
    line = np.linspace(-0.05, 0.05, 3)
    return ({"measurements": _complex(rng, (4, 3, 3)),
             "frequencies": np.linspace(24e9, 26e9, 4),
             "tx_positions": np.stack([line, np.zeros(3), np.zeros(3)], axis=1),
             "rx_positions": np.stack([np.zeros(3), line, np.zeros(3)], axis=1),
             "ground_truth": _complex(rng, (4, 8, 8))},
            {"grid_min": [-0.05, -0.05, 0.2], "grid_max": [0.05, 0.05, 0.3], "grid_shape": [4, 8, 8]})


def _sparse_linear(rng, n_slices):
    n_samples = n_slices or 1
    return ({"A": rng.standard_normal((8, 16)).astype(np.float32),
             "y": rng.standard_normal((n_samples, 8)).astype(np.float32),
             "ground_truth": rng.standard_normal((n_samples, 16)).astype(np.float32)},
            {"noise_std": 0.01})


def _reconstruction(rng, n_slices):
    lead = () if n_slices is None else (n_slices,)
    return ({"reconstruction": rng.random(lead + (NY, NX), dtype=np.float32),
             "ground_truth": rng.random(lead + (NY, NX), dtype=np.float32)},
            {"method": "fbp", "params": json.dumps({"filter": "ramp"}), "source": "m.h5",
             "command": "recon reconstruct m.h5 --method fbp", "recon_version": "0.1.0", "device": "cpu",
             "elapsed_s": 0.5, "seed": 0, "psnr": 20.0, "ssim": 0.5, "display_min": 0.0, "display_max": 1.0})


BUILDERS = {"ct-parallel": _ct_parallel, "mri-cartesian": _mri_cartesian, "ct-dynamic": _ct_dynamic,
            "mri-dynamic": _mri_dynamic, "mimo-nearfield": _mimo_nearfield, "sparse-linear": _sparse_linear,
            "reconstruction": _reconstruction}


def write_valid_file(spec_name: str, path: str | Path, *, n_slices: int | None = 3, **overrides: Any) -> Path:
    """Write a tiny valid file of spec ``spec_name`` (``ct-parallel/1`` or ``ct-parallel``) at ``path``.

    ``n_slices``: size of the slice axis (nz for CT/MRI/reconstruction, n_samples for sparse-linear);
    None gives the 2D layout (a 2D sinogram and image; nz = 1 for MRI). Other specs ignore it. Image
    sizes are 16 x 16. Returns ``path``.
    """
    spec = load_spec(spec_name)
    name = spec.name
    datasets, attrs = BUILDERS[name](np.random.default_rng(0), n_slices)
    attrs = {"recon_spec": f"{name}/1", **attrs}
    for key, value in overrides.items():
        in_spec = key in spec.datasets or key in spec.attributes
        target = datasets if key in spec.datasets or (not in_spec and isinstance(value, np.ndarray)) else attrs
        datasets.pop(key, None)
        attrs.pop(key, None)
        if value is not None:
            target[key] = value
    path = Path(path)
    with h5py.File(path, "w") as file:
        for key, value in datasets.items():
            file.create_dataset(key, data=value)
        for key, value in attrs.items():
            file.attrs[key] = value
    return path
