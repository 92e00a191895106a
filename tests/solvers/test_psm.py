"""psm and red-psm: the spline basis, the temporal-basis initialisations, and both methods on small dynamic files."""

import numpy as np
import pytest
import torch

from recon.dynamic_phantoms import make_dynamic_phantom
from recon.errors import UserError
from recon.io.measurement import MeasurementFile, write_measurement
from recon.methods import RunContext, get_method
from recon.metrics import quality
from recon.models.separable import spline_matrix
from recon.physics.dynamic import DynamicParallelCT, view_angles
from recon.problems import build_problem
from recon.simulate import simulate_ct_dynamic, simulate_mri_dynamic
from recon.solvers.psm_init import cosine_latent, prosep_latent


def subspace_cosines(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Cosines of the principal angles between the row spaces of a and b (K, P)."""
    qa, _ = torch.linalg.qr(a.T.double())
    qb, _ = torch.linalg.qr(b.T.double())
    return torch.linalg.svdvals(qa.T @ qb)


def test_spline_matrix_interpolates_the_knots_and_reproduces_cubics():
    knots, frames = 6, 26  # frame times hit the knots every 5 frames
    spline = spline_matrix(knots, frames)
    np.testing.assert_allclose(spline[:, ::5], np.eye(knots), atol=1e-12)
    np.testing.assert_allclose(spline.sum(axis=0), 1, atol=1e-12)
    cubic = lambda t: 2 * t**3 - t**2 + 0.5 * t - 1  # noqa: E731
    np.testing.assert_allclose(cubic(np.linspace(0, 1, knots)) @ spline, cubic(np.linspace(0, 1, frames)), atol=1e-12)


def test_prosep_recovers_the_temporal_subspace_of_a_separable_sinogram():
    torch.manual_seed(0)
    frames, size, order, knots = 48, 32, 2, 6
    spline = torch.as_tensor(spline_matrix(knots, frames))
    psi = torch.randn(order + 1, knots, dtype=torch.float64) @ spline
    y, x = torch.meshgrid(torch.linspace(-1, 1, size), torch.linspace(-1, 1, size), indexing="ij")
    centres = ((0, 0), (0.3, -0.2), (-0.4, 0.3))
    blobs = torch.stack([torch.exp(-((x - a) ** 2 + (y - b) ** 2) / 0.1) for a, b in centres])
    sequence = torch.einsum("kp,khw->phw", psi.float(), blobs)[:, None]
    physics = DynamicParallelCT((size, size), view_angles(frames))
    estimate = prosep_latent(physics.A(sequence)[:, 0], physics.angles, spline, order) @ spline
    assert subspace_cosines(psi, estimate).min() > 0.999
    assert subspace_cosines(psi, cosine_latent(order, knots) @ spline).min() < 0.9  # the start was not it


def _problem(tmp_path, spec: str, frames: int = 24, size: int = 32):
    rng = np.random.default_rng(3)
    if spec == "ct-dynamic/1":
        datasets, attrs = simulate_ct_dynamic(make_dynamic_phantom("walnut", frames, size, seed=1), noise_std=0.005,
                                              rng=rng)
    else:
        datasets, attrs = simulate_mri_dynamic(make_dynamic_phantom("cardiac", frames, size, seed=1), coils=4,
                                               acceleration=4, noise_std=0.01, rng=rng)
    path = write_measurement(tmp_path / "m.h5", spec, datasets, attrs)
    with MeasurementFile(path) as measurement:
        return build_problem(measurement, None, torch.device("cpu"))


def _psnr(problem, name: str, **params) -> tuple[float, dict]:
    method = get_method(name)
    result = method.solve(problem, method.parse_params(params), RunContext())
    image = problem.to_output(result.x)["reconstruction"]
    return quality(image, problem.ground_truth)["psnr"], result.history


@pytest.fixture(scope="module")
def ct_problem(tmp_path_factory):
    return _problem(tmp_path_factory.mktemp("ct"), "ct-dynamic/1")


def test_psm_fits_the_data_and_red_psm_beats_it_and_frame_wise_fbp(ct_problem):
    fbp, _ = _psnr(ct_problem, "fbp")
    psm, psm_history = _psnr(ct_problem, "psm", steps=250)
    red_psm, history = _psnr(ct_problem, "red-psm", rounds=20)
    assert psm_history["objective"][-1] < psm_history["objective"][0]
    assert set(history) == {"data", "red", "primal_residual", "change"} and len(history["data"]) == 20
    assert red_psm > psm + 1 and red_psm > fbp + 8, (fbp, psm, red_psm)


def test_red_psm_stops_by_its_tolerance_without_ground_truth(ct_problem):
    _, history = _psnr(ct_problem, "red-psm", rounds=50, tol=0.05)
    assert len(history["data"]) < 50
    assert max(history["primal_residual"][-1], history["change"][-1]) < 0.05


def test_red_psm_on_dynamic_mri_beats_the_zero_filled_adjoint(tmp_path):
    problem = _problem(tmp_path, "mri-dynamic/1")
    adjoint, _ = _psnr(problem, "adjoint")
    red_psm, _ = _psnr(problem, "red-psm", rounds=15)
    assert red_psm > adjoint + 3, (adjoint, red_psm)


def test_too_few_knots_for_the_order_is_a_user_error(ct_problem):
    with pytest.raises(UserError, match="--set knots.*knots >= order \\+ 1 = 7"):
        _psnr(ct_problem, "psm", order=6, knots=5)
