"""Files for the napari plugin tests: one valid file per spec, a small CT measurement with ground truth."""

from pathlib import Path

import numpy as np
import pytest

from recon.io.measurement import write_measurement
from recon.phantoms import shepp_logan_3d
from recon.simulate import simulate_ct_parallel

SPECS = ("ct-parallel/1", "mri-cartesian/1", "ct-dynamic/1", "mri-dynamic/1", "mimo-nearfield/1", "sparse-linear/1",
         "reconstruction/1")


@pytest.fixture(autouse=True)
def sample_cache(tmp_path_factory, monkeypatch) -> Path:
    """Sample data goes to a per-session cache folder, not the user's."""
    cache = tmp_path_factory.getbasetemp() / "xdg_cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    return cache


@pytest.fixture(scope="session")
def ct_measurement(tmp_path_factory) -> Path:
    """8 slices of a 64^2 Shepp-Logan, 30 views, 1% noise, with ground truth (ct-parallel/1)."""
    path = tmp_path_factory.mktemp("ct") / "phantom_ct.h5"
    datasets, attrs = simulate_ct_parallel(shepp_logan_3d(64, 8), views=30, noise_std=0.01,
                                           rng=np.random.default_rng(0))
    write_measurement(path, "ct-parallel/1", datasets, attrs)
    return path


@pytest.fixture
def napari_settings(tmp_path, monkeypatch):
    """napari's settings for this test alone, kept in tmp_path/settings.yaml (napari saves on every change);
    ask for it before the viewer."""
    from napari import settings

    monkeypatch.setattr(settings, "_SETTINGS", None)
    return settings.get_settings(tmp_path / "settings.yaml")
