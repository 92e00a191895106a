"""Measurement files for batch tests, written through the library (fast) with distinct seeds."""

from pathlib import Path

import numpy as np
import pytest

from recon.io.measurement import write_measurement
from recon.phantoms import shepp_logan_3d
from recon.simulate import simulate_ct_parallel


def write_ct(path: Path, seed: int, size: int = 32, n_slices: int = 8, views: int = 20) -> Path:
    volume = shepp_logan_3d(size, n_slices)
    datasets, attrs = simulate_ct_parallel(volume, views=views, noise_std=0.01, rng=np.random.default_rng(seed))
    write_measurement(path, "ct-parallel/1", datasets, attrs)
    return path


@pytest.fixture
def six_files(tmp_path) -> Path:
    """5 valid CT files and one corrupt one (truncated HDF5) in ``tmp_path/in``."""
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(5):
        write_ct(folder / f"scan{i}.h5", seed=i)
    good = (folder / "scan0.h5").read_bytes()
    (folder / "scan5.h5").write_bytes(good[: len(good) // 3])
    return folder
