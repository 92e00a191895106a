"""Noise-level estimators against known noise: CT sinograms, low-dose photon counts, multi-coil k-space."""

import math

import numpy as np
import pytest

from recon.errors import UserError
from recon.io.measurement import MeasurementFile, write_measurement
from recon.noise import estimate_noise, poisson_photons, relative_noise
from recon.phantoms import shepp_logan_3d
from recon.simulate import simulate_ct_parallel, simulate_mri_cartesian
from tests.cli.conftest import run_cli

LEVELS = (0.001, 0.003, 0.01, 0.03, 0.1)
"""Relative noise (``recon simulate --noise-std``) from 0.1 % to 10 %."""


@pytest.fixture(scope="module")
def phantom() -> np.ndarray:
    return shepp_logan_3d(128)[60:62]


def estimated(tmp_path, spec: str, datasets: dict, attrs: dict, drop: tuple[str, ...] = ("noise_std",)):
    """The estimate from a file written without the attributes ``drop`` (so the estimator has to find it)."""
    path = tmp_path / "m.h5"
    write_measurement(path, spec, datasets, {k: v for k, v in attrs.items() if k not in drop}, overwrite=True)
    with MeasurementFile(path) as measurement:
        return estimate_noise(measurement)


@pytest.mark.parametrize("views", [30, 120])
@pytest.mark.parametrize("level", LEVELS)
def test_ct_gaussian_noise_within_15_percent(tmp_path, phantom, views, level):
    datasets, attrs = simulate_ct_parallel(phantom, views, noise_std=level, rng=np.random.default_rng(3))
    estimate = estimated(tmp_path, "ct-parallel/1", datasets, attrs)
    assert estimate.source == "estimated"
    assert estimate.std == pytest.approx(attrs["noise_std"], rel=0.15)
    assert estimate.sq_norms.shape == (2,)
    assert estimate.norm == pytest.approx(attrs["noise_std"] * math.sqrt(datasets["sinogram"].size), rel=0.15)


@pytest.mark.parametrize("level", LEVELS)
def test_mri_noise_within_15_percent(tmp_path, phantom, level):
    datasets, attrs = simulate_mri_cartesian(phantom, 8, 4.0, noise_std=level, rng=np.random.default_rng(3))
    estimate = estimated(tmp_path, "mri-cartesian/1", datasets, attrs)
    assert estimate.per_coil.shape == (8,)
    assert estimate.std == pytest.approx(attrs["noise_std"], rel=0.15)
    sampled = np.count_nonzero(datasets["kspace"])
    assert estimate.norm == pytest.approx(attrs["noise_std"] * math.sqrt(sampled), rel=0.15)


@pytest.mark.parametrize("level", (0.003, 0.01))
def test_mri_noise_on_a_small_grid_uses_a_smaller_calibration_kernel(tmp_path, level):
    """64^2 at 4x with 8 coils: the 8 calibration lines hold too few 5 x 5 patches, so a smaller kernel is used.
    Before, only the outer-k-space bound applied, which read 6.7x (0.3 %) and 2.2x (1 %) the true noise."""
    image = shepp_logan_3d(64)[30:31]
    datasets, attrs = simulate_mri_cartesian(image, 8, 4.0, noise_std=level, rng=np.random.default_rng(3))
    estimate = estimated(tmp_path, "mri-cartesian/1", datasets, attrs)
    assert "calibration" in estimate.method
    assert estimate.std == pytest.approx(attrs["noise_std"], rel=0.25)


@pytest.mark.parametrize("photons", [1e3, 1e4, 1e5])
def test_poisson_photons_and_noise_norm(tmp_path, photons):
    """Low-dose CT: I0 estimated from the post-log sinogram alone, and the expected noise norm from the stated I0
    against the actual noise (the same counts without noise would be the clean line integrals)."""
    volume = shepp_logan_3d(128)[60:62] * 0.02  # attenuation per pixel: line integrals up to ~2
    datasets, attrs = simulate_ct_parallel(volume, 60, photons=photons, rng=np.random.default_rng(3))
    clean, _ = simulate_ct_parallel(volume, 60)
    noise = datasets["sinogram"] - clean["sinogram"]
    assert attrs["noise_model"] == "poisson" and "noise_std" not in attrs
    assert poisson_photons(datasets["sinogram"]) == pytest.approx(photons, rel=0.15)
    stated = estimated(tmp_path, "ct-parallel/1", datasets, attrs, drop=())
    assert stated.source == "file"
    assert stated.norm == pytest.approx(float(np.linalg.norm(noise)), rel=0.15)
    guessed = estimated(tmp_path, "ct-parallel/1", datasets, attrs, drop=("photons",))
    assert guessed.source == "estimated"
    assert guessed.norm == pytest.approx(float(np.linalg.norm(noise)), rel=0.15)


def test_poisson_refuses_line_integrals_that_starve_the_detector():
    with pytest.raises(UserError, match="under one photon"):
        simulate_ct_parallel(shepp_logan_3d(64)[32], 30, photons=1e4)  # values ~1 per pixel: no photons left


@pytest.mark.slow
def test_simulate_photons_from_the_command_line(tmp_path):
    """`recon simulate --photons` writes a post-log sinogram whose noise model the file states; with --noise-std
    too, or with line integrals that starve the detector, it exits 2 with one line."""
    volume = tmp_path / "head.npy"
    np.save(volume, shepp_logan_3d(64)[32] * 0.04)
    out = tmp_path / "lowdose.h5"
    result = run_cli("simulate", "ct-parallel", "--volume", volume, "--views", "30", "--photons", "5000", "--out", out)
    assert result.returncode == 0, result.stderr
    with MeasurementFile(out) as measurement:
        assert (measurement.attrs["noise_model"], measurement.attrs["photons"]) == ("poisson", 5000.0)
        assert estimate_noise(measurement).source == "file"
    both = run_cli("simulate", "ct-parallel", "--volume", volume, "--photons", "5000", "--noise-std", "0.01", "--out",
                   tmp_path / "both.h5")
    starved = run_cli("simulate", "ct-parallel", "--phantom", "shepp-logan-3d", "--photons", "1e4", "--out",
                      tmp_path / "starved.h5")
    for refused in (both, starved):
        assert refused.returncode == 2 and refused.stderr.count("\n") == 1 and "--photons" in refused.stderr
    assert not (tmp_path / "both.h5").exists() and not (tmp_path / "starved.h5").exists()


def test_the_files_noise_std_is_used_as_stated(tmp_path, phantom):
    datasets, attrs = simulate_ct_parallel(phantom, 30, noise_std=0.01)
    estimate = estimated(tmp_path, "ct-parallel/1", datasets, attrs, drop=())
    assert (estimate.source, estimate.std) == ("file", attrs["noise_std"])
    assert estimate.record() == {"noise_std": attrs["noise_std"], "noise_source": "file",
                                 "noise_method": "the file's noise_std"}


def test_relative_noise_gives_back_the_simulations_level(phantom):
    datasets, attrs = simulate_ct_parallel(phantom, 30, noise_std=0.03)
    noise_norm = attrs["noise_std"] * math.sqrt(datasets["sinogram"].size)
    assert relative_noise(float(np.linalg.norm(datasets["sinogram"])), noise_norm) == pytest.approx(0.03, rel=0.01)
