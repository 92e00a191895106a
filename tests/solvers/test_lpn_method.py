"""Method ``lpn`` with the shipped weights: beats FBP on a real head CT slice it never saw (and the adjoint on
MRI), its fixed-point residual falls monotonically to below 1e-3, report_prior stores R per slice and per
pixel, the convergence condition is reported, and priors that are not LPNs are refused."""

import h5py
import numpy as np
import pytest

from recon.errors import UserError
from recon.io.measurement import write_measurement
from recon.phantoms import shepp_logan_3d
from recon.pipeline import Request, compute, reconstruct
from recon.simulate import simulate_ct_parallel, simulate_mri_cartesian


@pytest.fixture(scope="module")
def head_ct_file(tmp_path_factory):
    """pydicom-data's 693_UNCR head CT slice (never trained on) at 128^2, 45 views, 1% noise."""
    from pydicom import dcmread
    from pydicom.data import get_testdata_file
    from skimage.transform import resize

    dataset = dcmread(get_testdata_file("693_UNCR.dcm"))
    hu = dataset.pixel_array * float(dataset.RescaleSlope) + float(dataset.RescaleIntercept)
    image = resize(np.maximum(hu + 1000.0, 0.0) / 1000.0, (128, 128), anti_aliasing=True)[None]
    datasets, attrs = simulate_ct_parallel(image.astype(np.float32), 45, noise_std=0.01,
                                           rng=np.random.default_rng(0))
    return write_measurement(tmp_path_factory.mktemp("lpn") / "head.h5", "ct-parallel/1", datasets, attrs)


@pytest.fixture(scope="module")
def ct_file(tmp_path_factory):
    """Two 64^2 slices of the 3D Shepp-Logan phantom, 45 views, 1% noise."""
    volume = shepp_logan_3d(64, 8)[3:5]
    datasets, attrs = simulate_ct_parallel(volume, 45, noise_std=0.01, rng=np.random.default_rng(0))
    return write_measurement(tmp_path_factory.mktemp("lpn") / "ct.h5", "ct-parallel/1", datasets, attrs)


@pytest.fixture(scope="module")
def mri_file(tmp_path_factory):
    """One 48^2 Shepp-Logan slice, 4 coils, 4x Gaussian 1D mask, 1% noise."""
    volume = shepp_logan_3d(48, 8)[3:4]
    datasets, attrs = simulate_mri_cartesian(volume, 4, 4, "gaussian1d", noise_std=0.01, with_coil_maps=True,
                                             rng=np.random.default_rng(0))
    return write_measurement(tmp_path_factory.mktemp("lpn") / "mri.h5", "mri-cartesian/1", datasets, attrs)


def run(path, method, **params):
    return compute(Request(input=path, method=method, params=params))


def test_lpn_beats_fbp_and_its_residual_falls_monotonically(head_ct_file):
    fbp = run(head_ct_file, "fbp").summary.metrics["psnr"]
    outcome = run(head_ct_file, "lpn")  # the default 100 iterations
    psnr = outcome.summary.metrics["psnr"]
    assert psnr > fbp + 3.0, (psnr, fbp)  # measured 31.5 dB vs 27.0 (tv: 34.4)
    change = outcome.history["change"]
    assert np.all(np.diff(change) <= 0), change  # measured: 7.2e-3 at the start, below 1e-3 from iteration 38
    assert change[-1] < 1e-3
    assert not outcome.attrs["convergence"].startswith("warning")


def test_lpn_on_complex_mri_images_beats_the_adjoint(mri_file):
    adjoint = run(mri_file, "adjoint").summary.metrics["psnr"]
    psnr = run(mri_file, "lpn", iterations=30).summary.metrics["psnr"]
    assert psnr > adjoint + 1.5, (psnr, adjoint)  # measured 19.2 dB vs 17.2


def test_report_prior_writes_values_and_maps(ct_file, tmp_path):
    out = tmp_path / "lpn.h5"
    reconstruct(Request(input=ct_file, method="lpn", output=out, params={"iterations": 5, "report_prior": "true"}))
    with h5py.File(out) as f:
        values, maps = f["prior_value"][()], f["prior_map"][()]
        assert values.shape == (2,) and maps.shape == (2, 64, 64)
        assert np.allclose(maps.sum(axis=(1, 2)), values, rtol=1e-3)
        assert {"prior", "objective", "change", "residual"} <= set(f["history"])
        assert np.isclose(f["history/prior"][-1], values.mean(), rtol=1e-3)
        assert "Theorem 2" in f.attrs["convergence"]


def test_unmet_convergence_condition_is_a_warning(ct_file):
    outcome = run(ct_file, "lpn", iterations=2, rho=0.5)
    assert outcome.attrs["convergence"].startswith("warning: rho 0.5 <= ||A^T A||")


def test_other_priors_are_refused(ct_file):
    with pytest.raises(UserError, match="needs a learned proximal network"):
        compute(Request(input=ct_file, method="lpn", prior="l1"))


@pytest.mark.parametrize("fixture", ["ct_file", "mri_file"])
def test_the_box_keeps_the_image_in_the_datas_range(request, fixture):
    """z <- P_B(f_tau(x + u)): the output lies in [box_min, box_max] times each slice's scale (magnitudes for MRI);
    a tight box_max binds, so the bound is the box's and not the data's."""
    import torch

    from recon.io.measurement import MeasurementFile
    from recon.problems import build_problem
    from recon.solvers.normalised import Normalised

    path = request.getfixturevalue(fixture)
    with MeasurementFile(path) as measurement:
        scale = Normalised.per_slice(build_problem(measurement, None, torch.device("cpu"))).scale.numpy()
    outcome = run(path, "lpn", iterations=5, box_max=0.5)
    image = np.abs(outcome.datasets.get("complex", outcome.image)).reshape(len(scale), -1)
    assert image.min() >= 0 and np.all(image.max(axis=1) <= 0.5 * scale * (1 + 1e-5))
    assert np.all(image.max(axis=1) >= 0.45 * scale)  # it binds
    free = run(path, "lpn", iterations=5, box="false").image
    assert np.abs(free).max() > np.abs(outcome.image).max()
